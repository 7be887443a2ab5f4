//! X.509 certificates: signing keys, Fulcio identities and chain validation at a given time.
//!
//! Implements the parts of RFC 5280 path validation that Sigstore verification needs:
//! - a leaf chains to the last certificate of a trusted root `certChain`, the trust anchor, whose
//!   own signature is not checked;
//! - every certificate on the path and the authority's `validFor` cover the verification time;
//! - issuers are CAs allowed to sign certificates (basic constraints, key usage, path length);
//! - the leaf's extended key usage fits the purpose;
//! - no certificate carries a critical extension this module does not process.
//!
//! Signatures are ECDSA P-256 or P-384 with SHA-256, SHA-384 or SHA-512.
//!
//! The signer identity of a Fulcio certificate is its single subject alternative name (URI, email,
//! or Fulcio's username `otherName`) and the OIDC issuer. The issuer comes from extension
//! 1.3.6.1.4.1.57264.1.8 (DER UTF8String) or the legacy 1.3.6.1.4.1.57264.1.1 (raw bytes).
//!
//! Left out: RSA and Ed25519 certificate keys, name constraints and policy processing (a critical
//! extension of either kind rejects the certificate), revocation, and SCT verification.

use const_oid::ObjectIdentifier;
use der::asn1::Utf8StringRef;
use der::{Decode, Encode, Header, Reader, SliceReader};
use thiserror::Error;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::bundle::HashAlgorithm;
use crate::reason::{HasReasonCode, ReasonCode};
use crate::trust_root::{format_bound, format_time};

mod chain;

pub use chain::{verify_chain, verify_fulcio_chain, verify_with_any_authority};

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");

const EXT_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const EXT_EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const EXT_SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

const EKU_ANY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");
const EKU_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const EKU_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

/// Fulcio OIDC issuer, DER UTF8String.
pub const OID_FULCIO_ISSUER_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// Fulcio OIDC issuer, legacy form with the raw string as extension value.
pub const OID_FULCIO_ISSUER_V1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio username subject alternative name (`otherName` with a UTF8String).
pub const OID_FULCIO_USERNAME: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.7");

/// Errors from keys, certificates and chains. All map to `ERR_CERT_CHAIN_INVALID`, but callers
/// that verify content signatures report [`X509Error::SignatureInvalid`] under their own code.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum X509Error {
    /// The bytes are not a DER X.509 certificate.
    #[error("certificate is not valid DER X.509: {detail}")]
    Parse { detail: String },
    /// The public key is not a supported type or is malformed.
    #[error("public key is not supported: {detail}")]
    UnsupportedKey { detail: String },
    /// The signature algorithm is not ECDSA with SHA-2, or does not fit the issuer key.
    #[error("certificate {subject} uses unsupported signature algorithm {algorithm}")]
    UnsupportedSignatureAlgorithm { subject: String, algorithm: String },
    /// A signature does not verify.
    #[error("signature does not verify under the {key} key")]
    SignatureInvalid { key: &'static str },
    /// The authority is not valid at the verification time.
    #[error("authority {uri} is not valid at {} (validFor {} to {})", format_time(*.at), format_bound(*.start), format_bound(*.end))]
    AuthorityNotValid {
        uri: String,
        at: i64,
        start: Option<i64>,
        end: Option<i64>,
    },
    /// A certificate on the path is not valid at the verification time.
    #[error("certificate {subject} is not valid at {} (valid from {} to {})", format_time(*.at), format_time(*.not_before), format_time(*.not_after))]
    NotValidAt {
        subject: String,
        at: i64,
        not_before: i64,
        not_after: i64,
    },
    /// No certificate of the authority issued this certificate.
    #[error("no trusted certificate issued {subject} (issuer {issuer})")]
    NoIssuer { subject: String, issuer: String },
    /// The issuer's signature over a certificate does not verify.
    #[error("signature of {issuer} over certificate {subject} does not verify")]
    ChainSignatureInvalid { subject: String, issuer: String },
    /// An issuer is not a CA or may not sign certificates.
    #[error("certificate {subject} may not issue certificates: {detail}")]
    NotCa { subject: String, detail: String },
    /// The path is longer than an issuer's path length constraint.
    #[error(
        "certificate {subject} allows {allowed} intermediate CAs below it, the path has {found}"
    )]
    PathLength {
        subject: String,
        allowed: u8,
        found: usize,
    },
    /// The key usage or extended key usage does not allow the purpose.
    #[error("certificate {subject} is not valid for {purpose}: {detail}")]
    Usage {
        subject: String,
        purpose: &'static str,
        detail: String,
    },
    /// A critical extension this verifier does not process.
    #[error("certificate {subject} has unsupported critical extension {oid}")]
    CriticalExtension { subject: String, oid: String },
    /// An extension cannot be decoded.
    #[error("certificate {subject} has a malformed {extension} extension: {detail}")]
    Extension {
        subject: String,
        extension: &'static str,
        detail: String,
    },
    /// The Fulcio identity is missing or ambiguous.
    #[error("certificate {subject} has no usable signer identity: {detail}")]
    Identity { subject: String, detail: String },
    /// The trusted root lists no authority for the purpose.
    #[error("the trusted root lists no {purpose} authority")]
    NoAuthority { purpose: &'static str },
}

