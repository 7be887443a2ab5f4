//! End-to-end offline verification of one Sigstore bundle against a trust set.
//!
//! [`verify_bundle`] runs these checks, each on what the previous ones established:
//!
//! 1. the trust set is valid at `now`, and the bundle parses (bundle v0.1 to v0.3);
//! 2. the signing key is the bundle's Fulcio certificate, a managed key of the trust set, or the
//!    key the caller expects ([`ExpectedSigner::Key`]);
//! 3. the signature verifies over the artifact digest (message signatures) or over DSSE PAE, and
//!    the artifact digest, when given, is the signed digest or a statement subject;
//! 4. the bundle has exactly one tlog entry, of a trusted root log selected by `logId`, and it logs
//!    this signature. The check is skipped when step 3 found the signature invalid: Rekor never
//!    logs an invalid signature, so the comparison would only restate that failure.
//!    - Rekor v2 `hashedrekord` 0.0.2: the entry rebuilt from the bundle (and matched against
//!      `canonicalizedBody`) is proven included at the top-level `logIndex`. Tree size and root
//!      come from a verified checkpoint of the log, never from the bundle's `inclusionProof`.
//!      The bundle's `inclusionProof`, when present, must still name the entry's `logIndex` and
//!      the tree size and root of the bundle's own checkpoint, and when the proof is taken from
//!      the bundle, those of the verified checkpoint.
//!    - Rekor v1 `hashedrekord` or `dsse` 0.0.1: `canonicalizedBody` is compared with the bundle
//!      field by field. Its signed entry timestamp, when present, must verify under the log key
//!      valid at the integrated time. Its inclusion proof, when present, is proven at the
//!      shard-local `inclusionProof.logIndex` against a verified checkpoint of the shard named by
//!      the bundle's checkpoint (origin `<log host> - <tree ID>`). A proof from the bundle must
//!      name the same tree size and root as that checkpoint. Bundle v0.1 requires the timestamp
//!      and v0.2 and later the proof ([`crate::bundle`]).
//! 5. observer times: each RFC 3161 timestamp verifies (checked only when both the trusted root
//!    lists timestamp authorities and the bundle carries timestamps, as the sigstore-go
//!    conformance client does), and a verified signed entry timestamp adds its integrated time. At
//!    least one observer time is required.
//! 6. a Fulcio certificate chains to a trusted CA at each observer time (so the integrated time
//!    lies within the certificate's validity), and at least one of its embedded SCTs verifies
//!    under a CT log of the trusted root (skipped when the root lists no CT logs);
//! 7. with [`ExpectedSigner::Identity`], the certificate's subject alternative name and OIDC issuer
//!    equal the expected ones exactly.
//!
//! Every failed check adds its reason code and a one-line detail, and checks that depend on a
//! failed one are skipped. Inclusion proofs come from an [`InclusionSource`]: the attestor's tile
//! cache, or [`BundleInclusionSource`] for the bundle's own proof. When the source offers several
//! candidate proofs ([`InclusionSource::inclusion_candidates`]), the entry is proven if any of them
//! proves it. When none does, the first candidate's failure is reported.
//!
//! Left out: the Rekor v1 `intoto` kinds are reported as `ERR_REKOR_ENTRY_UNSUPPORTED`, and a
//! trusted root without tlogs still requires a tlog entry (the conformance client would skip the
//! tlog check).

use std::collections::BTreeSet;
use std::fmt;

use sha2::{Digest as _, Sha256};
use thiserror::Error;

use crate::bundle::{BundleContent, BundleError, HashAlgorithm, SigstoreBundle, parse_bundle};
use crate::cache::VerificationCache;
use crate::checkpoint::CheckpointError;
use crate::dsse::DsseError;
use crate::merkle::ProofError;
use crate::reason::{HasReasonCode, ReasonCode};
use crate::rekor::{RekorError, SetError};
use crate::sct::SctError;
use crate::timestamp::TimestampError;
use crate::trust_root::{TrustRootError, TrustSet, format_time};
use crate::x509::{Certificate, PublicKey, X509Error};

