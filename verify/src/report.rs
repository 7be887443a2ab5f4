//! Verification reports: the record of one evidence bundle's offline verification.
//!
//! A report is serialized as RFC 8785 canonical JSON and identified by the SHA-256 of those bytes.
//! It holds no wall-clock time and only ordered collections, so verifying the same evidence with the
//! same trust set and `now` always yields the same bytes and digest. The gate parses reports back,
//! so every type here is `Serialize + Deserialize` with snake_case field names.
//!
//! Numbers are JSON numbers, which RFC 8785 writes as IEEE doubles: integers stay exact up to
//! 2^53 - 1, the largest log index a bundle may carry ([`crate::bundle::MAX_LOG_INDEX`]).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::reason::ReasonCode;
use crate::trust_root::TrustSet;

/// Schema identifier of [`VerificationReport`].
pub const REPORT_SCHEMA: &str = "stella.verification-report/v1";

/// Version of the verification code behind a report: `1-` and the SHA-256 of this crate's
/// sources, computed by `build.rs`. A service that stores reports and serves them again keys them
/// by this version, so any change to the verifier (even a comment) makes it verify again instead
/// of serving a report that the new code might not give.
pub const REPORT_VERIFIER_VERSION: &str = concat!("1-", env!("STELLA_VERIFY_SOURCE_DIGEST"));

/// Whether verification succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Verified,
    Failed,
}

/// The kind of content a Sigstore bundle signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A DSSE envelope (an in-toto statement).
    Dsse,
    /// A signature over an artifact digest.
    MessageSignature,
}

/// The origin of the inclusion proof of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofSource {
    /// Computed from cached C2SP tlog-tiles.
    Tiles,
    /// A cached C2SP tlog-proof file.
    TlogProof,
    /// The Sigstore bundle's own inclusion proof.
    Bundle,
}

/// The signer named by the signing certificate, or the managed key that signed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Signer {
    /// Certificate subject alternative name (URI, email or username), or `key:<id>` for a managed key.
    pub identity: String,
    /// OIDC issuer from the certificate, or empty for a managed key.
    pub issuer: String,
}

/// One signed subject: an in-toto statement subject, or the digest a message signature covers
/// (with an empty name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Subject {
    pub name: String,
    /// Lowercase hex SHA-256.
    pub sha256: String,
}

/// The log position at which an entry was proven included.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TlogRef {
    /// Checkpoint origin of the log.
    pub origin: String,
    pub log_index: u64,
    /// Tree size of the verified checkpoint the proof leads to.
    pub checkpoint_size: u64,
    /// Standard base64 root hash of that checkpoint.
    pub root_hash: String,
    pub proof_source: ProofSource,
    /// Witness cosignatures (c2sp.org/tlog-cosignature, note key type `0x04`) on that checkpoint
    /// that verified under witness keys of the trust root set, sorted by witness name, then
    /// timestamp, each pair once. Empty when no trusted witness cosigned, and when a report
    /// written before this field existed is read back.
    #[serde(default)]
    pub cosignatures: Vec<WitnessCosignature>,
}

/// A verified witness cosignature on a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WitnessCosignature {
    /// The witness key's name.
    pub witness: String,
    /// Unix seconds at which the witness cosigned.
    pub timestamp: i64,
}

/// The verification result of one Sigstore bundle.
///
/// `signer` is the identity the certificate claims, set as soon as the bundle parses, also when
/// verification failed. `signing_time` comes from verified timestamps only. Statement fields
/// (`predicate_type`, DSSE `subjects`) appear only after the envelope signature verified. Only an
/// entry whose `outcome` is `verified` may be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryReport {
    pub outcome: Outcome,
    pub reason_codes: BTreeSet<ReasonCode>,
    /// One line per failure, each starting with its reason code, in check order.
    pub detail: Vec<String>,
    pub signer: Option<Signer>,
    /// Unix seconds of the earliest verified observer time: an RFC 3161 timestamp, or the
    /// integrated time of a verified Rekor v1 signed entry timestamp.
    pub signing_time: Option<i64>,
    /// `None` when the bundle did not parse.
    pub kind: Option<EntryKind>,
    pub predicate_type: Option<String>,
    /// Sorted, without duplicates.
    pub subjects: Vec<Subject>,
    /// The verified inclusion proof. A Rekor v1 entry of a bundle v0.1 without proof verifies by
    /// its signed entry timestamp alone and has none.
    pub tlog: Option<TlogRef>,
}