impl HasReasonCode for X509Error {
    fn reason_code(&self) -> ReasonCode {
        match self {
            X509Error::Parse { .. }
            | X509Error::UnsupportedKey { .. }
            | X509Error::UnsupportedSignatureAlgorithm { .. }
            | X509Error::SignatureInvalid { .. }
            | X509Error::AuthorityNotValid { .. }
            | X509Error::NotValidAt { .. }
            | X509Error::NoIssuer { .. }
            | X509Error::ChainSignatureInvalid { .. }
            | X509Error::NotCa { .. }
            | X509Error::PathLength { .. }
            | X509Error::Usage { .. }
            | X509Error::CriticalExtension { .. }
            | X509Error::Extension { .. }
            | X509Error::Identity { .. }
            | X509Error::NoAuthority { .. } => ReasonCode::CertChainInvalid,
        }
    }
}

/// An ECDSA verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo holding a P-256 or P-384 key.
    ///
    /// # Errors
    ///
    /// [`X509Error::UnsupportedKey`] for other key types or malformed keys.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, X509Error> {
        let unsupported = |detail: String| X509Error::UnsupportedKey { detail };
        let spki = spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| unsupported(format!("not a DER SubjectPublicKeyInfo: {e}")))?;
        let (algorithm, curve) = spki
            .algorithm
            .oids()
            .map_err(|e| unsupported(format!("malformed algorithm identifier: {e}")))?;
        if algorithm != ID_EC_PUBLIC_KEY {
            return Err(unsupported(format!(
                "key algorithm {algorithm} is not id-ecPublicKey"
            )));
        }
        let point = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| unsupported("key BIT STRING has unused bits".to_owned()))?;
        match curve {
            Some(curve) if curve == SECP256R1 => p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map(PublicKey::P256)
                .map_err(|_| unsupported("invalid P-256 point".to_owned())),
            Some(curve) if curve == SECP384R1 => p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map(PublicKey::P384)
                .map_err(|_| unsupported("invalid P-384 point".to_owned())),
            other => Err(unsupported(format!(
                "curve {other:?} is not P-256 or P-384"
            ))),
        }
    }

    /// Returns the Sigstore `keyDetails` name of the key's default algorithm.
    pub fn key_details(&self) -> &'static str {
        match self {
            PublicKey::P256(_) => "PKIX_ECDSA_P256_SHA_256",
            PublicKey::P384(_) => "PKIX_ECDSA_P384_SHA_384",
        }
    }

    /// Returns the hash of the key's default algorithm.
    pub fn hash_algorithm(&self) -> HashAlgorithm {
        match self {
            PublicKey::P256(_) => HashAlgorithm::Sha2_256,
            PublicKey::P384(_) => HashAlgorithm::Sha2_384,
        }
    }

    fn curve_name(&self) -> &'static str {
        match self {
            PublicKey::P256(_) => "P-256",
            PublicKey::P384(_) => "P-384",
        }
    }

    /// Verifies a DER ECDSA signature over `message`, hashed with the key's default hash.
    ///
    /// # Errors
    ///
    /// [`X509Error::SignatureInvalid`].
    pub fn verify(&self, message: &[u8], signature_der: &[u8]) -> Result<(), X509Error> {
        self.verify_with_hash(message, self.hash_algorithm(), signature_der)
    }

    /// Verifies a DER ECDSA signature over `message` hashed with `hash`.
    ///
    /// # Errors
    ///
    /// [`X509Error::SignatureInvalid`].
    pub fn verify_with_hash(
        &self,
        message: &[u8],
        hash: HashAlgorithm,
        signature_der: &[u8],
    ) -> Result<(), X509Error> {
        self.verify_prehash(&hash.digest(message), signature_der)
    }

    /// Verifies a DER ECDSA signature over an already computed digest.
    ///
    /// # Errors
    ///
    /// [`X509Error::SignatureInvalid`], also for a signature that is not DER.
    pub fn verify_prehash(&self, digest: &[u8], signature_der: &[u8]) -> Result<(), X509Error> {
        use signature::hazmat::PrehashVerifier as _;
        let invalid = X509Error::SignatureInvalid {
            key: self.curve_name(),
        };
        match self {
            PublicKey::P256(key) => {
                let signature = p256::ecdsa::DerSignature::from_bytes(signature_der)
                    .map_err(|_| invalid.clone())?;
                key.verify_prehash(digest, &signature).map_err(|_| invalid)
            }
            PublicKey::P384(key) => {
                let signature = p384::ecdsa::DerSignature::from_bytes(signature_der)
                    .map_err(|_| invalid.clone())?;
                key.verify_prehash(digest, &signature).map_err(|_| invalid)
            }
        }
    }
}

