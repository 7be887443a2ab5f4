//! Test certificate authorities for the kit, issued with the x509-cert builder (RFC 5280).
//!
//! The code-signing CA mirrors Sigstore's Fulcio: a self-signed P-384 root, a P-384 intermediate
//! limited to code signing, and short-lived P-256 leaf certificates. A leaf has an empty subject,
//! a critical URI SAN, and the OIDC issuer in extension 1.3.6.1.4.1.57264.1.8 as a DER
//! UTF8String, as Fulcio writes it. The timestamp authority has a self-signed P-384 root and a P-384 leaf whose
//! only extended key usage is id-kp-timeStamping, marked critical as RFC 3161 §2.3 requires.
//! Subject key identifiers are the leftmost 160 bits of SHA-256 over the public key bits
//! (RFC 7093 §2, method 1). Certificates carry no CRL or OCSP pointers.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Ia5String, OctetString, Utf8StringRef};
use der::{DateTime, Encode};
use sha2::{Digest, Sha256};
use spki::{EncodePublicKey, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::{Certificate, TbsCertificate};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::seed::Seed;

/// Fulcio's OIDC issuer extension (v2), a DER-encoded UTF8String.
pub const OID_FULCIO_ISSUER_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// id-kp-codeSigning (RFC 5280 §4.2.1.12).
pub const OID_KP_CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
/// id-kp-timeStamping (RFC 5280 §4.2.1.12).
pub const OID_KP_TIME_STAMPING: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

/// Organization name in every kit certificate subject.
pub const ORGANIZATION: &str = "stella-demo";
/// Common names of the four CA certificates.
pub const FULCIO_ROOT_CN: &str = "stella-demo-fulcio-root";
pub const FULCIO_INTERMEDIATE_CN: &str = "stella-demo-fulcio-intermediate";
pub const TSA_ROOT_CN: &str = "stella-demo-tsa-root";
pub const TSA_LEAF_CN: &str = "stella-demo-tsa";

/// Length of derived certificate serial numbers in bytes (RFC 5280 allows up to 20).
const SERIAL_BYTES: usize = 16;

/// A private key with the certificate issued for its public key.
pub struct Issued<K> {
    pub key: K,
    pub certificate: Certificate,
    pub der: Vec<u8>,
}

/// The kit's two certificate hierarchies, all keys derived from the seed.
pub struct DemoPki {
    pub fulcio_root: Issued<p384::ecdsa::SigningKey>,
    pub fulcio_intermediate: Issued<p384::ecdsa::SigningKey>,
    pub tsa_root: Issued<p384::ecdsa::SigningKey>,
    pub tsa_leaf: Issued<p384::ecdsa::SigningKey>,
}

/// Identity that a code-signing leaf certificate binds to its key.
pub struct SignerIdentity<'a> {
    /// Subject alternative name, a URI such as a GitHub workflow reference.
    pub san_uri: &'a str,
    /// OIDC issuer that vouched for the identity.
    pub oidc_issuer: &'a str,
}

/// Certificate kinds, each with a fixed extension set.
enum Role {
    RootCa,
    CodeSigningIntermediate,
    TimestampingLeaf,
    CodeSigningLeaf { san_uri: String, oidc_issuer: String },
}

/// Builder profile that writes exactly the extensions of one [`Role`].
struct KitProfile {
    subject: Name,
    /// Issuer name, or `None` for a self-signed certificate.
    issuer: Option<Name>,
    role: Role,
}

impl BuilderProfile for KitProfile {
    fn get_issuer(&self, subject: &Name) -> Name {
        self.issuer.clone().unwrap_or_else(|| subject.clone())
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: SubjectPublicKeyInfoRef<'_>,
        issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        let mut extensions = Vec::new();
        let key_usage = match &self.role {
            Role::RootCa | Role::CodeSigningIntermediate => {
                KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign)
            }
            Role::TimestampingLeaf | Role::CodeSigningLeaf { .. } => {
                KeyUsage(KeyUsages::DigitalSignature.into())
            }
        };
        extensions.push(extension(KeyUsage::OID, true, &key_usage)?);

