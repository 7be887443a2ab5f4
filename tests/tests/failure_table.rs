//! The runbook's failure table end to end. Each row drives `stella`, `stella-attestor` and
//! `stella-gate` into one failure mode and checks the decision, its exit code and the exact reason
//! codes. It then fetches the record that the gate persisted with `stella decisions get` and
//! checks its audit fields.
//!
//! | failure | default policy | `on_*: pending` |
//! |---|---|---|
//! | missing tile or proof | deny, `ERR_REKOR_TILE_MISSING` | pending |
//! | invalid proof chain | deny, `ERR_REKOR_PROOF_INVALID` | deny |
//! | expired trust root set | deny, `ERR_TRUST_ROOT_EXPIRED` | deny |
//! | attestor unavailable | deny, `ERR_ATTESTOR_UNAVAILABLE` | pending |
//!
//! A deny that leaves a requirement without verified evidence also carries
//! `ERR_POLICY_REQUIREMENT_UNMET`. A pending evaluation leaves the requirement undecided, so it
//! carries only the code that keeps it pending. Each test starts its own services, so the records of the
//! tenant's chain are exactly those the test wrote, with sequence numbers from 1.

use std::ops::RangeInclusive;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stella_e2e::access::TENANT_A;
use stella_e2e::archive;
use stella_e2e::audit::{ExpectedRecord, PersistedRecord, assert_persisted, unix_now};
use stella_e2e::codes;
use stella_e2e::env::{Env, read_file, write_file};
use stella_e2e::expiry::ExpiringTrust;
use stella_e2e::grpc;
use stella_e2e::runbook::Decision;
use stella_e2e::vectors::{DSSE_HAPPY, MSG_HAPPY, Vectors};
use stella_e2e::{IDENTITY, ISSUER, SLSA_PROVENANCE_V1, subject_digest};

/// Environment whose `on_*` fallbacks are all left at their default, deny.
const DEFAULTS: &str = "table-defaults";
/// Environment with `on_missing_proof: pending` and `on_attestor_unavailable: pending`.
const PENDING: &str = "table-pending";

/// The checkpoint that proves the DSSE case's entry.
const ALPHA3_ORIGIN: &str = "log2025-alpha3.rekor.sigstage.dev";
const ALPHA3_SIZE: u64 = 4_026_479;
const ALPHA3_ROOT: &str = "5iaX4xK6PMnp4ZFTP4iywMcwLgaTjzgRTkrTOUFIrfY=";

/// Path of the DSSE entry's tlog-proof in a tile/proof bundle.
const ALPHA3_PROOF_PATH: &str = "proofs/log2025-alpha3.rekor.sigstage.dev/4026478.tlog-proof";

/// Gate deadline for each attestor call in the outage row.
const ATTESTOR_TIMEOUT: Duration = Duration::from_millis(1500);

/// Extra time on top of the gate's deadline for the CLI round trip on a loaded machine.
const SLACK: Duration = Duration::from_secs(5);

/// Returns a policy with the [`DEFAULTS`] and [`PENDING`] environments, both requiring SLSA
/// provenance from the conformance workflow.
fn table_policy() -> String {
    let requirement = format!(
        "      - predicate_type: '{SLSA_PROVENANCE_V1}'
        identity: '{IDENTITY}'
        issuer: '{ISSUER}'"
    );
    format!(
        "# Written by the failure table suite.
environments:
  {DEFAULTS}:
    require:
{requirement}
  {PENDING}:
    require:
{requirement}
    on_missing_proof: pending
    on_attestor_unavailable: pending
"
    )
}

/// The tenant's decision records as one test writes them, one after the other.
struct RecordChain {
    policy_digest: String,
    subjects: Vec<String>,
    /// The last record checked; `None` before the first.
    head: Option<PersistedRecord>,
    sequence: u64,
}

