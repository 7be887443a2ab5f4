//! RFC 3161 timestamps, as carried in Sigstore bundles.
//!
//! A bundle's `signedTimestamp` is a DER `TimeStampResp` (RFC 3161 section 2.4.2): a
//! `PKIStatusInfo`, then the token, a CMS `SignedData` (RFC 5652) whose content is a `TSTInfo`.
//! [`verify_timestamp`] checks, in order:
//!
//! 1. status granted (0) or granted with modifications (1);
//! 2. the content type is `id-ct-TSTInfo`, and the message imprint is the hash of the bundle's
//!    signature bytes;
//! 3. exactly one signer, whose signed attributes carry content type `id-ct-TSTInfo` and a
//!    `messageDigest` equal to the hash of the `TSTInfo` bytes;
//! 4. the signer's certificate (embedded in the token, or from a trusted TSA `certChain`) signs the
//!    DER `SET OF` signed attributes, and matches the `signingCertificateV2` hash when present;
//! 5. that certificate chains to a timestamp authority of the trusted root at `genTime`, the
//!    authority's `validFor` contains `genTime`, and the leaf has the timeStamping key usage.
//!
//! The token is decoded strictly: malformed DER anywhere in the `SignedData` (including the
//! `digestAlgorithms`, the embedded `certificates`, each of which must be an X.509 certificate,
//! and the `crls`) is rejected, and `digestAlgorithms` must list the signer's digest algorithm.
//!
//! Embedded certificates other than the signer's are never trusted: the path uses the trusted
//! root's chain only.
//!
//! Left out: nonces (the verifier made no request), TSA policy OIDs, `accuracy` (the time is used
//! to the second), the legacy SHA-1 `signingCertificate` attribute, and RSASSA-PSS-signed tokens.

use thiserror::Error;

use crate::bundle::HashAlgorithm;
use crate::cache::VerificationCache;
use crate::reason::{HasReasonCode, ReasonCode};
use crate::trust_root::{CertificateAuthority, format_time};
use crate::x509::{Certificate, KeyPurpose, X509Error, verify_chain};

mod cms;

use cms::{hash_oid, parse_response, parse_signer_info, parse_tst_info};

/// Errors from RFC 3161 timestamp verification. All map to `ERR_TIMESTAMP_INVALID`.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TimestampError {
    /// The DER structure is malformed.
    #[error("timestamp response is malformed DER in {structure}: {detail}")]
    Der {
        structure: &'static str,
        detail: String,
    },
    /// The TSA did not grant the request.
    #[error(
        "timestamp response status is {status}, expected 0 (granted) or 1 (granted with modifications)"
    )]
    Status { status: u32 },
    /// The response carries no token.
    #[error("timestamp response carries no token")]
    MissingToken,
    /// A content type differs from the one RFC 3161 requires.
    #[error("timestamp {structure} content type is {found}, expected {expected}")]
    ContentType {
        structure: &'static str,
        found: String,
        expected: String,
    },
    /// The signer's signature algorithm is not ECDSA or RSA PKCS#1 v1.5 with SHA-2.
    #[error(
        "timestamp signature algorithm {oid} is not supported (only ECDSA or RSA PKCS#1 v1.5 with SHA-256, SHA-384 or SHA-512)"
    )]
    UnsupportedSignatureAlgorithm { oid: String },
    /// A hash algorithm is not SHA-256, SHA-384 or SHA-512.
    #[error("timestamp {structure} uses unsupported hash algorithm {oid}")]
    UnsupportedHash {
        structure: &'static str,
        oid: String,
    },
    /// The message imprint is not the hash of the bundle's signature.
    #[error(
        "timestamp message imprint {found} is not the {algorithm} of the bundle signature ({expected})"
    )]
    ImprintMismatch {
        algorithm: &'static str,
        found: String,
        expected: String,
    },
    /// `genTime` is not a valid GeneralizedTime.
    #[error("timestamp genTime {value:?} is not a valid GeneralizedTime")]
    GenTime { value: String },
    /// RFC 3161 tokens have exactly one signer.
    #[error("timestamp token has {count} signers, expected exactly 1")]
    SignerCount { count: usize },
    /// A required signed attribute is missing or malformed.
    #[error("timestamp signed attribute {attribute} is missing or malformed")]
    SignedAttribute { attribute: &'static str },
    /// The `messageDigest` attribute does not match the `TSTInfo` bytes.
    #[error("timestamp messageDigest attribute does not match the TSTInfo")]
    MessageDigestMismatch,
    /// No embedded or trusted certificate matches the signer identifier.
    #[error("no certificate in the token or the trusted root matches the timestamp signer")]
    SignerNotFound,
    /// The signature over the signed attributes does not verify.
    #[error("timestamp signature by certificate {subject} does not verify: {source}")]
    SignatureInvalid { subject: String, source: X509Error },
    /// The `signingCertificateV2` attribute names another certificate.
    #[error("timestamp signingCertificateV2 hash does not match signer certificate {subject}")]
    SigningCertificateMismatch { subject: String },
    /// The signer does not chain to a trusted timestamp authority at `genTime`.
    #[error("timestamp signer does not chain to timestamp authority {uri} at genTime {}: {source}", format_time(*.gen_time))]
    Chain {
        uri: String,
        gen_time: i64,
        source: X509Error,
    },
    /// The trusted root lists no timestamp authority.
    #[error("the trusted root lists no timestamp authority")]
    NoAuthority,
    /// `SignedData.digestAlgorithms` does not list the signer's digest algorithm.
    #[error(
        "timestamp SignedData.digestAlgorithms [{}] does not list the signer's digest algorithm {algorithm}", .listed.join(", ")
    )]
    DigestAlgorithmNotListed {
        algorithm: &'static str,
        listed: Vec<String>,
    },
    /// An embedded certificate is not a valid DER X.509 certificate.
    #[error("timestamp SignedData.certificates[{index}]: {source}")]
    EmbeddedCertificate { index: usize, source: X509Error },
}

