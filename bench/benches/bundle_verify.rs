//! Bundle verification throughput, first-verification latency and peak memory of stella-verify
//! against `sigstore-verify` 0.15.1, on the Rekor v2 bundles of the Sigstore conformance suite.
//!
//! Run with `cargo bench -p stella-bench --bench bundle_verify`. Options after `--`:
//! `--rounds N` (default 5), `--round-seconds S` (default 1.0), `--children N` (fresh processes
//! per verifier, default 10) and `--case NAME` (measure throughput of this case only). Without the
//! `--bench` argument that `cargo bench` passes, as under `cargo test --benches`, the defaults
//! shrink to one round of 0.1 s and one child per verifier, which checks the code paths quickly.
//!
//! Both verifiers get the same inputs: the case's trusted root, its bundle JSON and the SHA-256
//! digest of the artifact, with the suite's default identity and issuer as an exact-match policy.
//! The trust material is prepared once per case (a stella-verify `TrustSet`, a sigstore-verify
//! `Verifier`), and every timed verification parses the bundle JSON again, as a caller with a
//! new bundle must. The throughput loop runs on the main thread only. Rounds alternate between
//! the verifiers, so a load change on the machine affects both, and the table reports the median
//! round of each verifier and the range of the per-round ratios.
//!
//! Latency and memory come from fresh processes: the bench runs its own executable with the
//! `first-verification` sub-command, and that child loads the inputs, verifies once and prints
//! its timings and its peak resident set size.

#[path = "bundle_verify/cases.rs"]
mod cases;
#[path = "bundle_verify/fresh_process.rs"]
mod fresh_process;

use std::hint::black_box;
use std::time::{Duration, Instant};

use cases::{Case, PreparedCase, Verifier};

/// The case that the throughput target names.
const HIGHLIGHTED_CASE: &str = "rekor2-dsse-happy-path";

/// Minimum ratio of stella-verify's rate to sigstore-verify's on [`HIGHLIGHTED_CASE`] that the
/// throughput target sets, both measured in the same run.
const TARGET_RATIO: f64 = 1.3;

/// Untimed run of each verifier before the measured rounds, so that caches and lazy statics are
/// warm.
const WARM_UP: Duration = Duration::from_millis(300);

/// Benchmark settings from the command line.
struct Options {
    rounds: usize,
    round: Duration,
    children: usize,
    case_filter: Option<String>,
}

