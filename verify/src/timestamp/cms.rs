//! DER decoding of RFC 3161 `TimeStampResp` and the CMS `SignedData` inside it (RFC 5652),
//! reduced to the fields that timestamp verification checks.

use const_oid::ObjectIdentifier;
use der::asn1::AnyRef;
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use spki::AlgorithmIdentifierRef;
use x509_cert::certificate::Rfc5280;
use x509_cert::crl::CertificateList;

use super::TimestampError;
use crate::bundle::HashAlgorithm;
use crate::x509::{Certificate, SignatureAlgorithm};

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ATTR_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ATTR_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ATTR_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

fn hash_from_oid(
    oid: ObjectIdentifier,
    structure: &'static str,
) -> Result<HashAlgorithm, TimestampError> {
    if oid == SHA256 {
        Ok(HashAlgorithm::Sha2_256)
    } else if oid == SHA384 {
        Ok(HashAlgorithm::Sha2_384)
    } else if oid == SHA512 {
        Ok(HashAlgorithm::Sha2_512)
    } else {
        Err(TimestampError::UnsupportedHash {
            structure,
            oid: oid.to_string(),
        })
    }
}

/// One DER element: its decoded tag and value, and its complete encoding.
#[derive(Clone, Copy)]
pub(super) struct Element<'a> {
    any: AnyRef<'a>,
    tlv: &'a [u8],
}

impl<'a> Element<'a> {
    fn tag(&self) -> Tag {
        self.any.tag()
    }

    fn value(&self) -> &'a [u8] {
        self.any.value()
    }

    fn is_context(&self, number: u32) -> bool {
        matches!(self.tag(), Tag::ContextSpecific { number: TagNumber(n), .. } if n == number)
    }
}

/// Splits DER `contents` into its top-level elements.
fn elements<'a>(
    contents: &'a [u8],
    structure: &'static str,
) -> Result<Vec<Element<'a>>, TimestampError> {
    let der_error = |e: der::Error| TimestampError::Der {
        structure,
        detail: e.to_string(),
    };
    let mut reader = SliceReader::new(contents).map_err(der_error)?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        let tlv = reader.tlv_bytes().map_err(der_error)?;
        let any = AnyRef::from_der(tlv).map_err(der_error)?;
        out.push(Element { any, tlv });
    }
    Ok(out)
}

/// Decodes one element that must be the whole of `der`, and returns its contents when it has `tag`.
fn expect_tag<'a>(
    element: Option<&Element<'a>>,
    tag: Tag,
    structure: &'static str,
) -> Result<&'a [u8], TimestampError> {
    match element {
        Some(element) if element.tag() == tag => Ok(element.value()),
        Some(element) => Err(TimestampError::Der {
            structure,
            detail: format!("expected {tag}, found {}", element.tag()),
        }),
        None => Err(TimestampError::Der {
            structure,
            detail: format!("missing {tag}"),
        }),
    }
}

fn decode_oid(
    contents_element: Option<&Element<'_>>,
    structure: &'static str,
) -> Result<ObjectIdentifier, TimestampError> {
    let element = contents_element.ok_or(TimestampError::Der {
        structure,
        detail: "missing OBJECT IDENTIFIER".to_owned(),
    })?;
    ObjectIdentifier::from_der(element.tlv).map_err(|e| TimestampError::Der {
        structure,
        detail: e.to_string(),
    })
}

fn decode_u32(
    element: Option<&Element<'_>>,
    structure: &'static str,
) -> Result<u32, TimestampError> {
    let element = element.ok_or(TimestampError::Der {
        structure,
        detail: "missing INTEGER".to_owned(),
    })?;
    u32::from_der(element.tlv).map_err(|e| TimestampError::Der {
        structure,
        detail: e.to_string(),
    })
}

/// The parts of a token that verification uses.
pub(super) struct Token<'a> {
    /// `SignedData.digestAlgorithms`, in token order.
    pub(super) digest_algorithms: Vec<ObjectIdentifier>,
    pub(super) tst_info_der: &'a [u8],
    /// `SignedData.certificates`, each parsed as an X.509 certificate.
    pub(super) certificates: Vec<Certificate>,
    pub(super) signer_infos: Vec<Element<'a>>,
}

