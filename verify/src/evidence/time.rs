//! Observer times (RFC 3161 timestamps and Rekor v1 integrated times) and the certificate checks
//! made at those times.

use std::collections::BTreeSet;

use super::{EvidenceError, Run, SigningKey};
use crate::bundle::SigstoreBundle;
use crate::rekor::entry_format;
use crate::sct::verify_embedded_scts;
use crate::timestamp::verify_timestamp_with;
use crate::trust_root::TrustSet;
use crate::x509::{KeyPurpose, verify_fulcio_chain_path};

impl Run<'_> {
    /// Verifies the bundle's RFC 3161 timestamps and adds `integrated_time`, the time a verified
    /// Rekor v1 signed entry timestamp vouches for. Returns the distinct verified times, in
    /// ascending order.
    ///
    /// Timestamps are checked only when the trusted root lists timestamp authorities, as the
    /// sigstore-go conformance client does: without an authority nothing could verify them, and
    /// the bundle then needs another observer time.
    pub(super) fn verify_observer_times(
        &mut self,
        bundle: &SigstoreBundle,
        trust: &TrustSet,
        integrated_time: Option<i64>,
    ) -> Vec<i64> {
        let authorities = &trust.trusted_root.timestamp_authorities;
        let mut times = BTreeSet::new();
        let mut all_valid = true;
        if !authorities.is_empty() {
            // A DSSE envelope without signature has nothing to timestamp. The empty input then
            // fails the imprint check, and the envelope check reports the missing signature.
            let signature = bundle.content.signature_bytes().unwrap_or_default();
            for (index, response) in bundle.rfc3161_timestamps.iter().enumerate() {
                match verify_timestamp_with(response, signature, authorities, self.cache) {
                    Ok(verified) => {
                        times.insert(verified.gen_time);
                    }
                    Err(source) => {
                        all_valid = false;
                        self.fail(EvidenceError::Timestamp { index, source });
                    }
                }
            }
        }
        if let Some(time) = integrated_time {
            times.insert(time);
        }

        if times.is_empty() && all_valid && !promised_time_lost(bundle, integrated_time) {
            self.fail(EvidenceError::TimestampMissing);
        }
        self.report.times_verified = all_valid && !times.is_empty();
        self.report.signing_time = times.first().copied();
        times.into_iter().collect()
    }

    /// Validates a Fulcio certificate's chain at each observer time, then its embedded SCTs. A
    /// managed or expected key has no certificate and nothing to check here.
    ///
    /// NOTE: SCTs are required only when the trusted root lists CT logs. A root without CT logs
    /// (a private Fulcio without CT) could verify none, and the sigstore-go conformance client
    /// would reject every certificate then. Such roots skip the SCT check.
    pub(super) fn verify_certificate(
        &mut self,
        signing_key: &SigningKey,
        trust: &TrustSet,
        times: &[i64],
    ) {
        let Some(certificate) = &signing_key.certificate else {
            return;
        };
        if times.is_empty() {
            // Without a trusted time the chain cannot be checked, and the time failure is reported.
            return;
        }
        let authorities = &trust.trusted_root.certificate_authorities;
        let mut issuer = None;
        let mut all_valid = true;
        for &at in times {
            let validated = match self.cache {
                Some(cache) => cache.validate_path_any_authority(
                    certificate,
                    authorities,
                    at,
                    KeyPurpose::CodeSigning,
                ),
                None => verify_fulcio_chain_path(certificate, authorities, at),
            };
            match validated {
                Ok(path) => {
                    issuer.get_or_insert(path.issuer);
                }
                Err(source) => {
                    all_valid = false;
                    self.fail(EvidenceError::CertChain { at, source });
                }
            }
        }
        let ctlogs = &trust.trusted_root.ctlogs;
        if let Some(issuer) = issuer.filter(|_| all_valid && !ctlogs.is_empty())
            && let Err(error) = verify_embedded_scts(certificate, &issuer, ctlogs)
        {
            all_valid = false;
            self.fail(EvidenceError::Sct(error));
        }
        self.report.chain_verified = all_valid;
    }
}

/// Reports whether the bundle's Rekor v1 entry has a signed entry timestamp whose integrated time
/// was not established. That happens only after a recorded failure (signature, entry or
/// timestamp), which then explains the missing observer time.
fn promised_time_lost(bundle: &SigstoreBundle, integrated_time: Option<i64>) -> bool {
    integrated_time.is_none()
        && bundle.tlog_entries.iter().any(|entry| {
            entry.inclusion_promise.is_some()
                && entry_format(entry).is_ok_and(|format| format.is_rekor_v1())
        })
}