/// The verification record of one evidence bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationReport {
    /// Always [`REPORT_SCHEMA`].
    pub schema: String,
    /// Evidence bundle id (`sha256:<hex>` of its manifest).
    pub bundle_id: String,
    pub trust_set_digest: String,
    pub trust_set_version: u64,
    pub outcome: Outcome,
    /// Union of the entries' reason codes.
    pub reason_codes: BTreeSet<ReasonCode>,
    /// Entry reports by file path inside the evidence bundle.
    pub entries: BTreeMap<String, EntryReport>,
}

impl VerificationReport {
    /// Builds the report of an evidence bundle from its entries' results.
    ///
    /// The outcome is `verified` only when there is at least one entry and every entry verified.
    /// An evidence bundle without entries fails with `ERR_BUNDLE_MALFORMED`.
    pub fn new(bundle_id: &str, trust: &TrustSet, entries: BTreeMap<String, EntryReport>) -> Self {
        let mut reason_codes: BTreeSet<ReasonCode> = entries
            .values()
            .flat_map(|entry| entry.reason_codes.iter().copied())
            .collect();
        if entries.is_empty() {
            reason_codes.insert(ReasonCode::BundleMalformed);
        }
        let all_verified = entries
            .values()
            .all(|entry| entry.outcome == Outcome::Verified);
        let outcome = if all_verified && reason_codes.is_empty() {
            Outcome::Verified
        } else {
            Outcome::Failed
        };
        VerificationReport {
            schema: REPORT_SCHEMA.to_owned(),
            bundle_id: bundle_id.to_owned(),
            trust_set_digest: trust.digest.clone(),
            trust_set_version: trust.version,
            outcome,
            reason_codes,
            entries,
        }
    }