/// Returns the OID of a hash algorithm, as `digestAlgorithms` lists it.
pub(super) fn hash_oid(algorithm: HashAlgorithm) -> ObjectIdentifier {
    match algorithm {
        HashAlgorithm::Sha2_256 => SHA256,
        HashAlgorithm::Sha2_384 => SHA384,
        HashAlgorithm::Sha2_512 => SHA512,
    }
}

/// Decodes `digestAlgorithms`, a `SET OF AlgorithmIdentifier` whose parameters are absent or
/// NULL.
fn parse_digest_algorithms(
    element: Option<&Element<'_>>,
) -> Result<Vec<ObjectIdentifier>, TimestampError> {
    const STRUCTURE: &str = "SignedData.digestAlgorithms";
    let mut algorithms = Vec::new();
    for algorithm in elements(expect_tag(element, Tag::Set, STRUCTURE)?, STRUCTURE)? {
        let identifier =
            AlgorithmIdentifierRef::from_der(algorithm.tlv).map_err(|e| TimestampError::Der {
                structure: STRUCTURE,
                detail: e.to_string(),
            })?;
        if identifier.parameters.is_some_and(|parameters| {
            parameters.tag() != Tag::Null || !parameters.value().is_empty()
        }) {
            return Err(TimestampError::Der {
                structure: STRUCTURE,
                detail: format!(
                    "parameters of {} are neither absent nor NULL",
                    identifier.oid
                ),
            });
        }
        algorithms.push(identifier.oid);
    }
    Ok(algorithms)
}

/// Parses `certificates` (`CertificateSet`): every entry must be an X.509 certificate, because
/// Sigstore timestamp authorities embed no other certificate format.
fn parse_certificates(contents: &[u8]) -> Result<Vec<Certificate>, TimestampError> {
    elements(contents, "SignedData.certificates")?
        .iter()
        .enumerate()
        .map(|(index, element)| {
            Certificate::from_der(element.tlv)
                .map_err(|source| TimestampError::EmbeddedCertificate { index, source })
        })
        .collect()
}

/// Checks `crls` (`RevocationInfoChoices`): every entry must be a DER `CertificateList`. The lists
/// themselves are not used, because revocation is out of scope.
fn check_crls(contents: &[u8]) -> Result<(), TimestampError> {
    const STRUCTURE: &str = "SignedData.crls";
    for element in elements(contents, STRUCTURE)? {
        CertificateList::<Rfc5280>::from_der(element.tlv).map_err(|e| TimestampError::Der {
            structure: STRUCTURE,
            detail: e.to_string(),
        })?;
    }
    Ok(())
}

/// Returns the only element of `contents`, or a DER error naming `structure`.
fn single<'s, 'a>(
    contents: &'s [Element<'a>],
    structure: &'static str,
) -> Result<&'s Element<'a>, TimestampError> {
    match contents {
        [only] => Ok(only),
        [] => Err(TimestampError::Der {
            structure,
            detail: "missing content".to_owned(),
        }),
        _ => Err(TimestampError::Der {
            structure,
            detail: "trailing data".to_owned(),
        }),
    }
}