impl HasReasonCode for TimestampError {
    fn reason_code(&self) -> ReasonCode {
        match self {
            TimestampError::Der { .. }
            | TimestampError::Status { .. }
            | TimestampError::MissingToken
            | TimestampError::ContentType { .. }
            | TimestampError::UnsupportedSignatureAlgorithm { .. }
            | TimestampError::UnsupportedHash { .. }
            | TimestampError::ImprintMismatch { .. }
            | TimestampError::GenTime { .. }
            | TimestampError::SignerCount { .. }
            | TimestampError::SignedAttribute { .. }
            | TimestampError::MessageDigestMismatch
            | TimestampError::SignerNotFound
            | TimestampError::SignatureInvalid { .. }
            | TimestampError::SigningCertificateMismatch { .. }
            | TimestampError::Chain { .. }
            | TimestampError::NoAuthority
            | TimestampError::DigestAlgorithmNotListed { .. }
            | TimestampError::EmbeddedCertificate { .. } => ReasonCode::TimestampInvalid,
        }
    }
}

/// A timestamp that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    /// `genTime` in Unix seconds (fractions dropped).
    pub gen_time: i64,
    /// Index of the accepting authority in the trusted root's `timestampAuthorities`.
    pub authority_index: usize,
    /// URI of the accepting authority.
    pub authority_uri: String,
    /// TSA policy OID, dotted.
    pub policy: String,
}

/// Verifies a DER `TimeStampResp` over `signature` (the bundle's signature bytes) against the
/// trusted timestamp authorities.
///
/// # Errors
///
/// A [`TimestampError`] for the first failed check (see the module docs). When several
/// authorities are listed, the error comes from the one whose certificate signed the token.
pub fn verify_timestamp(
    response_der: &[u8],
    signature: &[u8],
    authorities: &[CertificateAuthority],
) -> Result<VerifiedTimestamp, TimestampError> {
    verify_timestamp_with(response_der, signature, authorities, None)
}

/// Verifies a timestamp like [`verify_timestamp`], reusing the TSA signer's certification path
/// when `cache` stores it for the same certificate and authority. The time checks still run at
/// `genTime`, and a newly validated path is stored.
///
/// # Errors
///
/// As [`verify_timestamp`].
pub fn verify_timestamp_cached(
    response_der: &[u8],
    signature: &[u8],
    authorities: &[CertificateAuthority],
    cache: &VerificationCache,
) -> Result<VerifiedTimestamp, TimestampError> {
    verify_timestamp_with(response_der, signature, authorities, Some(cache))
}