mod cosignatures;
mod inclusion;
mod signer;
mod time;
mod tlog;

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

/// The signer a caller requires, as the Sigstore conformance command line states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedSigner<'a> {
    /// A Fulcio certificate whose subject alternative name and OIDC issuer equal these strings
    /// exactly.
    Identity { identity: &'a str, issuer: &'a str },
    /// A managed key, as DER SubjectPublicKeyInfo, that signed the bundle. It replaces the trust
    /// set's managed keys, and the bundle's `publicKey.hint` is ignored.
    Key { spki_der: &'a [u8] },
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
    /// The key the caller expects is not a supported key.
    #[error("expected public key: {source}")]
    ExpectedKey { source: X509Error },
    /// The bundle carries another kind of key material than the caller expects.
    #[error("the bundle is signed with {found}, but verification requires {expected}")]
    KeyMaterial {
        expected: &'static str,
        found: &'static str,
    },
    /// The certificate's identity is not the one the caller expects.
    #[error(
        "signer {found_identity:?} from issuer {found_issuer:?} is not the expected {expected_identity:?} from issuer {expected_issuer:?}"
    )]
    IdentityMismatch {
        expected_identity: String,
        expected_issuer: String,
        found_identity: String,
        found_issuer: String,
    },
    /// The bundle has no tlog entry.
    #[error("bundle has no transparency log entry")]
    EntryMissing,
    /// The bundle has more than one tlog entry.
    #[error("bundle has {count} transparency log entries; only one is supported")]
    TooManyEntries { count: usize },
    /// The entry is of an unsupported kind, or does not match the bundle.
    #[error("tlog entry: {0}")]
    Rekor(RekorError),
    /// The Rekor v1 signed entry timestamp is invalid.
    #[error("tlog entry: {0}")]
    Set(SetError),
    /// The entry's log is not in the trusted root.
    #[error("tlog entry logId {log_id} names no transparency log of the trusted root")]
    LogUnknown { log_id: String },
    /// The bundle's Rekor v1 checkpoint names no shard of the entry's log.
    #[error(
        "checkpoint origin {found:?} is not a shard of log {log:?} (expected \"{log} - <tree ID>\")"
    )]
    ShardOrigin { log: String, found: String },
    /// The inclusion source returned no proof.
    #[error("inclusion of {origin} index {index}: {source}")]
    Inclusion {
        origin: String,
        index: u64,
        source: Box<InclusionLookupError>,
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
    /// The bundle's checkpoint envelope does not parse.
    #[error("bundle inclusion proof checkpoint: {0}")]
    BundleCheckpoint(CheckpointError),
    /// A Rekor v2 bundle's inclusion proof is for another leaf than its entry.
    #[error(
        "inclusion proof logIndex {proof_index} is not the tlog entry's logIndex {entry_index}"
    )]
    ProofIndexMismatch { entry_index: u64, proof_index: u64 },
    /// The bundle's inclusion proof names another tree than its checkpoint.
    #[error(
        "inclusion proof of {origin} is for tree size {proof_size} with root {proof_root}, but the checkpoint has tree size {checkpoint_size} with root {checkpoint_root}"
    )]
    ProofCheckpointMismatch {
        origin: String,
        proof_size: u64,
        proof_root: String,
        checkpoint_size: u64,
        checkpoint_root: String,
    },
    /// The proof does not lead from the entry to the checkpoint's root.
    #[error("inclusion proof of {origin} index {index} in tree size {size}: {source}")]
    InclusionProof {
        origin: String,
        index: u64,
        size: u64,
        source: ProofError,
    },
    /// No check produced a trusted time.
    #[error(
        "no verified observer time: the bundle carries no RFC 3161 timestamp that the trusted root's timestamp authorities can verify, and no Rekor v1 signed entry timestamp"
    )]
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
    /// The signing certificate's embedded SCTs are missing or invalid.
    #[error("signing certificate SCTs: {0}")]
    Sct(SctError),
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
            | EvidenceError::ExpectedKey { .. }
            | EvidenceError::CertChain { .. } => ReasonCode::CertChainInvalid,
            EvidenceError::KeyMaterial { .. } | EvidenceError::IdentityMismatch { .. } => {
                ReasonCode::IdentityMismatch
            }
            EvidenceError::EntryMissing => ReasonCode::RekorEntryMissing,
            EvidenceError::TooManyEntries { .. } => ReasonCode::RekorEntryUnsupported,
            EvidenceError::Rekor(error) => error.reason_code(),
            EvidenceError::Set(error) => error.reason_code(),
            EvidenceError::Sct(error) => error.reason_code(),
            EvidenceError::LogUnknown { .. } => ReasonCode::RekorLogUnknown,
            EvidenceError::Inclusion { source, .. } => source.reason_code(),
            EvidenceError::ShardOrigin { .. }
            | EvidenceError::CheckpointOrigin { .. }
            | EvidenceError::CheckpointKey { .. } => ReasonCode::RekorCheckpointInvalid,
            EvidenceError::BundleCheckpoint(error) => error.reason_code(),
            EvidenceError::ProofIndexMismatch { .. } => ReasonCode::RekorProofInvalid,
            EvidenceError::ProofCheckpointMismatch { .. } => ReasonCode::RekorRootMismatch,
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
/// the trust set's checkpoint verifiers).
pub fn verify_bundle_with_own_proof(input: &VerifyInput) -> EntryReport {
    verify_with_own_proof(input, None, None)
}

