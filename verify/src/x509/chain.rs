//! Certification path validation for [`super::Certificate`] at a given time (RFC 5280 section 6,
//! the subset described in the parent module).

use const_oid::ObjectIdentifier;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

use super::{
    Certificate, PreparedChain, EKU_ANY, EKU_CODE_SIGNING, EKU_TIME_STAMPING, EXT_BASIC_CONSTRAINTS,
    EXT_EXTENDED_KEY_USAGE, EXT_KEY_USAGE, EXT_SUBJECT_ALT_NAME, KeyPurpose, SignatureAlgorithm,
    X509Error,
};
use crate::cache::{VerificationCache, chain_key};
use crate::trust_root::CertificateAuthority;

/// A certification path that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPath {
    /// Index of the accepting authority in the list passed to the validating function (0 for
    /// [`verify_chain_path`]).
    pub authority_index: usize,
    /// The certificate whose key signed the leaf. A leaf that is itself the trust anchor is its
    /// own issuer.
    pub issuer: Certificate,
    /// The path from the leaf (first) to the trust anchor (last).
    pub path: Vec<Certificate>,
}

/// Validates `leaf` at time `at` (Unix seconds) against one authority of the trusted root.
///
/// The path runs from `leaf` through certificates of `authority.cert_chain` to its last
/// certificate, the trust anchor. The leaf may itself be a member of the chain (a TSA chain
/// starts with the TSA's own certificate).
///
/// # Errors
///
/// As [`verify_chain_path`].
pub fn verify_chain(
    leaf: &Certificate,
    authority: &CertificateAuthority,
    at: i64,
    purpose: KeyPurpose,
) -> Result<(), X509Error> {
    verify_chain_path(leaf, authority, at, purpose).map(|_| ())
}

/// Validates `leaf` like [`verify_chain`] and returns the validated path.
///
/// # Errors
///
/// [`X509Error::AuthorityNotValid`], [`X509Error::NoIssuer`], [`X509Error::ChainSignatureInvalid`],
/// [`X509Error::UnsupportedSignatureAlgorithm`], [`X509Error::KeyAlgorithmMismatch`],
/// [`X509Error::NotValidAt`], [`X509Error::NotCa`], [`X509Error::PathLength`],
/// [`X509Error::Usage`], [`X509Error::CriticalExtension`] and parse errors.
pub fn verify_chain_path(
    leaf: &Certificate,
    authority: &CertificateAuthority,
    at: i64,
    purpose: KeyPurpose,
) -> Result<VerifiedPath, X509Error> {
    check_authority_valid_at(authority, at)?;
    // Parsed once when the trusted root was loaded, when the authority was prepared then.
    let parsed;
    let (pool, prepared) = match authority.prepared.certificates_for(&authority.cert_chain) {
        Some(certificates) => (certificates, Some(&authority.prepared)),
        None => {
            parsed = authority
                .cert_chain
                .iter()
                .map(|der| Certificate::from_der(der))
                .collect::<Result<Vec<_>, _>>()?;
            (parsed.as_slice(), None)
        }
    };
    let Some(anchor) = pool.last() else {
        return Err(X509Error::NoIssuer {
            subject: leaf.subject(),
            issuer: leaf.issuer(),
        });
    };

    let path = build_path(leaf, pool, anchor, prepared)?;
    for cert in &path {
        cert.check_valid_at(at)?;
        cert.check_critical_extensions()?;
    }
    leaf.check_leaf_role(purpose)?;
    for (position, issuer) in path.iter().enumerate().skip(1) {
        // Intermediate CAs between this issuer and the leaf.
        let below = position.saturating_sub(1);
        issuer.check_issuer_role(below, purpose)?;
    }
    let issuer = path.get(1).copied().unwrap_or(leaf).clone();
    Ok(VerifiedPath {
        authority_index: 0,
        issuer,
        path: path.into_iter().cloned().collect(),
    })
}

/// Validates a Fulcio signing certificate at time `at` against every certificate authority of the
/// trusted root, returning the index of the first that accepts it.
///
/// # Errors
///
/// [`X509Error::NoAuthority`] when the list is empty. Otherwise the error of the authority that
/// issued the leaf, or [`X509Error::NoIssuer`] when none did.
pub fn verify_fulcio_chain(
    leaf: &Certificate,
    authorities: &[CertificateAuthority],
    at: i64,
) -> Result<usize, X509Error> {
    verify_fulcio_chain_path(leaf, authorities, at).map(|verified| verified.authority_index)
}

