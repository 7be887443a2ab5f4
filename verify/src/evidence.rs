//! End-to-end offline verification of one Sigstore bundle against a trust set.
//!
//! [`verify_bundle`] checks a Rekor v2 bundle in the order sigstore-go uses:
//!
//! 1. the trust set is valid at `now`;
//! 2. the bundle parses (bundle v0.1 to v0.3);
//! 3. the bundle has exactly one `hashedrekord` 0.0.2 entry, of a trusted root log selected by
//!    `logId`. The entry rebuilt from the bundle (and matched against `canonicalizedBody`) is
//!    proven included at the top-level `logIndex`. Tree size and root come from a verified
//!    checkpoint of that log, never from the bundle's `inclusionProof`;
//! 4. the bundle carries at least one RFC 3161 timestamp, and each one verifies;
//! 5. the Fulcio certificate chains to a trusted CA at each verified timestamp;
//! 6. the signature verifies over the artifact digest (message signatures) or over DSSE PAE, and
//!    the artifact digest, when given, is the signed digest or a statement subject.
//!
//! Every failed check adds its reason code and a one-line detail, and checks that depend on a
//! failed one are skipped. Inclusion proofs come from an [`InclusionSource`]: the attestor's tile cache,
//! or [`BundleInclusionSource`] for the bundle's own proof.
//!
//! Left out: identity policy (the gate matches the reported signer), SCTs, and Rekor v1 entries
//! (reported as `ERR_REKOR_ENTRY_UNSUPPORTED`).

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use thiserror::Error;

use crate::bundle::{
    BundleContent, BundleError, HashAlgorithm, KeyMaterial, SigstoreBundle, TlogEntry, parse_bundle,
};
use crate::dsse::{DsseError, verify_envelope};
use crate::merkle::{Hash, ProofError, leaf_hash, verify_inclusion};
use crate::reason::{HasReasonCode, ReasonCode};
use crate::rekor::{
    EntryVerifier, HashedRekordV002, RekorError, check_entry_supported, logged_entry_bytes,
};
use crate::timestamp::{TimestampError, verify_timestamp};
use crate::trust_root::{TransparencyLogInstance, TrustRootError, TrustSet, format_time};
use crate::x509::{Certificate, PublicKey, X509Error, verify_fulcio_chain};

mod inclusion;

use inclusion::NoInclusion;
pub use inclusion::{
    BundleInclusionSource, CachedInclusion, InclusionLookupError, InclusionSource,
};

pub use crate::report::{EntryKind, EntryReport, Outcome, ProofSource, Signer, Subject, TlogRef};

/// The artifact a bundle is verified for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artifact {
    /// The SHA-256 digest of the artifact: a message signature must sign it, a DSSE statement must
    /// list it as a subject.
    Sha256([u8; 32]),
    /// No artifact: the signed digest or the statement subjects are reported for the caller to
    /// match.
    None,
}

/// Inputs of [`verify_bundle`].
#[derive(Debug, Clone, Copy)]
pub struct VerifyInput<'a> {
    /// The Sigstore bundle JSON.
    pub bundle_json: &'a [u8],
    pub trust: &'a TrustSet,
    pub artifact: Artifact,
    /// Verification time, Unix seconds.
    pub now: i64,
}