    /// Returns the RFC 8785 canonical JSON encoding.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // Serialization cannot fail, because every map key is a string and the report has no floats.
        serde_json_canonicalizer::to_vec(self).unwrap_or_default()
    }

    /// Returns `sha256:<hex>` of [`VerificationReport::to_canonical_json`].
    pub fn digest(&self) -> String {
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(self.to_canonical_json()))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust_root::{TrustSet, TrustedRoot};

    fn trust_set() -> TrustSet {
        TrustSet {
            digest: "sha256:abcd".to_owned(),
            version: 3,
            expires_at: 4_000_000_000,
            trusted_root: TrustedRoot {
                media_type: "application/vnd.dev.sigstore.trustedroot.v0.2+json".to_owned(),
                tlogs: Vec::new(),
                ctlogs: Vec::new(),
                certificate_authorities: Vec::new(),
                timestamp_authorities: Vec::new(),
            },
            note_verifiers: Vec::new(),
            kms_keys: Vec::new(),
        }
    }

    fn verified_entry() -> EntryReport {
        EntryReport {
            outcome: Outcome::Verified,
            reason_codes: BTreeSet::new(),
            detail: Vec::new(),
            signer: Some(Signer {
                identity:
                    "https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main"
                        .to_owned(),
                issuer: "https://token.actions.githubusercontent.com".to_owned(),
            }),
            signing_time: Some(1_749_729_740),
            kind: Some(EntryKind::Dsse),
            predicate_type: Some("https://slsa.dev/provenance/v1".to_owned()),
            subjects: vec![Subject {
                name: "a.txt".to_owned(),
                sha256: "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
                    .to_owned(),
            }],
            tlog: Some(TlogRef {
                origin: "log2025-alpha3.rekor.sigstage.dev".to_owned(),
                log_index: 4_026_478,
                checkpoint_size: 4_026_479,
                root_hash: "5iaX4xK6PMnp4ZFTP4iywMcwLgaTjzgRTkrTOUFIrfY=".to_owned(),
                proof_source: ProofSource::Tiles,
                cosignatures: Vec::new(),
            }),
        }
    }

    fn failed_entry() -> EntryReport {
        EntryReport {
            outcome: Outcome::Failed,
            reason_codes: BTreeSet::from([
                ReasonCode::TimestampMissing,
                ReasonCode::RekorTileMissing,
            ]),
            detail: vec!["ERR_TIMESTAMP_MISSING: bundle carries no RFC 3161 timestamp".to_owned()],
            signer: None,
            signing_time: None,
            kind: None,
            predicate_type: None,
            subjects: Vec::new(),
            tlog: None,
        }
    }

    #[test]
    fn report_bytes_are_deterministic() {
        let build = || {
            let entries = BTreeMap::from([
                ("sigstore/b.json".to_owned(), failed_entry()),
                ("sigstore/a.json".to_owned(), verified_entry()),
            ]);
            VerificationReport::new("sha256:1234", &trust_set(), entries)
        };
        let (first, second) = (build(), build());
        assert_eq!(first.to_canonical_json(), second.to_canonical_json());
        assert_eq!(first.digest(), second.digest());
        assert!(first.digest().starts_with("sha256:"));
        assert_eq!(first.digest().len(), "sha256:".len() + 64);
    }

    #[test]
    fn report_outcome_and_codes() {
        let verified = VerificationReport::new(
            "sha256:1",
            &trust_set(),
            BTreeMap::from([("a".to_owned(), verified_entry())]),
        );
        assert_eq!(verified.outcome, Outcome::Verified);
        assert!(verified.reason_codes.is_empty());

        let mixed = VerificationReport::new(
            "sha256:1",
            &trust_set(),
            BTreeMap::from([
                ("a".to_owned(), verified_entry()),
                ("b".to_owned(), failed_entry()),
            ]),
        );
        assert_eq!(mixed.outcome, Outcome::Failed);
        assert_eq!(
            mixed.reason_codes,
            BTreeSet::from([ReasonCode::RekorTileMissing, ReasonCode::TimestampMissing])
        );

        let empty = VerificationReport::new("sha256:1", &trust_set(), BTreeMap::new());
        assert_eq!(empty.outcome, Outcome::Failed);
        assert_eq!(
            empty.reason_codes,
            BTreeSet::from([ReasonCode::BundleMalformed])
        );
    }

    #[test]
    fn report_json_round_trips() {
        let report = VerificationReport::new(
            "sha256:1",
            &trust_set(),
            BTreeMap::from([
                ("a".to_owned(), verified_entry()),
                ("b".to_owned(), failed_entry()),
            ]),
        );
        let json = report.to_canonical_json();
        let text = String::from_utf8(json.clone()).expect("UTF-8");
        assert!(
            text.starts_with(
                r#"{"bundle_id":"sha256:1","entries":{"a":{"detail":[],"kind":"dsse""#
            ),
            "{text}"
        );
        assert!(text.contains(r#""proof_source":"tiles""#), "{text}");
        assert!(
            text.contains(r#""reason_codes":["ERR_REKOR_TILE_MISSING","ERR_TIMESTAMP_MISSING"]"#),
            "{text}"
        );
        assert!(
            text.contains(r#""schema":"stella.verification-report/v1""#),
            "{text}"
        );
        let parsed: VerificationReport = serde_json::from_slice(&json).expect("parses back");
        assert_eq!(parsed, report);
    }
}

#[cfg(test)]
mod version_tests {
    use super::REPORT_VERIFIER_VERSION;

    #[test]
    fn verifier_version_carries_source_digest() {
        let digest = REPORT_VERIFIER_VERSION
            .strip_prefix("1-")
            .expect("version starts with 1-");
        assert_eq!(digest.len(), 64, "{REPORT_VERIFIER_VERSION}");
        assert!(digest.bytes().all(|byte| byte.is_ascii_hexdigit()), "{REPORT_VERIFIER_VERSION}");
    }
}
