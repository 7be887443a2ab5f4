//! The transparency log check: the bundle's one entry logs its signature, and the log proves it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{EvidenceError, InclusionSource, ProofSource, Run, SigningKey, TlogRef};
use crate::bundle::{SigstoreBundle, TlogEntry};
use crate::merkle::{Hash, leaf_hash, verify_inclusion};
use crate::rekor::{
    EntryFormat, HashedRekordV002, check_v1_body, entry_format, logged_entry_bytes,
    verify_signed_entry_timestamp,
};
use crate::trust_root::{TransparencyLogInstance, TrustSet};

/// The checkpoint origin and leaf index at which an entry's inclusion is proven.
struct ProofTarget {
    origin: String,
    index: u64,
    /// Tree size and root that the bundle's own proof claims, compared with the checkpoint when
    /// the proof comes from the bundle. Set for Rekor v1 only.
    claimed_tree: Option<(u64, Vec<u8>)>,
}

impl Run {
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
        if format.is_rekor_v1() {
            self.verify_v1_entry(bundle, entry, format, signing_key, log, inclusion)
        } else {
            self.verify_v2_entry(bundle, entry, signing_key, log, inclusion);
            None
        }
    }

    fn verify_v2_entry(
        &mut self,
        bundle: &SigstoreBundle,
        entry: &TlogEntry,
        signing_key: &SigningKey,
        log: &TransparencyLogInstance,
        inclusion: &dyn InclusionSource,
    ) {
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
        let target = ProofTarget {
            origin: log.origin().to_owned(),
            index: entry.log_index,
            claimed_tree: None,
        };
        self.report.tlog = self.prove_inclusion(&target, log, &leaf, inclusion);
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
        log: &TransparencyLogInstance,
        inclusion: &dyn InclusionSource,
    ) -> Option<i64> {
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
            self.report.tlog = self.prove_inclusion(&target, log, &leaf_hash(&body), inclusion);
            all_valid &= self.report.tlog.is_some();
        }
        self.report.tlog_verified = all_valid;
        integrated_time.filter(|_| all_valid)
    }

    /// Proves `leaf` included at the target's origin and index. On failure, records it and
    /// returns `None`.
    fn prove_inclusion(
        &mut self,
        target: &ProofTarget,
        log: &TransparencyLogInstance,
        leaf: &Hash,
        inclusion: &dyn InclusionSource,
    ) -> Option<TlogRef> {
        let origin = target.origin.as_str();
        let index = target.index;

        let cached = match inclusion.inclusion(origin, index) {
            Ok(cached) => cached,
            Err(source) => {
                self.fail(EvidenceError::Inclusion {
                    origin: origin.to_owned(),
                    index,
                    source: Box::new(source),
                });
                return None;
            }
        };

        let checkpoint = cached.checkpoint.checkpoint();
        if checkpoint.origin != origin {
            self.fail(EvidenceError::CheckpointOrigin {
                expected: origin.to_owned(),
                found: checkpoint.origin.clone(),
            });
            return None;
        }
        // The entry names its log by key ID, so the checkpoint must carry that log key's signature.
        let log_verifier = match log.note_verifier() {
            Ok(log_verifier) => log_verifier,
            Err(error) => {
                self.fail(EvidenceError::TrustSet(error));
                return None;
            }
        };
        if cached.checkpoint.verifier_name() != log_verifier.name()
            || cached.checkpoint.key_id() != log_verifier.key_id()
        {
            self.fail(EvidenceError::CheckpointKey {
                origin: origin.to_owned(),
                name: cached.checkpoint.verifier_name().to_owned(),
                key_id: cached.checkpoint.key_id(),
            });
            return None;
        }

        if let Some((proof_size, proof_root)) = &target.claimed_tree
            && cached.source == ProofSource::Bundle
            && (*proof_size != checkpoint.size || *proof_root != checkpoint.root_hash)
        {
            // The bundle's proof was computed for another tree than the checkpoint it carries.
            self.fail(EvidenceError::ProofCheckpointMismatch {
                origin: origin.to_owned(),
                proof_size: *proof_size,
                proof_root: STANDARD.encode(proof_root),
                checkpoint_size: checkpoint.size,
                checkpoint_root: STANDARD.encode(checkpoint.root_hash),
            });
            return None;
        }

        if let Err(source) = verify_inclusion(
            index,
            checkpoint.size,
            leaf,
            &cached.proof,
            &checkpoint.root_hash,
        ) {
            self.fail(EvidenceError::InclusionProof {
                origin: origin.to_owned(),
                index,
                size: checkpoint.size,
                source,
            });
            return None;
        }
        Some(TlogRef {
            origin: origin.to_owned(),
            log_index: index,
            checkpoint_size: checkpoint.size,
            root_hash: STANDARD.encode(checkpoint.root_hash),
            proof_source: cached.source,
        })
    }
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
mod tests {
    use super::*;

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

    #[test]
    fn checkpoint_origin_is_first_line() {
        assert_eq!(checkpoint_origin("a - 1\n2\nroot\n\n— a sig\n"), "a - 1");
        assert_eq!(checkpoint_origin(""), "");
    }
}
