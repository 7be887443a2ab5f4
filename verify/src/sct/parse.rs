//! Decoding of the embedded SCT list: the certificate extension (DER) and the
//! `SignedCertificateTimestampList` inside it (TLS presentation language, RFC 5246 section 4).

use der::asn1::OctetStringRef;
use der::{Decode, Encode, Header, Length, Reader, SliceReader, Tag, TagNumber};

use super::{
    MAX_SCTS, OID_PRECERTIFICATE_POISON, OID_SCT_LIST, SCT_VERSION_V1, SctError,
    SignedCertificateTimestamp,
};

/// Splits a DER `tbsCertificate` into the precertificate TBS (the SCT list extension removed,
/// all other bytes unchanged) and the TLS bytes of the SCT list.
pub(super) fn split_sct_extension(
    tbs: &[u8],
    subject: &str,
) -> Result<(Vec<u8>, Vec<u8>), SctError> {
    let malformed = |structure: &'static str| {
        move |e: der::Error| SctError::Malformed {
            subject: subject.to_owned(),
            structure,
            detail: e.to_string(),
        }
    };
    let extensions_tag = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber(3),
    };
    let (tbs_tag, fields) = split_constructed(tbs).map_err(malformed("tbsCertificate"))?;

    let mut rebuilt_fields = Vec::with_capacity(tbs.len());
    let mut sct_values = Vec::new();
    for field in elements(fields).map_err(malformed("tbsCertificate"))? {
        let (field_tag, explicit) =
            split_constructed(field).map_err(malformed("tbsCertificate"))?;
        if field_tag != extensions_tag {
            rebuilt_fields.extend_from_slice(field);
            continue;
        }
        let (sequence_tag, list) = split_constructed(explicit).map_err(malformed("extensions"))?;
        let mut kept_extensions = Vec::with_capacity(list.len());
        for extension_der in elements(list).map_err(malformed("extensions"))? {
            let extension = x509_cert::ext::Extension::from_der(extension_der)
                .map_err(malformed("extension"))?;
            if extension.extn_id == OID_PRECERTIFICATE_POISON {
                return Err(SctError::Precertificate {
                    subject: subject.to_owned(),
                });
            }
            if extension.extn_id != OID_SCT_LIST {
                kept_extensions.extend_from_slice(extension_der);
                continue;
            }
            sct_values.push(extension.extn_value);
        }
        // Extensions is SEQUENCE SIZE (1..MAX), so a precertificate whose only extension was the
        // SCT list had no [3] field at all.
        if !kept_extensions.is_empty() {
            let sequence =
                encode_tlv(sequence_tag, &kept_extensions).map_err(malformed("extensions"))?;
            let field = encode_tlv(extensions_tag, &sequence).map_err(malformed("extensions"))?;
            rebuilt_fields.extend_from_slice(&field);
        }
    }
    let value = match sct_values.as_slice() {
        [value] => value,
        [] => {
            return Err(SctError::MissingExtension {
                subject: subject.to_owned(),
            });
        }
        _ => {
            return Err(SctError::DuplicateExtension {
                subject: subject.to_owned(),
            });
        }
    };
    let list = <&OctetStringRef>::from_der(value.as_bytes())
        .map_err(malformed("SCT list extension"))?
        .as_bytes()
        .to_vec();
    let precertificate_tbs =
        encode_tlv(tbs_tag, &rebuilt_fields).map_err(malformed("tbsCertificate"))?;
    Ok((precertificate_tbs, list))
}

