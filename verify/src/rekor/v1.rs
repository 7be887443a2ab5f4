//! Rekor v1 entries: `hashedrekord` 0.0.1 and `dsse` 0.0.1 bodies matched against a bundle.
//!
//! A Rekor v1 leaf is the entry's `canonicalizedBody` exactly as the server wrote it. The server
//! chose the JSON and PEM formatting, so the body cannot be rebuilt byte for byte the way a
//! Rekor v2 entry can. Instead the body is parsed and compared with the bundle field by field
//! (as `sigstore/rekor` `pkg/types/{hashedrekord,dsse}/v0.0.1` define the fields):
//!
//! ```json
//! {"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"sha256","value":"<hex>"}},"signature":{"content":"<base64>","publicKey":{"content":"<base64 of PEM>"}}}}
//! {"apiVersion":"0.0.1","kind":"dsse","spec":{"envelopeHash":{…},"payloadHash":{"algorithm":"sha256","value":"<hex>"},"signatures":[{"signature":"<base64>","verifier":"<base64 of PEM>"}]}}
//! ```
//!
//! - `hashedrekord`: the hash is the bundle's message digest, the content is its signature, and
//!   the PEM contains the bundle's certificate or the signer's public key (same DER bytes).
//! - `dsse`: `payloadHash` is SHA-256 of the envelope payload, and `signatures` holds exactly the
//!   envelope's one signature with the signer's certificate or key as verifier.
//!
//! Left out: the `dsse` `envelopeHash`. It hashes the envelope JSON that the client submitted,
//! which the bundle does not keep byte for byte (an empty `keyid` may or may not have been sent).
//! The payload hash and the logged signature, which covers PAE(payloadType, payload), already bind
//! the whole envelope. The `intoto` kinds are not accepted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};

use super::{EntryFormat, EntryVerifier, RekorError};
use crate::bundle::{BundleContent, HashAlgorithm, TlogEntry};

/// PEM label of a DER certificate.
const PEM_CERTIFICATE: &str = "CERTIFICATE";
/// PEM label of a DER SubjectPublicKeyInfo.
const PEM_PUBLIC_KEY: &str = "PUBLIC KEY";