/// Validates a Fulcio signing certificate like [`verify_fulcio_chain`] and returns the validated
/// path, whose issuer is the certificate that embedded SCTs name (see [`crate::sct`]).
///
/// # Errors
///
/// As [`verify_fulcio_chain`].
pub fn verify_fulcio_chain_path(
    leaf: &Certificate,
    authorities: &[CertificateAuthority],
    at: i64,
) -> Result<VerifiedPath, X509Error> {
    verify_with_any_authority_path(leaf, authorities, at, KeyPurpose::CodeSigning)
}

/// Validates `leaf` against each authority in turn, like [`verify_fulcio_chain`] for any purpose.
///
/// # Errors
///
/// As [`verify_fulcio_chain`].
pub fn verify_with_any_authority(
    leaf: &Certificate,
    authorities: &[CertificateAuthority],
    at: i64,
    purpose: KeyPurpose,
) -> Result<usize, X509Error> {
    verify_with_any_authority_path(leaf, authorities, at, purpose)
        .map(|verified| verified.authority_index)
}

/// Validates `leaf` like [`verify_with_any_authority`] and returns the validated path.
///
/// # Errors
///
/// As [`verify_fulcio_chain`].
pub fn verify_with_any_authority_path(
    leaf: &Certificate,
    authorities: &[CertificateAuthority],
    at: i64,
    purpose: KeyPurpose,
) -> Result<VerifiedPath, X509Error> {
    with_any_authority(leaf, authorities, purpose, |authority| {
        verify_chain_path(leaf, authority, at, purpose)
    })
}

/// Runs `validate` on each authority in turn and returns the first validated path, with its
/// authority's index. On failure, returns the error of an authority that issued the leaf, as
/// [`verify_with_any_authority_path`] documents.
fn with_any_authority(
    leaf: &Certificate,
    authorities: &[CertificateAuthority],
    purpose: KeyPurpose,
    validate: impl Fn(&CertificateAuthority) -> Result<VerifiedPath, X509Error>,
) -> Result<VerifiedPath, X509Error> {
    let mut most_relevant = None;
    for (index, authority) in authorities.iter().enumerate() {
        match validate(authority) {
            Ok(verified) => {
                return Ok(VerifiedPath {
                    authority_index: index,
                    ..verified
                });
            }
            // An authority that did not issue the leaf explains less than one that did.
            Err(X509Error::NoIssuer { .. }) => {}
            Err(error) => {
                most_relevant.get_or_insert(error);
            }
        }
    }
    Err(most_relevant.unwrap_or_else(|| {
        if authorities.is_empty() {
            X509Error::NoAuthority {
                purpose: purpose.name(),
            }
        } else {
            X509Error::NoIssuer {
                subject: leaf.subject(),
                issuer: leaf.issuer(),
            }
        }
    }))
}

/// Checks that `at` lies in the authority's `validFor` window, both ends included.
fn check_authority_valid_at(authority: &CertificateAuthority, at: i64) -> Result<(), X509Error> {
    if authority.valid_for.contains(at) {
        return Ok(());
    }
    Err(X509Error::AuthorityNotValid {
        uri: authority.uri.clone(),
        at,
        start: authority.valid_for.start,
        end: authority.valid_for.end,
    })
}

/// Cached path validation. A stored path passed every check of [`verify_chain_path`] at some
/// time, and only the time checks depend on the time. A hit runs those again at `at`, in the
/// order of [`verify_chain_path`]: the authority's window, then each certificate of the path from
/// the leaf up. So a hit returns the same path or the same error as a fresh validation. The other
/// checks (signatures, critical extensions, roles) passed for this exact input and do not read the
/// time.
impl VerificationCache {
    /// Validates `leaf` like [`verify_chain_path`], reusing a path this cache stores for the same
    /// leaf, authority and purpose. A newly validated path is stored.
    ///
    /// # Errors
    ///
    /// As [`verify_chain_path`].
    pub fn validate_path(
        &self,
        leaf: &Certificate,
        authority: &CertificateAuthority,
        at: i64,
        purpose: KeyPurpose,
    ) -> Result<VerifiedPath, X509Error> {
        let key = chain_key(authority, purpose, leaf.der());
        if let Some(stored) = self.chain(&key) {
            check_authority_valid_at(authority, at)?;
            for cert in &stored.path {
                cert.check_valid_at(at)?;
            }
            return Ok(VerifiedPath::clone(&stored));
        }
        let verified = verify_chain_path(leaf, authority, at, purpose)?;
        self.insert_chain(key, &verified);
        Ok(verified)
    }