pub(crate) fn verify_timestamp_with(
    response_der: &[u8],
    signature: &[u8],
    authorities: &[CertificateAuthority],
    cache: Option<&VerificationCache>,
) -> Result<VerifiedTimestamp, TimestampError> {
    let token = parse_response(response_der)?;
    let tst_info = parse_tst_info(token.tst_info_der)?;

    let expected = tst_info.imprint_algorithm.digest(signature);
    if tst_info.imprint != expected {
        return Err(TimestampError::ImprintMismatch {
            algorithm: hash_name(tst_info.imprint_algorithm),
            found: hex::encode(&tst_info.imprint),
            expected: hex::encode(&expected),
        });
    }

    let signer = match token.signer_infos.as_slice() {
        [only] => parse_signer_info(only)?,
        other => return Err(TimestampError::SignerCount { count: other.len() }),
    };
    if !token
        .digest_algorithms
        .contains(&hash_oid(signer.digest_algorithm))
    {
        return Err(TimestampError::DigestAlgorithmNotListed {
            algorithm: hash_name(signer.digest_algorithm),
            listed: token
                .digest_algorithms
                .iter()
                .map(ToString::to_string)
                .collect(),
        });
    }
    signer.check_attributes(token.tst_info_der)?;

    if authorities.is_empty() {
        return Err(TimestampError::NoAuthority);
    }
    let embedded = token.certificates;

    let mut most_relevant = None;
    for (index, authority) in authorities.iter().enumerate() {
        let trusted = authority
            .cert_chain
            .iter()
            .filter_map(|der| Certificate::from_der(der).ok())
            .collect::<Vec<_>>();
        // A token that embeds certificates must embed its signer's, and that copy is the one
        // checked, so a damaged embedded certificate cannot be passed over for the trusted one.
        let candidates = if embedded.is_empty() {
            &trusted
        } else {
            &embedded
        };
        let Some(signer_cert) = candidates.iter().find(|cert| signer.identifies(cert)) else {
            continue;
        };
        // The chain goes first so that a token from an untrusted TSA reports the missing trust,
        // whatever algorithm it is signed with.
        let at = tst_info.gen_time;
        let chain = match cache {
            Some(cache) => cache
                .validate_path(signer_cert, authority, at, KeyPurpose::TimeStamping)
                .map(|_| ()),
            None => verify_chain(signer_cert, authority, at, KeyPurpose::TimeStamping),
        };
        let outcome = chain
            .map_err(|source| TimestampError::Chain {
                uri: authority.uri.clone(),
                gen_time: tst_info.gen_time,
                source,
            })
            .and_then(|()| signer.verify_signature(signer_cert));
        match outcome {
            Ok(()) => {
                return Ok(VerifiedTimestamp {
                    gen_time: tst_info.gen_time,
                    authority_index: index,
                    authority_uri: authority.uri.clone(),
                    policy: tst_info.policy.to_string(),
                });
            }
            Err(error) => {
                // An authority whose chain did not issue the signer explains less than one that did.
                let replace = match &most_relevant {
                    None => true,
                    Some(kept) => is_no_issuer(kept) && !is_no_issuer(&error),
                };
                if replace {
                    most_relevant = Some(error);
                }
            }
        }
    }
    Err(most_relevant.unwrap_or(TimestampError::SignerNotFound))
}

fn is_no_issuer(error: &TimestampError) -> bool {
    matches!(
        error,
        TimestampError::Chain {
            source: X509Error::NoIssuer { .. },
            ..
        }
    )
}