        match &self.role {
            Role::RootCa => {
                let constraints = BasicConstraints { ca: true, path_len_constraint: None };
                extensions.push(extension(BasicConstraints::OID, true, &constraints)?);
            }
            Role::CodeSigningIntermediate => {
                let constraints = BasicConstraints { ca: true, path_len_constraint: Some(0) };
                extensions.push(extension(BasicConstraints::OID, true, &constraints)?);
                let usage = ExtendedKeyUsage(vec![OID_KP_CODE_SIGNING]);
                extensions.push(extension(ExtendedKeyUsage::OID, false, &usage)?);
            }
            Role::TimestampingLeaf => {
                let usage = ExtendedKeyUsage(vec![OID_KP_TIME_STAMPING]);
                extensions.push(extension(ExtendedKeyUsage::OID, true, &usage)?);
            }
            Role::CodeSigningLeaf { .. } => {
                let usage = ExtendedKeyUsage(vec![OID_KP_CODE_SIGNING]);
                extensions.push(extension(ExtendedKeyUsage::OID, false, &usage)?);
            }
        }

        let subject_key_id = SubjectKeyIdentifier(OctetString::new(key_identifier(&spk))?);
        extensions.push(extension(SubjectKeyIdentifier::OID, false, &subject_key_id)?);
        let authority_key_id = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(key_identifier(&issuer_spk))?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        extensions.push(extension(AuthorityKeyIdentifier::OID, false, &authority_key_id)?);

        if let Role::CodeSigningLeaf { san_uri, oidc_issuer } = &self.role {
            // Fulcio leaves have an empty subject, so RFC 5280 §4.2.1.6 makes the SAN critical.
            let san = SubjectAltName(vec![GeneralName::UniformResourceIdentifier(
                Ia5String::new(san_uri)?,
            )]);
            extensions.push(extension(SubjectAltName::OID, true, &san)?);
            let issuer = Utf8StringRef::new(oidc_issuer)?;
            extensions.push(extension(OID_FULCIO_ISSUER_V2, false, &issuer)?);
        }
        Ok(extensions)
    }
}

fn extension<T: Encode>(oid: ObjectIdentifier, critical: bool, value: &T) -> der::Result<Extension> {
    Ok(Extension { extn_id: oid, critical, extn_value: OctetString::new(value.to_der()?)? })
}

/// Returns SHA-256 of the subjectPublicKey bits, truncated to 160 bits (RFC 7093 §2, method 1).
fn key_identifier(spki: &SubjectPublicKeyInfoRef<'_>) -> Vec<u8> {
    let digest = Sha256::digest(spki.subject_public_key.raw_bytes());
    digest[..20].to_vec()
}

/// Converts Unix seconds to an X.509 time (UTCTime before 2050, GeneralizedTime after).
pub fn x509_time(unix_seconds: i64) -> Result<Time> {
    let seconds = u64::try_from(unix_seconds)
        .with_context(|| format!("time {unix_seconds} is before 1970"))?;
    let date_time = DateTime::from_unix_duration(Duration::from_secs(seconds))
        .with_context(|| format!("time {unix_seconds} is out of range for X.509"))?;
    Ok(Time::from(date_time))
}

fn kit_name(common_name: &str) -> Result<Name> {
    Name::from_str(&format!("CN={common_name},O={ORGANIZATION}"))
        .with_context(|| format!("invalid certificate name for {common_name}"))
}

fn serial_number(seed: &Seed, label: &str) -> Result<SerialNumber> {
    SerialNumber::new(&seed.positive_integer(&format!("{label}/serial"), SERIAL_BYTES))
        .with_context(|| format!("invalid serial number for {label}"))
}

/// Issues one certificate for `subject_key` signed by `issuer_key` (P-384, ecdsa-with-SHA384).
fn issue(
    profile: KitProfile,
    serial: SerialNumber,
    not_before: i64,
    not_after: i64,
    subject_key: SubjectPublicKeyInfoOwned,
    issuer_key: &p384::ecdsa::SigningKey,
) -> Result<(Certificate, Vec<u8>)> {
    let validity = Validity::new(x509_time(not_before)?, x509_time(not_after)?);
    let builder = CertificateBuilder::new(profile, serial, validity, subject_key)
        .map_err(|error| anyhow::anyhow!("invalid certificate template: {error}"))?;
    let certificate = builder
        .build::<_, p384::ecdsa::DerSignature>(issuer_key)
        .map_err(|error| anyhow::anyhow!("certificate signing failed: {error}"))?;
    let der = certificate.to_der().context("certificate encoding failed")?;
    Ok((certificate, der))
}

