//! Verification keys and signature algorithms for certificates, artifacts and CT logs.
//!
//! Keys are ECDSA P-256 and P-384 (SEC 1 points in a DER SubjectPublicKeyInfo), and RSA keys of
//! [`MIN_RSA_BITS`] to [`MAX_RSA_BITS`] bits with RSASSA-PKCS1-v1_5 signatures (RFC 8017 section
//! 8.2). An RSA key arrives as a DER SubjectPublicKeyInfo with algorithm `rsaEncryption`, or as a
//! bare PKCS#1 `RSAPublicKey` as some trusted roots store CT log keys.
//!
//! Left out: RSASSA-PSS (keys restricted to `id-RSASSA-PSS` and PSS signatures are rejected) and
//! Ed25519 signing keys.

use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, BitStringRef};
use der::{Decode, Encode};
use rsa::traits::PublicKeyParts as _;

use super::X509Error;
use super::backend::EcdsaKey;
use crate::bundle::HashAlgorithm;

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

pub(super) const ECDSA_WITH_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
pub(super) const ECDSA_WITH_SHA384: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
pub(super) const ECDSA_WITH_SHA512: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const SHA256_WITH_RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");

/// Smallest accepted RSA modulus in bits, the smallest size among the RSA `keyDetails` of
/// `sigstore_common.proto` (`PKIX_RSA_PKCS1V15_2048_SHA256`).
pub const MIN_RSA_BITS: u32 = 2048;
/// Largest accepted RSA modulus in bits, the `rsa` crate's default limit. It bounds the work that
/// one untrusted key can cause.
pub const MAX_RSA_BITS: u32 = 8192;

/// A signature scheme together with its message hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// ECDSA (FIPS 186-5) with a DER `ECDSA-Sig-Value` signature.
    Ecdsa(HashAlgorithm),
    /// RSASSA-PKCS1-v1_5 (RFC 8017 section 8.2).
    RsaPkcs1v15(HashAlgorithm),
}

impl SignatureAlgorithm {
    /// Maps an X.509 or CMS signature algorithm OID (ECDSA or RSA PKCS#1 v1.5 with SHA-2) to the
    /// algorithm. Returns `None` for any other OID.
    pub fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        const TABLE: [(ObjectIdentifier, SignatureAlgorithm); 6] = [
            (
                ECDSA_WITH_SHA256,
                SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha2_256),
            ),
            (
                ECDSA_WITH_SHA384,
                SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha2_384),
            ),
            (
                ECDSA_WITH_SHA512,
                SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha2_512),
            ),
            (
                SHA256_WITH_RSA_ENCRYPTION,
                SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha2_256),
            ),
            (
                SHA384_WITH_RSA_ENCRYPTION,
                SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha2_384),
            ),
            (
                SHA512_WITH_RSA_ENCRYPTION,
                SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha2_512),
            ),
        ];
        TABLE
            .iter()
            .find(|(known, _)| *known == oid)
            .map(|(_, algorithm)| *algorithm)
    }

    /// Reports whether the algorithm identifier's parameters are the ones RFC 5758 (ECDSA: absent)
    /// and RFC 4055 (RSA: NULL, or absent as some encoders write it) require.
    pub fn accepts_parameters(self, parameters: Option<AnyRef<'_>>) -> bool {
        match (self, parameters) {
            (_, None) => true,
            (SignatureAlgorithm::RsaPkcs1v15(_), Some(any)) => any.is_null(),
            (SignatureAlgorithm::Ecdsa(_), Some(_)) => false,
        }
    }

    /// Returns the message hash.
    pub fn hash(self) -> HashAlgorithm {
        match self {
            SignatureAlgorithm::Ecdsa(hash) | SignatureAlgorithm::RsaPkcs1v15(hash) => hash,
        }
    }

    /// Returns a name for messages, such as `ECDSA with SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha2_256) => "ECDSA with SHA-256",
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha2_384) => "ECDSA with SHA-384",
            SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha2_512) => "ECDSA with SHA-512",
            SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha2_256) => {
                "RSA PKCS#1 v1.5 with SHA-256"
            }
            SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha2_384) => {
                "RSA PKCS#1 v1.5 with SHA-384"
            }
            SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha2_512) => {
                "RSA PKCS#1 v1.5 with SHA-512"
            }
        }
    }
}