/// Checks that a Rekor v1 entry's `canonicalizedBody` logs the bundle's content, signed by
/// `verifier`, and returns the body: the bytes whose leaf hash is in the log.
///
/// # Errors
///
/// [`RekorError::BodyMissing`] without a body, and [`RekorError::BodyInvalid`] when the body is not
/// a well-formed entry of `format`. [`RekorError::Mismatch`] names the fields that differ from the
/// bundle, or the body's kind and version when they differ from `kindVersion`.
/// [`RekorError::Envelope`] when the DSSE envelope does not have exactly one signature.
pub fn check_v1_body(
    entry: &TlogEntry,
    format: EntryFormat,
    content: &BundleContent,
    verifier: &EntryVerifier,
) -> Result<Vec<u8>, RekorError> {
    let body = entry
        .canonicalized_body
        .as_ref()
        .ok_or(RekorError::BodyMissing)?;
    let header: BodyHeader = parse_json(body, "body")?;
    if header.kind != entry.kind || header.api_version != entry.version {
        return Err(RekorError::Mismatch {
            detail: format!(
                "the logged entry is {} {}, but the bundle's kindVersion says {} {}",
                header.kind, header.api_version, entry.kind, entry.version
            ),
        });
    }

    let differing = match (format, content) {
        (EntryFormat::HashedRekordV001, BundleContent::MessageSignature(message)) => {
            let spec: HashedRekordSpec = parse_value(header.spec)?;
            let mut differing = Vec::new();
            let hash = &spec.data.hash;
            if algorithm_from_rekor_name(&hash.algorithm) != Some(message.digest.algorithm) {
                differing.push("spec.data.hash.algorithm");
            }
            if !hex_equals(&hash.value, &message.digest.digest) {
                differing.push("spec.data.hash.value");
            }
            let signature = decode_base64(&spec.signature.content, "spec.signature.content")?;
            if signature != message.signature {
                differing.push("spec.signature.content");
            }
            let key_field = "spec.signature.publicKey.content";
            if !pem_matches(&spec.signature.public_key.content, key_field, verifier)? {
                differing.push(key_field);
            }
            differing
        }
        (EntryFormat::DsseV001, BundleContent::Dsse(envelope)) => {
            let spec: DsseSpec = parse_value(header.spec)?;
            let envelope_signature = envelope
                .single_signature()
                .map_err(|source| RekorError::Envelope { source })?;
            let mut differing = Vec::new();
            let payload_hash = &spec.payload_hash;
            if payload_hash.algorithm != "sha256"
                || !hex_equals(&payload_hash.value, &Sha256::digest(&envelope.payload))
            {
                differing.push("spec.payloadHash");
            }
            match spec.signatures.as_slice() {
                [logged] => {
                    let signature =
                        decode_base64(&logged.signature, "spec.signatures[0].signature")?;
                    if signature != envelope_signature.sig {
                        differing.push("spec.signatures[0].signature");
                    }
                    let key_field = "spec.signatures[0].verifier";
                    if !pem_matches(&logged.verifier, key_field, verifier)? {
                        differing.push(key_field);
                    }
                }
                logged => {
                    return Err(RekorError::Mismatch {
                        detail: format!(
                            "the logged dsse entry has {} signatures, the bundle's envelope has 1",
                            logged.len()
                        ),
                    });
                }
            }
            differing
        }
        (EntryFormat::HashedRekordV001, BundleContent::Dsse(_)) => {
            return Err(RekorError::Mismatch {
                detail: "a hashedrekord 0.0.1 entry logs a message signature, but the bundle \
                         carries a DSSE envelope"
                    .to_owned(),
            });
        }
        (EntryFormat::DsseV001, BundleContent::MessageSignature(_)) => {
            return Err(RekorError::Mismatch {
                detail: "a dsse 0.0.1 entry logs a DSSE envelope, but the bundle carries a \
                         message signature"
                    .to_owned(),
            });
        }
        (EntryFormat::HashedRekordV002, _) => {
            return Err(RekorError::Unsupported {
                kind: entry.kind.clone(),
                version: entry.version.clone(),
            });
        }
    };

    if differing.is_empty() {
        Ok(body.clone())
    } else {
        Err(RekorError::Mismatch {
            detail: format!(
                "fields that differ between the logged entry and the bundle: {}",
                differing.join(", ")
            ),
        })
    }
}

/// Maps the hash names of Rekor v1 `hashedrekord` to bundle hash algorithms.
fn algorithm_from_rekor_name(name: &str) -> Option<HashAlgorithm> {
    match name {
        "sha256" => Some(HashAlgorithm::Sha2_256),
        "sha384" => Some(HashAlgorithm::Sha2_384),
        "sha512" => Some(HashAlgorithm::Sha2_512),
        _ => None,
    }
}

/// Reports whether `text` is the hex encoding (either case) of `bytes`.
fn hex_equals(text: &str, bytes: &[u8]) -> bool {
    hex::decode(text).is_ok_and(|decoded| decoded == bytes)
}

fn decode_base64(text: &str, field: &str) -> Result<Vec<u8>, RekorError> {
    STANDARD.decode(text).map_err(|e| RekorError::BodyInvalid {
        detail: format!("{field} is not valid base64: {e}"),
    })
}