pub(super) fn parse_response(der: &[u8]) -> Result<Token<'_>, TimestampError> {
    // TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken ContentInfo OPTIONAL }
    let outer = elements(der, "TimeStampResp")?;
    let [response] = outer.as_slice() else {
        return Err(TimestampError::Der {
            structure: "TimeStampResp",
            detail: "trailing data".to_owned(),
        });
    };
    let fields = elements(
        expect_tag(Some(response), Tag::Sequence, "TimeStampResp")?,
        "TimeStampResp",
    )?;
    let status_info = elements(
        expect_tag(fields.first(), Tag::Sequence, "PKIStatusInfo")?,
        "PKIStatusInfo",
    )?;
    let status = decode_u32(status_info.first(), "PKIStatusInfo")?;
    if status > 1 {
        return Err(TimestampError::Status { status });
    }
    let token = fields.get(1).ok_or(TimestampError::MissingToken)?;
    if fields.len() > 2 {
        return Err(TimestampError::Der {
            structure: "TimeStampResp",
            detail: "unexpected field after the token".to_owned(),
        });
    }

    // ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY }
    let content_info = elements(
        expect_tag(Some(token), Tag::Sequence, "ContentInfo")?,
        "ContentInfo",
    )?;
    let content_type = decode_oid(content_info.first(), "ContentInfo")?;
    if content_type != ID_SIGNED_DATA {
        return Err(TimestampError::ContentType {
            structure: "ContentInfo",
            found: content_type.to_string(),
            expected: ID_SIGNED_DATA.to_string(),
        });
    }
    let explicit = content_info
        .get(1)
        .filter(|element| element.is_context(0))
        .ok_or(TimestampError::Der {
            structure: "ContentInfo",
            detail: "missing [0] content".to_owned(),
        })?;
    if content_info.len() > 2 {
        return Err(TimestampError::Der {
            structure: "ContentInfo",
            detail: "unexpected field after the content".to_owned(),
        });
    }
    let signed_data_outer = elements(explicit.value(), "ContentInfo")?;
    let signed_data = elements(
        expect_tag(
            Some(single(&signed_data_outer, "ContentInfo")?),
            Tag::Sequence,
            "SignedData",
        )?,
        "SignedData",
    )?;

    // SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo,
    //   certificates [0] IMPLICIT OPTIONAL, crls [1] IMPLICIT OPTIONAL, signerInfos SET }
    let mut fields = signed_data.iter().peekable();
    decode_u32(fields.next(), "SignedData.version")?;
    let digest_algorithms = parse_digest_algorithms(fields.next())?;
    let encap = elements(
        expect_tag(fields.next(), Tag::Sequence, "EncapsulatedContentInfo")?,
        "EncapsulatedContentInfo",
    )?;
    let econtent_type = decode_oid(encap.first(), "EncapsulatedContentInfo")?;
    if econtent_type != ID_CT_TST_INFO {
        return Err(TimestampError::ContentType {
            structure: "EncapsulatedContentInfo",
            found: econtent_type.to_string(),
            expected: ID_CT_TST_INFO.to_string(),
        });
    }
    let econtent =
        encap
            .get(1)
            .filter(|element| element.is_context(0))
            .ok_or(TimestampError::Der {
                structure: "EncapsulatedContentInfo",
                detail: "missing [0] eContent".to_owned(),
            })?;
    if encap.len() > 2 {
        return Err(TimestampError::Der {
            structure: "EncapsulatedContentInfo",
            detail: "unexpected field after eContent".to_owned(),
        });
    }
    let econtent_inner = elements(econtent.value(), "EncapsulatedContentInfo")?;
    let tst_info_der = expect_tag(
        Some(single(&econtent_inner, "EncapsulatedContentInfo")?),
        Tag::OctetString,
        "EncapsulatedContentInfo",
    )?;

    let mut certificates = Vec::new();
    if let Some(element) = fields.next_if(|element| element.is_context(0)) {
        certificates = parse_certificates(element.value())?;
    }
    if let Some(element) = fields.next_if(|element| element.is_context(1)) {
        check_crls(element.value())?;
    }
    let signer_infos = elements(
        expect_tag(fields.next(), Tag::Set, "SignedData.signerInfos")?,
        "SignedData.signerInfos",
    )?;
    if fields.next().is_some() {
        return Err(TimestampError::Der {
            structure: "SignedData",
            detail: "unexpected field after signerInfos".to_owned(),
        });
    }
    Ok(Token {
        digest_algorithms,
        tst_info_der,
        certificates,
        signer_infos,
    })
}

pub(super) struct TstInfo {
    pub(super) policy: ObjectIdentifier,
    pub(super) imprint_algorithm: HashAlgorithm,
    pub(super) imprint: Vec<u8>,
    pub(super) gen_time: i64,
}

pub(super) fn parse_tst_info(der: &[u8]) -> Result<TstInfo, TimestampError> {
    // TSTInfo ::= SEQUENCE { version INTEGER, policy OID, messageImprint, serialNumber INTEGER,
    //   genTime GeneralizedTime, ... }
    let outer = elements(der, "TSTInfo")?;
    let [tst_info] = outer.as_slice() else {
        return Err(TimestampError::Der {
            structure: "TSTInfo",
            detail: "trailing data".to_owned(),
        });
    };
    let fields = elements(
        expect_tag(Some(tst_info), Tag::Sequence, "TSTInfo")?,
        "TSTInfo",
    )?;
    let version = decode_u32(fields.first(), "TSTInfo")?;
    if version != 1 {
        return Err(TimestampError::Der {
            structure: "TSTInfo",
            detail: format!("version {version}, expected 1"),
        });
    }
    let policy = decode_oid(fields.get(1), "TSTInfo")?;

    // MessageImprint ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }
    let imprint = elements(
        expect_tag(fields.get(2), Tag::Sequence, "MessageImprint")?,
        "MessageImprint",
    )?;
    let algorithm = elements(
        expect_tag(imprint.first(), Tag::Sequence, "MessageImprint")?,
        "MessageImprint",
    )?;
    let imprint_algorithm = hash_from_oid(
        decode_oid(algorithm.first(), "MessageImprint")?,
        "MessageImprint",
    )?;
    let hashed = expect_tag(imprint.get(1), Tag::OctetString, "MessageImprint")?;

    expect_tag(fields.get(3), Tag::Integer, "TSTInfo")?;
    let gen_time =
        parse_generalized_time(expect_tag(fields.get(4), Tag::GeneralizedTime, "TSTInfo")?)?;
    Ok(TstInfo {
        policy,
        imprint_algorithm,
        imprint: hashed.to_vec(),
        gen_time,
    })
}

