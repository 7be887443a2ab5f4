//! The attestor and the gate as containers of `compose.yaml`, built from this checkout and driven
//! through their published ports with the `stella` binary, as a site deploys them.
//!
//! Each test starts its own Compose project and runs the runbook to `allow`, then disrupts one
//! service: the attestor stopped or cut off from the network during a stream of evaluations
//! (every evaluation fails closed within its deadline), the gate killed with SIGKILL during a
//! burst (every returned record is stored, the chain verifies, nothing is duplicated), the
//! attestor killed during a large tile import (the cache is as before, and the import succeeds
//! when run again), and `compose down` then `up` on the same volumes (decisions and cache stay).
//!
//! The tests need a Docker engine with Compose and fail without one, unless `STELLA_SKIP_COMPOSE=1`
//! is set. They run one at a time (see `stella_e2e::compose`).

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use stella_e2e::cli::{CliOutput, exit};
use stella_e2e::compose::operator::assert_fails_closed;
use stella_e2e::compose::stream::{Disruption, burst_until_killed, evaluate_during};
use stella_e2e::compose::{Deployment, ServiceName, Settings};
use stella_e2e::env::write_file;
use stella_e2e::forge::{forge_log, forged_entry};
use stella_e2e::runbook::{Decision, decision_record, path_arg};

/// The gate's deadline for each attestor call in the outage tests.
const ATTESTOR_TIMEOUT: Duration = Duration::from_secs(2);

/// Time allowed on top of the gate's deadline for the `stella` process and the round trip
/// through the published port on a loaded machine.
const SLACK: Duration = Duration::from_secs(5);

/// Evaluations that must start and finish while a service is out.
const OUTAGE_EVALUATIONS: usize = 6;

/// Threads that evaluate at the same time during an outage.
const STREAM_THREADS: usize = 2;

/// Threads of the burst that the gate is killed in, and the calls that finish before the kill.
const BURST_THREADS: usize = 4;
const CALLS_BEFORE_KILL: usize = 8;

/// Maximum time for the gate to allow again once the attestor is back.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The large log of the import test: 2^20 entries fill tiles on three levels, and importing
/// them takes seconds, so the kill lands while the import stages its tiles.
const LARGE_ORIGIN: &str = "compose-import.example/log";
const LARGE_SEED: &str = "636f6d706f7365";
const LARGE_ENTRIES: u64 = 1_048_576;
/// An entry that only the large log proves.
const LARGE_INDEX: u64 = 1_000_000;
/// The file name of the large bundle, as the attestor logs it.
const LARGE_FILE: &str = "large.tgz";
/// Maximum time from starting the import to its `staging` phase.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn runbook_survives_down_and_up() {
    let Some(deployment) = Deployment::start("runbook", Settings::default()) else {
        return;
    };
    let release = deployment.run_runbook("rel-compose-1", &[]);
    for service in ["attestor", "gate"] {
        let health = deployment.stella().run_json(["health", service]);
        health.assert_ok();
        assert_eq!(health.str_field("status"), "SERVING", "{health}");
    }

    let record_before = deployment.decision_get(&release.evaluation.record_id);
    record_before.assert_ok();
    let checkpoints_before = deployment.checkpoints();
    let export_before = deployment.export_decisions();
    assert_eq!(export_before.records.len(), 1, "{}", export_before.text);
    assert_eq!(
        export_before.key_id,
        deployment.logged_signing_key_id(),
        "the key that the gate presents must be the one it logged at its first start"
    );
    deployment
        .verify_decisions(&export_before.key_file)
        .assert_ok();
    let volumes = deployment.volumes();
    assert_eq!(volumes.len(), 2, "one volume per service: {volumes:?}");

    deployment.down_keep_volumes();
    let containers = deployment.compose(["ps", "-a", "-q"]).assert_ok();
    assert!(
        containers.stdout.trim().is_empty(),
        "compose down must remove the containers\n{containers}"
    );
    assert_eq!(
        deployment.volumes(),
        volumes,
        "compose down without -v must keep the volumes"
    );
    deployment.up();

    let gate_log = deployment.logs(ServiceName::Gate);
    assert!(
        gate_log.contains("generated signing key reused"),
        "the gate must reuse the signing key in its volume:\n{gate_log}"
    );
    let record_after = deployment.decision_get(&release.evaluation.record_id);
    record_after.assert_ok();
    assert_eq!(
        record_after.stdout, record_before.stdout,
        "the decision record changed"
    );
    assert_eq!(
        deployment.checkpoints().stdout,
        checkpoints_before.stdout,
        "the attestor's cache changed"
    );
    let export_after = deployment.export_decisions();
    assert_eq!(
        export_after.text, export_before.text,
        "the exported records changed"
    );
    assert_eq!(
        export_after.key_id, export_before.key_id,
        "the signing key changed"
    );

    let verified = deployment.stella().run_json([
        "rekor",
        "verify",
        "--offline",
        "--evidence-bundle-id",
        &release.bundle_id,
    ]);
    verified.assert_ok();
    assert_eq!(
        verified.str_field("report_digest"),
        release.report_digest,
        "{verified}"
    );

    let again = Decision::from_output(deployment.evaluate(&release.promotion_id, None));
    again.assert_allow();
    let record = decision_record(&deployment.decision_get(&again.record_id));
    assert_eq!(record.get("sequence"), Some(&Value::from(2)), "{record}");
    let chain = deployment.verify_decisions(&export_before.key_file);
    chain.assert_ok();
    assert_eq!(
        chain.json().get("records"),
        Some(&Value::from(2)),
        "{chain}"
    );
}

