//! Generator of the Stella demo kit: a self-contained set of real Sigstore material for the
//! air-gap promotion runbook, runnable without any Sigstore service.
//!
//! The kit contains a Rekor v2-style transparency log as C2SP tlog-tiles files, a Fulcio-like
//! code-signing CA, an RFC 3161 timestamp authority, a Sigstore trusted root for all three, two
//! Sigstore bundles (SLSA provenance in DSSE, and a plain artifact signature) and a gate policy.
//! All keys come from a seed ([`seed::Seed`]) and all times from a fixed timeline
//! ([`kit::BASE_TIME`]), so the output is reproducible byte for byte. The one exception is the
//! services' TLS certificates under `tls/` ([`service_tls`]), which are random on every run.
#![forbid(unsafe_code)]

pub mod demo_log;
pub mod kit;
pub mod pki;
pub mod seed;
pub mod service_tls;
pub mod sigstore;
pub mod tsa;