impl RecordChain {
    fn new(env: &Env) -> RecordChain {
        let Some(policy_path) = env.policy_path() else {
            panic!("environment {} has no gate policy", env.name());
        };
        let policy_digest = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(read_file(policy_path)))
        );
        RecordChain {
            policy_digest,
            subjects: vec![subject_digest()],
            head: None,
            sequence: 0,
        }
    }

    /// Checks the persisted record of an evaluation as the tenant's next record, and returns it.
    #[track_caller]
    fn expect_next(
        &mut self,
        env: &Env,
        evaluated: &Evaluated,
        promotion_id: &str,
        target_environment: &str,
        bundle_id: &str,
        checkpoints: Value,
    ) -> PersistedRecord {
        self.sequence += 1;
        let expected = ExpectedRecord {
            promotion_id,
            target_environment,
            subject_digests: &self.subjects,
            evidence_bundle_ids: &[bundle_id],
            policy_digest: &self.policy_digest,
            tenant: TENANT_A,
            sequence: self.sequence,
            previous_record_digest: self.head.as_ref().map(|head| head.record_digest.as_str()),
            checkpoints,
            evaluated_within: evaluated.within.clone(),
        };
        let record = assert_persisted(env, &evaluated.decision, &expected);
        self.head = Some(record.clone());
        record
    }
}

/// A decision and the Unix seconds between which `stella promotion evaluate` ran.
struct Evaluated {
    decision: Decision,
    within: RangeInclusive<i64>,
}

fn evaluate(env: &Env, promotion_id: &str) -> Evaluated {
    let started = unix_now();
    let decision = env.evaluate(promotion_id);
    Evaluated {
        decision,
        within: started..=unix_now(),
    }
}

/// Asserts the exact reason codes of a decision.
#[track_caller]
fn assert_codes(decision: &Decision, expected: &[&str]) {
    assert_eq!(decision.reason_codes, expected, "{}", decision.output);
}

/// Returns the `report_digests` of an evaluation's JSON output.
fn report_digests(decision: &Decision) -> Vec<String> {
    stella_e2e::cli::string_array(&decision.output.json(), "report_digests", &decision.output)
}

/// Asserts that the attestor stores the report `digest` names, for `bundle_id`, failed with
/// exactly `codes`.
#[track_caller]
fn assert_stored_report(env: &Env, digest: &str, bundle_id: &str, codes: &[&str]) {
    let report_json = match grpc::get_report(&env.attestor_caller(), digest) {
        Ok(json) => json,
        Err(rejection) => panic!("the attestor has no report {digest}: {rejection:?}"),
    };
    let report: Value = match serde_json::from_slice(&report_json) {
        Ok(report) => report,
        Err(err) => panic!("report {digest} is not JSON: {err}"),
    };
    assert_eq!(report["bundle_id"], bundle_id, "{report}");
    assert_eq!(report["outcome"], "failed", "{report}");
    assert_eq!(report["reason_codes"], json!(codes), "{report}");
}

/// Returns the `checkpoints` array of a record whose evidence verified against the DSSE case's
/// checkpoint.
fn alpha3_checkpoints() -> Value {
    json!([{"origin": ALPHA3_ORIGIN, "tree_size": ALPHA3_SIZE, "root_hash": ALPHA3_ROOT}])
}

/// Swaps the first two proof hashes of a C2SP tlog-proof: the two lines after `index N`. The
/// file still parses, and its checkpoint is still correctly signed, but the proof no longer
/// leads from the entry to the checkpoint's root.
fn swap_first_proof_hashes(text: &str) -> String {
    let mut lines: Vec<&str> = text.split('\n').collect();
    let Some(index_line) = lines.iter().position(|line| line.starts_with("index ")) else {
        panic!("tlog-proof has no index line:\n{text}");
    };
    let (first, second) = (index_line + 1, index_line + 2);
    assert!(
        lines.len() > second && !lines[second].is_empty() && lines[first] != lines[second],
        "tlog-proof needs two different hashes after its index line:\n{text}"
    );
    lines.swap(first, second);
    lines.join("\n")
}