/// Parses `YYYYMMDDHHMMSS[.fraction]Z` (RFC 3161 section 2.4.2) into Unix seconds.
pub(super) fn parse_generalized_time(bytes: &[u8]) -> Result<i64, TimestampError> {
    let invalid = || TimestampError::GenTime {
        value: String::from_utf8_lossy(bytes).into_owned(),
    };
    let text = std::str::from_utf8(bytes).map_err(|_| invalid())?;
    let body = text.strip_suffix('Z').ok_or_else(invalid)?;
    let (whole, fraction) = match body.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (body, None),
    };

    // A fraction has at least one digit and no trailing zero.
    if let Some(fraction) = fraction
        && (fraction.is_empty()
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || fraction.ends_with('0'))
    {
        return Err(invalid());
    }
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }

    let digits = |range: std::ops::Range<usize>| -> Result<u16, TimestampError> {
        whole
            .get(range)
            .and_then(|digits| digits.parse::<u16>().ok())
            .ok_or_else(invalid)
    };
    let two_digits = |range: std::ops::Range<usize>| -> Result<u8, TimestampError> {
        u8::try_from(digits(range)?).map_err(|_| invalid())
    };
    let month = time::Month::try_from(two_digits(4..6)?).map_err(|_| invalid())?;
    let date = time::Date::from_calendar_date(i32::from(digits(0..4)?), month, two_digits(6..8)?)
        .map_err(|_| invalid())?;
    let clock = time::Time::from_hms(two_digits(8..10)?, two_digits(10..12)?, two_digits(12..14)?)
        .map_err(|_| invalid())?;
    Ok(time::PrimitiveDateTime::new(date, clock)
        .assume_utc()
        .unix_timestamp())
}

/// The signer identifier: the reference to the signer's certificate.
enum SignerId<'a> {
    IssuerAndSerial {
        issuer_der: &'a [u8],
        serial_der: &'a [u8],
    },
    SubjectKeyIdentifier(&'a [u8]),
}

pub(super) struct SignerInfo<'a> {
    id: SignerId<'a>,
    pub(super) digest_algorithm: HashAlgorithm,
    /// The signed attributes re-tagged as a DER `SET OF`, the bytes the signature covers.
    signed_attributes_set: Vec<u8>,
    attributes: Vec<(ObjectIdentifier, Vec<Element<'a>>)>,
    signature_algorithm: ObjectIdentifier,
    signature: &'a [u8],
}

