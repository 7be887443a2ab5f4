//! An import of a 1,048,576-entry log (three tile levels) killed midway with SIGKILL must leave
//! the attestor's cache as it was before the import or as it is after it, never a mix.
//!
//! Each round starts a fresh attestor and imports a trust root set and a 70,000-entry checkpoint
//! of the same log as a base. It then starts `stella rekor tiles import` of the large bundle,
//! kills the attestor at one moment and restarts it on the same data directory. The state found then must
//! match the state recorded before the import byte for byte, or the state that a reference
//! attestor reached with an import that ran to the end. Re-running the import must then succeed.
//!
//! When the attestor logs an `import phase` line for each phase of an import, the rounds kill it
//! as each phase starts. Otherwise they kill it at fixed fractions of the reference import's
//! wall time. An import may finish before the kill lands, so both outcomes are accepted, each
//! checked in full.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use stella_e2e::cli::{CliOutput, exit};
use stella_e2e::codes;
use stella_e2e::env::{Env, write_file};
use stella_e2e::forge::{ForgedLog, forge_log, forged_entry, read_entry_bundle};
use stella_e2e::runbook::path_arg;
use stella_e2e::vectors::Vectors;

/// Origin of the forged log.
const ORIGIN: &str = "import-kill.example/log";
/// Seed of the forged log's entries and key (hexadecimal, as `stella-log-forge --seed` takes it).
const SEED: &str = "6b696c6c";
/// Entries of the large log: 2^20 entries fill tiles on levels 0, 1 and 2.
const LARGE_SIZE: u64 = 1_048_576;
/// Entries of the base checkpoint, imported before the large bundle.
const BASE_SIZE: u64 = 70_000;
/// An entry that the base checkpoint proves.
const OLD_INDEX: u64 = 69_999;
/// An entry that only the large bundle proves.
const NEW_INDEX: u64 = 1_000_000;
/// File name of the large bundle, as the attestor's log names it.
const LARGE_FILE: &str = "large.tgz";

/// Import phases that the attestor logs, in order, as `import phase` lines with `phase=<name>`.
/// A kill at `done` comes after the commit, so it checks the state after the import.
const PHASES: [&str; 5] = ["receiving", "staging", "verifying", "committing", "done"];

/// Fractions of the reference import's wall time at which rounds kill the attestor when it logs
/// no phases. At 1.0 the import has often ended, which checks the state after it.
const KILL_FRACTIONS: [f64; 4] = [0.1, 0.5, 0.9, 1.0];

/// Maximum time a round waits for a phase line before it gives up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(60);

/// The forged logs and the entry files that the rounds share.
struct Fixture {
    base: ForgedLog,
    large: ForgedLog,
    old_entry: PathBuf,
    new_entry: PathBuf,
    trusted_root: PathBuf,
    _work: tempfile::TempDir,
}

/// The moment at which a round kills the attestor.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// As soon as the attestor logs the start of this phase of the large import.
    Phase(&'static str),
    /// This long after `stella rekor tiles import` started.
    Delay(Duration),
}

/// An attestor with the trust set and the base checkpoint, and its outputs at that point.
struct Prepared {
    env: Env,
    checkpoints: String,
    old_inclusion: String,
}

/// Outputs of the reference attestor before and after a large import that ran to the end.
struct Reference {
    before_checkpoints: String,
    after_checkpoints: String,
    import_time: Duration,
    logs_phases: bool,
}

/// The state a killed import left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Before,
    After,
}

fn forge_fixture(vectors: &Vectors) -> Fixture {
    let work = tempfile::tempdir().unwrap_or_else(|err| panic!("cannot create a temporary directory: {err}"));
    let base = forge_log(work.path(), "base", BASE_SIZE, ORIGIN, SEED);
    let large = forge_log(work.path(), "large", LARGE_SIZE, ORIGIN, SEED);
    assert_eq!(base.vkey, large.vkey, "one origin and seed give one key");

    // The entries the test computes must be the ones the forge wrote.
    let written = read_entry_bundle(&large.dir.join("tile/entries/000"));
    assert_eq!(written.len(), 256, "the first entry bundle is full");
    for (index, entry) in (0u64..).zip(&written) {
        assert_eq!(
            entry.as_slice(),
            forged_entry(SEED, index).as_slice(),
            "entry {index} of the forged log"
        );
    }

    let old_entry = work.path().join("old-entry");
    write_file(&old_entry, &forged_entry(SEED, OLD_INDEX));
    let new_entry = work.path().join("new-entry");
    write_file(&new_entry, &forged_entry(SEED, NEW_INDEX));
    assert!(
        large.bundle.ends_with(LARGE_FILE),
        "the attestor's log names the bundle {LARGE_FILE}, not {}",
        large.bundle.display()
    );
    Fixture {
        base,
        large,
        old_entry,
        new_entry,
        trusted_root: vectors.staging_trusted_root(),
        _work: work,
    }
}