/// The use a leaf certificate is validated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Fulcio signing certificates: extended key usage codeSigning.
    CodeSigning,
    /// RFC 3161 timestamping: exactly one extended key usage, timeStamping, marked critical.
    TimeStamping,
}

impl KeyPurpose {
    fn name(self) -> &'static str {
        match self {
            KeyPurpose::CodeSigning => "code signing",
            KeyPurpose::TimeStamping => "timestamping",
        }
    }

    fn eku(self) -> ObjectIdentifier {
        match self {
            KeyPurpose::CodeSigning => EKU_CODE_SIGNING,
            KeyPurpose::TimeStamping => EKU_TIME_STAMPING,
        }
    }
}

/// The signer identity of a Fulcio certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FulcioIdentity {
    /// The subject alternative name: URI, email address or username.
    pub subject_alternative_name: String,
    /// The OIDC issuer.
    pub issuer: String,
}

/// A parsed certificate with its DER bytes.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    tbs_der: Vec<u8>,
    inner: x509_cert::Certificate,
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

impl Certificate {
    /// Parses a DER certificate.
    ///
    /// # Errors
    ///
    /// [`X509Error::Parse`].
    pub fn from_der(der: &[u8]) -> Result<Self, X509Error> {
        let parse = |e: der::Error| X509Error::Parse {
            detail: e.to_string(),
        };
        let inner = x509_cert::Certificate::from_der(der).map_err(parse)?;
        let tbs_der = tbs_bytes(der).map_err(parse)?.to_vec();
        Ok(Certificate {
            der: der.to_vec(),
            tbs_der,
            inner,
        })
    }

    /// Returns the DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Returns the subject distinguished name (RFC 4514 text) in quotes, or the serial number when
    /// the subject is empty (as in Fulcio certificates), for messages.
    pub fn subject(&self) -> String {
        let tbs = self.inner.tbs_certificate();
        if tbs.subject().is_empty() {
            format!(
                "with empty subject and serial {}",
                hex::encode(tbs.serial_number().as_bytes())
            )
        } else {
            format!("{:?}", tbs.subject().to_string())
        }
    }

    fn issuer(&self) -> String {
        format!("{:?}", self.inner.tbs_certificate().issuer().to_string())
    }

    /// Returns notBefore in Unix seconds.
    pub fn not_before(&self) -> i64 {
        unix_seconds(self.inner.tbs_certificate().validity().not_before)
    }