#[test]
fn attestor_stop_fails_closed() {
    outage_fails_closed(
        "stop",
        "stopped attestor",
        |deployment| deployment.stop(ServiceName::Attestor),
        |deployment| deployment.start_again(ServiceName::Attestor),
    );
}

#[test]
fn attestor_disconnect_fails_closed() {
    outage_fails_closed(
        "disconnect",
        "attestor disconnected from the network",
        |deployment| deployment.disconnect(ServiceName::Attestor),
        |deployment| deployment.reconnect(ServiceName::Attestor),
    );
}

#[test]
fn gate_kill_keeps_records() {
    let Some(deployment) = Deployment::start("gatekill", Settings::default()) else {
        return;
    };
    let release = deployment.run_runbook("rel-burst", &[]);
    let key_id = deployment.logged_signing_key_id();

    let calls = burst_until_killed(
        &deployment,
        &release.promotion_id,
        BURST_THREADS,
        CALLS_BEFORE_KILL,
        || deployment.kill(ServiceName::Gate),
    );
    deployment.start_again(ServiceName::Gate);

    // Request id -> record id of every evaluation that returned one.
    let mut records: BTreeMap<String, String> = BTreeMap::new();
    let mut cut_off = Vec::new();
    for call in &calls {
        match call.output.code {
            exit::OK => {
                let decision = Decision::from_output(call.output.clone());
                decision.assert_allow();
                records.insert(call.request_id.clone(), decision.record_id.clone());
            }
            exit::UNREACHABLE => cut_off.push(call.request_id.clone()),
            _ => panic!(
                "an evaluation during the kill must return a record or find the gate \
                 unreachable (exit 4)\n{}",
                call.output
            ),
        }
    }
    assert!(
        records.len() >= CALLS_BEFORE_KILL,
        "{} evaluations returned a record before the kill, expected at least {CALLS_BEFORE_KILL}",
        records.len()
    );
    assert!(
        !cut_off.is_empty(),
        "no evaluation found the killed gate unreachable"
    );

    for (request_id, record_id) in &records {
        let fetched = deployment.decision_get(record_id);
        fetched.assert_ok();
        let record = decision_record(&fetched);
        assert_eq!(
            record.get("record_id"),
            Some(&Value::from(record_id.as_str())),
            "request {request_id}: the returned record is not stored\n{fetched}"
        );
    }

    // A retry with the id of a cut-off call returns the record that the call wrote, if the gate
    // wrote one before it died, and writes one otherwise.
    for request_id in &cut_off {
        let retry =
            Decision::from_output(deployment.evaluate(&release.promotion_id, Some(request_id)));
        retry.assert_allow();
        records.insert(request_id.clone(), retry.record_id.clone());
    }
    // Sending the id of a request that returned a record again returns that stored record.
    let (replayed_request, replayed_record) = records
        .iter()
        .next()
        .map(|(request, record)| (request.clone(), record.clone()))
        .unwrap_or_default();
    let replay = deployment.evaluate(&release.promotion_id, Some(&replayed_request));
    replay.assert_ok();
    assert_eq!(replay.str_field("record_id"), replayed_record, "{replay}");
    assert!(replay.bool_field("replayed"), "{replay}");

    let export = deployment.export_decisions();
    assert_eq!(
        export.key_id, key_id,
        "the gate must keep its signing key across the kill"
    );
    let chain = deployment.verify_decisions(&export.key_file);
    chain.assert_ok();
    assert_eq!(
        chain.json().get("records").and_then(Value::as_u64),
        u64::try_from(export.records.len()).ok(),
        "{chain}"
    );

    let sequences: Vec<u64> = export
        .records
        .iter()
        .map(|record| record.sequence)
        .collect();
    let expected: Vec<u64> = (1..).take(export.records.len()).collect();
    assert_eq!(
        sequences, expected,
        "the chain must number its records 1, 2, 3, ..."
    );
    let stored: BTreeSet<&str> = export
        .records
        .iter()
        .map(|record| record.record_id.as_str())
        .collect();
    assert_eq!(
        stored.len(),
        export.records.len(),
        "a record id appears twice in the chain"
    );
    for (request_id, record_id) in &records {
        assert!(
            stored.contains(record_id.as_str()),
            "request {request_id}: record {record_id} is missing from the chain"
        );
    }
    // The runbook's evaluation, then one record per request id: a retried request added none.
    assert_eq!(
        export.records.len(),
        1 + records.len(),
        "records in the chain: {}, request ids: {}\n{}",
        export.records.len(),
        records.len(),
        export.text
    );
}

