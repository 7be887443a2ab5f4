//! Sources of inclusion proofs for [`super::verify_bundle`].

use thiserror::Error;

use crate::bundle::SigstoreBundle;
use crate::cache::VerificationCache;
use crate::checkpoint::{
    CheckpointError, OriginRule, VerifiedCheckpoint, verify_checkpoint_with_rule,
    verify_checkpoint_with_rule_cached,
};
use crate::merkle::{Hash, ProofError};
use crate::note::NoteVerifier;
use crate::reason::{HasReasonCode, ReasonCode};
use crate::report::ProofSource;
use crate::tiles::TileError;
use crate::tlog_proof::TlogProofError;
#[cfg(doc)]
use crate::trust_root::TrustSet;

/// An inclusion proof with the verified checkpoint it leads to.
#[derive(Debug, Clone)]
pub struct CachedInclusion {
    /// A checkpoint already verified against the trust set's checkpoint verifiers.
    pub checkpoint: VerifiedCheckpoint,
    /// Sibling hashes from the leaf up to the root of `checkpoint`'s tree.
    pub proof: Vec<Hash>,
    pub source: ProofSource,
}

/// The reason an [`InclusionSource`] returned no proof.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InclusionLookupError {
    /// The cache lacks the tiles or tlog-proof files listed in `paths`.
    #[error("{}", describe_missing(paths))]
    Missing { paths: Vec<String> },
    /// Cached tiles are malformed or inconsistent.
    #[error("tiles: {0}")]
    Tiles(#[from] TileError),
    /// The checkpoint failed verification.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint belongs to another log.
    #[error("checkpoint origin {found:?} is not the requested origin {expected:?}")]
    OriginMismatch { expected: String, found: String },
    /// A cached tlog-proof file is malformed.
    #[error("tlog-proof: {0}")]
    TlogProof(#[from] TlogProofError),
    /// A proof could not be computed.
    #[error("proof: {0}")]
    Proof(#[from] ProofError),
    /// The cache could not be read.
    #[error("inclusion proof store unavailable: {detail}")]
    Unavailable { detail: String },
    /// The cache recorded two different trees for the log, so it trusts no proof of it.
    #[error("{detail}")]
    SplitView { detail: String },
}

fn describe_missing(paths: &[String]) -> String {
    if paths.is_empty() {
        "no inclusion proof is available".to_owned()
    } else {
        format!(
            "inclusion proof not available, missing: {}",
            paths.join(", ")
        )
    }
}

impl HasReasonCode for InclusionLookupError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            InclusionLookupError::Missing { .. } => ReasonCode::RekorTileMissing,
            InclusionLookupError::Tiles(error) => error.reason_code(),
            InclusionLookupError::Checkpoint(error) => error.reason_code(),
            InclusionLookupError::OriginMismatch { .. } => ReasonCode::RekorCheckpointInvalid,
            InclusionLookupError::TlogProof(error) => error.reason_code(),
            InclusionLookupError::Proof(error) => error.reason_code(),
            InclusionLookupError::Unavailable { .. } => ReasonCode::AttestorUnavailable,
            InclusionLookupError::SplitView { .. } => ReasonCode::RekorCheckpointInconsistent,
        }
    }
}

/// A source of inclusion proofs, such as a tile cache.
///
/// An implementation returns a proof for leaf `index` of the log `origin` together with a
/// checkpoint of that log that it verified against the trust set. When it cannot, it returns
/// [`InclusionLookupError::Missing`] naming the tile or tlog-proof paths that would close the gap
/// (reported as `ERR_REKOR_TILE_MISSING`), or another error for invalid cached data.
///
/// A cache may hold several proofs for one leaf, such as a proof built from tiles and tlog-proof
/// files imported from different bundles. It then returns them all from
/// [`InclusionSource::inclusion_candidates`], and verification accepts the entry when any of them
/// proves it. A wrong extra candidate cannot make a wrong entry pass, because each candidate is
/// checked against a verified checkpoint, but it must not hide a correct one.
pub trait InclusionSource {
    /// Returns the inclusion proof of leaf `index` in log `origin`.
    ///
    /// # Errors
    ///
    /// See the trait documentation.
    fn inclusion(&self, origin: &str, index: u64) -> Result<CachedInclusion, InclusionLookupError>;

