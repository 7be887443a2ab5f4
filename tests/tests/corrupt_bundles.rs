//! Corrupted bundles: one byte flipped inside one file of a `.tgz`, with the manifest left as it
//! was. Each import command must reject the bundle with `ERR_FILE_DIGEST_MISMATCH` naming the
//! inner file, and the attestor's state must stay exactly as it was.

use std::path::{Path, PathBuf};

use stella_e2e::archive::{flip_byte, manifest_paths};
use stella_e2e::codes;
use stella_e2e::env::{Env, EnvGuard, SharedEnv, read_file, write_file};
use stella_e2e::grpc;
use stella_e2e::runbook::BundleKind;
use stella_e2e::vectors::{DSSE_HAPPY, Vectors};

/// Good bundles imported by the set-up, and the report they verify to.
struct Baseline {
    trust: PathBuf,
    tiles: PathBuf,
    evidence: PathBuf,
    bundle_id: String,
    report_digest: String,
}

impl Baseline {
    fn bundle(&self, kind: BundleKind) -> &Path {
        match kind {
            BundleKind::TrustRoots => &self.trust,
            BundleKind::Tiles => &self.tiles,
            BundleKind::Evidence => &self.evidence,
        }
    }
}

static SHARED: SharedEnv<Baseline> = SharedEnv::new();

fn shared(vectors: &Vectors) -> EnvGuard<'static, Baseline> {
    SHARED.get(|| {
        let env = Env::builder("corrupt").start();
        let dsse = vectors.case(DSSE_HAPPY);
        let trust = env.install_trust(&vectors.staging_trusted_root(), &[]);
        let tiles = env.install_proofs(&[&dsse.bundle()]);
        let dir = env.scratch("evidence");
        let evidence = env.evidence_pack(&dir, &[&dsse.bundle()]);
        let registered = env.evidence_verify(&evidence);
        registered.assert_ok();
        let bundle_id = registered.str_field("bundle_id");
        let report = env.rekor_verify(&bundle_id);
        assert_eq!(report.outcome, "verified", "{}", report.output);
        let baseline = Baseline {
            trust,
            tiles,
            evidence,
            bundle_id,
            report_digest: report.report_digest,
        };
        (env, baseline)
    })
}

/// Flips one byte in each file of the bundle in turn and checks that both the command and the
/// RPC reject it, naming the file, and that the attestor's state did not change.
fn check_corruption_rejected(kind: BundleKind) {
    let Some(vectors) = Vectors::locate() else {
        return;
    };
    let env = shared(&vectors);
    let baseline = env.fixture();
    let good = read_file(baseline.bundle(kind));
    let dir = env.scratch(&format!("corrupt-{}", kind.label()));

    let inner_paths: Vec<String> = manifest_paths(&good)
        .into_iter()
        .filter(|path| path != "manifest.json")
        .collect();
    assert!(
        !inner_paths.is_empty(),
        "the {} bundle lists no files in its manifest",
        kind.label()
    );

    for (number, inner) in inner_paths.iter().enumerate() {
        let file_name = format!("corrupt-{}-{number}.tgz", kind.label());
        let corrupted = dir.join(&file_name);
        let bytes = flip_byte(&good, inner);
        write_file(&corrupted, &bytes);

        let output = kind.import(&env, &corrupted);
        let message = output.assert_rejected(codes::FILE_DIGEST_MISMATCH);
        assert!(
            message.contains(inner.as_str()),
            "the error must name the corrupted file {inner}\n{output}"
        );
        assert!(
            message.contains(&file_name),
            "the error must name the bundle {file_name}\n{output}"
        );

        // The attestor itself rejects it too, whatever client sends it.
        let Err(rejection) = grpc::import(&env.attestor_caller(), kind.rpc(), &file_name, bytes)
        else {
            panic!(
                "{} accepted {file_name} with {inner} corrupted",
                kind.rpc().method()
            );
        };
        assert_eq!(
            rejection.code,
            tonic::Code::InvalidArgument,
            "{rejection:?}"
        );
        assert_eq!(
            rejection.reason_code.as_deref(),
            Some(codes::FILE_DIGEST_MISMATCH),
            "{rejection:?}"
        );
        assert!(
            rejection.message.starts_with(codes::FILE_DIGEST_MISMATCH),
            "the status message starts with the reason code: {rejection:?}"
        );
        assert!(rejection.message.contains(inner.as_str()), "{rejection:?}");
    }

    assert_state_unchanged(&env, baseline);
}

#[track_caller]
fn assert_state_unchanged(env: &Env, baseline: &Baseline) {
    let report = env.rekor_verify(&baseline.bundle_id);
    assert_eq!(report.outcome, "verified", "{}", report.output);
    assert_eq!(
        report.report_digest, baseline.report_digest,
        "a rejected bundle must not change what the evidence verifies to"
    );

    let trust = env.trust_import(&baseline.trust);
    trust.assert_ok();
    assert!(trust.bool_field("already_imported"), "{trust}");

    let tiles = env.tiles_import(&baseline.tiles);
    tiles.assert_ok();
    assert!(tiles.bool_field("already_imported"), "{tiles}");

    let evidence = env.evidence_verify(&baseline.evidence);
    evidence.assert_ok();
    assert!(evidence.bool_field("already_registered"), "{evidence}");
    assert_eq!(
        evidence.str_field("bundle_id"),
        baseline.bundle_id,
        "{evidence}"
    );
}

#[test]
fn corrupted_trust_bundle_rejected() {
    check_corruption_rejected(BundleKind::TrustRoots);
}

#[test]
fn corrupted_tiles_bundle_rejected() {
    check_corruption_rejected(BundleKind::Tiles);
}

#[test]
fn corrupted_evidence_bundle_rejected() {
    check_corruption_rejected(BundleKind::Evidence);
}