/// A signature verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// An ECDSA P-256 key.
    P256(EcdsaKey),
    /// An ECDSA P-384 key.
    P384(EcdsaKey),
    /// An RSA key of [`MIN_RSA_BITS`] to [`MAX_RSA_BITS`] bits, used with PKCS#1 v1.5 padding.
    Rsa(rsa::PublicKey),
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo holding a P-256, P-384 or RSA (`rsaEncryption`) key.
    ///
    /// # Errors
    ///
    /// [`X509Error::UnsupportedKey`] for other key types, RSA keys outside the size limits and
    /// malformed keys.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, X509Error> {
        let unsupported = |detail: String| X509Error::UnsupportedKey { detail };
        let spki = spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| unsupported(format!("not a DER SubjectPublicKeyInfo: {e}")))?;
        let algorithm = spki.algorithm.oid;
        if algorithm == RSA_ENCRYPTION {
            // The rsa crate checks that the parameters are NULL.
            let key = rsa::PublicKey::try_from(spki)
                .map_err(|e| unsupported(format!("malformed RSA key: {e}")))?;
            return rsa_key(key);
        }
        if algorithm != ID_EC_PUBLIC_KEY {
            return Err(unsupported(format!(
                "key algorithm {algorithm} is neither id-ecPublicKey nor rsaEncryption"
            )));
        }
        let curve = spki
            .algorithm
            .parameters_oid()
            .map_err(|e| unsupported(format!("EC key without a named curve: {e}")))?;
        let point = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| unsupported("key BIT STRING has unused bits".to_owned()))?;
        if curve == SECP256R1 {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| unsupported("invalid P-256 point".to_owned()))?;
            Self::try_from(key)
        } else if curve == SECP384R1 {
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| unsupported("invalid P-384 point".to_owned()))?;
            Self::try_from(key)
        } else {
            Err(unsupported(format!("curve {curve} is not P-256 or P-384")))
        }
    }

    /// Returns the Sigstore `keyDetails` name of the key's default algorithm.
    ///
    /// RSA keys of a size outside 2048, 3072 and 4096 bits have no Sigstore name and return
    /// `PUBLIC_KEY_DETAILS_UNSPECIFIED`.
    pub fn key_details(&self) -> &'static str {
        match self {
            PublicKey::P256(_) => "PKIX_ECDSA_P256_SHA_256",
            PublicKey::P384(_) => "PKIX_ECDSA_P384_SHA_384",
            PublicKey::Rsa(key) => match key.n().bit_width_vartime() {
                2048 => "PKIX_RSA_PKCS1V15_2048_SHA256",
                3072 => "PKIX_RSA_PKCS1V15_3072_SHA256",
                4096 => "PKIX_RSA_PKCS1V15_4096_SHA256",
                _ => "PUBLIC_KEY_DETAILS_UNSPECIFIED",
            },
        }
    }

    /// Returns the hash of the key's default algorithm.
    pub fn hash_algorithm(&self) -> HashAlgorithm {
        match self {
            PublicKey::P256(_) | PublicKey::Rsa(_) => HashAlgorithm::Sha2_256,
            PublicKey::P384(_) => HashAlgorithm::Sha2_384,
        }
    }

    /// Returns the key's default algorithm: ECDSA with the curve's hash, or RSA PKCS#1 v1.5 with
    /// SHA-256.
    pub fn default_algorithm(&self) -> SignatureAlgorithm {
        self.algorithm_with_hash(self.hash_algorithm())
    }

    /// Returns a short key type name for messages, such as `P-256`.
    pub fn type_name(&self) -> &'static str {
        match self {
            PublicKey::P256(_) => "P-256",
            PublicKey::P384(_) => "P-384",
            PublicKey::Rsa(_) => "RSA",
        }
    }

    /// Verifies `signature` over `message` with the key's default algorithm.
    ///
    /// # Errors
    ///
    /// [`X509Error::SignatureInvalid`].
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), X509Error> {
        self.verify_with_algorithm(message, self.default_algorithm(), signature)
    }

    /// Verifies `signature` over `message` hashed with `hash`, with the key's own scheme (ECDSA
    /// or RSA PKCS#1 v1.5).
    ///
    /// # Errors
    ///
    /// [`X509Error::SignatureInvalid`].
    pub fn verify_with_hash(
        &self,
        message: &[u8],
        hash: HashAlgorithm,
        signature: &[u8],
    ) -> Result<(), X509Error> {
        self.verify_with_algorithm(message, self.algorithm_with_hash(hash), signature)
    }

    /// Verifies `signature` over `message` with `algorithm`.
    ///
    /// # Errors
    ///
    /// [`X509Error::KeyAlgorithmMismatch`] when the algorithm needs another key type, otherwise
    /// [`X509Error::SignatureInvalid`].
    pub fn verify_with_algorithm(
        &self,
        message: &[u8],
        algorithm: SignatureAlgorithm,
        signature: &[u8],
    ) -> Result<(), X509Error> {
        self.verify_digest(algorithm, &algorithm.hash().digest(message), signature)
    }

    /// Verifies `signature` over an already computed digest, with the key's own scheme.
    ///
    /// ECDSA uses the digest as given. RSA PKCS#1 v1.5 names the hash inside the signature, so
    /// the digest length selects it: 32 bytes SHA-256, 48 SHA-384 and 64 SHA-512.
    ///
    /// # Errors
    ///
    /// [`X509Error::SignatureInvalid`], also for a signature that is not DER (ECDSA) and for an
    /// RSA digest of another length.
    pub fn verify_prehash(&self, digest: &[u8], signature: &[u8]) -> Result<(), X509Error> {
        let hash = match digest.len() {
            48 => HashAlgorithm::Sha2_384,
            64 => HashAlgorithm::Sha2_512,
            // ECDSA ignores this hash, and RSA rejects a digest of the wrong length below.
            _ => HashAlgorithm::Sha2_256,
        };
        self.verify_digest(self.algorithm_with_hash(hash), digest, signature)
    }

    fn algorithm_with_hash(&self, hash: HashAlgorithm) -> SignatureAlgorithm {
        match self {
            PublicKey::P256(_) | PublicKey::P384(_) => SignatureAlgorithm::Ecdsa(hash),
            PublicKey::Rsa(_) => SignatureAlgorithm::RsaPkcs1v15(hash),
        }
    }

    fn verify_digest(
        &self,
        algorithm: SignatureAlgorithm,
        digest: &[u8],
        signature: &[u8],
    ) -> Result<(), X509Error> {
        let invalid = || X509Error::SignatureInvalid {
            key: self.type_name(),
        };
        match (self, algorithm) {
            (PublicKey::P256(key) | PublicKey::P384(key), SignatureAlgorithm::Ecdsa(_)) => {
                key.verify_digest(digest, signature).map_err(|_| invalid())
            }
            (PublicKey::Rsa(key), SignatureAlgorithm::RsaPkcs1v15(hash)) => {
                // Each call checks that the digest has the hash's output length.
                let verified = match hash {
                    HashAlgorithm::Sha2_256 => {
                        key.pkcs1v15_verify_prehash::<sha2::Sha256>(digest, signature)
                    }
                    HashAlgorithm::Sha2_384 => {
                        key.pkcs1v15_verify_prehash::<sha2::Sha384>(digest, signature)
                    }
                    HashAlgorithm::Sha2_512 => {
                        key.pkcs1v15_verify_prehash::<sha2::Sha512>(digest, signature)
                    }
                };
                verified.map_err(|_| invalid())
            }
            (PublicKey::P256(_) | PublicKey::P384(_), SignatureAlgorithm::RsaPkcs1v15(_))
            | (PublicKey::Rsa(_), SignatureAlgorithm::Ecdsa(_)) => {
                Err(X509Error::KeyAlgorithmMismatch {
                    key: self.type_name(),
                    algorithm: algorithm.name(),
                })
            }
        }
    }
}

