//! Offline bundle formats, version 1: how trust roots, Rekor tiles and proofs, and evidence
//! travel into an air-gapped site.
//!
//! Each bundle is a gzip-compressed ustar archive whose first regular file is `manifest.json`,
//! followed by the files it lists with their SHA-256 digests and sizes. The manifest's `format`
//! names one of three kinds:
//!
//! - trust root set, `stella.trust-root-set/v1` ([`open_trust_set`], [`pack_trust_set`]);
//! - Rekor tile/proof bundle, `stella.rekor-tiles/v1` ([`open_tiles`], [`pack_tiles`]);
//! - portable evidence bundle, `stella.evidence/v1` ([`open_evidence`], [`pack_evidence`]).
//!
//! `docs/formats.md` specifies the layouts. Readers never extract to disk. The `open_*` readers
//! work in memory; [`read_tiles_streaming`] reads a tile bundle from any `BufRead` and keeps at
//! most one file's content in memory at a time.
//! They reject unsafe paths, links, devices, duplicates, unlisted or missing files, and input
//! over [`Limits`], and stop decompressing at the limit. Writers are deterministic: the same
//! input gives the same archive bytes.
//!
//! Opening checks integrity and structure, and parses the content with `stella_verify`. It
//! verifies no signature, proof or expiry time; the importer does that against its trust set
//! and clock.
#![forbid(unsafe_code)]

mod archive;
mod caps;
mod error;
mod evidence;
mod header;
mod limits;
mod listing;
mod manifest;
mod path;
mod reader;
mod tiles;
mod tiles_stream;
mod trust_set;

pub use archive::{read_archive, write_archive};
pub use caps::{
    CHECKPOINT_MAX_BYTES, ENTRY_BUNDLE_MAX_BYTES, HASH_TILE_MAX_BYTES, KMS_PEM_MAX_BYTES,
    NOTE_KEYS_MAX_BYTES, SIGSTORE_BUNDLE_MAX_BYTES, TLOG_PROOF_MAX_BYTES, TRUSTED_ROOT_MAX_BYTES,
    UNKNOWN_PATH_MAX_BYTES,
};
pub use error::{BundleError, Measure, NEW_ARCHIVE};
pub use evidence::{EvidenceBundle, EvidenceInput, open_evidence, pack_evidence};
pub use limits::{
    DEFAULT_MAX_ARCHIVE_BYTES, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_TOTAL_BYTES, Limits,
};
pub use manifest::{
    BundleKind, DIGEST_PREFIX, FORMAT_EVIDENCE, FORMAT_REKOR_TILES, FORMAT_TRUST_ROOT_SET,
    FileEntry, LogRef, MANIFEST_PATH, MAX_SAFE_INTEGER, Manifest, ManifestFields, Subject,
    bundle_digest, format_time, parse_time, sha256_hex,
};
pub use path::{MAX_PATH_BYTES, decode_origin, encode_origin};
pub use reader::{Flow, read_archive_streaming};
pub use tiles::{
    LogTiles, LogTilesInput, TilesBundle, TilesInput, TlogProofFile, open_tiles, pack_tiles,
};
pub use tiles_stream::{TilesHeader, TilesItem, read_tiles_streaming};
pub use trust_set::{
    NOTE_KEYS_PATH, TRUSTED_ROOT_PATH, TrustSetBundle, TrustSetInput, open_trust_set,
    pack_trust_set,
};