    /// Validates `leaf` like [`verify_with_any_authority_path`], with [`Self::validate_path`]
    /// for each authority.
    ///
    /// # Errors
    ///
    /// As [`verify_with_any_authority_path`].
    pub fn validate_path_any_authority(
        &self,
        leaf: &Certificate,
        authorities: &[CertificateAuthority],
        at: i64,
        purpose: KeyPurpose,
    ) -> Result<VerifiedPath, X509Error> {
        with_any_authority(leaf, authorities, purpose, |authority| {
            self.validate_path(leaf, authority, at, purpose)
        })
    }
}

/// Walks from `leaf` to `anchor` through issuers in `pool`, checking each signature on the way.
/// A link between two certificates of the pool that `prepared` recorded as verified is taken
/// without checking its signature again.
fn build_path<'a>(
    leaf: &'a Certificate,
    pool: &'a [Certificate],
    anchor: &'a Certificate,
    prepared: Option<&PreparedChain>,
) -> Result<Vec<&'a Certificate>, X509Error> {
    let mut path = vec![leaf];
    let mut current = leaf;
    while current != anchor {
        // Each step adds a distinct pool certificate, so the loop ends within pool.len() steps.
        // A leaf equal to a pool certificate (a TSA chain starts with the TSA's certificate)
        // counts as that certificate.
        let current_index = pool.iter().position(|member| member == current);
        let candidates: Vec<(usize, &Certificate)> = pool
            .iter()
            .enumerate()
            .filter(|(_, candidate)| !path.contains(candidate))
            .filter(|(_, candidate)| {
                candidate.inner.tbs_certificate().subject()
                    == current.inner.tbs_certificate().issuer()
            })
            .collect();
        let mut last_error = None;
        let mut issuer = None;
        for (candidate_index, candidate) in candidates {
            let verified_before = match (prepared, current_index) {
                (Some(prepared), Some(subject)) => prepared.link_verified(subject, candidate_index),
                _ => false,
            };
            if verified_before {
                issuer = Some(candidate);
                break;
            }
            match current.verify_issued_by(candidate) {
                Ok(()) => {
                    issuer = Some(candidate);
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        let Some(issuer) = issuer else {
            return Err(last_error.unwrap_or_else(|| X509Error::NoIssuer {
                subject: current.subject(),
                issuer: current.issuer(),
            }));
        };
        path.push(issuer);
        current = issuer;
    }
    Ok(path)
}

impl Certificate {
    /// Verifies this certificate's signature with `issuer`'s key.
    pub(super) fn verify_issued_by(&self, issuer: &Certificate) -> Result<(), X509Error> {
        let identifier = self.inner.signature_algorithm();
        let unsupported = |algorithm: String| X509Error::UnsupportedSignatureAlgorithm {
            subject: self.subject(),
            algorithm,
        };
        let algorithm = SignatureAlgorithm::from_oid(identifier.oid)
            .ok_or_else(|| unsupported(identifier.oid.to_string()))?;
        if !algorithm.accepts_parameters(identifier.parameters.as_ref().map(Into::into)) {
            return Err(unsupported(format!(
                "{} with unexpected parameters",
                algorithm.name()
            )));
        }
        if *self.inner.tbs_certificate().signature() != *identifier {
            return Err(unsupported(
                "tbsCertificate.signature differs from signatureAlgorithm".to_owned(),
            ));
        }
        let signature =
            self.inner
                .signature()
                .as_bytes()
                .ok_or_else(|| X509Error::ChainSignatureInvalid {
                    subject: self.subject(),
                    issuer: issuer.subject(),
                })?;
        issuer
            .public_key()?
            .verify_with_algorithm(&self.tbs_der, algorithm, signature)
            .map_err(|error| match error {
                X509Error::SignatureInvalid { .. } => X509Error::ChainSignatureInvalid {
                    subject: self.subject(),
                    issuer: issuer.subject(),
                },
                other => other,
            })
    }

    fn check_valid_at(&self, at: i64) -> Result<(), X509Error> {
        let (not_before, not_after) = (self.not_before(), self.not_after());
        if at < not_before || at > not_after {
            return Err(X509Error::NotValidAt {
                subject: self.subject(),
                at,
                not_before,
                not_after,
            });
        }
        Ok(())
    }

    fn check_critical_extensions(&self) -> Result<(), X509Error> {
        const PROCESSED: [ObjectIdentifier; 4] = [
            EXT_BASIC_CONSTRAINTS,
            EXT_KEY_USAGE,
            EXT_EXTENDED_KEY_USAGE,
            EXT_SUBJECT_ALT_NAME,
        ];
        for extension in self
            .inner
            .tbs_certificate()
            .extensions()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if extension.critical && !PROCESSED.contains(&extension.extn_id) {
                return Err(X509Error::CriticalExtension {
                    subject: self.subject(),
                    oid: extension.extn_id.to_string(),
                });
            }
        }
        Ok(())
    }

    fn basic_constraints(&self) -> Result<Option<BasicConstraints>, X509Error> {
        self.inner
            .tbs_certificate()
            .get_extension::<BasicConstraints>()
            .map(|found| found.map(|(_, constraints)| constraints))
            .map_err(|e| self.extension_error("basicConstraints", &e))
    }

    fn key_usage(&self) -> Result<Option<KeyUsage>, X509Error> {
        self.inner
            .tbs_certificate()
            .get_extension::<KeyUsage>()
            .map(|found| found.map(|(_, usage)| usage))
            .map_err(|e| self.extension_error("keyUsage", &e))
    }

    fn extended_key_usage(&self) -> Result<Option<(bool, ExtendedKeyUsage)>, X509Error> {
        self.inner
            .tbs_certificate()
            .get_extension::<ExtendedKeyUsage>()
            .map_err(|e| self.extension_error("extKeyUsage", &e))
    }

    /// Checks that this certificate may issue certificates with `below` intermediate CAs under it.
    fn check_issuer_role(&self, below: usize, purpose: KeyPurpose) -> Result<(), X509Error> {
        let not_ca = |detail: &str| X509Error::NotCa {
            subject: self.subject(),
            detail: detail.to_owned(),
        };
        let constraints = self
            .basic_constraints()?
            .ok_or_else(|| not_ca("no basicConstraints extension"))?;
        if !constraints.ca {
            return Err(not_ca("basicConstraints cA is false"));
        }
        if let Some(allowed) = constraints.path_len_constraint
            && below > usize::from(allowed)
        {
            return Err(X509Error::PathLength {
                subject: self.subject(),
                allowed,
                found: below,
            });
        }
        if let Some(usage) = self.key_usage()?
            && !usage.key_cert_sign()
        {
            return Err(not_ca("keyUsage lacks keyCertSign"));
        }
        // As Go's crypto/x509 does, an issuer that restricts extended key usage must allow the purpose.
        if let Some((_, usages)) = self.extended_key_usage()?
            && !usages
                .0
                .iter()
                .any(|oid| *oid == purpose.eku() || *oid == EKU_ANY)
        {
            return Err(X509Error::Usage {
                subject: self.subject(),
                purpose: purpose.name(),
                detail: "issuer's extKeyUsage excludes the purpose".to_owned(),
            });
        }
        Ok(())
    }

    fn check_leaf_role(&self, purpose: KeyPurpose) -> Result<(), X509Error> {
        let usage_error = |detail: &str| X509Error::Usage {
            subject: self.subject(),
            purpose: purpose.name(),
            detail: detail.to_owned(),
        };
        if let Some(usage) = self.key_usage()?
            && !usage.digital_signature()
        {
            return Err(usage_error("keyUsage lacks digitalSignature"));
        }
        let (critical, usages) = self
            .extended_key_usage()?
            .ok_or_else(|| usage_error("no extKeyUsage extension"))?;
        match purpose {
            KeyPurpose::CodeSigning => {
                if self
                    .basic_constraints()?
                    .is_some_and(|constraints| constraints.ca)
                {
                    return Err(usage_error("a CA certificate cannot sign artifacts"));
                }
                if !usages.0.contains(&EKU_CODE_SIGNING) {
                    return Err(usage_error("extKeyUsage lacks codeSigning"));
                }
            }
            KeyPurpose::TimeStamping => {
                // RFC 3161 section 2.3: exactly one extended key usage, timeStamping, critical.
                if usages.0.as_slice() != [EKU_TIME_STAMPING] {
                    return Err(usage_error("extKeyUsage must be timeStamping alone"));
                }
                if !critical {
                    return Err(usage_error(
                        "extKeyUsage timeStamping is not marked critical",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::{HasReasonCode, ReasonCode};
    use crate::trust_root::TimeRange;
    use crate::x509::tests::{RSA_CASE_SIGNING_TIME, SIGNING_TIME, fixture, rsa_fixture};

    #[test]
    fn fulcio_chain_valid_at_signing_time() {
        let Some(fixture) = fixture() else { return };
        assert_eq!(
            verify_fulcio_chain(&fixture.leaf, &fixture.authorities, SIGNING_TIME),
            Ok(0)
        );
        // Both ends of the leaf's validity are included.
        assert!(
            verify_fulcio_chain(
                &fixture.leaf,
                &fixture.authorities,
                fixture.leaf.not_before()
            )
            .is_ok()
        );
        assert!(
            verify_fulcio_chain(
                &fixture.leaf,
                &fixture.authorities,
                fixture.leaf.not_after()
            )
            .is_ok()
        );
    }

    #[test]
    fn fulcio_chain_path_names_issuer() {
        let Some(fixture) = fixture() else { return };
        let verified = verify_fulcio_chain_path(&fixture.leaf, &fixture.authorities, SIGNING_TIME)
            .expect("valid chain");
        let chain = &fixture.authorities[0].cert_chain;
        assert_eq!(verified.authority_index, 0);
        assert_eq!(
            verified.issuer.der(),
            chain[0].as_slice(),
            "intermediate CA"
        );
        let path: Vec<&[u8]> = verified.path.iter().map(Certificate::der).collect();
        assert_eq!(
            path,
            [fixture.leaf.der(), chain[0].as_slice(), chain[1].as_slice()]
        );
    }

    #[test]
    fn rsa_fulcio_chain_verifies() {
        let Some((leaf, authorities)) = rsa_fixture() else {
            return;
        };
        let verified = verify_fulcio_chain_path(&leaf, &authorities, RSA_CASE_SIGNING_TIME)
            .expect("RSA chain verifies");
        assert_eq!(
            verified.issuer.der(),
            authorities[0].cert_chain[0].as_slice()
        );
        assert_eq!(verified.path.len(), 2, "leaf and self-signed root");

        // Flip a byte of the leaf's P-256 key, inside the RSA-signed tbsCertificate.
        let mut der = leaf.der().to_vec();
        let position = der
            .windows(4)
            .position(|w| w == [0x03, 0x42, 0x00, 0x04])
            .expect("EC point")
            + 10;
        der[position] ^= 0x01;
        let tampered = Certificate::from_der(&der).expect("still DER");
        let err = verify_fulcio_chain(&tampered, &authorities, RSA_CASE_SIGNING_TIME)
            .expect_err("bad RSA signature");
        assert!(
            matches!(err, X509Error::ChainSignatureInvalid { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn chain_rejects_algorithm_not_fitting_key() {
        let Some((leaf, authorities)) = rsa_fixture() else {
            return;
        };
        // Relabel the leaf's sha256WithRSAEncryption as ecdsa-with-SHA256 in both places. The
        // RSA issuer key cannot verify an ECDSA signature.
        let rsa_sha256 = [
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
            0x00,
        ];
        let ecdsa_sha256 = [
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
        ];

        let der = leaf.der();
        let mut relabelled = Vec::with_capacity(der.len());
        let mut rest = der;
        while let Some(position) = rest.windows(rsa_sha256.len()).position(|w| w == rsa_sha256) {
            relabelled.extend_from_slice(&rest[..position]);
            relabelled.extend_from_slice(&ecdsa_sha256);
            rest = &rest[position + rsa_sha256.len()..];
        }
        relabelled.extend_from_slice(rest);

        // Each replacement is 3 bytes shorter: fix the outer and TBS lengths (two-byte forms).
        let shrink = |bytes: &mut [u8], at: usize, by: u16| {
            let length = u16::from_be_bytes([bytes[at], bytes[at + 1]]) - by;
            bytes[at..at + 2].copy_from_slice(&length.to_be_bytes());
        };
        assert_eq!(relabelled[1], 0x82, "certificate uses a two-byte length");
        shrink(&mut relabelled, 2, 6);
        assert_eq!(relabelled[5], 0x82, "tbsCertificate uses a two-byte length");
        shrink(&mut relabelled, 6, 3);

        let relabelled = Certificate::from_der(&relabelled).expect("relabelled DER");
        let err = verify_fulcio_chain(&relabelled, &authorities, RSA_CASE_SIGNING_TIME)
            .expect_err("algorithm does not fit the RSA key");
        assert_eq!(
            err,
            X509Error::KeyAlgorithmMismatch {
                key: "RSA",
                algorithm: "ECDSA with SHA-256"
            }
        );
    }

    #[test]
    fn fulcio_chain_rejects_expired_leaf() {
        let Some(fixture) = fixture() else { return };
        let at = fixture.leaf.not_after() + 1;
        let err =
            verify_fulcio_chain(&fixture.leaf, &fixture.authorities, at).expect_err("leaf expired");
        assert!(
            matches!(err, X509Error::NotValidAt { at: a, .. } if a == at),
            "{err:?}"
        );
        assert_eq!(err.reason_code(), ReasonCode::CertChainInvalid);
    }

    #[test]
    fn fulcio_chain_rejects_authority_window() {
        let Some(mut fixture) = fixture() else { return };
        fixture.authorities[0].valid_for = TimeRange {
            start: None,
            end: Some(SIGNING_TIME - 1),
        };
        let err = verify_fulcio_chain(&fixture.leaf, &fixture.authorities, SIGNING_TIME)
            .expect_err("CA retired");
        assert!(
            matches!(err, X509Error::AuthorityNotValid { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn fulcio_chain_rejects_foreign_authority() {
        let Some(fixture) = fixture() else { return };
        // The TSA chain did not issue the Fulcio leaf.
        let err = verify_fulcio_chain(
            &fixture.leaf,
            std::slice::from_ref(&fixture.tsa),
            SIGNING_TIME,
        )
        .expect_err("wrong CA");
        assert!(matches!(err, X509Error::NoIssuer { .. }), "{err:?}");
        assert_eq!(
            verify_fulcio_chain(&fixture.leaf, &[], SIGNING_TIME),
            Err(X509Error::NoAuthority {
                purpose: "code signing"
            })
        );
    }

    #[test]
    fn chain_rejects_wrong_purpose() {
        let Some(fixture) = fixture() else { return };
        let err = verify_chain(
            &fixture.leaf,
            &fixture.authorities[0],
            SIGNING_TIME,
            KeyPurpose::TimeStamping,
        )
        .expect_err("Fulcio leaf is no TSA");
        assert!(
            matches!(
                err,
                X509Error::Usage {
                    purpose: "timestamping",
                    ..
                }
            ),
            "{err:?}"
        );

        let tsa_leaf = Certificate::from_der(&fixture.tsa.cert_chain[0]).expect("TSA leaf parses");
        assert_eq!(
            verify_chain(
                &tsa_leaf,
                &fixture.tsa,
                SIGNING_TIME,
                KeyPurpose::TimeStamping
            ),
            Ok(())
        );
        let err = verify_chain(
            &tsa_leaf,
            &fixture.tsa,
            SIGNING_TIME,
            KeyPurpose::CodeSigning,
        )
        .expect_err("TSA leaf cannot sign code");
        assert!(
            matches!(
                err,
                X509Error::Usage {
                    purpose: "code signing",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    /// Validates at `at` with and without the cache and checks that both give the same result.
    fn validate_both_ways(
        cache: &VerificationCache,
        leaf: &Certificate,
        authorities: &[CertificateAuthority],
        at: i64,
    ) -> Result<VerifiedPath, X509Error> {
        let uncached =
            verify_with_any_authority_path(leaf, authorities, at, KeyPurpose::CodeSigning);
        let cached =
            cache.validate_path_any_authority(leaf, authorities, at, KeyPurpose::CodeSigning);
        assert_eq!(cached, uncached, "at {at}");
        cached
    }

    #[test]
    fn cached_path_rechecks_time() {
        let Some(fixture) = fixture() else { return };
        let cache = VerificationCache::default();
        let (leaf, authorities) = (&fixture.leaf, fixture.authorities.as_slice());

        assert!(validate_both_ways(&cache, leaf, authorities, SIGNING_TIME).is_ok());
        assert_eq!(cache.stats().chains.misses, 1, "cold cache");
        assert_eq!(cache.stats().chains.len, 1, "the validated path is stored");

        // Both ends of the leaf's validity are included, on a warm cache too.
        let warm_times = [SIGNING_TIME, leaf.not_before(), leaf.not_after()];
        for at in warm_times {
            assert!(validate_both_ways(&cache, leaf, authorities, at).is_ok());
        }
        let err = validate_both_ways(&cache, leaf, authorities, leaf.not_after() + 1)
            .expect_err("leaf expired");
        assert!(matches!(err, X509Error::NotValidAt { .. }), "{err:?}");
        let err = validate_both_ways(&cache, leaf, authorities, leaf.not_before() - 1)
            .expect_err("leaf not yet valid");
        assert!(matches!(err, X509Error::NotValidAt { .. }), "{err:?}");
        assert_eq!(cache.stats().chains.hits, 5, "each warm lookup is a hit");
        assert_eq!(cache.stats().chains.misses, 1, "failures are not stored");
    }

    #[test]
    fn cached_path_keyed_by_authority_window() {
        let Some(fixture) = fixture() else { return };
        let cache = VerificationCache::default();
        assert!(
            validate_both_ways(&cache, &fixture.leaf, &fixture.authorities, SIGNING_TIME).is_ok()
        );

        // The authority retired before the signing time: another key, and the same error as
        // without the cache.
        let mut retired = fixture.authorities.clone();
        retired[0].valid_for = TimeRange {
            start: None,
            end: Some(SIGNING_TIME - 1),
        };
        let err = validate_both_ways(&cache, &fixture.leaf, &retired, SIGNING_TIME)
            .expect_err("CA retired");
        assert!(
            matches!(err, X509Error::AuthorityNotValid { .. }),
            "{err:?}"
        );
        assert_eq!(cache.stats().chains.hits, 0);

        // The stored path is for the original window, whose own check still applies on a hit.
        let start = fixture.authorities[0].valid_for.start;
        if let Some(start) = start {
            let err = validate_both_ways(&cache, &fixture.leaf, &fixture.authorities, start - 1)
                .expect_err("before the authority's window");
            assert!(
                matches!(err, X509Error::AuthorityNotValid { .. }),
                "{err:?}"
            );
            assert_eq!(cache.stats().chains.hits, 1);
        }
    }

    #[test]
    fn cached_path_keyed_by_purpose() {
        let Some(fixture) = fixture() else { return };
        let cache = VerificationCache::default();
        let tsa_leaf = Certificate::from_der(&fixture.tsa.cert_chain[0]).expect("TSA leaf parses");
        let as_tsa = cache.validate_path(
            &tsa_leaf,
            &fixture.tsa,
            SIGNING_TIME,
            KeyPurpose::TimeStamping,
        );
        assert!(as_tsa.is_ok(), "{as_tsa:?}");
        // The path stored for timestamping does not make the TSA leaf a code signer.
        let as_signer = cache.validate_path(
            &tsa_leaf,
            &fixture.tsa,
            SIGNING_TIME,
            KeyPurpose::CodeSigning,
        );
        assert_eq!(
            as_signer,
            verify_chain_path(
                &tsa_leaf,
                &fixture.tsa,
                SIGNING_TIME,
                KeyPurpose::CodeSigning
            )
        );
        assert!(as_signer.is_err());
        assert_eq!(cache.stats().chains.hits, 0);
    }

    #[test]
    fn chain_rejects_tampered_leaf() {
        let Some(fixture) = fixture() else { return };
        let mut der = fixture.leaf.der().to_vec();
        // Flip a byte of the subject public key, inside tbsCertificate.
        let position = der
            .windows(4)
            .position(|w| w == [0x03, 0x42, 0x00, 0x04])
            .expect("EC point")
            + 10;
        der[position] ^= 0x01;
        let tampered = Certificate::from_der(&der).expect("still DER");
        let err = verify_fulcio_chain(&tampered, &fixture.authorities, SIGNING_TIME)
            .expect_err("bad signature");
        assert!(
            matches!(err, X509Error::ChainSignatureInvalid { .. }),
            "{err:?}"
        );
    }
}