/// A failed check of [`verify_bundle`], with the values an operator needs.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EvidenceError {
    /// The trust set is expired, or holds a log key that cannot verify checkpoints.
    #[error("trust set: {0}")]
    TrustSet(TrustRootError),
    /// The bundle does not parse.
    #[error("{0}")]
    Bundle(BundleError),
    /// The signing certificate is malformed or names no usable identity.
    #[error("signing certificate: {0}")]
    SigningCertificate(X509Error),
    /// The bundle is signed with a managed key the trust set does not hold.
    #[error("bundle public key hint {hint:?} names no managed key of the trust set")]
    KeyUnknown { hint: String },
    /// The trust set's managed key is not a supported key.
    #[error("managed key {id:?}: {source}")]
    ManagedKey { id: String, source: X509Error },
    /// The bundle has no tlog entry.
    #[error("bundle has no transparency log entry")]
    EntryMissing,
    /// The bundle has more than one tlog entry.
    #[error("bundle has {count} transparency log entries; only one is supported")]
    TooManyEntries { count: usize },
    /// The entry is of an unsupported kind, or does not match the bundle.
    #[error("tlog entry: {0}")]
    Rekor(RekorError),
    /// The entry's log is not in the trusted root.
    #[error("tlog entry logId {log_id} names no transparency log of the trusted root")]
    LogUnknown { log_id: String },
    /// The inclusion source returned no proof.
    #[error("inclusion of {origin} index {index}: {source}")]
    Inclusion {
        origin: String,
        index: u64,
        source: InclusionLookupError,
    },
    /// The inclusion source returned a checkpoint of another log.
    #[error("checkpoint origin {found:?} is not the entry's log {expected:?}")]
    CheckpointOrigin { expected: String, found: String },
    /// The checkpoint is not signed by the key of the entry's log.
    #[error("checkpoint of {origin} is signed by {name}+{key_id:08x}, not by the log's key")]
    CheckpointKey {
        origin: String,
        name: String,
        key_id: u32,
    },
    /// The proof does not lead from the entry to the checkpoint's root.
    #[error("inclusion proof of {origin} index {index} in tree size {size}: {source}")]
    InclusionProof {
        origin: String,
        index: u64,
        size: u64,
        source: ProofError,
    },
    /// The bundle has no RFC 3161 timestamp.
    #[error("bundle carries no RFC 3161 timestamp, and Rekor v2 entries have no integrated time")]
    TimestampMissing,
    /// An RFC 3161 timestamp is invalid.
    #[error("rfc3161Timestamps[{index}]: {source}")]
    Timestamp {
        index: usize,
        source: TimestampError,
    },
    /// The signing certificate does not chain to a trusted CA at a verified time.
    #[error("signing certificate chain at {}: {source}", format_time(*.at))]
    CertChain { at: i64, source: X509Error },
    /// The message signature does not verify over the signed digest.
    #[error("message signature does not verify over the {} digest: {source}", .algorithm.proto_name())]
    MessageSignature {
        algorithm: HashAlgorithm,
        source: X509Error,
    },
    /// The DSSE envelope signature or payload is invalid.
    #[error("{0}")]
    Dsse(DsseError),
    /// The artifact digest is not the signed digest or a statement subject.
    #[error("artifact sha256 {artifact} is not {signed}")]
    SubjectMismatch { artifact: String, signed: String },
}

impl HasReasonCode for EvidenceError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            EvidenceError::TrustSet(error) => error.reason_code(),
            EvidenceError::Bundle(error) => error.reason_code(),
            EvidenceError::SigningCertificate(_)
            | EvidenceError::KeyUnknown { .. }
            | EvidenceError::ManagedKey { .. }
            | EvidenceError::CertChain { .. } => ReasonCode::CertChainInvalid,
            EvidenceError::EntryMissing => ReasonCode::RekorEntryMissing,
            EvidenceError::TooManyEntries { .. } => ReasonCode::RekorEntryUnsupported,
            EvidenceError::Rekor(error) => error.reason_code(),
            EvidenceError::LogUnknown { .. } => ReasonCode::RekorLogUnknown,
            EvidenceError::Inclusion { source, .. } => source.reason_code(),
            EvidenceError::CheckpointOrigin { .. } | EvidenceError::CheckpointKey { .. } => {
                ReasonCode::RekorCheckpointInvalid
            }
            EvidenceError::InclusionProof { source, .. } => source.reason_code(),
            EvidenceError::TimestampMissing => ReasonCode::TimestampMissing,
            EvidenceError::Timestamp { source, .. } => source.reason_code(),
            EvidenceError::MessageSignature { .. } => ReasonCode::MessageSignatureInvalid,
            EvidenceError::Dsse(error) => error.reason_code(),
            EvidenceError::SubjectMismatch { .. } => ReasonCode::SubjectMismatch,
        }
    }
}