#[test]
fn missing_proof_denies_or_pends() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = Env::builder("table-missing").gate(&table_policy()).start();
    let dsse = vectors.case(DSSE_HAPPY);
    env.install_trust(&vectors.staging_trusted_root(), &[]);
    // The cache contains proofs of another case on another log, but none of the DSSE entry.
    env.install_proofs(&[&vectors.case(MSG_HAPPY).bundle()]);
    let bundle_id = env.register_case(&dsse);
    let report = env.rekor_verify(&bundle_id);
    assert_eq!(
        report.reason_codes,
        [codes::REKOR_TILE_MISSING],
        "{}",
        report.output
    );
    let mut chain = RecordChain::new(&env);

    env.promotion_create("missing-default", DEFAULTS, &[&bundle_id]);
    let denied = evaluate(&env, "missing-default");
    denied.decision.assert_deny(codes::REKOR_TILE_MISSING);
    assert_codes(
        &denied.decision,
        &[codes::POLICY_REQUIREMENT_UNMET, codes::REKOR_TILE_MISSING],
    );
    assert_eq!(
        report_digests(&denied.decision),
        std::slice::from_ref(&report.report_digest)
    );
    chain.expect_next(
        &env,
        &denied,
        "missing-default",
        DEFAULTS,
        &bundle_id,
        json!([]),
    );

    env.promotion_create("missing-pending", PENDING, &[&bundle_id]);
    let pending = evaluate(&env, "missing-pending");
    pending.decision.assert_pending(codes::REKOR_TILE_MISSING);
    assert_codes(&pending.decision, &[codes::REKOR_TILE_MISSING]);
    assert_eq!(
        report_digests(&pending.decision),
        std::slice::from_ref(&report.report_digest)
    );
    chain.expect_next(
        &env,
        &pending,
        "missing-pending",
        PENDING,
        &bundle_id,
        json!([]),
    );

    // Pending is not final: with the proof imported, the same promotion is allowed, and the
    // record names the checkpoint that proved the entry.
    env.install_proofs(&[&dsse.bundle()]);
    let allowed = evaluate(&env, "missing-pending");
    allowed.decision.assert_allow();
    chain.expect_next(
        &env,
        &allowed,
        "missing-pending",
        PENDING,
        &bundle_id,
        alpha3_checkpoints(),
    );
}

#[test]
fn invalid_proof_chain_denies() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = Env::builder("table-invalid-proof")
        .gate(&table_policy())
        .start();
    let dsse = vectors.case(DSSE_HAPPY);
    env.install_trust(&vectors.staging_trusted_root(), &[]);

    // A tile/proof bundle whose tlog-proof has two hashes in the wrong order, with a manifest
    // that matches it. At import the attestor has no entry to check the proof against, so the
    // import succeeds and verification fails.
    let dir = env.scratch("invalid-proof");
    let good = read_file(&env.tiles_pack(&dir, &[&dsse.bundle()], &[]));
    let proof = archive::read_tgz(&good)
        .into_iter()
        .find(|file| file.path == ALPHA3_PROOF_PATH)
        .unwrap_or_else(|| panic!("the tile/proof bundle has no {ALPHA3_PROOF_PATH}"));
    let proof_text = String::from_utf8(proof.data).expect("the tlog-proof is UTF-8");
    let tampered = dir.join("swapped-hashes.tgz");
    write_file(
        &tampered,
        &archive::replace_file(
            &good,
            ALPHA3_PROOF_PATH,
            swap_first_proof_hashes(&proof_text).into_bytes(),
        ),
    );
    env.tiles_import(&tampered).assert_ok();

    // The evidence carries the untouched Sigstore bundle, whose own proof is correct. The
    // attestor must ignore it and use the imported proof.
    let bundle_id = env.register_case(&dsse);
    let report = env.rekor_verify(&bundle_id);
    assert_eq!(
        report.reason_codes,
        [codes::REKOR_PROOF_INVALID],
        "{}",
        report.output
    );
    let expected_codes = [codes::POLICY_REQUIREMENT_UNMET, codes::REKOR_PROOF_INVALID];
    let mut chain = RecordChain::new(&env);

    // An invalid proof is not a missing proof, so the pending environment denies too.
    for (promotion_id, target) in [("invalid-default", DEFAULTS), ("invalid-pending", PENDING)] {
        env.promotion_create(promotion_id, target, &[&bundle_id]);
        let denied = evaluate(&env, promotion_id);
        denied.decision.assert_deny(codes::REKOR_PROOF_INVALID);
        assert_codes(&denied.decision, &expected_codes);
        assert_eq!(
            report_digests(&denied.decision),
            std::slice::from_ref(&report.report_digest)
        );
        assert_stored_report(
            &env,
            &report.report_digest,
            &bundle_id,
            &[codes::REKOR_PROOF_INVALID],
        );
        chain.expect_next(&env, &denied, promotion_id, target, &bundle_id, json!([]));
    }
}