/// Verifies a Sigstore bundle like [`verify_bundle_with_own_proof`] and requires the signer the
/// caller expects. This is the Sigstore conformance entry point.
pub fn verify_bundle_with_own_proof_signed_by(
    input: &VerifyInput,
    signer: &ExpectedSigner,
) -> EntryReport {
    verify_with_own_proof(input, Some(signer), None)
}

/// Verifies one Sigstore bundle offline and reports every failed check. Bad input yields a failed
/// report, never a panic.
pub fn verify_bundle(input: &VerifyInput, inclusion: &dyn InclusionSource) -> EntryReport {
    verify_with(input, None, inclusion, None)
}

/// Verifies one Sigstore bundle like [`verify_bundle`] and requires the signer the caller
/// expects.
pub fn verify_bundle_signed_by(
    input: &VerifyInput,
    signer: &ExpectedSigner,
    inclusion: &dyn InclusionSource,
) -> EntryReport {
    verify_with(input, Some(signer), inclusion, None)
}

/// Verifies one Sigstore bundle like [`verify_bundle`], reusing certification paths that `cache`
/// stores and storing new ones. The report is byte for byte the one [`verify_bundle`] returns.
///
/// The cache reaches the Fulcio and TSA chain checks only. Checkpoints come verified from
/// `inclusion`, so a source that should reuse checkpoint signatures verifies them with
/// [`crate::checkpoint::verify_checkpoint_cached`] (as [`BundleInclusionSource::with_cache`]
/// does).
pub fn verify_bundle_cached(
    input: &VerifyInput,
    inclusion: &dyn InclusionSource,
    cache: &VerificationCache,
) -> EntryReport {
    verify_with(input, None, inclusion, Some(cache))
}

/// Verifies one Sigstore bundle like [`verify_bundle_signed_by`], with `cache` as
/// [`verify_bundle_cached`] uses it.
pub fn verify_bundle_signed_by_cached(
    input: &VerifyInput,
    signer: &ExpectedSigner,
    inclusion: &dyn InclusionSource,
    cache: &VerificationCache,
) -> EntryReport {
    verify_with(input, Some(signer), inclusion, Some(cache))
}

/// Verifies a Sigstore bundle like [`verify_bundle_with_own_proof`], with `cache` for the chain
/// checks and the bundle's checkpoint signatures.
pub fn verify_bundle_with_own_proof_cached(
    input: &VerifyInput,
    cache: &VerificationCache,
) -> EntryReport {
    verify_with_own_proof(input, None, Some(cache))
}