fn inclusion(env: &Env, index: u64, entry: &Path) -> CliOutput {
    env.stella().run_json([
        "rekor",
        "inclusion",
        "--origin",
        ORIGIN,
        "--index",
        &index.to_string(),
        "--entry",
        &path_arg(entry),
    ])
}

fn checkpoints(env: &Env) -> CliOutput {
    let output = env
        .stella()
        .run_json(["rekor", "checkpoints", "--origin", ORIGIN]);
    output.assert_ok();
    output
}

#[track_caller]
fn assert_new_entry_missing(env: &Env, fixture: &Fixture, label: &str) {
    let output = inclusion(env, NEW_INDEX, &fixture.new_entry);
    assert_eq!(output.code, exit::FAILED, "{label}: entry {NEW_INDEX} must not be proven\n{output}");
    assert!(!output.bool_field("included"), "{label}\n{output}");
    assert_eq!(
        output.reason_codes(),
        vec![codes::REKOR_TILE_MISSING],
        "{label}: only the large bundle covers entry {NEW_INDEX}\n{output}"
    );
}

#[track_caller]
fn assert_new_entry_included(env: &Env, fixture: &Fixture, label: &str) {
    let output = inclusion(env, NEW_INDEX, &fixture.new_entry);
    output.assert_ok();
    assert!(output.bool_field("included"), "{label}\n{output}");
    assert_eq!(
        output.json().pointer("/checkpoint/tree_size").and_then(Value::as_u64),
        Some(LARGE_SIZE),
        "{label}\n{output}"
    );
}

/// Starts an attestor and imports the trust set and the base checkpoint.
fn prepare(fixture: &Fixture, name: &str) -> Prepared {
    let env = Env::builder(name).start();
    env.install_trust(&fixture.trusted_root, &[fixture.base.vkey.as_str()]);
    let output = env.tiles_import(&fixture.base.bundle);
    output.assert_ok();
    assert_eq!(
        output.json().pointer("/checkpoints/0/tree_size").and_then(Value::as_u64),
        Some(BASE_SIZE),
        "{output}"
    );

    let old = inclusion(&env, OLD_INDEX, &fixture.old_entry);
    old.assert_ok();
    assert!(old.bool_field("included"), "{old}");
    assert_new_entry_missing(&env, fixture, &format!("{name} before the import"));
    Prepared {
        checkpoints: checkpoints(&env).stdout,
        old_inclusion: old.stdout,
        env,
    }
}

fn import_large(env: &Env, fixture: &Fixture) -> CliOutput {
    env.tiles_import(&fixture.large.bundle)
}

/// Imports the large bundle to the end into a fresh attestor.
fn reference_run(fixture: &Fixture) -> Reference {
    let prepared = prepare(fixture, "import-kill-reference");
    let env = &prepared.env;
    let log_offset = env.attestor().log_text().len();

    let started = Instant::now();
    let output = import_large(env, fixture);
    let import_time = started.elapsed();
    output.assert_ok();
    assert!(!output.bool_field("already_imported"), "{output}");
    assert_eq!(
        output.json().pointer("/checkpoints/0/tree_size").and_then(Value::as_u64),
        Some(LARGE_SIZE),
        "{output}"
    );
    assert_new_entry_included(env, fixture, "reference");

    let log = env.attestor().log_text();
    let logs_phases = PHASES
        .iter()
        .all(|phase| find_phase(log.get(log_offset..).unwrap_or(""), phase));
    Reference {
        before_checkpoints: prepared.checkpoints.clone(),
        after_checkpoints: checkpoints(env).stdout,
        import_time,
        logs_phases,
    }
}

/// Returns true when `log` has an `import phase` line for `phase` of the large bundle. The line
/// comes from `tracing`, which prints a string field as `phase=name` or `phase="name"`.
fn find_phase(log: &str, phase: &str) -> bool {
    let plain = format!("phase={phase}");
    let quoted = format!("phase=\"{phase}\"");
    log.lines().any(|line| {
        line.contains("import phase")
            && line.contains(LARGE_FILE)
            && (line.contains(&plain) || line.contains(&quoted))
    })
}