#[test]
fn attestor_kill_during_import() {
    let Some(deployment) = Deployment::start("importkill", Settings::default()) else {
        return;
    };
    let forged = forge_log(
        &deployment.scratch("forge"),
        "large",
        LARGE_ENTRIES,
        LARGE_ORIGIN,
        LARGE_SEED,
    );
    assert!(
        forged.bundle.ends_with(LARGE_FILE),
        "{}",
        forged.bundle.display()
    );
    let entry = deployment.scratch("entry").join("entry");
    write_file(&entry, &forged_entry(LARGE_SEED, LARGE_INDEX));

    let release = deployment.run_runbook("rel-import", &[forged.vkey.as_str()]);
    let checkpoints_before = deployment.checkpoints();
    let inclusion_before = inclusion(&deployment, &entry);
    assert_eq!(
        inclusion_before.code,
        exit::FAILED,
        "the entry must not be proven before the import\n{inclusion_before}"
    );

    let follower = deployment.follow_logs(ServiceName::Attestor);
    let interrupted = thread::scope(|scope| {
        let import = scope.spawn(|| deployment.import_tiles(&forged.bundle));
        let staging = format!("file={LARGE_FILE}");
        follower.wait_for(
            &["import phase", "phase=\"staging\"", &staging],
            PHASE_TIMEOUT,
        );
        deployment.kill(ServiceName::Attestor);
        match import.join() {
            Ok(output) => output,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    drop(follower);
    assert_eq!(
        interrupted.code,
        exit::UNREACHABLE,
        "the killed import must report a lost connection\n{interrupted}"
    );
    let killed_log = deployment.logs(ServiceName::Attestor);
    let committing = format!("phase=\"committing\" file={LARGE_FILE}");
    assert!(
        !killed_log.contains(&committing),
        "the kill landed after the import committed, so it cannot show the state before:\n{killed_log}"
    );

    deployment.start_again(ServiceName::Attestor);
    assert_eq!(
        deployment.checkpoints().stdout,
        checkpoints_before.stdout,
        "the killed import changed the stored checkpoints"
    );
    assert_eq!(
        inclusion(&deployment, &entry).stdout,
        inclusion_before.stdout,
        "the killed import changed what the cache proves"
    );
    Decision::from_output(deployment.evaluate(&release.promotion_id, None)).assert_allow();

    let imported = deployment.import_tiles(&forged.bundle);
    imported.assert_ok();
    assert!(!imported.bool_field("already_imported"), "{imported}");
    let checkpoints = deployment.checkpoints();
    let sizes: Vec<u64> = checkpoints
        .json()
        .get("logs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|log| log.get("origin") == Some(&Value::from(LARGE_ORIGIN)))
        .filter_map(|log| {
            log.pointer("/checkpoints/0/tree_size")
                .and_then(Value::as_u64)
        })
        .collect();
    assert_eq!(sizes, vec![LARGE_ENTRIES], "{checkpoints}");
    let included = inclusion(&deployment, &entry);
    included.assert_ok();
    assert!(included.bool_field("included"), "{included}");
}

/// Runs `stella rekor inclusion` for the large log's entry [`LARGE_INDEX`].
fn inclusion(deployment: &Deployment, entry: &std::path::Path) -> CliOutput {
    deployment.stella().run_json([
        "rekor",
        "inclusion",
        "--origin",
        LARGE_ORIGIN,
        "--index",
        &LARGE_INDEX.to_string(),
        "--entry",
        &path_arg(entry),
    ])
}

/// Runs the runbook to `allow`, cuts the attestor off with `cut` while two threads evaluate the
/// promotion, and checks that the evaluations fail closed. Then it brings the attestor back with
/// `restore` and checks that the gate allows again.
fn outage_fails_closed(
    name: &str,
    label: &str,
    cut: impl FnOnce(&Deployment),
    restore: impl FnOnce(&Deployment),
) {
    let settings = Settings {
        attestor_timeout: ATTESTOR_TIMEOUT,
    };
    let Some(deployment) = Deployment::start(name, settings) else {
        return;
    };
    let release = deployment.run_runbook(&format!("rel-{name}"), &[]);

    let outage = evaluate_during(
        &deployment,
        &release.promotion_id,
        STREAM_THREADS,
        OUTAGE_EVALUATIONS,
        || cut(&deployment),
    );
    assert_outage(&outage, label);

    restore(&deployment);
    assert_recovers(&deployment, &release.promotion_id);
}

/// Asserts that no evaluation of the stream hung or allowed without the attestor. Each one
/// returned within the gate's deadline, and every one that started once the attestor was out
/// failed closed. The ones that overlapped the disruption either allowed or failed closed.
#[track_caller]
fn assert_outage(outage: &Disruption, label: &str) {
    let deadline = ATTESTOR_TIMEOUT + SLACK;
    for evaluation in &outage.evaluations {
        let output = &evaluation.output;
        assert!(
            output.elapsed < deadline,
            "{label}: an evaluation took {:?}, more than the gate's deadline plus {SLACK:?}\n{output}",
            output.elapsed
        );
        if evaluation.started < outage.completed && output.code == exit::OK {
            Decision::from_output(output.clone()).assert_allow();
        } else {
            assert_fails_closed(output);
        }
    }
    let during = outage.during();
    assert!(
        during.len() >= OUTAGE_EVALUATIONS,
        "{label}: only {} evaluations ran during the outage",
        during.len()
    );
}

/// Evaluates until the gate allows again, and asserts that every evaluation before that failed
/// closed.
#[track_caller]
fn assert_recovers(deployment: &Deployment, promotion_id: &str) {
    let started = Instant::now();
    loop {
        let output = deployment.evaluate(promotion_id, None);
        if output.code == exit::OK {
            Decision::from_output(output).assert_allow();
            return;
        }
        assert_fails_closed(&output);
        assert!(
            started.elapsed() < RECOVERY_TIMEOUT,
            "the gate did not allow within {RECOVERY_TIMEOUT:?} after the attestor came back\n{output}"
        );
        thread::sleep(Duration::from_millis(500));
    }
}