    /// Returns every inclusion proof of leaf `index` in log `origin` that the source holds, in
    /// the order verification should try them. The order must depend only on the source's
    /// content, so that verification reports stay identical across runs. The default returns the
    /// one proof of [`InclusionSource::inclusion`].
    ///
    /// An empty list is treated as [`InclusionLookupError::Missing`] without paths.
    ///
    /// # Errors
    ///
    /// See the trait documentation.
    fn inclusion_candidates(
        &self,
        origin: &str,
        index: u64,
    ) -> Result<Vec<CachedInclusion>, InclusionLookupError> {
        self.inclusion(origin, index).map(|found| vec![found])
    }
}

/// Uses a Sigstore bundle's own inclusion proofs and checkpoints, verifying each checkpoint with
/// the given verifiers (normally [`TrustSet::checkpoint_verifiers`]).
///
/// The proof for `index` is that of the entry whose top-level `logIndex` (Rekor v2) or
/// `inclusionProof.logIndex` (Rekor v1, local to the shard) is `index`. Checkpoints are verified
/// with [`OriginRule::RekorV1TreeId`], so a Rekor v1 shard origin such as
/// `rekor.sigstore.dev - 2605736670972794746` matches its log key. The origin must still equal
/// the requested one exactly.
pub struct BundleInclusionSource<'a> {
    bundle: &'a SigstoreBundle,
    verifiers: Vec<NoteVerifier>,
    cache: Option<&'a VerificationCache>,
}

impl<'a> BundleInclusionSource<'a> {
    /// Wraps a parsed bundle and the checkpoint verifiers.
    pub fn new(bundle: &'a SigstoreBundle, verifiers: Vec<NoteVerifier>) -> Self {
        BundleInclusionSource {
            bundle,
            verifiers,
            cache: None,
        }
    }

    /// Wraps a parsed bundle and the checkpoint verifiers, and verifies checkpoints with
    /// [`verify_checkpoint_with_rule_cached`], so checkpoint signatures that `cache` stores as
    /// verified are not checked again.
    pub fn with_cache(
        bundle: &'a SigstoreBundle,
        verifiers: Vec<NoteVerifier>,
        cache: &'a VerificationCache,
    ) -> Self {
        BundleInclusionSource {
            bundle,
            verifiers,
            cache: Some(cache),
        }
    }
}

impl InclusionSource for BundleInclusionSource<'_> {
    fn inclusion(&self, origin: &str, index: u64) -> Result<CachedInclusion, InclusionLookupError> {
        let Some(proof) = self
            .bundle
            .tlog_entries
            .iter()
            .filter_map(|entry| {
                let proof = entry.inclusion_proof.as_ref()?;
                (entry.log_index == index || proof.log_index == index).then_some(proof)
            })
            .next()
        else {
            return Err(InclusionLookupError::Missing { paths: Vec::new() });
        };
        let note = proof.checkpoint.as_bytes();
        let rule = OriginRule::RekorV1TreeId;
        let checkpoint = match self.cache {
            Some(cache) => verify_checkpoint_with_rule_cached(note, &self.verifiers, rule, cache),
            None => verify_checkpoint_with_rule(note, &self.verifiers, rule),
        }?;
        if checkpoint.checkpoint().origin != origin {
            return Err(InclusionLookupError::OriginMismatch {
                expected: origin.to_owned(),
                found: checkpoint.checkpoint().origin.clone(),
            });
        }
        Ok(CachedInclusion {
            checkpoint,
            proof: proof.hashes.clone(),
            source: ProofSource::Bundle,
        })
    }
}

/// A source without proofs, for bundles that never reach the log check.
pub(super) struct NoInclusion;

impl InclusionSource for NoInclusion {
    fn inclusion(
        &self,
        _origin: &str,
        _index: u64,
    ) -> Result<CachedInclusion, InclusionLookupError> {
        Err(InclusionLookupError::Missing { paths: Vec::new() })
    }
}