/// Reports whether the base64 PEM document in `text` contains exactly the DER bytes of `verifier`:
/// a `CERTIFICATE` for a certificate, a `PUBLIC KEY` for a key.
fn pem_matches(text: &str, field: &str, verifier: &EntryVerifier) -> Result<bool, RekorError> {
    let pem = decode_base64(text, field)?;
    let (label, der) = der::pem::decode_vec(&pem).map_err(|e| RekorError::BodyInvalid {
        detail: format!("{field} is not a PEM document: {e}"),
    })?;
    let matches = match verifier {
        EntryVerifier::X509Certificate(expected) => label == PEM_CERTIFICATE && der == *expected,
        EntryVerifier::PublicKey(expected) => label == PEM_PUBLIC_KEY && der == *expected,
    };
    Ok(matches)
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8], field: &str) -> Result<T, RekorError> {
    serde_json::from_slice(bytes).map_err(|e| RekorError::BodyInvalid {
        detail: format!("{field}: {e}"),
    })
}

fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, RekorError> {
    serde_json::from_value(value).map_err(|e| RekorError::BodyInvalid {
        detail: format!("spec: {e}"),
    })
}

#[derive(Deserialize)]
struct BodyHeader {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    spec: serde_json::Value,
}

#[derive(Deserialize)]
struct HashedRekordSpec {
    data: HashedRekordData,
    signature: HashedRekordSignature,
}

#[derive(Deserialize)]
struct HashedRekordData {
    hash: LoggedHash,
}

#[derive(Deserialize)]
struct LoggedHash {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
struct HashedRekordSignature {
    content: String,
    #[serde(rename = "publicKey")]
    public_key: HashedRekordPublicKey,
}

#[derive(Deserialize)]
struct HashedRekordPublicKey {
    content: String,
}

#[derive(Deserialize)]
struct DsseSpec {
    #[serde(rename = "payloadHash")]
    payload_hash: LoggedHash,
    signatures: Vec<DsseLoggedSignature>,
}

#[derive(Deserialize)]
struct DsseLoggedSignature {
    signature: String,
    verifier: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{SigstoreBundle, parse_bundle};
    use crate::reason::{HasReasonCode, ReasonCode};

    const CONFORMANCE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/sigstore-conformance/bundle-verify"
    );

    fn load(case: &str) -> Option<SigstoreBundle> {
        let path = format!("{CONFORMANCE}/{case}/bundle.sigstore.json");
        match std::fs::read(&path) {
            Ok(json) => Some(parse_bundle(&json).expect("bundle parses")),
            Err(e) => {
                crate::test_vectors::skip_or_fail(&format!("vector {path} not readable: {e}"));
                None
            }
        }
    }

    fn certificate(bundle: &SigstoreBundle) -> EntryVerifier {
        EntryVerifier::X509Certificate(bundle.certificate_der().expect("certificate").to_vec())
    }

    #[test]
    fn v1_bodies_match_their_bundles() {
        let rows = [
            (
                "hashedrekord v0.1",
                "happy-path-v0.1",
                EntryFormat::HashedRekordV001,
            ),
            (
                "hashedrekord v0.3",
                "happy-path-v0.3",
                EntryFormat::HashedRekordV001,
            ),
            (
                "dsse",
                "happy-path-intoto-in-dsse-v3",
                EntryFormat::DsseV001,
            ),
        ];
        for (name, case, format) in rows {
            let Some(bundle) = load(case) else { return };
            let entry = &bundle.tlog_entries[0];
            let body = check_v1_body(entry, format, &bundle.content, &certificate(&bundle))
                .unwrap_or_else(|e| panic!("row {name}: {e}"));
            assert_eq!(Some(&body), entry.canonicalized_body.as_ref(), "row {name}");
        }
    }