/// Verifies a Sigstore bundle with the bundle's own inclusion proof and checkpoint (checked with
/// the trust set's checkpoint verifiers). This is the conformance-suite entry point.
pub fn verify_bundle_with_own_proof(input: &VerifyInput) -> EntryReport {
    match parse_bundle(input.bundle_json) {
        Ok(bundle) => {
            let source = BundleInclusionSource::new(&bundle, input.trust.checkpoint_verifiers());
            verify_bundle(input, &source)
        }
        // verify_bundle reports the parse error and never calls the inclusion source.
        Err(_) => verify_bundle(input, &NoInclusion),
    }
}

/// Verifies one Sigstore bundle offline and reports every failed check. Bad input yields a failed
/// report, never a panic.
pub fn verify_bundle(input: &VerifyInput, inclusion: &dyn InclusionSource) -> EntryReport {
    let mut run = Run::default();
    if let Err(error) = input.trust.check_valid_at(input.now) {
        run.fail(EvidenceError::TrustSet(error));
    }
    match parse_bundle(input.bundle_json) {
        Ok(bundle) => run.verify(&bundle, input, inclusion),
        Err(error) => run.fail(EvidenceError::Bundle(error)),
    }
    run.finish()
}

/// The signer's key and how the log names it.
struct SigningKey {
    key: PublicKey,
    entry_verifier: EntryVerifier,
    certificate: Option<Certificate>,
}

/// State of one verification: the failures so far and what was proven.
#[derive(Default)]
struct Run {
    codes: BTreeSet<ReasonCode>,
    detail: Vec<String>,
    report: Proven,
}

/// The facts verification established, and the signer the bundle claims.
#[derive(Default)]
struct Proven {
    kind: Option<EntryKind>,
    signer: Option<Signer>,
    signing_time: Option<i64>,
    predicate_type: Option<String>,
    subjects: Vec<Subject>,
    tlog: Option<TlogRef>,
    signature_verified: bool,
    timestamps_verified: bool,
    chain_verified: bool,
}

impl Run {
    fn fail(&mut self, error: EvidenceError) {
        let code = error.reason_code();
        self.codes.insert(code);
        self.detail.push(format!("{code}: {}", OneLine(&error)));
    }

    fn verify(
        &mut self,
        bundle: &SigstoreBundle,
        input: &VerifyInput,
        inclusion: &dyn InclusionSource,
    ) {
        self.report.kind = Some(match bundle.content {
            BundleContent::MessageSignature(_) => EntryKind::MessageSignature,
            BundleContent::Dsse(_) => EntryKind::Dsse,
        });
        let signing_key = self.resolve_key(bundle, input.trust);
        if let Some(signing_key) = &signing_key {
            self.verify_tlog(bundle, signing_key, input.trust, inclusion);
        }
        let times = self.verify_timestamps(bundle, input.trust);
        if let Some(signing_key) = &signing_key {
            self.verify_chain(signing_key, input.trust, &times);
            self.verify_signature(bundle, &signing_key.key, input.artifact);
        }
    }

    fn resolve_key(&mut self, bundle: &SigstoreBundle, trust: &TrustSet) -> Option<SigningKey> {
        match &bundle.key_material {
            KeyMaterial::Certificate(der) => {
                let certificate = match Certificate::from_der(der) {
                    Ok(certificate) => certificate,
                    Err(error) => {
                        self.fail(EvidenceError::SigningCertificate(error));
                        return None;
                    }
                };
                match certificate.fulcio_identity() {
                    Ok(identity) => {
                        self.report.signer = Some(Signer {
                            identity: identity.subject_alternative_name,
                            issuer: identity.issuer,
                        });
                    }
                    Err(error) => self.fail(EvidenceError::SigningCertificate(error)),
                }
                match certificate.public_key() {
                    Ok(key) => Some(SigningKey {
                        key,
                        entry_verifier: EntryVerifier::X509Certificate(der.clone()),
                        certificate: Some(certificate),
                    }),
                    Err(error) => {
                        self.fail(EvidenceError::SigningCertificate(error));
                        None
                    }
                }
            }
            KeyMaterial::PublicKey { hint } => {
                let Some(managed) = trust.kms_key(hint) else {
                    self.fail(EvidenceError::KeyUnknown { hint: hint.clone() });
                    return None;
                };
                self.report.signer = Some(Signer {
                    identity: format!("key:{}", managed.id),
                    issuer: String::new(),
                });
                match PublicKey::from_spki_der(&managed.spki_der) {
                    Ok(key) => {
                        // A managed key is trusted directly: no chain to validate.
                        self.report.chain_verified = true;
                        Some(SigningKey {
                            key,
                            entry_verifier: EntryVerifier::PublicKey(managed.spki_der.clone()),
                            certificate: None,
                        })
                    }
                    Err(source) => {
                        self.fail(EvidenceError::ManagedKey {
                            id: managed.id.clone(),
                            source,
                        });
                        None
                    }
                }
            }
        }
    }