    /// Returns notAfter in Unix seconds.
    pub fn not_after(&self) -> i64 {
        unix_seconds(self.inner.tbs_certificate().validity().not_after)
    }

    /// Returns the SHA-2 hash of the DER certificate.
    pub fn digest(&self, hash: HashAlgorithm) -> Vec<u8> {
        hash.digest(&self.der)
    }

    /// Returns the certificate's public key.
    ///
    /// # Errors
    ///
    /// [`X509Error::UnsupportedKey`] for keys other than P-256 and P-384.
    pub fn public_key(&self) -> Result<PublicKey, X509Error> {
        let spki = self
            .inner
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| X509Error::UnsupportedKey {
                detail: e.to_string(),
            })?;
        PublicKey::from_spki_der(&spki)
    }

    /// Reports whether the certificate's serial number, DER-encoded as an INTEGER, equals
    /// `serial_der`.
    pub fn has_serial_der(&self, serial_der: &[u8]) -> bool {
        self.inner
            .tbs_certificate()
            .serial_number()
            .to_der()
            .is_ok_and(|der| der == serial_der)
    }

    /// Reports whether the issuer name, DER-encoded, equals `issuer_der`.
    pub fn has_issuer_der(&self, issuer_der: &[u8]) -> bool {
        self.inner
            .tbs_certificate()
            .issuer()
            .to_der()
            .is_ok_and(|der| der == issuer_der)
    }

    /// Returns the subject key identifier extension value, when present.
    pub fn subject_key_identifier(&self) -> Option<Vec<u8>> {
        use x509_cert::ext::pkix::SubjectKeyIdentifier;
        match self
            .inner
            .tbs_certificate()
            .get_extension::<SubjectKeyIdentifier>()
        {
            Ok(Some((_, ski))) => Some(ski.0.as_bytes().to_vec()),
            _ => None,
        }
    }

    /// Extracts the Fulcio signer identity: the only subject alternative name and the OIDC issuer.
    ///
    /// # Errors
    ///
    /// [`X509Error::Identity`] when there is no supported name, more than one, or no issuer;
    /// [`X509Error::Extension`] when an extension is malformed.
    pub fn fulcio_identity(&self) -> Result<FulcioIdentity, X509Error> {
        let subject = self.subject();
        let identity_error = |detail: &str| X509Error::Identity {
            subject: subject.clone(),
            detail: detail.to_owned(),
        };
        let tbs = self.inner.tbs_certificate();

        let san = tbs
            .get_extension::<SubjectAltName>()
            .map_err(|e| self.extension_error("subjectAltName", &e))?
            .ok_or_else(|| identity_error("no subjectAltName extension"))?
            .1;
        let mut names = Vec::new();
        for name in &san.0 {
            match name {
                GeneralName::UniformResourceIdentifier(uri) => names.push(uri.to_string()),
                GeneralName::Rfc822Name(email) => names.push(email.to_string()),
                GeneralName::OtherName(other) if other.type_id == OID_FULCIO_USERNAME => {
                    let text = Utf8StringRef::try_from(&other.value)
                        .map_err(|e| self.extension_error("subjectAltName username", &e))?;
                    names.push(text.as_str().to_owned());
                }
                _ => {}
            }
        }
        let subject_alternative_name = match names.as_slice() {
            [only] => only.clone(),
            [] => {
                return Err(identity_error(
                    "subjectAltName has no URI, email or username",
                ));
            }
            _ => {
                return Err(identity_error(
                    "subjectAltName has more than one URI, email or username",
                ));
            }
        };

        let mut issuer_v2 = None;
        let mut issuer_v1 = None;
        for extension in tbs.extensions().map(Vec::as_slice).unwrap_or_default() {
            if extension.extn_id == OID_FULCIO_ISSUER_V2 {
                let text =
                    Utf8StringRef::from_der(extension.extn_value.as_bytes()).map_err(|e| {
                        self.extension_error("Fulcio issuer (1.3.6.1.4.1.57264.1.8)", &e)
                    })?;
                issuer_v2 = Some(text.as_str().to_owned());
            } else if extension.extn_id == OID_FULCIO_ISSUER_V1 {
                let text = std::str::from_utf8(extension.extn_value.as_bytes()).map_err(|_| {
                    identity_error("Fulcio issuer (1.3.6.1.4.1.57264.1.1) is not UTF-8")
                })?;
                issuer_v1 = Some(text.to_owned());
            }
        }
        let issuer = match (issuer_v2, issuer_v1) {
            (Some(v2), Some(v1)) if v2 != v1 => {
                return Err(identity_error("the two Fulcio issuer extensions disagree"));
            }
            (Some(issuer), _) | (None, Some(issuer)) => issuer,
            (None, None) => return Err(identity_error("no Fulcio OIDC issuer extension")),
        };
        Ok(FulcioIdentity {
            subject_alternative_name,
            issuer,
        })
    }

    fn extension_error(&self, extension: &'static str, error: &der::Error) -> X509Error {
        X509Error::Extension {
            subject: self.subject(),
            extension,
            detail: error.to_string(),
        }
    }
}