    #[test]
    fn v1_body_matches_managed_key() {
        let Some(bundle) = load("managed-key-happy-path") else {
            return;
        };
        let pem = std::fs::read(format!("{CONFORMANCE}/managed-key-happy-path/key.pub"))
            .expect("key.pub");
        let (_, spki) = der::pem::decode_vec(&pem).expect("PEM key");
        let entry = &bundle.tlog_entries[0];
        let verifier = EntryVerifier::PublicKey(spki);
        check_v1_body(
            entry,
            EntryFormat::HashedRekordV001,
            &bundle.content,
            &verifier,
        )
        .expect("logged key is key.pub");

        // The same key bytes presented as a certificate do not match the logged PUBLIC KEY.
        let EntryVerifier::PublicKey(spki) = verifier else {
            unreachable!()
        };
        let err = check_v1_body(
            entry,
            EntryFormat::HashedRekordV001,
            &bundle.content,
            &EntryVerifier::X509Certificate(spki),
        )
        .expect_err("label differs");
        assert_eq!(
            err,
            RekorError::Mismatch {
                detail: "fields that differ between the logged entry and the bundle: \
                         spec.signature.publicKey.content"
                    .to_owned()
            }
        );
    }

    #[test]
    fn v1_body_names_differing_fields() {
        let Some(mut bundle) = load("happy-path-v0.3") else {
            return;
        };
        let verifier = certificate(&bundle);
        let BundleContent::MessageSignature(message) = &mut bundle.content else {
            panic!("message signature expected");
        };
        message.digest.digest[0] ^= 1;
        message.signature.push(0);
        let err = check_v1_body(
            &bundle.tlog_entries[0],
            EntryFormat::HashedRekordV001,
            &bundle.content,
            &verifier,
        )
        .expect_err("altered digest and signature");
        assert_eq!(
            err,
            RekorError::Mismatch {
                detail: "fields that differ between the logged entry and the bundle: \
                         spec.data.hash.value, spec.signature.content"
                    .to_owned()
            }
        );
        assert_eq!(err.reason_code(), ReasonCode::RekorEntryMismatch);
    }

    #[test]
    fn v1_dsse_body_binds_payload() {
        let Some(mut bundle) = load("happy-path-intoto-in-dsse-v3") else {
            return;
        };
        let verifier = certificate(&bundle);
        let BundleContent::Dsse(envelope) = &mut bundle.content else {
            panic!("DSSE envelope expected");
        };
        envelope.payload.push(b' ');
        let err = check_v1_body(
            &bundle.tlog_entries[0],
            EntryFormat::DsseV001,
            &bundle.content,
            &verifier,
        )
        .expect_err("altered payload");
        assert_eq!(
            err,
            RekorError::Mismatch {
                detail: "fields that differ between the logged entry and the bundle: \
                         spec.payloadHash"
                    .to_owned()
            }
        );
    }

    #[test]
    fn v1_body_rejects_bad_shapes() {
        let Some(bundle) = load("happy-path-v0.1") else {
            return;
        };
        let verifier = certificate(&bundle);
        type Row = (&'static str, Option<&'static [u8]>, fn(&RekorError) -> bool);
        let rows: [Row; 4] = [
            ("no body", None, |e| matches!(e, RekorError::BodyMissing)),
            ("not json", Some(b"{"), |e| {
                matches!(e, RekorError::BodyInvalid { .. })
            }),
            (
                "other kind",
                Some(br#"{"apiVersion":"0.0.1","kind":"dsse","spec":{}}"#),
                |e| matches!(e, RekorError::Mismatch { detail } if detail.contains("dsse 0.0.1")),
            ),
            (
                "spec without signature",
                Some(br#"{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{"data":{"hash":{"algorithm":"sha256","value":"00"}}}}"#),
                |e| matches!(e, RekorError::BodyInvalid { detail } if detail.contains("signature")),
            ),
        ];
        for (name, body, check) in rows {
            let mut entry = bundle.tlog_entries[0].clone();
            entry.canonicalized_body = body.map(<[u8]>::to_vec);
            let err = check_v1_body(
                &entry,
                EntryFormat::HashedRekordV001,
                &bundle.content,
                &verifier,
            )
            .expect_err(name);
            assert!(check(&err), "row {name}: unexpected error {err:?}");
        }
    }
}