fn main() {
    // The first-verification latency of a child process counts from here.
    let started = Instant::now();
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments.first().map(String::as_str) == Some(fresh_process::SUB_COMMAND) {
        fresh_process::run_child(&arguments[1..], started);
        return;
    }

    let options = parse_options(&arguments).unwrap_or_else(|message| {
        eprintln!("error: {message}");
        eprintln!(
            "usage: bundle_verify [--rounds N] [--round-seconds S] [--children N] [--case NAME]"
        );
        std::process::exit(2);
    });

    // The fresh processes run first, while this process is still small: Linux counts the
    // parent's resident pages at spawn time in a child's `ru_maxrss` (see `fresh_process`).
    let latency_rows = fresh_process::measure(HIGHLIGHTED_CASE, options.children);

    let names = cases::rekor2_case_names().unwrap_or_else(|message| fail(&message));
    let all_cases: Vec<PreparedCase> = names
        .iter()
        .map(|name| Case::load(name).unwrap_or_else(|message| fail(&message)))
        .map(PreparedCase::new)
        .collect();

    print_environment();
    let disagreements = cross_check(&all_cases);

    let throughput_rows: Vec<ThroughputRow> = all_cases
        .iter()
        .filter(|case| !case.case.expected_to_fail())
        .filter(|case| {
            options
                .case_filter
                .as_ref()
                .is_none_or(|filter| *filter == case.case.name)
        })
        .map(|case| measure_throughput(case, &options))
        .collect();
    if let (Some(filter), true) = (&options.case_filter, throughput_rows.is_empty()) {
        fail(&format!(
            "--case {filter:?} names no passing rekor2 case; expected one of the accepted cases \
             of the cross-check above"
        ));
    }

    print_throughput(&throughput_rows, &options);
    fresh_process::print(&latency_rows, HIGHLIGHTED_CASE, options.children);

    // The tables are printed first, so that a disagreement does not hide the measurements.
    if disagreements > 0 {
        fail(&format!(
            "a verifier accepted a failing case {disagreements} time(s); see the DISAGREEMENT \
             lines of the cross-check above"
        ));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

fn parse_options(arguments: &[String]) -> Result<Options, String> {
    let full_run = arguments.iter().any(|argument| argument == "--bench");
    let mut options = if full_run {
        Options {
            rounds: 5,
            round: Duration::from_secs(1),
            children: 10,
            case_filter: None,
        }
    } else {
        Options {
            rounds: 1,
            round: Duration::from_millis(100),
            children: 1,
            case_filter: None,
        }
    };
    let mut iter = arguments.iter();
    while let Some(argument) = iter.next() {
        let mut value = |name: &str| {
            iter.next()
                .cloned()
                .ok_or_else(|| format!("{name} requires a value"))
        };
        match argument.as_str() {
            // `cargo bench` passes `--bench` to every benchmark binary. It selects the full run.
            "--bench" => {}
            "--rounds" => options.rounds = parse_positive(&value("--rounds")?, "--rounds")?,
            "--children" => {
                options.children = parse_positive(&value("--children")?, "--children")?;
            }
            "--round-seconds" => {
                let text = value("--round-seconds")?;
                let seconds: f64 = text
                    .parse()
                    .map_err(|_| format!("--round-seconds {text:?} is not a number"))?;
                if !(seconds.is_finite() && seconds > 0.0) {
                    return Err(format!("--round-seconds {text:?} must be positive"));
                }
                options.round = Duration::from_secs_f64(seconds);
            }
            "--case" => options.case_filter = Some(value("--case")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn parse_positive(text: &str, name: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(number) if number > 0 => Ok(number),
        _ => Err(format!("{name} {text:?} must be a positive integer")),
    }
}

fn print_environment() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!("CPU: {cpu}, {cores} core(s) available; verification runs on one thread");
    println!(
        "verifiers: stella-verify (this workspace) without and with its verification cache, \
         sigstore-verify {} with its default features (aws-lc-rs)",
        cases::SIGSTORE_VERIFY_VERSION
    );
}

/// Verifies every Rekor v2 case once with each verifier. A passing case that either verifier
/// rejects stops the benchmark, because its timings would measure a failure path. A failing case
/// that a verifier accepts is printed and counted, and the return value is that count.
fn cross_check(all_cases: &[PreparedCase]) -> usize {
    println!("\nCross-check: each verifier once on every rekor2 case");
    println!(
        "{:<58} {:<14} {:<20} {:<15}",
        "case",
        Verifier::Stella.name(),
        Verifier::StellaCached.name(),
        Verifier::SigstoreVerify.name()
    );
    let mut disagreements = 0;
    for case in all_cases {
        let outcomes = Verifier::ALL.map(|verifier| case.verify(verifier));
        let expected_to_fail = case.case.expected_to_fail();
        let cell = |outcome: &Result<(), String>| match outcome {
            Ok(()) => "accepted",
            Err(_) => "rejected",
        };
        println!(
            "{:<58} {:<14} {:<20} {:<15}",
            case.case.name,
            cell(&outcomes[0]),
            cell(&outcomes[1]),
            cell(&outcomes[2])
        );
        for (verifier, outcome) in Verifier::ALL.iter().zip(&outcomes) {
            match (expected_to_fail, outcome) {
                (false, Err(message)) => fail(&format!(
                    "{} rejected the passing case {}: {message}",
                    verifier.name(),
                    case.case.name
                )),
                (true, Ok(())) => {
                    println!(
                        "  DISAGREEMENT: {} accepted {}, which the suite expects to fail",
                        verifier.name(),
                        case.case.name
                    );
                    disagreements += 1;
                }
                _ => {}
            }
        }
    }
    disagreements
}

/// Verifications per second of every verifier on one case.
struct ThroughputRow {
    name: String,
    /// Per round, in the order of [`Verifier::ALL`].
    rounds: Vec<[f64; Verifier::ALL.len()]>,
}

impl ThroughputRow {
    fn median_rate(&self, verifier: Verifier) -> f64 {
        let index = verifier_index(verifier);
        median(self.rounds.iter().map(|round| round[index]).collect())
    }

    /// Ratio of the median rates of `verifier` and sigstore-verify.
    fn ratio(&self, verifier: Verifier) -> f64 {
        self.median_rate(verifier) / self.median_rate(Verifier::SigstoreVerify)
    }

    /// Lowest and highest ratio of `verifier`'s rate to sigstore-verify's within one round.
    fn round_ratio_range(&self, verifier: Verifier) -> (f64, f64) {
        let (index, peer) = (
            verifier_index(verifier),
            verifier_index(Verifier::SigstoreVerify),
        );
        self.rounds
            .iter()
            .map(|round| round[index] / round[peer])
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), ratio| {
                (low.min(ratio), high.max(ratio))
            })
    }
}

fn verifier_index(verifier: Verifier) -> usize {
    Verifier::ALL
        .iter()
        .position(|candidate| *candidate == verifier)
        .unwrap_or_else(|| unreachable!("Verifier::ALL lists every verifier"))
}

fn measure_throughput(case: &PreparedCase, options: &Options) -> ThroughputRow {
    for verifier in Verifier::ALL {
        verifications_per_second(case, verifier, WARM_UP);
    }
    let rounds = (0..options.rounds)
        .map(|round| {
            // Rotate which verifier runs first, so none always follows the same one.
            let count = Verifier::ALL.len();
            let mut rates = [0.0; Verifier::ALL.len()];
            for step in 0..count {
                let index = (round + step) % count;
                rates[index] = verifications_per_second(case, Verifier::ALL[index], options.round);
            }
            rates
        })
        .collect();
    ThroughputRow {
        name: case.case.name.clone(),
        rounds,
    }
}

/// Verifies the case in a loop for `duration` and returns the rate. Every verification must
/// succeed, so a regression cannot speed up the loop by failing early.
fn verifications_per_second(case: &PreparedCase, verifier: Verifier, duration: Duration) -> f64 {
    let start = Instant::now();
    let mut count: u64 = 0;
    loop {
        if let Err(message) = black_box(case.verify(black_box(verifier))) {
            fail(&format!(
                "{} rejected {} during the timed loop: {message}",
                verifier.name(),
                case.case.name
            ));
        }
        count += 1;
        let elapsed = start.elapsed();
        if elapsed >= duration {
            return count as f64 / elapsed.as_secs_f64();
        }
    }
}

fn print_throughput(rows: &[ThroughputRow], options: &Options) {
    println!(
        "\nIn-process throughput, one thread: verifications/s, median of {} round(s) of {:.1} s \
         per verifier",
        options.rounds,
        options.round.as_secs_f64()
    );
    println!(
        "{:<40} {:>14} {:>20} {:>16} {:>7} {:>13} {:>13}",
        "case",
        Verifier::Stella.name(),
        Verifier::StellaCached.name(),
        Verifier::SigstoreVerify.name(),
        "ratio",
        "round ratios",
        "cached ratio"
    );
    for row in rows {
        let (low, high) = row.round_ratio_range(Verifier::Stella);
        let marker = if row.name == HIGHLIGHTED_CASE {
            " *"
        } else {
            ""
        };
        println!(
            "{:<40} {:>14.0} {:>20.0} {:>16.0} {:>7.2} {:>13} {:>13.2}",
            format!("{}{marker}", row.name),
            row.median_rate(Verifier::Stella),
            row.median_rate(Verifier::StellaCached),
            row.median_rate(Verifier::SigstoreVerify),
            row.ratio(Verifier::Stella),
            format!("{low:.2}-{high:.2}"),
            row.ratio(Verifier::StellaCached)
        );
    }
    println!(
        "ratio: stella-verify / sigstore-verify (medians); round ratios: lowest and highest ratio \
         within one round; cached ratio: stella-verify+cache / sigstore-verify. The cached rate \
         repeats one bundle, so every verification after the first hits the cache."
    );

    if let Some(row) = rows.iter().find(|row| row.name == HIGHLIGHTED_CASE) {
        let ratio = row.ratio(Verifier::Stella);
        let verdict = if ratio >= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        };
        println!(
            "* target on {HIGHLIGHTED_CASE}: stella-verify (without cache) at least \
             {TARGET_RATIO} times sigstore-verify; measured {ratio:.2}: {verdict}"
        );
    }
}

/// Returns the median, the mean of the two middle values for an even count.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.is_empty() {
        f64::NAN
    } else if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}
