//! The transparency log check: the bundle's one entry logs its signature, and the log proves it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::cosignatures::{trusted_cosignatures, witness_verifiers};
use super::{
    CachedInclusion, EvidenceError, InclusionLookupError, InclusionSource, ProofSource, Run,
    SigningKey, TlogRef,
};
use crate::bundle::{InclusionProof, SigstoreBundle, TlogEntry};
use crate::checkpoint::{CheckpointError, parse_checkpoint_body};
use crate::merkle::{Hash, leaf_hash, verify_inclusion};
use crate::note::{NoteVerifier, parse_note};
use crate::rekor::{
    EntryFormat, HashedRekordV002, check_v1_body, entry_format, logged_entry_bytes,
    verify_signed_entry_timestamp,
};
use crate::trust_root::{TransparencyLogInstance, TrustSet};

/// The checkpoint origin and leaf index at which an entry's inclusion is proven.
struct ProofTarget {
    origin: String,
    index: u64,
    /// Tree size and root that the bundle's own proof claims, compared with the verified
    /// checkpoint when the proof comes from the bundle.
    claimed_tree: Option<(u64, Vec<u8>)>,
}

impl Run<'_> {
    /// Checks the bundle's tlog entry against the signer and proves it logged. Returns the
    /// integrated time when a Rekor v1 signed entry timestamp vouches for it.
    pub(super) fn verify_tlog(
        &mut self,
        bundle: &SigstoreBundle,
        signing_key: &SigningKey,
        trust: &TrustSet,
        inclusion: &dyn InclusionSource,
    ) -> Option<i64> {
        let entry = match bundle.tlog_entries.as_slice() {
            [entry] => entry,
            [] => {
                self.fail(EvidenceError::EntryMissing);
                return None;
            }
            entries => {
                self.fail(EvidenceError::TooManyEntries {
                    count: entries.len(),
                });
                return None;
            }
        };
        let format = match entry_format(entry) {
            Ok(format) => format,
            Err(error) => {
                self.fail(EvidenceError::Rekor(error));
                return None;
            }
        };
        let Some(log) = trust.trusted_root.tlog_by_id(&entry.log_id) else {
            self.fail(EvidenceError::LogUnknown {
                log_id: STANDARD.encode(&entry.log_id),
            });
            return None;
        };
        let keys = LogKeys {
            log,
            witnesses: witness_verifiers(trust),
        };
        if format.is_rekor_v1() {
            self.verify_v1_entry(bundle, entry, format, signing_key, &keys, inclusion)
        } else {
            self.verify_v2_entry(bundle, entry, signing_key, &keys, inclusion);
            None
        }
    }

    fn verify_v2_entry(
        &mut self,
        bundle: &SigstoreBundle,
        entry: &TlogEntry,
        signing_key: &SigningKey,
        keys: &LogKeys<'_>,
        inclusion: &dyn InclusionSource,
    ) {
        let log = keys.log;
        // NOTE: the log key's validFor is not compared with any time, because a Rekor v2 entry
        // has no integrated time. sigstore-go's Rekor v2 path skips this check too.
        let leaf = match HashedRekordV002::from_bundle(
            &bundle.content,
            signing_key.entry_verifier.clone(),
            &signing_key.key,
        )
        .and_then(|expected| logged_entry_bytes(entry, &expected))
        {
            Ok(bytes) => leaf_hash(&bytes),
            Err(error) => return self.fail(EvidenceError::Rekor(error)),
        };
        // The bundle's own proof must describe this entry in the tree of its own checkpoint, even
        // when the proof used below comes from a cache. A cached proof may lead to a newer
        // checkpoint, so the claims are compared with the bundle's checkpoint here, and with the
        // verified checkpoint only for a proof taken from the bundle.
        let claimed_tree = match &entry.inclusion_proof {
            Some(proof) => {
                if proof.log_index != entry.log_index {
                    return self.fail(EvidenceError::ProofIndexMismatch {
                        entry_index: entry.log_index,
                        proof_index: proof.log_index,
                    });
                }
                if let Err(error) = check_proof_against_own_checkpoint(proof) {
                    return self.fail(error);
                }
                Some((proof.tree_size, proof.root_hash.clone()))
            }
            None => None,
        };
        let target = ProofTarget {
            origin: log.origin().to_owned(),
            index: entry.log_index,
            claimed_tree,
        };
        self.report.tlog = self.prove_inclusion(&target, keys, &leaf, inclusion);
        self.report.tlog_verified = self.report.tlog.is_some();
    }

    /// Checks a Rekor v1 entry: its body, its signed entry timestamp and its inclusion proof,
    /// whichever the bundle carries. Returns the integrated time of a verified timestamp.
    fn verify_v1_entry(
        &mut self,
        bundle: &SigstoreBundle,
        entry: &TlogEntry,
        format: EntryFormat,
        signing_key: &SigningKey,
        keys: &LogKeys<'_>,
        inclusion: &dyn InclusionSource,
    ) -> Option<i64> {
        let log = keys.log;
        let body = match check_v1_body(entry, format, &bundle.content, &signing_key.entry_verifier)
        {
            Ok(body) => body,
            Err(error) => {
                self.fail(EvidenceError::Rekor(error));
                return None;
            }
        };

        let mut integrated_time = None;
        let mut all_valid = true;
        if entry.inclusion_promise.is_some() || entry.inclusion_proof.is_none() {
            // Without a proof the timestamp is the only log evidence, so its absence is reported.
            match verify_signed_entry_timestamp(entry, log) {
                Ok(time) => integrated_time = Some(time),
                Err(error) => {
                    all_valid = false;
                    self.fail(EvidenceError::Set(error));
                }
            }
        }
        if let Some(proof) = &entry.inclusion_proof {
            if let Err(error) = check_proof_against_own_checkpoint(proof) {
                self.fail(error);
                return None;
            }
            let origin = checkpoint_origin(&proof.checkpoint);
            if !is_shard_origin(origin, log.origin()) {
                self.fail(EvidenceError::ShardOrigin {
                    log: log.origin().to_owned(),
                    found: origin.to_owned(),
                });
                return None;
            }
            let target = ProofTarget {
                origin: origin.to_owned(),
                index: proof.log_index,
                claimed_tree: Some((proof.tree_size, proof.root_hash.clone())),
            };
            self.report.tlog = self.prove_inclusion(&target, keys, &leaf_hash(&body), inclusion);
            all_valid &= self.report.tlog.is_some();
        }
        self.report.tlog_verified = all_valid;
        integrated_time.filter(|_| all_valid)
    }

    /// Proves `leaf` included at the target's origin and index with the first inclusion
    /// candidate that proves it. On failure, records the failure of the first candidate and
    /// returns `None`.
    fn prove_inclusion(
        &mut self,
        target: &ProofTarget,
        keys: &LogKeys<'_>,
        leaf: &Hash,
        inclusion: &dyn InclusionSource,
    ) -> Option<TlogRef> {
        let origin = target.origin.as_str();
        let index = target.index;

        let lookup = tracing::info_span!("verify.tile_lookup", origin, index);
        let candidates = match lookup.in_scope(|| inclusion.inclusion_candidates(origin, index)) {
            Ok(candidates) if !candidates.is_empty() => candidates,
            Ok(_) => {
                self.fail(inclusion_error(
                    target,
                    InclusionLookupError::Missing { paths: Vec::new() },
                ));
                return None;
            }
            Err(source) => {
                self.fail(inclusion_error(target, source));
                return None;
            }
        };
        // The entry names its log by key ID, so the checkpoint must carry that log key's signature.
        let log_verifier = match keys.log.note_verifier() {
            Ok(log_verifier) => log_verifier,
            Err(error) => {
                self.fail(EvidenceError::TrustSet(error));
                return None;
            }
        };

        // A candidate is a cryptographic witness checked against a verified checkpoint, so a wrong
        // candidate cannot make a wrong entry pass. Trying all of them keeps a corrupted proof from
        // hiding a correct one. The source returns them in a stable order, so the outcome and the
        // reported failure are deterministic.
        let mut first_failure = None;
        for cached in &candidates {
            match check_candidate(target, &log_verifier, &keys.witnesses, leaf, cached) {
                Ok(proven) => return Some(proven),
                Err(error) => {
                    first_failure.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_failure {
            self.fail(error);
        }
        None
    }
}

fn inclusion_error(target: &ProofTarget, source: InclusionLookupError) -> EvidenceError {
    EvidenceError::Inclusion {
        origin: target.origin.clone(),
        index: target.index,
        source: Box::new(source),
    }
}

/// Checks one inclusion candidate: its checkpoint is of the target's log and signed by the
/// entry's log key, a proof taken from the bundle names that checkpoint's tree, and the proof
/// leads from `leaf` to the checkpoint's root. The returned reference lists the checkpoint's
/// cosignatures by `witnesses`.
fn check_candidate(
    target: &ProofTarget,
    log_verifier: &NoteVerifier,
    witnesses: &[&NoteVerifier],
    leaf: &Hash,
    cached: &CachedInclusion,
) -> Result<TlogRef, EvidenceError> {
    let origin = target.origin.as_str();
    let index = target.index;
    let checkpoint = cached.checkpoint.checkpoint();
    tracing::info_span!("verify.checkpoint", origin, tree_size = checkpoint.size)
        .in_scope(|| check_candidate_checkpoint(target, log_verifier, cached))?;
    tracing::info_span!("verify.inclusion_proof", origin, index, tree_size = checkpoint.size).in_scope(|| {
        verify_inclusion(
            index,
            checkpoint.size,
            leaf,
            &cached.proof,
            &checkpoint.root_hash,
        )
        .map_err(|source| EvidenceError::InclusionProof {
            origin: origin.to_owned(),
            index,
            size: checkpoint.size,
            source,
        })
    })?;
    Ok(TlogRef {
        origin: origin.to_owned(),
        log_index: index,
        checkpoint_size: checkpoint.size,
        root_hash: STANDARD.encode(checkpoint.root_hash),
        proof_source: cached.source,
        cosignatures: trusted_cosignatures(&cached.checkpoint, witnesses),
    })
}

/// Checks that a candidate's checkpoint is of the target's log, signed by the entry's log key,
/// and, for a proof taken from the bundle, of the tree that proof claims.
fn check_candidate_checkpoint(
    target: &ProofTarget,
    log_verifier: &NoteVerifier,
    cached: &CachedInclusion,
) -> Result<(), EvidenceError> {
    let origin = target.origin.as_str();
    let checkpoint = cached.checkpoint.checkpoint();
    if checkpoint.origin != origin {
        return Err(EvidenceError::CheckpointOrigin {
            expected: origin.to_owned(),
            found: checkpoint.origin.clone(),
        });
    }
    if cached.checkpoint.verifier_name() != log_verifier.name()
        || cached.checkpoint.key_id() != log_verifier.key_id()
    {
        return Err(EvidenceError::CheckpointKey {
            origin: origin.to_owned(),
            name: cached.checkpoint.verifier_name().to_owned(),
            key_id: cached.checkpoint.key_id(),
        });
    }

    if let Some((proof_size, proof_root)) = &target.claimed_tree
        && cached.source == ProofSource::Bundle
        && (*proof_size != checkpoint.size || *proof_root != checkpoint.root_hash)
    {
        // The bundle's proof was computed for another tree than the checkpoint it carries.
        return Err(EvidenceError::ProofCheckpointMismatch {
            origin: origin.to_owned(),
            proof_size: *proof_size,
            proof_root: STANDARD.encode(proof_root),
            checkpoint_size: checkpoint.size,
            checkpoint_root: STANDARD.encode(checkpoint.root_hash),
        });
    }
    Ok(())
}

/// Trusted keys of the checkpoint that proves an entry: the entry's log key, and the witness keys
/// whose cosignatures the report lists.
struct LogKeys<'a> {
    log: &'a TransparencyLogInstance,
    witnesses: Vec<&'a NoteVerifier>,
}

/// Checks that a bundle's inclusion proof claims the tree size and root hash of the checkpoint
/// the bundle carries with it. The checkpoint's signature is not verified here: the check only
/// rejects a bundle that contradicts itself, and a proof is trusted only against a checkpoint
/// verified in [`check_candidate`].
fn check_proof_against_own_checkpoint(proof: &InclusionProof) -> Result<(), EvidenceError> {
    let checkpoint = parse_note(proof.checkpoint.as_bytes())
        .map_err(CheckpointError::from)
        .and_then(|note| parse_checkpoint_body(&note.text))
        .map_err(EvidenceError::BundleCheckpoint)?;
    if proof.tree_size != checkpoint.size || proof.root_hash != checkpoint.root_hash {
        return Err(EvidenceError::ProofCheckpointMismatch {
            origin: checkpoint.origin,
            proof_size: proof.tree_size,
            proof_root: STANDARD.encode(&proof.root_hash),
            checkpoint_size: checkpoint.size,
            checkpoint_root: STANDARD.encode(checkpoint.root_hash),
        });
    }
    Ok(())
}

/// Returns the origin line of a signed checkpoint note: its text up to the first newline.
pub(super) fn checkpoint_origin(note: &str) -> &str {
    note.split('\n').next().unwrap_or_default()
}

/// Reports whether `origin` names a Rekor v1 shard of the log at `host`: `<host> - <tree ID>`
/// with a decimal tree ID, or `host` itself.
pub(super) fn is_shard_origin(origin: &str, host: &str) -> bool {
    if origin == host {
        return true;
    }
    origin
        .strip_prefix(host)
        .and_then(|rest| rest.strip_prefix(" - "))
        .is_some_and(|tree_id| {
            !tree_id.is_empty() && tree_id.bytes().all(|byte| byte.is_ascii_digit())
        })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::reason::ReasonCode;

    #[test]
    fn shard_origin_needs_host_and_tree_id() {
        let host = "rekor.sigstore.dev";
        let rows = [
            ("tree id", "rekor.sigstore.dev - 2605736670972794746", true),
            ("bare host", "rekor.sigstore.dev", true),
            ("other host", "rekor.sigstage.dev - 1", false),
            ("host prefix only", "rekor.sigstore.dev.evil - 1", false),
            ("no tree id", "rekor.sigstore.dev - ", false),
            ("non-digit tree id", "rekor.sigstore.dev - 12a", false),
            ("empty", "", false),
        ];
        for (name, origin, want) in rows {
            assert_eq!(is_shard_origin(origin, host), want, "row {name}");
        }
    }

    /// Returns the trust set and bundle of the `rekor2-happy-path` conformance case, or `None`
    /// (with a message) when the vectors folder is absent.
    pub(in crate::evidence) fn happy_rekor2_case() -> Option<(TrustSet, Vec<u8>)> {
        let case = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/vectors/sigstore-conformance/bundle-verify/rekor2-happy-path");
        if !case.is_dir() {
            // In CI a missing vectors folder fails, so that a run without vectors cannot pass.
            crate::test_vectors::skip_or_fail(&format!(
                "test vectors not found at {}",
                case.display()
            ));
            return None;
        }
        let read = |name: &str| {
            let path = case.join(name);
            std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        };
        let trusted_root =
            crate::trust_root::parse_trusted_root(&read("trusted_root.json")).expect("root");
        let trust = TrustSet {
            digest: "sha256:test".to_owned(),
            version: 1,
            expires_at: 4_000_000_000,
            trusted_root,
            note_verifiers: Vec::new(),
            kms_keys: Vec::new(),
        };
        Some((trust, read("bundle.sigstore.json")))
    }

    /// Offers fixed candidates, as a cache holding several proofs for one leaf.
    pub(in crate::evidence) struct Candidates(pub(in crate::evidence) Vec<CachedInclusion>);

    impl InclusionSource for Candidates {
        fn inclusion(
            &self,
            _origin: &str,
            _index: u64,
        ) -> Result<CachedInclusion, InclusionLookupError> {
            self.0
                .first()
                .cloned()
                .ok_or(InclusionLookupError::Missing { paths: Vec::new() })
        }

        fn inclusion_candidates(
            &self,
            _origin: &str,
            _index: u64,
        ) -> Result<Vec<CachedInclusion>, InclusionLookupError> {
            Ok(self.0.clone())
        }
    }

    /// Returns the bundle's own proof as a tlog-proof candidate, and a copy with one proof hash
    /// altered.
    fn good_and_corrupted(
        trust: &TrustSet,
        bundle_json: &[u8],
    ) -> (CachedInclusion, CachedInclusion) {
        let bundle = crate::bundle::parse_bundle(bundle_json).expect("bundle parses");
        let own = super::super::BundleInclusionSource::new(&bundle, trust.checkpoint_verifiers())
            .inclusion("log2025-alpha1.rekor.sigstage.dev", 735)
            .expect("own proof");
        let good = CachedInclusion {
            source: ProofSource::TlogProof,
            ..own
        };
        let mut corrupted = good.clone();
        if let Some(hash) = corrupted.proof.first_mut() {
            hash[0] ^= 0x01;
        }
        (good, corrupted)
    }

    fn verify_with_candidates(
        trust: &TrustSet,
        bundle_json: &[u8],
        candidates: Vec<CachedInclusion>,
    ) -> crate::report::EntryReport {
        let input = super::super::VerifyInput {
            bundle_json,
            trust,
            artifact: super::super::Artifact::None,
            now: 1_780_000_000,
        };
        super::super::verify_bundle(&input, &Candidates(candidates))
    }

    #[test]
    fn candidates_any_valid_proof_verifies() {
        let Some((trust, bundle_json)) = happy_rekor2_case() else {
            return;
        };
        let (good, corrupted) = good_and_corrupted(&trust, &bundle_json);
        let rows = [
            ("corrupted first", vec![corrupted.clone(), good.clone()]),
            ("corrupted last", vec![good.clone(), corrupted]),
            ("good only", vec![good]),
        ];
        for (name, candidates) in rows {
            let report = verify_with_candidates(&trust, &bundle_json, candidates);
            assert_eq!(
                report.outcome,
                super::super::Outcome::Verified,
                "row {name}: {:?}",
                report.detail
            );
            let tlog = report.tlog.expect("tlog reference");
            assert_eq!(
                (tlog.checkpoint_size, tlog.proof_source),
                (736, ProofSource::TlogProof),
                "row {name}"
            );
        }
    }

    #[test]
    fn candidates_all_invalid_report_first() {
        let Some((trust, bundle_json)) = happy_rekor2_case() else {
            return;
        };
        let (good, corrupted) = good_and_corrupted(&trust, &bundle_json);
        let mut truncated = good;
        truncated.proof.pop();
        // Both candidates fail, and only the first one's failure is reported.
        let rows = [
            (
                "corrupted first",
                vec![corrupted.clone(), truncated.clone()],
                "computed root",
            ),
            (
                "truncated first",
                vec![truncated, corrupted],
                "proof has 7 hashes, expected 8",
            ),
        ];
        for (name, candidates, first_failure) in rows {
            let report = verify_with_candidates(&trust, &bundle_json, candidates);
            assert_eq!(report.outcome, super::super::Outcome::Failed, "row {name}");
            assert_eq!(
                report.reason_codes,
                std::collections::BTreeSet::from([ReasonCode::RekorProofInvalid]),
                "row {name}: {:?}",
                report.detail
            );
            assert_eq!(report.detail.len(), 1, "row {name}: {:?}", report.detail);
            assert!(
                report.detail[0].contains(first_failure),
                "row {name}: {:?}",
                report.detail
            );
            assert!(report.tlog.is_none(), "row {name}");
        }

        let report = verify_with_candidates(&trust, &bundle_json, Vec::new());
        assert_eq!(
            report.reason_codes,
            std::collections::BTreeSet::from([ReasonCode::RekorTileMissing]),
            "{:?}",
            report.detail
        );
    }

    /// Returns the bundle JSON with `edit` applied to its first entry's `inclusionProof`.
    fn with_proof_edit(bundle_json: &[u8], edit: ProofEdit) -> Vec<u8> {
        let mut json: serde_json::Value = serde_json::from_slice(bundle_json).expect("bundle JSON");
        let proof = json
            .pointer_mut("/verificationMaterial/tlogEntries/0/inclusionProof")
            .expect("inclusionProof");
        edit(proof);
        serde_json::to_vec(&json).expect("serialize bundle")
    }

    fn flip_root_hash_byte(proof: &mut serde_json::Value) {
        let mut root = STANDARD
            .decode(proof["rootHash"].as_str().expect("rootHash string"))
            .expect("rootHash base64");
        root[0] ^= 0x01;
        proof["rootHash"] = STANDARD.encode(root).into();
    }

    fn tree_size_plus_one(proof: &mut serde_json::Value) {
        let size: u64 = proof["treeSize"]
            .as_str()
            .expect("treeSize")
            .parse()
            .expect("u64");
        proof["treeSize"] = (size + 1).to_string().into();
    }

    fn log_index_minus_one(proof: &mut serde_json::Value) {
        let index: u64 = proof["logIndex"]
            .as_str()
            .expect("logIndex")
            .parse()
            .expect("u64");
        proof["logIndex"] = (index - 1).to_string().into();
    }

    fn log_index_plus_one(proof: &mut serde_json::Value) {
        let index: u64 = proof["logIndex"]
            .as_str()
            .expect("logIndex")
            .parse()
            .expect("u64");
        proof["logIndex"] = (index + 1).to_string().into();
    }

    /// The tampered `inclusionProof` rows of the review, with the reason code each must raise.
    type ProofEdit = fn(&mut serde_json::Value);

    const PROOF_TAMPERING: [(&str, ProofEdit, ReasonCode); 4] = [
        (
            "rootHash byte flipped",
            flip_root_hash_byte,
            ReasonCode::RekorRootMismatch,
        ),
        (
            "treeSize plus one",
            tree_size_plus_one,
            ReasonCode::RekorRootMismatch,
        ),
        (
            "logIndex minus one",
            log_index_minus_one,
            ReasonCode::RekorProofInvalid,
        ),
        (
            "logIndex plus one",
            log_index_plus_one,
            ReasonCode::RekorProofInvalid,
        ),
    ];

    #[test]
    fn rekor2_tampered_own_proof_fails() {
        let Some((trust, bundle_json)) = happy_rekor2_case() else {
            return;
        };
        let untouched = super::super::verify_bundle_with_own_proof(&super::super::VerifyInput {
            bundle_json: &bundle_json,
            trust: &trust,
            artifact: super::super::Artifact::None,
            now: 1_780_000_000,
        });
        assert_eq!(
            untouched.outcome,
            super::super::Outcome::Verified,
            "{:?}",
            untouched.detail
        );

        for (name, edit, code) in PROOF_TAMPERING {
            let tampered = with_proof_edit(&bundle_json, edit);
            let report = super::super::verify_bundle_with_own_proof(&super::super::VerifyInput {
                bundle_json: &tampered,
                trust: &trust,
                artifact: super::super::Artifact::None,
                now: 1_780_000_000,
            });
            assert_eq!(report.outcome, super::super::Outcome::Failed, "row {name}");
            assert_eq!(
                report.reason_codes,
                std::collections::BTreeSet::from([code]),
                "row {name}: {:?}",
                report.detail
            );
            assert!(report.tlog.is_none(), "row {name}");
        }
    }

    #[test]
    fn rekor2_tampered_proof_fails_with_cache() {
        let Some((trust, bundle_json)) = happy_rekor2_case() else {
            return;
        };
        // The cache proves the untouched entry, so only the bundle's own claims can fail.
        let (good, _) = good_and_corrupted(&trust, &bundle_json);
        for (name, edit, code) in PROOF_TAMPERING {
            let tampered = with_proof_edit(&bundle_json, edit);
            let report = verify_with_candidates(&trust, &tampered, vec![good.clone()]);
            assert_eq!(report.outcome, super::super::Outcome::Failed, "row {name}");
            assert_eq!(
                report.reason_codes,
                std::collections::BTreeSet::from([code]),
                "row {name}: {:?}",
                report.detail
            );
            assert!(report.tlog.is_none(), "row {name}");
        }
    }

    #[test]
    fn rekor2_unparsable_own_checkpoint_fails() {
        let Some((trust, bundle_json)) = happy_rekor2_case() else {
            return;
        };
        let (good, _) = good_and_corrupted(&trust, &bundle_json);
        let tampered = with_proof_edit(&bundle_json, |proof| {
            proof["checkpoint"]["envelope"] = "not a signed note".into();
        });
        let report = verify_with_candidates(&trust, &tampered, vec![good]);
        assert_eq!(
            report.reason_codes,
            std::collections::BTreeSet::from([ReasonCode::RekorCheckpointInvalid]),
            "{:?}",
            report.detail
        );
    }

    #[test]
    fn checkpoint_origin_is_first_line() {
        assert_eq!(checkpoint_origin("a - 1\n2\nroot\n\n— a sig\n"), "a - 1");
        assert_eq!(checkpoint_origin(""), "");
    }
}