/// Parses a TLS `SignedCertificateTimestampList` (RFC 6962 section 3.3).
pub(super) fn parse_sct_list(
    bytes: &[u8],
    subject: &str,
) -> Result<Vec<SignedCertificateTimestamp>, SctError> {
    let malformed = |detail: String| SctError::Malformed {
        subject: subject.to_owned(),
        structure: "SignedCertificateTimestampList",
        detail,
    };
    let mut outer = TlsReader::new(bytes);
    let list = outer.vector_u16().map_err(&malformed)?;
    outer.finish().map_err(&malformed)?;
    if list.is_empty() {
        return Err(malformed("the list is empty".to_owned()));
    }

    let mut reader = TlsReader::new(list);
    let mut scts = Vec::new();
    while !reader.is_finished() {
        let serialized = reader.vector_u16().map_err(&malformed)?;
        if scts.len() == MAX_SCTS {
            // Count the rest only for the message.
            let mut count = MAX_SCTS.saturating_add(1);
            while !reader.is_finished() {
                reader.vector_u16().map_err(&malformed)?;
                count = count.saturating_add(1);
            }
            return Err(SctError::TooMany {
                subject: subject.to_owned(),
                count,
                max: MAX_SCTS,
            });
        }
        let index = scts.len();
        let sct = parse_sct(serialized, index, |detail| {
            malformed(format!("SCT {index}: {detail}"))
        })?;
        scts.push(sct);
    }
    Ok(scts)
}

/// Parses one serialized SCT, version 1.
fn parse_sct(
    bytes: &[u8],
    index: usize,
    malformed: impl Fn(String) -> SctError,
) -> Result<SignedCertificateTimestamp, SctError> {
    let mut reader = TlsReader::new(bytes);
    let version = reader.u8().map_err(&malformed)?;
    if version != SCT_VERSION_V1 {
        return Err(SctError::UnsupportedVersion { index, version });
    }
    let log_id = reader.array::<32>().map_err(&malformed)?;
    let timestamp_ms = u64::from_be_bytes(reader.array::<8>().map_err(&malformed)?);
    let extensions = reader.vector_u16().map_err(&malformed)?.to_vec();
    let hash = reader.u8().map_err(&malformed)?;
    let signature_algorithm = reader.u8().map_err(&malformed)?;
    let signature = reader.vector_u16().map_err(&malformed)?.to_vec();
    reader.finish().map_err(&malformed)?;
    Ok(SignedCertificateTimestamp {
        log_id,
        timestamp_ms,
        extensions,
        hash,
        signature_algorithm,
        signature,
    })
}

/// A cursor over TLS presentation-language bytes (RFC 5246 section 4).
struct TlsReader<'a> {
    rest: &'a [u8],
}

impl<'a> TlsReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        TlsReader { rest: bytes }
    }

    fn is_finished(&self) -> bool {
        self.rest.is_empty()
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], String> {
        let (taken, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or_else(|| format!("needs {len} more bytes, {} remain", self.rest.len()))?;
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self.bytes(N)?;
        bytes
            .try_into()
            .map_err(|_| format!("needs {N} bytes, got {}", bytes.len()))
    }

    fn u8(&mut self) -> Result<u8, String> {
        let [byte] = self.array::<1>()?;
        Ok(byte)
    }

    /// Reads an `opaque<0..2^16-1>`: a big-endian u16 length, then that many bytes.
    fn vector_u16(&mut self) -> Result<&'a [u8], String> {
        let len = u16::from_be_bytes(self.array::<2>()?);
        self.bytes(usize::from(len))
    }

    fn finish(&self) -> Result<(), String> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes", self.rest.len()))
        }
    }
}

/// Splits a DER TLV of a constructed type into its tag and content, rejecting trailing bytes.
fn split_constructed(tlv: &[u8]) -> Result<(Tag, &[u8]), der::Error> {
    let mut reader = SliceReader::new(tlv)?;
    let header = Header::decode(&mut reader)?;
    let content = reader.read_slice(header.length())?;
    reader.finish()?;
    Ok((header.tag(), content))
}

/// Splits DER content into the TLVs of its elements.
fn elements(content: &[u8]) -> Result<Vec<&[u8]>, der::Error> {
    let mut reader = SliceReader::new(content)?;
    let mut out = Vec::new();
    while !reader.is_finished() {
        out.push(reader.tlv_bytes()?);
    }
    Ok(out)
}

/// Encodes a TLV with a DER length.
fn encode_tlv(tag: Tag, content: &[u8]) -> Result<Vec<u8>, der::Error> {
    let mut out = Header::new(tag, Length::try_from(content.len())?).to_der()?;
    out.extend_from_slice(content);
    Ok(out)
}
