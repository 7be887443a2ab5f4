//! Offline verification for release promotion gates.
//!
//! This crate checks C2SP signed notes and checkpoints, RFC 6962 Merkle proofs
//! (from C2SP tlog-tiles or tlog-proof files), Rekor v2 entries, DSSE envelopes,
//! Fulcio certificate chains and RFC 3161 timestamps. It performs no I/O and
//! never reads the clock: callers pass bytes, trust material and the current
//! time, and get typed results whose failures map to one closed catalog of
//! reason codes ([`reason::ReasonCode`]).
#![forbid(unsafe_code)]

pub mod reason;

pub mod merkle;
pub mod note;
pub mod checkpoint;
pub mod tiles;
pub mod tlog_proof;

pub mod trust_root;
pub mod bundle;
pub mod dsse;
pub mod x509;
pub mod timestamp;
pub mod sct;
pub mod rekor;
pub mod evidence;
pub mod report;
pub mod cache;

#[cfg(test)]
mod test_vectors;