impl TryFrom<p256::ecdsa::VerifyingKey> for PublicKey {
    type Error = X509Error;

    /// Wraps a P-256 key, parsing it for the signature backend.
    ///
    /// # Errors
    ///
    /// [`X509Error::UnsupportedKey`] if the backend rejects the point.
    fn try_from(key: p256::ecdsa::VerifyingKey) -> Result<Self, X509Error> {
        EcdsaKey::p256(&key)
            .map(PublicKey::P256)
            .map_err(|_| X509Error::UnsupportedKey {
                detail: "P-256 point rejected by the signature backend".to_owned(),
            })
    }
}

impl TryFrom<p384::ecdsa::VerifyingKey> for PublicKey {
    type Error = X509Error;

    /// Wraps a P-384 key, parsing it for the signature backend.
    ///
    /// # Errors
    ///
    /// [`X509Error::UnsupportedKey`] if the backend rejects the point.
    fn try_from(key: p384::ecdsa::VerifyingKey) -> Result<Self, X509Error> {
        EcdsaKey::p384(&key)
            .map(PublicKey::P384)
            .map_err(|_| X509Error::UnsupportedKey {
                detail: "P-384 point rejected by the signature backend".to_owned(),
            })
    }
}

/// Wraps a DER PKCS#1 `RSAPublicKey` in a SubjectPublicKeyInfo (algorithm `rsaEncryption` with
/// NULL parameters), the form whose SHA-256 is an RFC 6962 log ID.
///
/// # Errors
///
/// [`X509Error::UnsupportedKey`] when the bytes are not a usable RSA key.
pub fn rsa_pkcs1_to_spki_der(pkcs1_der: &[u8]) -> Result<Vec<u8>, X509Error> {
    let unsupported = |detail: String| X509Error::UnsupportedKey { detail };
    let spki = spki::SubjectPublicKeyInfoRef {
        algorithm: spki::AlgorithmIdentifierRef {
            oid: RSA_ENCRYPTION,
            parameters: Some(AnyRef::NULL),
        },
        subject_public_key: BitStringRef::from_bytes(pkcs1_der)
            .map_err(|e| unsupported(format!("PKCS#1 key too long: {e}")))?,
    };
    let der = spki
        .to_der()
        .map_err(|e| unsupported(format!("cannot encode SubjectPublicKeyInfo: {e}")))?;
    // Parsing checks the PKCS#1 structure, the size limits and that nothing trails the key.
    PublicKey::from_spki_der(&der)?;
    Ok(der)
}