/// Returns the DER TLV of `tbsCertificate`, the bytes the certificate signature covers.
fn tbs_bytes(der: &[u8]) -> Result<&[u8], der::Error> {
    let mut reader = SliceReader::new(der)?;
    let header = Header::decode(&mut reader)?;
    header.tag().assert_eq(der::Tag::Sequence)?;
    reader.tlv_bytes()
}

fn unix_seconds(time: x509_cert::time::Time) -> i64 {
    // Certificate times lie between 1950 and 9999, far inside i64 seconds.
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust_root::{CertificateAuthority, parse_trusted_root};

    const CONFORMANCE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/sigstore-conformance/bundle-verify"
    );

    pub(super) struct Fixture {
        pub(super) leaf: Certificate,
        pub(super) authorities: Vec<CertificateAuthority>,
        pub(super) tsa: CertificateAuthority,
    }

    /// Loads rekor2-happy-path's signing certificate and trusted root.
    pub(super) fn fixture() -> Option<Fixture> {
        let bundle_path = format!("{CONFORMANCE}/rekor2-happy-path/bundle.sigstore.json");
        let root_path = format!("{CONFORMANCE}/rekor2-happy-path/trusted_root.json");
        let (Ok(bundle), Ok(root)) = (std::fs::read(&bundle_path), std::fs::read(&root_path))
        else {
            eprintln!("skipping: vectors under {CONFORMANCE}/rekor2-happy-path not readable");
            return None;
        };
        let bundle = crate::bundle::parse_bundle(&bundle).expect("bundle parses");
        let root = parse_trusted_root(&root).expect("trusted root parses");
        let leaf = Certificate::from_der(bundle.certificate_der().expect("certificate"))
            .expect("leaf parses");
        let tsa = root.timestamp_authorities[0].clone();
        Some(Fixture {
            leaf,
            authorities: root.certificate_authorities,
            tsa,
        })
    }

    // 2025-06-12T12:02:20Z, the happy path's RFC 3161 genTime. The leaf is valid 12:02:16 to 12:12:16.
    pub(super) const SIGNING_TIME: i64 = 1_749_729_740;

    #[test]
    fn fulcio_identity_of_conformance_leaf() {
        let Some(fixture) = fixture() else { return };
        let identity = fixture.leaf.fulcio_identity().expect("identity");
        assert_eq!(
            identity.subject_alternative_name,
            "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
        );
        assert_eq!(
            identity.issuer,
            "https://token.actions.githubusercontent.com"
        );
        assert_eq!(
            fixture.leaf.public_key().expect("P-256 key").key_details(),
            "PKIX_ECDSA_P256_SHA_256"
        );
    }

    #[test]
    fn public_key_rejects_non_ec_spki() {
        // Ed25519 SPKI of the alpha1 log key.
        let ed25519 = crate::bundle::decode_proto_base64(
            "MCowBQYDK2VwAyEAPn+AREHoBaZ7wgS1zBqpxmLSGnyhxXj4lFxSdWVB8o8=",
        )
        .expect("base64");
        let err = PublicKey::from_spki_der(&ed25519).expect_err("not ECDSA");
        assert!(matches!(err, X509Error::UnsupportedKey { .. }), "{err:?}");
    }
}
