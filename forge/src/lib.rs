//! A log forge for tests and benchmarks: it builds a C2SP tlog-tiles log
//! (<https://c2sp.org/tlog-tiles>) of any number of deterministic entries,
//! signs its checkpoint (<https://c2sp.org/tlog-checkpoint>) with a real
//! Ed25519 or ECDSA P-256 note key, and writes hash tiles and entry bundles
//! to a [`TileSink`] as each tile fills.
//!
//! Memory stays bounded by one partial tile per level and one entry bundle,
//! so a log of 10 million entries needs no more than a few megabytes beyond
//! what the sink keeps. Formats come from [`stella_verify`]: leaf and node
//! hashes from `merkle`, tile paths and entry bundles from `tiles`, signed
//! notes from `note`, checkpoint text from `checkpoint`.
//!
//! [`PeriodicTree`] is a tile source for trees too large to store: its leaves
//! repeat with a power-of-two period, so every tile of a tree of 2^40 leaves
//! can be computed on demand.
//!
//! [`ForgeWitness`] adds a witness cosignature
//! (<https://c2sp.org/tlog-cosignature>) to a forged checkpoint.
//!
//! Left out: gzip-encoded entry bundles, and logs that grow after the first
//! checkpoint.

#![forbid(unsafe_code)]

mod error;
mod forge;
mod key;
mod sink;
mod synthetic;
mod tree;
mod witness;

pub use error::ForgeError;
pub use forge::{ENTRY_SIZE, ForgeConfig, ForgedLog, Seed, forge_log, tlog_proof};
pub use key::{ForgeKey, KeyAlgorithm};
pub use sink::{DirSink, MemoryTiles, TileSink};
pub use synthetic::PeriodicTree;
pub use tree::TileBuilder;
pub use witness::ForgeWitness;