fn rsa_key(key: rsa::PublicKey) -> Result<PublicKey, X509Error> {
    let bits = key.n().bit_width_vartime();
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(X509Error::UnsupportedKey {
            detail: format!(
                "RSA modulus has {bits} bits, outside the supported {MIN_RSA_BITS} to {MAX_RSA_BITS}"
            ),
        });
    }
    Ok(PublicKey::Rsa(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::tests::{fixture, rsa_fixture};

    // A 1024-bit RSA SubjectPublicKeyInfo made with `openssl genrsa 1024` for this test.
    const RSA_1024_SPKI: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCtMZCWFyrO9x/pWGubGZa3Dwqs7mzguZyk0cH1Hubey6z6CiU+zolvvQgXbJzs/utAMOrd7w53yV8GYdpdiatasm/lqUy5R9A3/8WkslI05EK3o+RfuANBy49gMKXvNbSIhLMa1gYDYCHlgYRGNmLTgTkZkB5IJUWEAx2FDUKpQQIDAQAB";

    #[test]
    fn rsa_key_verifies_certificate_signature() {
        let Some((leaf, authorities)) = rsa_fixture() else {
            return;
        };
        let ca =
            crate::x509::Certificate::from_der(&authorities[0].cert_chain[0]).expect("CA parses");
        let key = ca.public_key().expect("RSA key");
        assert_eq!(key.type_name(), "RSA");
        assert_eq!(key.key_details(), "PKIX_RSA_PKCS1V15_4096_SHA256");
        assert_eq!(
            key.default_algorithm(),
            SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha2_256)
        );
        let signature = leaf.inner.signature().as_bytes().expect("whole bytes");

        assert_eq!(key.verify(leaf.tbs_der(), signature), Ok(()));
        let digest = HashAlgorithm::Sha2_256.digest(leaf.tbs_der());
        assert_eq!(key.verify_prehash(&digest, signature), Ok(()));

        // The digest length selects SHA-384, which the signature does not name.
        let digest = HashAlgorithm::Sha2_384.digest(leaf.tbs_der());
        assert_eq!(
            key.verify_prehash(&digest, signature),
            Err(X509Error::SignatureInvalid { key: "RSA" })
        );
        let mut flipped = signature.to_vec();
        flipped[10] ^= 0x01;
        assert_eq!(
            key.verify(leaf.tbs_der(), &flipped),
            Err(X509Error::SignatureInvalid { key: "RSA" })
        );
    }

    #[test]
    fn key_algorithm_mismatch_rejected() {
        let Some(fixture) = fixture() else { return };
        let key = fixture.leaf.public_key().expect("P-256 key");
        let rsa = SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha2_256);
        assert_eq!(
            key.verify_with_algorithm(b"message", rsa, &[0; 256]),
            Err(X509Error::KeyAlgorithmMismatch {
                key: "P-256",
                algorithm: "RSA PKCS#1 v1.5 with SHA-256"
            })
        );
    }

    #[test]
    fn public_key_rejects_small_rsa() {
        let der = crate::bundle::decode_proto_base64(RSA_1024_SPKI).expect("base64");
        let err = PublicKey::from_spki_der(&der).expect_err("1024 bits");
        assert!(
            matches!(&err, X509Error::UnsupportedKey { detail } if detail.contains("1024 bits")),
            "{err:?}"
        );
    }

    #[test]
    fn signature_algorithm_from_oid_and_parameters() {
        let rows = [
            (
                "1.2.840.10045.4.3.2",
                Some(SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha2_256)),
            ),
            (
                "1.2.840.10045.4.3.3",
                Some(SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha2_384)),
            ),
            (
                "1.2.840.10045.4.3.4",
                Some(SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha2_512)),
            ),
            (
                "1.2.840.113549.1.1.11",
                Some(SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha2_256)),
            ),
            (
                "1.2.840.113549.1.1.12",
                Some(SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha2_384)),
            ),
            (
                "1.2.840.113549.1.1.13",
                Some(SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha2_512)),
            ),
            // RSASSA-PSS and SHA-1 with RSA are not supported.
            ("1.2.840.113549.1.1.10", None),
            ("1.2.840.113549.1.1.5", None),
        ];
        for (oid, want) in rows {
            let oid = ObjectIdentifier::new(oid).expect("valid OID");
            assert_eq!(SignatureAlgorithm::from_oid(oid), want, "row {oid}");
        }
        let ecdsa = SignatureAlgorithm::Ecdsa(HashAlgorithm::Sha2_256);
        let rsa = SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha2_256);
        let integer = AnyRef::new(der::Tag::Integer, &[1]).expect("INTEGER 1");
        assert!(ecdsa.accepts_parameters(None));
        assert!(!ecdsa.accepts_parameters(Some(AnyRef::NULL)));
        assert!(rsa.accepts_parameters(None));
        assert!(rsa.accepts_parameters(Some(AnyRef::NULL)));
        assert!(!rsa.accepts_parameters(Some(integer)));
    }

    #[test]
    fn rsa_pkcs1_to_spki_rejects_garbage() {
        let err = rsa_pkcs1_to_spki_der(&[0x30, 0x03, 0x02, 0x01, 0x01]).expect_err("no exponent");
        assert!(matches!(err, X509Error::UnsupportedKey { .. }), "{err:?}");
    }
}