fn hash_name(algorithm: HashAlgorithm) -> &'static str {
    match algorithm {
        HashAlgorithm::Sha2_256 => "SHA-256",
        HashAlgorithm::Sha2_384 => "SHA-384",
        HashAlgorithm::Sha2_512 => "SHA-512",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust_root::{TimeRange, parse_trusted_root};

    const CONFORMANCE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/sigstore-conformance/bundle-verify"
    );
    // 2025-06-12T12:02:20Z.
    const HAPPY_GEN_TIME: i64 = 1_749_729_740;

    struct Case {
        response: Vec<u8>,
        signature: Vec<u8>,
        authorities: Vec<CertificateAuthority>,
    }

    fn load(case: &str) -> Option<Case> {
        let bundle_path = format!("{CONFORMANCE}/{case}/bundle.sigstore.json");
        let root_path = format!("{CONFORMANCE}/{case}/trusted_root.json");
        let (Ok(bundle), Ok(root)) = (std::fs::read(&bundle_path), std::fs::read(&root_path))
        else {
            crate::test_vectors::skip_or_fail(&format!(
                "vectors under {CONFORMANCE}/{case} not readable"
            ));
            return None;
        };
        let bundle = crate::bundle::parse_bundle(&bundle).expect("bundle parses");
        let root = parse_trusted_root(&root).expect("trusted root parses");
        Some(Case {
            response: bundle
                .rfc3161_timestamps
                .first()
                .cloned()
                .unwrap_or_default(),
            signature: bundle
                .content
                .signature_bytes()
                .expect("signature")
                .to_vec(),
            authorities: root.timestamp_authorities,
        })
    }

    #[test]
    fn happy_path_timestamp_verifies() {
        let Some(case) = load("rekor2-happy-path") else {
            return;
        };
        let verified = verify_timestamp(&case.response, &case.signature, &case.authorities)
            .expect("valid timestamp");
        assert_eq!(verified.gen_time, HAPPY_GEN_TIME);
        assert_eq!(verified.policy, "1.3.6.1.4.1.57264.2");
        assert_eq!(
            verified.authority_uri,
            "https://timestamp.sigstage.dev/api/v1/timestamp"
        );
    }

    #[test]
    fn timestamp_without_embedded_cert_verifies() {
        let Some(case) = load("rekor2-timestamp-without-embedded-cert") else {
            return;
        };
        assert!(verify_timestamp(&case.response, &case.signature, &case.authorities).is_ok());
    }

    #[test]
    fn timestamp_rejects_conformance_failures() {
        type Row = (&'static str, fn(&TimestampError) -> bool);
        let rows: [Row; 5] = [
            ("rekor2-timestamp-payload-mismatch_fail", |e| {
                matches!(e, TimestampError::ImprintMismatch { .. })
            }),
            (
                "rekor2-timestamp-outside-trust-root-tsa-validity_fail",
                |e| {
                    matches!(
                        e,
                        TimestampError::Chain {
                            source: X509Error::AuthorityNotValid { .. },
                            ..
                        }
                    )
                },
            ),
            ("rekor2-timestamp-outside-tsa-cert-validity_fail", |e| {
                matches!(
                    e,
                    TimestampError::Chain {
                        source: X509Error::NotValidAt { .. },
                        ..
                    }
                )
            }),
            (
                "rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail",
                |e| {
                    matches!(
                        e,
                        TimestampError::Chain {
                            source: X509Error::NoIssuer { .. },
                            ..
                        }
                    )
                },
            ),
            (
                "rekor2-timestamp-untrusted-tsa-without-embedded-cert_fail",
                |e| matches!(e, TimestampError::SignerNotFound),
            ),
        ];
        for (case_name, check) in rows {
            let Some(case) = load(case_name) else { return };
            let err = verify_timestamp(&case.response, &case.signature, &case.authorities)
                .expect_err(case_name);
            assert!(check(&err), "row {case_name}: unexpected error {err:?}");
            assert_eq!(
                err.reason_code(),
                ReasonCode::TimestampInvalid,
                "row {case_name}"
            );
        }
    }

    #[test]
    fn timestamp_authority_end_is_inclusive() {
        let Some(mut case) = load("rekor2-happy-path") else {
            return;
        };
        case.authorities[0].valid_for = TimeRange {
            start: None,
            end: Some(HAPPY_GEN_TIME),
        };
        assert!(verify_timestamp(&case.response, &case.signature, &case.authorities).is_ok());
        case.authorities[0].valid_for = TimeRange {
            start: None,
            end: Some(HAPPY_GEN_TIME - 1),
        };
        let err = verify_timestamp(&case.response, &case.signature, &case.authorities)
            .expect_err("TSA retired");
        assert!(
            matches!(
                err,
                TimestampError::Chain {
                    source: X509Error::AuthorityNotValid { .. },
                    ..
                }
            ),
            "{err:?}"
        );
    }

    fn rsa_authority() -> CertificateAuthority {
        CertificateAuthority {
            common_name: Some("Stella test RSA TSA".to_owned()),
            organization: Some("Stella test".to_owned()),
            uri: "https://tsa.example/rsa".to_owned(),
            cert_chain: vec![
                include_bytes!("timestamp/testdata/rsa-tsa.der").to_vec(),
                include_bytes!("timestamp/testdata/rsa-root.der").to_vec(),
            ],
            valid_for: TimeRange::default(),
            operator: None,
            prepared: Default::default(),
        }
    }

    #[test]
    fn rsa_signed_timestamp_verifies() {
        const RESPONSE: &[u8] = include_bytes!("timestamp/testdata/rsa-response.tsr");
        const SIGNATURE: &[u8] = include_bytes!("timestamp/testdata/rsa-signature.bin");
        // 2026-12-04T21:19:10Z.
        const GEN_TIME: i64 = 1_796_419_150;
        let authorities = [rsa_authority()];
        let verified = verify_timestamp(RESPONSE, SIGNATURE, &authorities).expect("RSA token");
        assert_eq!(verified.gen_time, GEN_TIME);
        assert_eq!(verified.authority_uri, "https://tsa.example/rsa");

        // The last byte of the response is the end of the RSA signature.
        let mut tampered = RESPONSE.to_vec();
        let last = tampered.len() - 1;
        tampered[last] ^= 0x01;
        let err = verify_timestamp(&tampered, SIGNATURE, &authorities).expect_err("tampered");
        assert!(
            matches!(
                &err,
                TimestampError::SignatureInvalid {
                    source: X509Error::SignatureInvalid { key: "RSA" },
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn timestamp_rejects_tampered_bytes() {
        let Some(case) = load("rekor2-happy-path") else {
            return;
        };
        // Flip one byte inside the TSTInfo's serial number: the messageDigest no longer matches.
        let mut response = case.response.clone();
        let serial = hex::decode("559742c71edae5b645233a7ac43a8d033142a5ac").expect("hex");
        let position = response
            .windows(serial.len())
            .position(|w| w == serial.as_slice())
            .expect("serial present");
        response[position] ^= 0x01;
        assert_eq!(
            verify_timestamp(&response, &case.signature, &case.authorities),
            Err(TimestampError::MessageDigestMismatch)
        );

        let truncated = &case.response[..case.response.len() - 1];
        let err =
            verify_timestamp(truncated, &case.signature, &case.authorities).expect_err("truncated");
        assert!(matches!(err, TimestampError::Der { .. }), "{err:?}");
        assert_eq!(
            verify_timestamp(&case.response, &case.signature, &[]),
            Err(TimestampError::NoAuthority)
        );
    }

    fn is_der(error: &TimestampError) -> bool {
        matches!(
            error,
            TimestampError::Der {
                structure: "SignedData.digestAlgorithms",
                ..
            }
        )
    }

    fn is_embedded_certificate(error: &TimestampError) -> bool {
        matches!(error, TimestampError::EmbeddedCertificate { index: 0, .. })
    }

    fn is_signer_not_found(error: &TimestampError) -> bool {
        matches!(error, TimestampError::SignerNotFound)
    }

    /// Single-byte flips (offset into the `TimeStampResp`) outside the signed bytes of the
    /// `rekor2-happy-path` and `rekor2-timestamp-with-embedded-cert` tokens, which share this
    /// layout up to the signer info, with the error each must raise.
    type ErrorCheck = fn(&TimestampError) -> bool;

    const UNSIGNED_FLIPS: [(&str, usize, ErrorCheck); 8] = [
        ("digestAlgorithms item tag", 37, is_der),
        ("digestAlgorithms OID tag", 39, is_der),
        // The signer info names its certificate by issuer and serial, so a changed issuer
        // leaves the token without its signer's certificate.
        ("certificate issuer O text", 315, is_signer_not_found),
        ("certificate issuer CN OID", 330, is_signer_not_found),
        ("certificate issuer CN length", 333, is_embedded_certificate),
        (
            "certificate key BIT STRING length",
            458,
            is_embedded_certificate,
        ),
        ("certificate extension length", 652, is_embedded_certificate),
        (
            "certificate extension OCTET STRING length",
            678,
            is_embedded_certificate,
        ),
    ];

    #[test]
    fn timestamp_rejects_unsigned_byte_flips() {
        for case_name in ["rekor2-happy-path", "rekor2-timestamp-with-embedded-cert"] {
            let Some(case) = load(case_name) else {
                return;
            };
            for (name, offset, expected) in UNSIGNED_FLIPS {
                let mut response = case.response.clone();
                response[offset] ^= 0x01;
                let error = verify_timestamp(&response, &case.signature, &case.authorities)
                    .expect_err(&format!("{case_name} row {name} verified"));
                assert!(expected(&error), "{case_name} row {name}: {error:?}");
                assert_eq!(
                    error.reason_code(),
                    ReasonCode::TimestampInvalid,
                    "{case_name} row {name}"
                );
            }
        }
    }

    #[test]
    fn timestamp_requires_listed_digest_algorithm() {
        let Some(case) = load("rekor2-happy-path") else {
            return;
        };
        // Replace the SHA-256 OID in digestAlgorithms with SHA-384 (last content byte 01 -> 02).
        let mut response = case.response.clone();
        assert_eq!(response[49], 0x01, "digestAlgorithms OID layout");
        response[49] = 0x02;
        assert_eq!(
            verify_timestamp(&response, &case.signature, &case.authorities),
            Err(TimestampError::DigestAlgorithmNotListed {
                algorithm: "SHA-256",
                listed: vec!["2.16.840.1.101.3.4.2.2".to_owned()],
            })
        );
    }
}