#[test]
fn expired_trust_roots_deny() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    /// Lifetime of the trust root set: long enough for the set-up below, short enough to wait.
    const LIFETIME: Duration = Duration::from_secs(8);

    let env = Env::builder("table-expired").gate(&table_policy()).start();
    let dsse = vectors.case(DSSE_HAPPY);
    let trust = ExpiringTrust::install(&env, &vectors.staging_trusted_root(), LIFETIME);
    env.install_proofs(&[&dsse.bundle()]);
    let bundle_id = env.register_case(&dsse);
    env.promotion_create("expired-default", DEFAULTS, &[&bundle_id]);
    env.promotion_create("expired-pending", PENDING, &[&bundle_id]);

    // While the set is valid the promotion is allowed. A preview writes no record, so the
    // chain below starts at 1 either way.
    if trust.valid_for(Duration::from_secs(2)) {
        env.preview_gates("expired-default").assert_allow();
    } else {
        eprintln!(
            "set-up took {:?}; skipping the check before expiry",
            trust.age()
        );
    }
    trust.wait_until_expired();

    let expected_codes = [codes::POLICY_REQUIREMENT_UNMET, codes::TRUST_ROOT_EXPIRED];
    let mut chain = RecordChain::new(&env);
    // Missing proofs may hold a promotion, but an expired trust root set never does.
    for (promotion_id, target) in [("expired-default", DEFAULTS), ("expired-pending", PENDING)] {
        let denied = evaluate(&env, promotion_id);
        denied.decision.assert_deny(codes::TRUST_ROOT_EXPIRED);
        assert_codes(&denied.decision, &expected_codes);
        let digests = report_digests(&denied.decision);
        assert_eq!(digests.len(), 1, "{}", denied.decision.output);
        assert_stored_report(&env, &digests[0], &bundle_id, &[codes::TRUST_ROOT_EXPIRED]);
        chain.expect_next(&env, &denied, promotion_id, target, &bundle_id, json!([]));
    }
}

#[test]
fn attestor_unavailable_never_allows() {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let timeout_ms = ATTESTOR_TIMEOUT.as_millis().to_string();
    let mut env = Env::builder("table-unavailable")
        .gate(&table_policy())
        .gate_args(["--attestor-timeout-ms", timeout_ms.as_str()])
        .start();
    let dsse = vectors.case(DSSE_HAPPY);
    env.install_trust(&vectors.staging_trusted_root(), &[]);
    env.install_proofs(&[&dsse.bundle()]);
    let bundle_id = env.register_case(&dsse);
    env.promotion_create("outage-default", DEFAULTS, &[&bundle_id]);
    env.promotion_create("outage-pending", PENDING, &[&bundle_id]);
    let unavailable = codes::ATTESTOR_UNAVAILABLE;

    // Stopped: connections are refused.
    let stop = env.attestor_mut().stop();
    assert!(
        !stop.forced,
        "the attestor ignored SIGTERM for {:?}",
        stop.elapsed
    );
    let mut chain = RecordChain::new(&env);
    let denied = evaluate(&env, "outage-default");
    denied.decision.assert_deny(unavailable);
    assert_codes(
        &denied.decision,
        &[unavailable, codes::POLICY_REQUIREMENT_UNMET],
    );
    assert!(
        report_digests(&denied.decision).is_empty(),
        "{}",
        denied.decision.output
    );
    chain.expect_next(
        &env,
        &denied,
        "outage-default",
        DEFAULTS,
        &bundle_id,
        json!([]),
    );

    let pending = evaluate(&env, "outage-pending");
    pending.decision.assert_pending(unavailable);
    assert_codes(&pending.decision, &[unavailable]);
    assert!(
        report_digests(&pending.decision).is_empty(),
        "{}",
        pending.decision.output
    );
    chain.expect_next(
        &env,
        &pending,
        "outage-pending",
        PENDING,
        &bundle_id,
        json!([]),
    );

    // Hung: the socket accepts connections, but the process never responds. The gate gives up
    // at its deadline and records the same decision.
    env.attestor_mut().start_again();
    env.attestor().suspend();
    let hung = evaluate(&env, "outage-default");
    env.attestor().resume();
    hung.decision.assert_deny(unavailable);
    assert_codes(
        &hung.decision,
        &[unavailable, codes::POLICY_REQUIREMENT_UNMET],
    );
    assert!(
        hung.decision.output.elapsed < ATTESTOR_TIMEOUT + SLACK,
        "the gate must give up on a hung attestor at its deadline\n{}",
        hung.decision.output
    );
    chain.expect_next(
        &env,
        &hung,
        "outage-default",
        DEFAULTS,
        &bundle_id,
        json!([]),
    );

    // With the attestor back, the same promotion is allowed.
    let allowed = evaluate(&env, "outage-default");
    allowed.decision.assert_allow();
    chain.expect_next(
        &env,
        &allowed,
        "outage-default",
        DEFAULTS,
        &bundle_id,
        alpha3_checkpoints(),
    );
}