pub(super) fn parse_signer_info<'a>(
    element: &Element<'a>,
) -> Result<SignerInfo<'a>, TimestampError> {
    const STRUCTURE: &str = "SignerInfo";
    // SignerInfo ::= SEQUENCE { version, sid, digestAlgorithm, signedAttrs [0] IMPLICIT OPTIONAL,
    //   signatureAlgorithm, signature OCTET STRING, unsignedAttrs [1] IMPLICIT OPTIONAL }
    let fields = elements(
        expect_tag(Some(element), Tag::Sequence, STRUCTURE)?,
        STRUCTURE,
    )?;
    let mut fields = fields.into_iter().skip(1).peekable();

    let sid = fields.next().ok_or(TimestampError::Der {
        structure: STRUCTURE,
        detail: "missing sid".to_owned(),
    })?;
    let id = if sid.tag() == Tag::Sequence {
        let parts = elements(sid.value(), STRUCTURE)?;
        match parts.as_slice() {
            [issuer, serial] if issuer.tag() == Tag::Sequence && serial.tag() == Tag::Integer => {
                SignerId::IssuerAndSerial {
                    issuer_der: issuer.tlv,
                    serial_der: serial.tlv,
                }
            }
            _ => {
                return Err(TimestampError::Der {
                    structure: STRUCTURE,
                    detail: "malformed issuerAndSerialNumber".to_owned(),
                });
            }
        }
    } else if sid.is_context(0) {
        SignerId::SubjectKeyIdentifier(sid.value())
    } else {
        return Err(TimestampError::Der {
            structure: STRUCTURE,
            detail: format!("unexpected sid tag {}", sid.tag()),
        });
    };

    let digest_algorithm_fields = elements(
        expect_tag(fields.next().as_ref(), Tag::Sequence, STRUCTURE)?,
        STRUCTURE,
    )?;
    let digest_algorithm = hash_from_oid(
        decode_oid(digest_algorithm_fields.first(), STRUCTURE)?,
        STRUCTURE,
    )?;

    let signed =
        fields
            .next_if(|element| element.is_context(0))
            .ok_or(TimestampError::SignedAttribute {
                attribute: "signedAttrs",
            })?;
    // The signature covers the attributes with the universal SET tag in place of [0] IMPLICIT;
    // both are single-byte tags, so only the first byte changes.
    let mut signed_attributes_set = signed.tlv.to_vec();
    if let Some(first) = signed_attributes_set.first_mut() {
        *first = 0x31;
    }
    let mut attributes = Vec::new();
    for attribute in elements(signed.value(), STRUCTURE)? {
        let parts = elements(
            expect_tag(Some(&attribute), Tag::Sequence, STRUCTURE)?,
            STRUCTURE,
        )?;
        let oid = decode_oid(parts.first(), STRUCTURE)?;
        let values = elements(expect_tag(parts.get(1), Tag::Set, STRUCTURE)?, STRUCTURE)?;
        attributes.push((oid, values));
    }

    let signature_algorithm_fields = elements(
        expect_tag(fields.next().as_ref(), Tag::Sequence, STRUCTURE)?,
        STRUCTURE,
    )?;
    let signature_algorithm = decode_oid(signature_algorithm_fields.first(), STRUCTURE)?;
    let signature = expect_tag(fields.next().as_ref(), Tag::OctetString, STRUCTURE)?;

    Ok(SignerInfo {
        id,
        digest_algorithm,
        signed_attributes_set,
        attributes,
        signature_algorithm,
        signature,
    })
}