/// Verifies a Sigstore bundle like [`verify_bundle_with_own_proof_signed_by`], with `cache` for
/// the chain checks and the bundle's checkpoint signatures.
pub fn verify_bundle_with_own_proof_signed_by_cached(
    input: &VerifyInput,
    signer: &ExpectedSigner,
    cache: &VerificationCache,
) -> EntryReport {
    verify_with_own_proof(input, Some(signer), Some(cache))
}

/// Checks that a report names the expected signer: subject alternative name and OIDC issuer equal,
/// byte for byte.
///
/// # Errors
///
/// [`EvidenceError::IdentityMismatch`] (`ERR_IDENTITY_MISMATCH`) when they differ or the report
/// names no signer.
pub fn check_identity(
    report: &EntryReport,
    identity: &str,
    issuer: &str,
) -> Result<(), EvidenceError> {
    match_identity(report.signer.as_ref(), identity, issuer)
}

fn match_identity(
    signer: Option<&Signer>,
    identity: &str,
    issuer: &str,
) -> Result<(), EvidenceError> {
    let (found_identity, found_issuer) = match signer {
        Some(signer) => (signer.identity.as_str(), signer.issuer.as_str()),
        None => ("", ""),
    };
    if found_identity == identity && found_issuer == issuer {
        return Ok(());
    }
    Err(EvidenceError::IdentityMismatch {
        expected_identity: identity.to_owned(),
        expected_issuer: issuer.to_owned(),
        found_identity: found_identity.to_owned(),
        found_issuer: found_issuer.to_owned(),
    })
}

fn verify_with_own_proof(
    input: &VerifyInput,
    signer: Option<&ExpectedSigner>,
    cache: Option<&VerificationCache>,
) -> EntryReport {
    // The bundle is parsed once, for its inclusion proof and for the checks.
    match parse_bundle_traced(input.bundle_json) {
        Ok(bundle) => {
            let verifiers = input.trust.checkpoint_verifiers();
            let source = match cache {
                Some(cache) => BundleInclusionSource::with_cache(&bundle, verifiers, cache),
                None => BundleInclusionSource::new(&bundle, verifiers),
            };
            verify_parsed(input, Ok(&bundle), signer, &source, cache)
        }
        // verify_parsed reports the parse error and never calls the inclusion source.
        Err(error) => verify_parsed(input, Err(error), signer, &NoInclusion, cache),
    }
}

fn verify_with(
    input: &VerifyInput,
    signer: Option<&ExpectedSigner>,
    inclusion: &dyn InclusionSource,
    cache: Option<&VerificationCache>,
) -> EntryReport {
    match parse_bundle_traced(input.bundle_json) {
        Ok(bundle) => verify_parsed(input, Ok(&bundle), signer, inclusion, cache),
        Err(error) => verify_parsed(input, Err(error), signer, inclusion, cache),
    }
}

/// Verifies one Sigstore bundle like [`verify_bundle_cached`], for a caller that has already
/// parsed `input.bundle_json` with [`parse_bundle_traced`] (to build an inclusion source from it,
/// say). `parsed` must be that call's result; the report is then byte for byte the one
/// [`verify_bundle_cached`] returns.
pub fn verify_parsed_bundle_cached(
    input: &VerifyInput,
    parsed: Result<&SigstoreBundle, BundleError>,
    inclusion: &dyn InclusionSource,
    cache: &VerificationCache,
) -> EntryReport {
    verify_parsed(input, parsed, None, inclusion, Some(cache))
}

/// Parses a Sigstore bundle with [`parse_bundle`] inside the `verify.bundle_integrity` span, as
/// every verification function here does.
pub fn parse_bundle_traced(bundle_json: &[u8]) -> Result<SigstoreBundle, BundleError> {
    tracing::info_span!("verify.bundle_integrity", bytes = bundle_json.len())
        .in_scope(|| parse_bundle(bundle_json))
}

