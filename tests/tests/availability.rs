//! Restarts and outages: verification reports survive an attestor restart byte for byte, and a
//! gate whose attestor is down or hung never allows and responds within its deadline.

use std::time::Duration;

use stella_e2e::codes;
use stella_e2e::env::Env;
use stella_e2e::policy::{self, PROD, PROD_PENDING};
use stella_e2e::vectors::{DSSE_HAPPY, Vectors};

/// Deadline the gate applies to each attestor call in these tests.
const ATTESTOR_TIMEOUT: Duration = Duration::from_millis(1500);

/// Extra time allowed on top of the gate's deadline for process start-up and the CLI round trip
/// on a loaded machine.
const SLACK: Duration = Duration::from_secs(5);

#[test]
fn report_digest_stable_across_restart() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let mut env = Env::builder("restart").start();
    let dsse = vectors.case(DSSE_HAPPY);
    let trust = env.install_trust(&vectors.staging_trusted_root(), &[]);
    env.install_proofs(&[&dsse.bundle()]);
    let bundle_id = env.register_case(&dsse);

    let first = env.rekor_verify(&bundle_id);
    assert_eq!(first.outcome, "verified", "{}", first.output);
    let second = env.rekor_verify(&bundle_id);
    assert_eq!(
        second.report_digest, first.report_digest,
        "two verifications of the same evidence must give the same report"
    );

    let stop = env.attestor_mut().restart();
    assert!(
        !stop.forced,
        "the attestor must exit on SIGTERM within the deadline, took {:?}",
        stop.elapsed
    );
    assert!(
        stop.status.success(),
        "the attestor must exit cleanly on SIGTERM, got {}",
        stop.status
    );

    let third = env.rekor_verify(&bundle_id);
    assert_eq!(third.outcome, "verified", "{}", third.output);
    assert_eq!(
        third.report_digest, first.report_digest,
        "the report after a restart must match the one before"
    );

    // The trust root set and the evidence survived the restart in RocksDB.
    let again = env.trust_import(&trust);
    again.assert_ok();
    assert!(again.bool_field("already_imported"), "{again}");
}

#[test]
fn attestor_outage_never_allows() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let timeout_ms = ATTESTOR_TIMEOUT.as_millis().to_string();
    let mut env = Env::builder("outage")
        .gate(&policy::standard())
        .gate_args(["--attestor-timeout-ms", timeout_ms.as_str()])
        .start();
    let dsse = vectors.case(DSSE_HAPPY);
    env.install_trust(&vectors.staging_trusted_root(), &[]);
    env.install_proofs(&[&dsse.bundle()]);
    let bundle_id = env.register_case(&dsse);
    env.promotion_create("outage-prod", PROD, &[&bundle_id]);
    env.promotion_create("outage-pending", PROD_PENDING, &[&bundle_id]);
    env.evaluate("outage-prod").assert_allow();
    env.evaluate("outage-pending").assert_allow();

    let unavailable = codes::ATTESTOR_UNAVAILABLE;

    // Stopped: connections are refused.
    let stop = env.attestor_mut().stop();
    assert!(
        !stop.forced,
        "the attestor ignored SIGTERM for {:?}",
        stop.elapsed
    );
    let denied = env.evaluate("outage-prod");
    denied.assert_deny(unavailable);
    assert!(
        denied.output.elapsed < ATTESTOR_TIMEOUT + SLACK,
        "the gate must answer within its deadline\n{}",
        denied.output
    );
    let pending = env.evaluate("outage-pending");
    pending.assert_pending(unavailable);
    env.preview_gates("outage-prod").assert_deny(unavailable);

    // Back up on the same port and data directory: the gate reconnects.
    env.attestor_mut().start_again();
    env.evaluate("outage-prod").assert_allow();

    // Hung: the socket accepts connections, but the process never responds.
    env.attestor().suspend();
    let denied = env.evaluate("outage-prod");
    env.attestor().resume();
    denied.assert_deny(unavailable);
    assert!(
        denied.output.elapsed < ATTESTOR_TIMEOUT + SLACK,
        "the gate must give up on a hung attestor at its deadline\n{}",
        denied.output
    );

    env.attestor().suspend();
    let pending = env.evaluate("outage-pending");
    env.attestor().resume();
    pending.assert_pending(unavailable);

    // Resumed: allowed again.
    env.evaluate("outage-prod").assert_allow();
}