impl SignerInfo<'_> {
    fn single_attribute(
        &self,
        oid: ObjectIdentifier,
        attribute: &'static str,
    ) -> Result<&Element<'_>, TimestampError> {
        let mut matching = self.attributes.iter().filter(|(id, _)| *id == oid);
        match (matching.next(), matching.next()) {
            (Some((_, values)), None) => match values.as_slice() {
                [value] => Ok(value),
                _ => Err(TimestampError::SignedAttribute { attribute }),
            },
            _ => Err(TimestampError::SignedAttribute { attribute }),
        }
    }

    pub(super) fn check_attributes(&self, tst_info_der: &[u8]) -> Result<(), TimestampError> {
        let content_type = self.single_attribute(ATTR_CONTENT_TYPE, "contentType")?;
        let content_type = ObjectIdentifier::from_der(content_type.tlv).map_err(|_| {
            TimestampError::SignedAttribute {
                attribute: "contentType",
            }
        })?;
        if content_type != ID_CT_TST_INFO {
            return Err(TimestampError::ContentType {
                structure: "signed attribute contentType",
                found: content_type.to_string(),
                expected: ID_CT_TST_INFO.to_string(),
            });
        }
        let digest = self.single_attribute(ATTR_MESSAGE_DIGEST, "messageDigest")?;
        if digest.tag() != Tag::OctetString {
            return Err(TimestampError::SignedAttribute {
                attribute: "messageDigest",
            });
        }
        if digest.value() != self.digest_algorithm.digest(tst_info_der).as_slice() {
            return Err(TimestampError::MessageDigestMismatch);
        }
        Ok(())
    }

    pub(super) fn identifies(&self, cert: &Certificate) -> bool {
        match self.id {
            SignerId::IssuerAndSerial {
                issuer_der,
                serial_der,
            } => cert.has_issuer_der(issuer_der) && cert.has_serial_der(serial_der),
            SignerId::SubjectKeyIdentifier(key_id) => {
                cert.subject_key_identifier().as_deref() == Some(key_id)
            }
        }
    }

    /// Returns the algorithm that signed the signed attributes.
    fn signature_algorithm(&self) -> Result<SignatureAlgorithm, TimestampError> {
        let oid = self.signature_algorithm;
        if let Some(algorithm) = SignatureAlgorithm::from_oid(oid) {
            Ok(algorithm)
        } else if oid == ID_EC_PUBLIC_KEY {
            // Some CMS signers name only the key type, so the digest algorithm applies.
            Ok(SignatureAlgorithm::Ecdsa(self.digest_algorithm))
        } else if oid == RSA_ENCRYPTION {
            // RFC 3370 section 3.2: rsaEncryption with the SignerInfo's digest algorithm.
            Ok(SignatureAlgorithm::RsaPkcs1v15(self.digest_algorithm))
        } else {
            Err(TimestampError::UnsupportedSignatureAlgorithm {
                oid: oid.to_string(),
            })
        }
    }

    pub(super) fn verify_signature(&self, cert: &Certificate) -> Result<(), TimestampError> {
        let algorithm = self.signature_algorithm()?;
        let subject = cert.subject();
        let key = cert
            .public_key()
            .map_err(|source| TimestampError::SignatureInvalid {
                subject: subject.clone(),
                source,
            })?;
        key.verify_with_algorithm(&self.signed_attributes_set, algorithm, self.signature)
            .map_err(|source| TimestampError::SignatureInvalid {
                subject: subject.clone(),
                source,
            })?;
        self.check_signing_certificate(cert)
    }

    /// Checks the first `ESSCertIDv2` of `signingCertificateV2` (RFC 5816), when present.
    fn check_signing_certificate(&self, cert: &Certificate) -> Result<(), TimestampError> {
        const ATTRIBUTE: &str = "signingCertificateV2";
        if !self
            .attributes
            .iter()
            .any(|(oid, _)| *oid == ATTR_SIGNING_CERTIFICATE_V2)
        {
            return Ok(());
        }
        let malformed = TimestampError::SignedAttribute {
            attribute: ATTRIBUTE,
        };
        let value = self.single_attribute(ATTR_SIGNING_CERTIFICATE_V2, ATTRIBUTE)?;

        // SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies OPTIONAL }
        let outer = elements(
            expect_tag(Some(value), Tag::Sequence, ATTRIBUTE)?,
            ATTRIBUTE,
        )?;
        let certs = elements(
            expect_tag(outer.first(), Tag::Sequence, ATTRIBUTE)?,
            ATTRIBUTE,
        )?;
        // ESSCertIDv2 ::= SEQUENCE { hashAlgorithm DEFAULT sha256, certHash OCTET STRING,
        //   issuerSerial OPTIONAL }
        let first = elements(
            expect_tag(certs.first(), Tag::Sequence, ATTRIBUTE)?,
            ATTRIBUTE,
        )?;
        let (algorithm, hash) = match first.first() {
            Some(element) if element.tag() == Tag::Sequence => {
                let algorithm = elements(element.value(), ATTRIBUTE)?;
                let algorithm =
                    hash_from_oid(decode_oid(algorithm.first(), ATTRIBUTE)?, ATTRIBUTE)?;
                (
                    algorithm,
                    expect_tag(first.get(1), Tag::OctetString, ATTRIBUTE)?,
                )
            }
            Some(element) if element.tag() == Tag::OctetString => {
                (HashAlgorithm::Sha2_256, element.value())
            }
            _ => return Err(malformed),
        };

        if hash != cert.digest(algorithm).as_slice() {
            return Err(TimestampError::SigningCertificateMismatch {
                subject: cert.subject(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generalized_time_parsing() {
        let rows: [(&str, &[u8], Option<i64>); 6] = [
            ("whole seconds", b"20250612120220Z", Some(1_749_729_740)),
            (
                "fraction dropped",
                b"20250612120220.125Z",
                Some(1_749_729_740),
            ),
            ("trailing zero", b"20250612120220.10Z", None),
            ("no zone", b"20250612120220", None),
            ("bad month", b"20251312120220Z", None),
            ("short", b"202506121202Z", None),
        ];
        for (name, input, want) in rows {
            assert_eq!(parse_generalized_time(input).ok(), want, "row {name}");
        }
    }
}