fn p384_spki(key: &p384::ecdsa::SigningKey) -> Result<SubjectPublicKeyInfoOwned> {
    let der = key.verifying_key().to_public_key_der().context("P-384 key encoding failed")?;
    SubjectPublicKeyInfoOwned::try_from(der.as_bytes()).context("P-384 key decoding failed")
}

fn p256_spki(key: &p256::ecdsa::SigningKey) -> Result<SubjectPublicKeyInfoOwned> {
    let der = key.verifying_key().to_public_key_der().context("P-256 key encoding failed")?;
    SubjectPublicKeyInfoOwned::try_from(der.as_bytes()).context("P-256 key decoding failed")
}

/// Issues a self-signed root or a CA-signed certificate for a P-384 key.
fn issue_p384(
    seed: &Seed,
    label: &str,
    common_name: &str,
    role: Role,
    issuer: Option<&Issued<p384::ecdsa::SigningKey>>,
    (not_before, not_after): (i64, i64),
) -> Result<Issued<p384::ecdsa::SigningKey>> {
    let key = seed.p384_key(label)?;
    let profile = KitProfile {
        subject: kit_name(common_name)?,
        issuer: issuer.map(|parent| parent.certificate.tbs_certificate().subject().clone()),
        role,
    };
    let signer = issuer.map_or(&key, |parent| &parent.key);
    let (certificate, der) = issue(
        profile,
        serial_number(seed, label)?,
        not_before,
        not_after,
        p384_spki(&key)?,
        signer,
    )
    .with_context(|| format!("issuing the {common_name} certificate"))?;
    Ok(Issued { key, certificate, der })
}

/// Builds both hierarchies, every certificate valid from `not_before` to `not_after`.
pub fn build_pki(seed: &Seed, not_before: i64, not_after: i64) -> Result<DemoPki> {
    let window = (not_before, not_after);
    let fulcio_root =
        issue_p384(seed, "fulcio-root", FULCIO_ROOT_CN, Role::RootCa, None, window)?;
    let fulcio_intermediate = issue_p384(
        seed,
        "fulcio-intermediate",
        FULCIO_INTERMEDIATE_CN,
        Role::CodeSigningIntermediate,
        Some(&fulcio_root),
        window,
    )?;
    let tsa_root = issue_p384(seed, "tsa-root", TSA_ROOT_CN, Role::RootCa, None, window)?;
    let tsa_leaf = issue_p384(
        seed,
        "tsa-leaf",
        TSA_LEAF_CN,
        Role::TimestampingLeaf,
        Some(&tsa_root),
        window,
    )?;
    Ok(DemoPki { fulcio_root, fulcio_intermediate, tsa_root, tsa_leaf })
}

/// Issues a short-lived P-256 code-signing certificate from the Fulcio intermediate.
pub fn issue_code_signing(
    seed: &Seed,
    label: &str,
    intermediate: &Issued<p384::ecdsa::SigningKey>,
    identity: &SignerIdentity<'_>,
    (not_before, not_after): (i64, i64),
) -> Result<Issued<p256::ecdsa::SigningKey>> {
    let key = seed.p256_key(label)?;
    let profile = KitProfile {
        subject: Name::default(),
        issuer: Some(intermediate.certificate.tbs_certificate().subject().clone()),
        role: Role::CodeSigningLeaf {
            san_uri: identity.san_uri.to_owned(),
            oidc_issuer: identity.oidc_issuer.to_owned(),
        },
    };
    let (certificate, der) = issue(
        profile,
        serial_number(seed, label)?,
        not_before,
        not_after,
        p256_spki(&key)?,
        &intermediate.key,
    )
    .with_context(|| format!("issuing the code-signing certificate {label}"))?;
    Ok(Issued { key, certificate, der })
}
