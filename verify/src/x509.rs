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
//! Signatures are ECDSA P-256 or P-384, or RSA PKCS#1 v1.5 with 2048- to 8192-bit keys, each with
//! SHA-256, SHA-384 or SHA-512 (see the `key` submodule).
//!
//! The signer identity of a Fulcio certificate is its single subject alternative name (URI, email,
//! or Fulcio's username `otherName`) and the OIDC issuer. The issuer comes from extension
//! 1.3.6.1.4.1.57264.1.8 (DER UTF8String) or the legacy 1.3.6.1.4.1.57264.1.1 (raw bytes).
//!
//! Left out: RSASSA-PSS and Ed25519 certificate keys, name constraints and policy processing (a
//! critical extension of either kind rejects the certificate) and revocation. Embedded SCTs are
//! verified in [`crate::sct`].

use const_oid::ObjectIdentifier;
use der::asn1::Utf8StringRef;
use der::{Decode, Encode, Header, Reader, SliceReader};
use thiserror::Error;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::bundle::HashAlgorithm;
use crate::reason::{HasReasonCode, ReasonCode};
use crate::trust_root::{format_bound, format_time};

pub(crate) mod backend;
mod chain;
mod key;
mod prepared;

pub use backend::EcdsaKey;
pub use chain::{
    VerifiedPath, verify_chain, verify_chain_path, verify_fulcio_chain, verify_fulcio_chain_path,
    verify_with_any_authority, verify_with_any_authority_path,
};
pub use key::{MAX_RSA_BITS, MIN_RSA_BITS, PublicKey, SignatureAlgorithm, rsa_pkcs1_to_spki_der};
pub use prepared::PreparedChain;

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
    /// The signature algorithm is not ECDSA or RSA PKCS#1 v1.5 with SHA-2, or its parameters are
    /// malformed.
    #[error("certificate {subject} uses unsupported signature algorithm {algorithm}")]
    UnsupportedSignatureAlgorithm { subject: String, algorithm: String },
    /// The signature algorithm needs another key type than the signer's key.
    #[error("signature algorithm {algorithm} does not fit the {key} key")]
    KeyAlgorithmMismatch {
        key: &'static str,
        algorithm: &'static str,
    },
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
            | X509Error::KeyAlgorithmMismatch { .. }
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
    spki_der: Vec<u8>,
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
        let tbs_der = tbs_bytes(der).map_err(parse)?;
        let spki_der = spki_bytes(tbs_der).map_err(parse)?.to_vec();
        Ok(Certificate {
            der: der.to_vec(),
            tbs_der: tbs_der.to_vec(),
            spki_der,
            inner,
        })
    }

    /// Returns the DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Returns the DER `tbsCertificate` exactly as it appears in the certificate.
    pub fn tbs_der(&self) -> &[u8] {
        &self.tbs_der
    }

    /// Returns the DER `subjectPublicKeyInfo` exactly as it appears in the certificate.
    pub fn subject_public_key_info_der(&self) -> &[u8] {
        &self.spki_der
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
    /// [`X509Error::UnsupportedKey`] for keys other than P-256, P-384 and RSA of a supported size.
    pub fn public_key(&self) -> Result<PublicKey, X509Error> {
        PublicKey::from_spki_der(&self.spki_der)
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

    /// Reports whether this certificate's issuer name equals the subject name of `issuer`.
    pub fn is_issued_by_name_of(&self, issuer: &Certificate) -> bool {
        self.inner.tbs_certificate().issuer() == issuer.inner.tbs_certificate().subject()
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

/// Returns the DER TLV of `subjectPublicKeyInfo` inside a DER `tbsCertificate`: the element after
/// the optional `[0]` version, the serial number, signature, issuer, validity and subject.
fn spki_bytes(tbs_der: &[u8]) -> Result<&[u8], der::Error> {
    const FIELDS_BEFORE_SPKI: usize = 5;
    let mut reader = SliceReader::new(tbs_der)?;
    let header = Header::decode(&mut reader)?;
    header.tag().assert_eq(der::Tag::Sequence)?;
    let version_tag = der::Tag::ContextSpecific {
        constructed: true,
        number: der::TagNumber(0),
    };
    if der::Tag::peek(&reader)? == version_tag {
        reader.tlv_bytes()?;
    }
    for _ in 0..FIELDS_BEFORE_SPKI {
        reader.tlv_bytes()?;
    }
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
            crate::test_vectors::skip_or_fail(&format!("vectors under {CONFORMANCE}/rekor2-happy-path not readable"));
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

    /// Loads bundle-with-sct-with-extensions's signing certificate, issued by an RSA test CA,
    /// and its trusted root.
    pub(super) fn rsa_fixture() -> Option<(Certificate, Vec<CertificateAuthority>)> {
        let case = format!("{CONFORMANCE}/bundle-with-sct-with-extensions");
        let (Ok(bundle), Ok(root)) = (
            std::fs::read(format!("{case}/bundle.sigstore.json")),
            std::fs::read(format!("{case}/trusted_root.json")),
        ) else {
            crate::test_vectors::skip_or_fail(&format!("vectors under {case} not readable"));
            return None;
        };
        let bundle = crate::bundle::parse_bundle(&bundle).expect("bundle parses");
        let root = parse_trusted_root(&root).expect("trusted root parses");
        let leaf = Certificate::from_der(bundle.certificate_der().expect("certificate"))
            .expect("leaf parses");
        Some((leaf, root.certificate_authorities))
    }

    // 2026-01-15T22:49:26Z, the RFC 3161 genTime of bundle-with-sct-with-extensions.
    pub(super) const RSA_CASE_SIGNING_TIME: i64 = 1_768_517_366;

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
    fn subject_public_key_info_is_exact_bytes() {
        let Some(fixture) = fixture() else { return };
        let spki = fixture.leaf.subject_public_key_info_der();
        let position = fixture
            .leaf
            .der()
            .windows(spki.len())
            .position(|window| window == spki);
        assert!(position.is_some(), "SPKI is a slice of the certificate");
        assert_eq!(spki.len(), 91, "P-256 SubjectPublicKeyInfo");
        assert!(fixture.leaf.der().starts_with(&[0x30]));
        assert!(
            fixture
                .leaf
                .der()
                .windows(fixture.leaf.tbs_der().len())
                .any(|window| window == fixture.leaf.tbs_der())
        );
    }

    #[test]
    fn public_key_rejects_non_ec_spki() {
        // Ed25519 SPKI of the alpha1 log key.
        let ed25519 = crate::bundle::decode_proto_base64(
            "MCowBQYDK2VwAyEAPn+AREHoBaZ7wgS1zBqpxmLSGnyhxXj4lFxSdWVB8o8=",
        )
        .expect("base64");
        let err = PublicKey::from_spki_der(&ed25519).expect_err("not ECDSA or RSA");
        assert!(matches!(err, X509Error::UnsupportedKey { .. }), "{err:?}");
    }
}
