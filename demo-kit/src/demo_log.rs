//! The kit's transparency log: a Rekor v2-style log served as C2SP tlog-tiles files.
//!
//! The log signs checkpoints (c2sp.org/tlog-checkpoint) with one Ed25519 key whose note key name
//! is the origin, as Rekor v2 does. Key IDs follow Rekor v2: the full ID
//! `SHA-256(origin ‖ 0x0A ‖ 0x01 ‖ key)` is the trusted root's `logId.keyId` and its first four
//! bytes are the checkpoint signature hint. Only the final tree size is published: the tile
//! set contains the full tiles and the right-edge partial tiles for that size, and no older
//! checkpoints. The log has no witness cosignatures.

use std::collections::BTreeMap;

use anyhow::{Context, Result, anyhow};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use der::Encode as _;
use der::asn1::BitString;
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use stella_verify::checkpoint::Checkpoint;
use stella_verify::merkle::{self, Hash};
use stella_verify::note::NoteSigner;
use stella_verify::tiles;

/// Note signature type byte of Ed25519 (c2sp.org/signed-note).
const ED25519_KEY_TYPE: u8 = 0x01;
/// id-Ed25519 (RFC 8410).
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// A complete, signed demo log.
pub struct DemoLog {
    origin: String,
    signer: NoteSigner,
    public_key: [u8; 32],
    entries: Vec<Vec<u8>>,
    leaves: Vec<Hash>,
    root: Hash,
}

impl DemoLog {
    /// Builds the Merkle tree over `entries`, which the log stores in this order.
    pub fn new(origin: &str, key: &ed25519_dalek::SigningKey, entries: Vec<Vec<u8>>) -> Result<Self> {
        if entries.is_empty() {
            return Err(anyhow!("the demo log needs at least one entry"));
        }
        let leaves: Vec<Hash> = entries.iter().map(|entry| merkle::leaf_hash(entry)).collect();
        let root = merkle::root_from_leaves(&leaves);
        Ok(Self {
            origin: origin.to_owned(),
            signer: NoteSigner::ed25519(origin, &key.to_bytes()),
            public_key: key.verifying_key().to_bytes(),
            entries,
            leaves,
            root,
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Number of entries, which is the published tree size.
    pub fn size(&self) -> u64 {
        u64::try_from(self.entries.len()).unwrap_or(u64::MAX)
    }

    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// Returns the full 32-byte key ID, the trusted root's `logId.keyId`.
    pub fn log_id(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.origin.as_bytes());
        hasher.update([0x0A, ED25519_KEY_TYPE]);
        hasher.update(self.public_key);
        hasher.finalize().into()
    }

    /// Returns the C2SP verifier key, `<origin>+<hex key ID>+<base64(0x01 ‖ key)>`.
    pub fn vkey(&self) -> String {
        self.signer.verifier().to_vkey()
    }

    /// Returns the log key as DER SubjectPublicKeyInfo (RFC 8410).
    pub fn public_key_der(&self) -> Result<Vec<u8>> {
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned { oid: OID_ED25519, parameters: None },
            subject_public_key: BitString::from_bytes(&self.public_key)?,
        };
        spki.to_der().context("Ed25519 key encoding failed")
    }

    /// Returns the signed checkpoint note for the whole log.
    pub fn checkpoint(&self) -> Result<String> {
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size: self.size(),
            root_hash: self.root,
            extensions: Vec::new(),
        };
        let note = self
            .signer
            .sign(&checkpoint.to_text())
            .map_err(|error| anyhow!("signing the checkpoint failed: {error}"))?;
        String::from_utf8(note).context("the signed checkpoint is not UTF-8")
    }

    /// Returns the RFC 6962 audit path of entry `index` in the whole log.
    pub fn inclusion_proof(&self, index: u64) -> Result<Vec<Hash>> {
        merkle::inclusion_proof(index, &self.leaves)
            .map_err(|error| anyhow!("no inclusion proof for index {index}: {error}"))
    }

    /// Returns the tlog-tiles files, hash tiles and entry bundles, keyed by path below the log
    /// prefix (`tile/0/000`, `tile/entries/273.p/112`, ...).
    pub fn tiles(&self) -> Result<BTreeMap<String, Vec<u8>>> {
        tiles::build_tiles(&self.entries).map_err(|error| anyhow!("building tiles failed: {error}"))
    }

    /// Returns the base64 of the root hash, as the checkpoint writes it.
    pub fn root_base64(&self) -> String {
        STANDARD.encode(self.root)
    }
}