fn verify_parsed(
    input: &VerifyInput,
    parsed: Result<&SigstoreBundle, BundleError>,
    signer: Option<&ExpectedSigner>,
    inclusion: &dyn InclusionSource,
    cache: Option<&VerificationCache>,
) -> EntryReport {
    let mut run = Run {
        cache,
        ..Run::default()
    };
    if let Err(error) = input.trust.check_valid_at(input.now) {
        run.fail(EvidenceError::TrustSet(error));
    }
    match parsed {
        Ok(bundle) => run.verify(bundle, input, signer, inclusion),
        Err(error) => run.fail(EvidenceError::Bundle(error)),
    }
    run.finish()
}

/// The signer's key and how the log names it.
struct SigningKey {
    key: PublicKey,
    /// The certificate or DER SPKI as a log entry names the signer.
    entry_verifier: crate::rekor::EntryVerifier,
    certificate: Option<Certificate>,
}

/// State of one verification: the failures so far and what was proven.
#[derive(Default)]
struct Run<'c> {
    codes: BTreeSet<ReasonCode>,
    detail: Vec<String>,
    report: Proven,
    /// Stored chain validations to reuse, when the caller passed a cache.
    cache: Option<&'c VerificationCache>,
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
    tlog_verified: bool,
    times_verified: bool,
    chain_verified: bool,
}

impl Run<'_> {
    fn fail(&mut self, error: EvidenceError) {
        let code = error.reason_code();
        self.codes.insert(code);
        self.detail.push(format!("{code}: {}", OneLine(&error)));
    }

    fn verify(
        &mut self,
        bundle: &SigstoreBundle,
        input: &VerifyInput,
        signer: Option<&ExpectedSigner>,
        inclusion: &dyn InclusionSource,
    ) {
        self.report.kind = Some(match bundle.content {
            BundleContent::MessageSignature(_) => EntryKind::MessageSignature,
            BundleContent::Dsse(_) => EntryKind::Dsse,
        });
        let signing_key = self.resolve_key(bundle, input.trust, signer);
        let mut integrated_time = None;
        if let Some(signing_key) = &signing_key {
            let signature_span = match bundle.content {
                BundleContent::MessageSignature(_) => tracing::info_span!("verify.message_signature"),
                BundleContent::Dsse(_) => tracing::info_span!("verify.dsse"),
            };
            let signed = signature_span
                .in_scope(|| self.verify_signature(bundle, &signing_key.key, input.artifact));
            if signed {
                integrated_time = tracing::info_span!("verify.tlog")
                    .in_scope(|| self.verify_tlog(bundle, signing_key, input.trust, inclusion));
            }
        }
        let times = tracing::info_span!("verify.timestamps")
            .in_scope(|| self.verify_observer_times(bundle, input.trust, integrated_time));
        if let Some(signing_key) = &signing_key {
            tracing::info_span!("verify.certificate")
                .in_scope(|| self.verify_certificate(signing_key, input.trust, &times));
        }
        // Without a resolved key or a certificate identity the signer is unknown, and that
        // failure is already recorded.
        if let Some(ExpectedSigner::Identity { identity, issuer }) = signer
            && signing_key.is_some()
            && self.report.signer.is_some()
            && let Err(error) = match_identity(self.report.signer.as_ref(), identity, issuer)
        {
            self.fail(error);
        }
    }

    fn finish(self) -> EntryReport {
        let proven = &self.report;
        let complete = proven.tlog_verified
            && proven.times_verified
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

/// Returns `key:sha256:<hex>` of a DER SPKI, the signer name of a caller-supplied key.
fn key_signer_name(spki_der: &[u8]) -> String {
    format!("key:sha256:{}", hex::encode(Sha256::digest(spki_der)))
}

/// Displays an error on one line, replacing any line breaks that input data carried into it.
struct OneLine<'a>(&'a EvidenceError);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        f.write_str(&text.replace(['\n', '\r'], " "))
    }
}
