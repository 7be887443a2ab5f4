//! RFC 3161 time-stamp responses from the kit's timestamp authority.
//!
//! A response is a DER `TimeStampResp` with status granted and a CMS `SignedData` token
//! (RFC 5652) over a `TSTInfo` (RFC 3161 §2.4.2). It has the shape of the responses of Sigstore's
//! timestamp authority: SignedData version 3, one SignerInfo identified by issuer and serial
//! number, and SHA-256 digests. The signed attributes are contentType, messageDigest and
//! signingCertificateV2 (RFC 5035). The token embeds the TSA certificate, and the P-384 TSA key
//! signs with ECDSA over SHA-256. The token has no CRLs, no unsigned attributes and no
//! TSTInfo extensions.

use anyhow::{Context, Result};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, GeneralizedTime, Null, OctetString, SetOfVec, Uint};
use der::{DateTime, Encode, EncodeValue, Sequence, Tagged, ValueOrd};
use p384::ecdsa::signature::hazmat::PrehashSigner;
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use crate::pki::Issued;

/// Sigstore's timestamp policy, which the kit's TSA reuses.
pub const OID_SIGSTORE_TSA_POLICY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.2");
const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_CT_TST_INFO: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const OID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const OID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// Input of one timestamp: the stamped message and the token's identifiers.
pub struct TimestampRequest<'a> {
    /// Bytes whose SHA-256 becomes the message imprint (Sigstore stamps the signature bytes).
    pub message: &'a [u8],
    /// genTime, Unix seconds.
    pub gen_time: i64,
    /// Positive serial number of the token, big-endian.
    pub serial: &'a [u8],
    /// Positive nonce, big-endian.
    pub nonce: &'a [u8],
}

#[derive(Sequence)]
struct TimeStampResp {
    status: PkiStatusInfo,
    time_stamp_token: ContentInfo,
}

#[derive(Sequence)]
struct PkiStatusInfo {
    /// 0 = granted (RFC 3161 §2.4.2).
    status: u8,
}

#[derive(Sequence)]
struct ContentInfo {
    content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    content: SignedData,
}

#[derive(Sequence)]
struct SignedData {
    version: u8,
    digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    certificates: SetOfVec<Certificate>,
    signer_infos: SetOfVec<SignerInfo>,
}

#[derive(Sequence)]
struct EncapsulatedContentInfo {
    e_content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    e_content: OctetString,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence, ValueOrd)]
struct SignerInfo {
    version: u8,
    sid: IssuerAndSerialNumber,
    digest_algorithm: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    signed_attrs: SetOfVec<Attribute>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: OctetString,
}

#[derive(Clone, Debug, Eq, PartialEq, Sequence, ValueOrd)]
struct IssuerAndSerialNumber {
    issuer: Name,
    serial_number: SerialNumber,
}

#[derive(Sequence)]
struct TstInfo {
    version: u8,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Uint,
    gen_time: GeneralizedTime,
    accuracy: Accuracy,
    nonce: Uint,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    tsa: GeneralName,
}

#[derive(Sequence)]
struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

#[derive(Sequence)]
struct Accuracy {
    seconds: u8,
}

#[derive(Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

/// ESSCertIDv2 with the hash algorithm left at its DEFAULT, id-sha256, so DER omits it.
#[derive(Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
    issuer_serial: IssuerSerial,
}

#[derive(Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: SerialNumber,
}

fn sha256_algorithm(with_null_parameters: bool) -> Result<AlgorithmIdentifierOwned> {
    let parameters = if with_null_parameters { Some(Any::encode_from(&Null)?) } else { None };
    Ok(AlgorithmIdentifierOwned { oid: OID_SHA256, parameters })
}

fn attribute<T: Tagged + EncodeValue>(oid: ObjectIdentifier, value: &T) -> Result<Attribute> {
    let values = SetOfVec::try_from(vec![Any::encode_from(value)?])?;
    Ok(Attribute { oid, values })
}

fn generalized_time(unix_seconds: i64) -> Result<GeneralizedTime> {
    let seconds = u64::try_from(unix_seconds)
        .with_context(|| format!("genTime {unix_seconds} is before 1970"))?;
    let date_time = DateTime::from_unix_duration(std::time::Duration::from_secs(seconds))?;
    Ok(GeneralizedTime::from_date_time(date_time))
}

/// Builds a DER `TimeStampResp` in which `tsa` stamps `request.message`.
pub fn timestamp_response(
    tsa: &Issued<p384::ecdsa::SigningKey>,
    request: &TimestampRequest<'_>,
) -> Result<Vec<u8>> {
    let tsa_tbs = tsa.certificate.tbs_certificate();
    let tst_info = TstInfo {
        version: 1,
        policy: OID_SIGSTORE_TSA_POLICY,
        message_imprint: MessageImprint {
            hash_algorithm: sha256_algorithm(true)?,
            hashed_message: OctetString::new(Sha256::digest(request.message).to_vec())?,
        },
        serial_number: Uint::new(request.serial)?,
        gen_time: generalized_time(request.gen_time)?,
        accuracy: Accuracy { seconds: 1 },
        nonce: Uint::new(request.nonce)?,
        tsa: GeneralName::DirectoryName(tsa_tbs.subject().clone()),
    };
    let tst_info_der = tst_info.to_der().context("TSTInfo encoding failed")?;

    let signing_certificate = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::new(Sha256::digest(&tsa.der).to_vec())?,
            issuer_serial: IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(tsa_tbs.issuer().clone())],
                serial_number: tsa_tbs.serial_number().clone(),
            },
        }],
    };
    let signed_attrs = SetOfVec::try_from(vec![
        attribute(OID_CONTENT_TYPE, &OID_CT_TST_INFO)?,
        attribute(
            OID_MESSAGE_DIGEST,
            &OctetString::new(Sha256::digest(&tst_info_der).to_vec())?,
        )?,
        attribute(OID_SIGNING_CERTIFICATE_V2, &signing_certificate)?,
    ])?;

    // RFC 5652 §5.4: the signature covers the DER of the attributes with an explicit SET OF tag.
    let signed_attrs_der = signed_attrs.to_der().context("signed attributes encoding failed")?;
    let signature: p384::ecdsa::Signature = tsa
        .key
        .sign_prehash(&Sha256::digest(&signed_attrs_der))
        .context("TSA signing failed")?;

    let signer_info = SignerInfo {
        version: 1,
        sid: IssuerAndSerialNumber {
            issuer: tsa_tbs.issuer().clone(),
            serial_number: tsa_tbs.serial_number().clone(),
        },
        digest_algorithm: sha256_algorithm(false)?,
        signed_attrs,
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: OID_ECDSA_WITH_SHA256,
            parameters: None,
        },
        signature: OctetString::new(signature.to_der().as_bytes().to_vec())?,
    };
    let response = TimeStampResp {
        status: PkiStatusInfo { status: 0 },
        time_stamp_token: ContentInfo {
            content_type: OID_SIGNED_DATA,
            content: SignedData {
                version: 3,
                digest_algorithms: SetOfVec::try_from(vec![sha256_algorithm(false)?])?,
                encap_content_info: EncapsulatedContentInfo {
                    e_content_type: OID_CT_TST_INFO,
                    e_content: OctetString::new(tst_info_der)?,
                },
                certificates: SetOfVec::try_from(vec![tsa.certificate.clone()])?,
                signer_infos: SetOfVec::try_from(vec![signer_info])?,
            },
        },
    };
    response.to_der().context("TimeStampResp encoding failed")
}