    fn verify_tlog(
        &mut self,
        bundle: &SigstoreBundle,
        signing_key: &SigningKey,
        trust: &TrustSet,
        inclusion: &dyn InclusionSource,
    ) {
        let entry = match bundle.tlog_entries.as_slice() {
            [entry] => entry,
            [] => return self.fail(EvidenceError::EntryMissing),
            entries => {
                return self.fail(EvidenceError::TooManyEntries {
                    count: entries.len(),
                });
            }
        };
        if let Err(error) = check_entry_supported(entry) {
            return self.fail(EvidenceError::Rekor(error));
        }
        // NOTE: the log key's validFor is not compared with any time, because a Rekor v2 entry
        // has no integrated time. sigstore-go's Rekor v2 path skips this check too.
        let Some(log) = trust.trusted_root.tlog_by_id(&entry.log_id) else {
            return self.fail(EvidenceError::LogUnknown {
                log_id: STANDARD.encode(&entry.log_id),
            });
        };
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
        self.report.tlog = self.prove_inclusion(entry, log, &leaf, inclusion);
    }

    /// Proves `leaf` included at the entry's log index. On failure, records it and returns `None`.
    fn prove_inclusion(
        &mut self,
        entry: &TlogEntry,
        log: &TransparencyLogInstance,
        leaf: &Hash,
        inclusion: &dyn InclusionSource,
    ) -> Option<TlogRef> {
        let origin = log.origin();
        let index = entry.log_index;
        let cached = match inclusion.inclusion(origin, index) {
            Ok(cached) => cached,
            Err(source) => {
                self.fail(EvidenceError::Inclusion {
                    origin: origin.to_owned(),
                    index,
                    source,
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

    /// Verifies every timestamp and returns the distinct verified times, in ascending order.
    fn verify_timestamps(&mut self, bundle: &SigstoreBundle, trust: &TrustSet) -> Vec<i64> {
        if bundle.rfc3161_timestamps.is_empty() {
            self.fail(EvidenceError::TimestampMissing);
            return Vec::new();
        }
        // A DSSE envelope without signature has nothing to timestamp. The empty input then fails
        // the imprint check, and the envelope check reports the missing signature.
        let signature = bundle.content.signature_bytes().unwrap_or_default();
        let mut times = BTreeSet::new();
        let mut all_valid = true;
        for (index, response) in bundle.rfc3161_timestamps.iter().enumerate() {
            match verify_timestamp(
                response,
                signature,
                &trust.trusted_root.timestamp_authorities,
            ) {
                Ok(verified) => {
                    times.insert(verified.gen_time);
                }
                Err(source) => {
                    all_valid = false;
                    self.fail(EvidenceError::Timestamp { index, source });
                }
            }
        }
        self.report.timestamps_verified = all_valid && !times.is_empty();
        self.report.signing_time = times.first().copied();
        times.into_iter().collect()
    }

    fn verify_chain(&mut self, signing_key: &SigningKey, trust: &TrustSet, times: &[i64]) {
        let Some(certificate) = &signing_key.certificate else {
            return;
        };
        if times.is_empty() {
            // Without a trusted time the chain cannot be checked, and the timestamp failure is reported.
            return;
        }
        let mut all_valid = true;
        for &at in times {
            if let Err(source) =
                verify_fulcio_chain(certificate, &trust.trusted_root.certificate_authorities, at)
            {
                all_valid = false;
                self.fail(EvidenceError::CertChain { at, source });
            }
        }
        self.report.chain_verified = all_valid;
    }

    fn verify_signature(&mut self, bundle: &SigstoreBundle, key: &PublicKey, artifact: Artifact) {
        match &bundle.content {
            BundleContent::MessageSignature(message) => {
                let digest = &message.digest;
                if let Err(source) = key.verify_prehash(&digest.digest, &message.signature) {
                    return self.fail(EvidenceError::MessageSignature {
                        algorithm: digest.algorithm,
                        source,
                    });
                }
                self.report.signature_verified = true;
                let signed_sha256: Option<[u8; 32]> = match digest.algorithm {
                    HashAlgorithm::Sha2_256 => digest.digest.as_slice().try_into().ok(),
                    HashAlgorithm::Sha2_384 | HashAlgorithm::Sha2_512 => None,
                };
                if let Some(sha256) = signed_sha256 {
                    self.report.subjects = vec![Subject {
                        name: String::new(),
                        sha256: hex::encode(sha256),
                    }];
                }
                if let Artifact::Sha256(expected) = artifact
                    && signed_sha256 != Some(expected)
                {
                    let signed = match signed_sha256 {
                        Some(sha256) => format!("the signed digest {}", hex::encode(sha256)),
                        None => format!(
                            "comparable: the bundle signs a {} digest",
                            digest.algorithm.proto_name()
                        ),
                    };
                    self.fail(EvidenceError::SubjectMismatch {
                        artifact: hex::encode(expected),
                        signed,
                    });
                }
            }
            BundleContent::Dsse(envelope) => {
                let verified = match verify_envelope(envelope, key) {
                    Ok(verified) => verified,
                    Err(error) => return self.fail(EvidenceError::Dsse(error)),
                };
                self.report.signature_verified = true;
                let statement = match verified.statement() {
                    Ok(statement) => statement,
                    Err(error) => return self.fail(EvidenceError::Dsse(error)),
                };
                let mut subjects: Vec<Subject> = statement
                    .subjects
                    .iter()
                    .filter_map(|subject| {
                        subject.sha256.map(|sha256| Subject {
                            name: subject.name.clone(),
                            sha256: hex::encode(sha256),
                        })
                    })
                    .collect();
                subjects.sort();
                subjects.dedup();
                self.report.predicate_type = Some(statement.predicate_type);
                self.report.subjects = subjects;
                if let Artifact::Sha256(expected) = artifact
                    && !statement
                        .subjects
                        .iter()
                        .any(|subject| subject.sha256 == Some(expected))
                {
                    self.fail(EvidenceError::SubjectMismatch {
                        artifact: hex::encode(expected),
                        signed: "a subject of the signed statement".to_owned(),
                    });
                }
            }
        }
    }

    fn finish(self) -> EntryReport {
        let proven = &self.report;
        let complete = proven.tlog.is_some()
            && proven.timestamps_verified
            && proven.chain_verified
            && proven.signature_verified;
        // Every skipped check follows a recorded failure. `complete` guards against a future code
        // path that skips a check without recording a failure, so such an entry still fails.
        let outcome = if self.codes.is_empty() && complete {
            Outcome::Verified
        } else {
            Outcome::Failed
        };
        EntryReport {
            outcome,
            reason_codes: self.codes,
            detail: self.detail,
            signer: self.report.signer,
            signing_time: self.report.signing_time,
            kind: self.report.kind,
            predicate_type: self.report.predicate_type,
            subjects: self.report.subjects,
            tlog: self.report.tlog,
        }
    }
}

/// Displays an error on one line, replacing any line breaks that input data carried into it.
struct OneLine<'a>(&'a EvidenceError);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        f.write_str(&text.replace(['\n', '\r'], " "))
    }
}
