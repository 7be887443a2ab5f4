//! The signer of a bundle: its key, and the signature over the bundle's content.

use super::{
    Artifact, EvidenceError, ExpectedSigner, Run, Signer, SigningKey, Subject, key_signer_name,
};
use crate::bundle::{BundleContent, HashAlgorithm, KeyMaterial, SigstoreBundle};
use crate::dsse::verify_envelope;
use crate::rekor::EntryVerifier;
use crate::trust_root::TrustSet;
use crate::x509::{Certificate, PublicKey};

impl Run<'_> {
    /// Resolves the key that must have signed the bundle. On failure, records it and returns
    /// `None`.
    pub(super) fn resolve_key(
        &mut self,
        bundle: &SigstoreBundle,
        trust: &TrustSet,
        expected: Option<&ExpectedSigner>,
    ) -> Option<SigningKey> {
        match (&bundle.key_material, expected) {
            (KeyMaterial::Certificate(der), None | Some(ExpectedSigner::Identity { .. })) => {
                self.certificate_key(der)
            }
            (KeyMaterial::PublicKey { hint }, None) => self.managed_key(hint, trust),
            (KeyMaterial::PublicKey { .. }, Some(ExpectedSigner::Key { spki_der })) => {
                self.expected_key(spki_der)
            }
            (KeyMaterial::Certificate(_), Some(ExpectedSigner::Key { .. })) => {
                self.fail(EvidenceError::KeyMaterial {
                    expected: "the given public key",
                    found: "a certificate",
                });
                None
            }
            (KeyMaterial::PublicKey { .. }, Some(ExpectedSigner::Identity { .. })) => {
                self.fail(EvidenceError::KeyMaterial {
                    expected: "a certificate for the expected identity",
                    found: "a public key",
                });
                None
            }
        }
    }

    fn certificate_key(&mut self, der: &[u8]) -> Option<SigningKey> {
        let certificate = match Certificate::from_der(der) {
            Ok(certificate) => certificate,
            Err(error) => {
                self.fail(EvidenceError::SigningCertificate(error));
                return None;
            }
        };
        match certificate.fulcio_identity() {
            Ok(identity) => {
                self.report.signer = Some(Signer {
                    identity: identity.subject_alternative_name,
                    issuer: identity.issuer,
                });
            }
            Err(error) => self.fail(EvidenceError::SigningCertificate(error)),
        }
        match certificate.public_key() {
            Ok(key) => Some(SigningKey {
                key,
                entry_verifier: EntryVerifier::X509Certificate(der.to_vec()),
                certificate: Some(certificate),
            }),
            Err(error) => {
                self.fail(EvidenceError::SigningCertificate(error));
                None
            }
        }
    }

    fn managed_key(&mut self, hint: &str, trust: &TrustSet) -> Option<SigningKey> {
        let Some(managed) = trust.kms_key(hint) else {
            self.fail(EvidenceError::KeyUnknown {
                hint: hint.to_owned(),
            });
            return None;
        };
        self.report.signer = Some(Signer {
            identity: format!("key:{}", managed.id),
            issuer: String::new(),
        });
        match PublicKey::from_spki_der(&managed.spki_der) {
            Ok(key) => {
                // A managed key is trusted directly: no chain to validate.
                self.report.chain_verified = true;
                Some(SigningKey {
                    key,
                    entry_verifier: EntryVerifier::PublicKey(managed.spki_der.clone()),
                    certificate: None,
                })
            }
            Err(source) => {
                self.fail(EvidenceError::ManagedKey {
                    id: managed.id.clone(),
                    source,
                });
                None
            }
        }
    }

    fn expected_key(&mut self, spki_der: &[u8]) -> Option<SigningKey> {
        self.report.signer = Some(Signer {
            identity: key_signer_name(spki_der),
            issuer: String::new(),
        });
        match PublicKey::from_spki_der(spki_der) {
            Ok(key) => {
                // The caller trusts this key directly: no chain to validate.
                self.report.chain_verified = true;
                Some(SigningKey {
                    key,
                    entry_verifier: EntryVerifier::PublicKey(spki_der.to_vec()),
                    certificate: None,
                })
            }
            Err(source) => {
                self.fail(EvidenceError::ExpectedKey { source });
                None
            }
        }
    }

    /// Verifies the signature over the bundle's content and matches the artifact. Returns whether
    /// the signature verified, also when the artifact then did not match.
    pub(super) fn verify_signature(
        &mut self,
        bundle: &SigstoreBundle,
        key: &PublicKey,
        artifact: Artifact,
    ) -> bool {
        match &bundle.content {
            BundleContent::MessageSignature(message) => {
                let digest = &message.digest;
                if let Err(source) = key.verify_prehash(&digest.digest, &message.signature) {
                    self.fail(EvidenceError::MessageSignature {
                        algorithm: digest.algorithm,
                        source,
                    });
                    return false;
                }
                self.report.signature_verified = true;
                let signed_sha256: Option<[u8; 32]> = match digest.algorithm {
                    HashAlgorithm::Sha2_256 => digest.digest.as_slice().try_into().ok(),
                    HashAlgorithm::Sha2_384 | HashAlgorithm::Sha2_512 => None,
                };
                if let Some(sha256) = signed_sha256 {
                    self.report.subjects = vec![Subject {
                        name: String::new(),
                        sha256: hex::encode(sha256),
                    }];
                }
                if let Artifact::Sha256(expected) = artifact
                    && signed_sha256 != Some(expected)
                {
                    let signed = match signed_sha256 {
                        Some(sha256) => format!("the signed digest {}", hex::encode(sha256)),
                        None => format!(
                            "comparable: the bundle signs a {} digest",
                            digest.algorithm.proto_name()
                        ),
                    };
                    self.fail(EvidenceError::SubjectMismatch {
                        artifact: hex::encode(expected),
                        signed,
                    });
                }
                true
            }
            BundleContent::Dsse(envelope) => {
                let verified = match verify_envelope(envelope, key) {
                    Ok(verified) => verified,
                    Err(error) => {
                        self.fail(EvidenceError::Dsse(error));
                        return false;
                    }
                };
                self.report.signature_verified = true;
                let statement = match verified.statement() {
                    Ok(statement) => statement,
                    Err(error) => {
                        self.fail(EvidenceError::Dsse(error));
                        return true;
                    }
                };
                let mut subjects: Vec<Subject> = statement
                    .subjects
                    .iter()
                    .filter_map(|subject| {
                        subject.sha256.map(|sha256| Subject {
                            name: subject.name.clone(),
                            sha256: hex::encode(sha256),
                        })
                    })
                    .collect();
                subjects.sort();
                subjects.dedup();
                self.report.predicate_type = Some(statement.predicate_type);
                self.report.subjects = subjects;
                if let Artifact::Sha256(expected) = artifact
                    && !statement
                        .subjects
                        .iter()
                        .any(|subject| subject.sha256 == Some(expected))
                {
                    self.fail(EvidenceError::SubjectMismatch {
                        artifact: hex::encode(expected),
                        signed: "a subject of the signed statement".to_owned(),
                    });
                }
                true
            }
        }
    }
}