/// Waits for the kill point, or for the import to end first. Returns true when the import had
/// already ended.
fn wait_for(point: KillPoint, env: &Env, log_offset: usize, started: Instant, import: &thread::JoinHandle<CliOutput>) -> bool {
    loop {
        if import.is_finished() {
            return true;
        }
        match point {
            KillPoint::Delay(delay) if started.elapsed() >= delay => return false,
            KillPoint::Delay(_) => {}
            KillPoint::Phase(phase) => {
                let log = env.attestor().log_text();
                if find_phase(log.get(log_offset..).unwrap_or(""), phase) {
                    return false;
                }
                assert!(
                    started.elapsed() < PHASE_TIMEOUT,
                    "the attestor logged no `import phase` line for {phase} within {PHASE_TIMEOUT:?}"
                );
            }
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Kills the attestor at `point` during the large import, restarts it and checks the state.
fn kill_round(fixture: &Fixture, reference: &Reference, mut prepared: Prepared, point: KillPoint) -> Outcome {
    let label = format!("kill at {point:?}");
    assert_eq!(
        prepared.checkpoints, reference.before_checkpoints,
        "{label}: the base import gives the same checkpoints in every attestor"
    );
    let log_offset = prepared.env.attestor().log_text().len();

    let stella = prepared.env.stella().clone();
    let bundle = path_arg(&fixture.large.bundle);
    let started = Instant::now();
    let import = thread::spawn(move || {
        stella.run_json(["rekor", "tiles", "import", "--bundle", &bundle])
    });
    let finished_first = wait_for(point, &prepared.env, log_offset, started, &import);
    let killed_after = started.elapsed();
    let status = prepared.env.attestor_mut().kill();
    let import_output = match import.join() {
        Ok(output) => output,
        Err(payload) => std::panic::resume_unwind(payload),
    };
    eprintln!(
        "{label}: killed after {killed_after:?} ({status}); the import had {}finished: exit code {}",
        if finished_first { "" } else { "not " },
        import_output.code
    );

    prepared.env.attestor_mut().start_again();
    let env = &prepared.env;
    let incoming = env.attestor().data_dir().join("incoming");
    if let Ok(entries) = std::fs::read_dir(&incoming) {
        let leftovers: Vec<_> = entries.flatten().map(|entry| entry.path()).collect();
        assert!(leftovers.is_empty(), "{label}: upload spool files left after restart: {leftovers:?}");
    }

    let restarted = checkpoints(env);
    let outcome = if restarted.stdout == prepared.checkpoints {
        Outcome::Before
    } else {
        assert_eq!(
            restarted.stdout, reference.after_checkpoints,
            "{label}: the checkpoints after the restart are neither those before the import nor \
             those after it\n{restarted}"
        );
        Outcome::After
    };
    if import_output.code == exit::OK {
        assert_eq!(
            outcome,
            Outcome::After,
            "{label}: the import reported success, so its result must survive the kill\n{import_output}"
        );
    }

    let old = inclusion(env, OLD_INDEX, &fixture.old_entry);
    match outcome {
        Outcome::Before => {
            assert_eq!(
                old.stdout, prepared.old_inclusion,
                "{label}: the answer for entry {OLD_INDEX} changed\n{old}"
            );
            assert_new_entry_missing(env, fixture, &label);
        }
        Outcome::After => {
            old.assert_ok();
            assert!(old.bool_field("included"), "{label}\n{old}");
            assert_new_entry_included(env, fixture, &label);
        }
    }

    let again = import_large(env, fixture);
    again.assert_ok();
    assert_eq!(
        again.bool_field("already_imported"),
        outcome == Outcome::After,
        "{label}: a completed import is a no-op, an interrupted one runs again\n{again}"
    );
    assert_new_entry_included(env, fixture, &format!("{label}, after re-running the import"));
    assert_eq!(
        checkpoints(env).stdout,
        reference.after_checkpoints,
        "{label}: the checkpoints after re-running the import"
    );
    let old_after = inclusion(env, OLD_INDEX, &fixture.old_entry);
    old_after.assert_ok();
    assert!(old_after.bool_field("included"), "{label}, after re-running the import\n{old_after}");
    outcome
}

#[test]
fn killed_import_leaves_cache_unchanged() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let fixture = forge_fixture(&vectors);
    let reference = reference_run(&fixture);

    let plan: Vec<KillPoint> = if reference.logs_phases {
        PHASES.iter().map(|phase| KillPoint::Phase(phase)).collect()
    } else {
        KILL_FRACTIONS
            .iter()
            .map(|fraction| KillPoint::Delay(reference.import_time.mul_f64(*fraction)))
            .collect()
    };
    eprintln!(
        "reference import took {:?}; kill points: {plan:?}",
        reference.import_time
    );

    let mut outcomes = Vec::new();
    for (round, point) in plan.iter().enumerate() {
        let prepared = prepare(&fixture, &format!("import-kill-{round}"));
        outcomes.push((*point, kill_round(&fixture, &reference, prepared, *point)));
    }
    eprintln!("outcomes: {outcomes:?}");
    assert!(
        outcomes.iter().any(|(_, outcome)| *outcome == Outcome::Before),
        "no kill interrupted the import, so the test checked nothing about interruption: {outcomes:?}"
    );
}
