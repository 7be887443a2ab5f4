//! ECDSA P-256 and P-384 signature checks, done by aws-lc-rs.
//!
//! aws-lc-rs replaces the RustCrypto `p256` and `p384` 0.14 arithmetic here because it verified
//! 5.4 times as many P-256 and 4.6 times as many P-384 signatures per second on one AMD EPYC core
//! (`cargo bench -p stella-bench --bench backends`, figures in docs/benchmarks.md). RustCrypto
//! still decodes keys and DER signatures, so the accepted encodings stay those of the `ecdsa`
//! crate. Ed25519 stays on ed25519-dalek (see `note/keys.rs`) and RSA on the `rsa` crate.

use std::fmt;

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::signature::{self as aws, EcdsaVerificationAlgorithm, ParsedPublicKey};
use signature::hazmat::PrehashVerifier as _;

/// A NIST curve of an ECDSA key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

impl Curve {
    /// Returns the aws-lc-rs algorithm that verifies a digest of `digest_len` bytes on this curve,
    /// or `None` for a length that is not a SHA-256, SHA-384 or SHA-512 output.
    fn algorithm(self, digest_len: usize) -> Option<AlgorithmForDigest> {
        let (algorithm, hash) = match (self, digest_len) {
            (Curve::P256, 32) => (&aws::ECDSA_P256_SHA256_ASN1, &digest::SHA256),
            (Curve::P256, 48) => (&aws::ECDSA_P256_SHA384_ASN1, &digest::SHA384),
            (Curve::P256, 64) => (&aws::ECDSA_P256_SHA512_ASN1, &digest::SHA512),
            (Curve::P384, 32) => (&aws::ECDSA_P384_SHA256_ASN1, &digest::SHA256),
            (Curve::P384, 48) => (&aws::ECDSA_P384_SHA384_ASN1, &digest::SHA384),
            (Curve::P384, 64) => (&aws::ECDSA_P384_SHA512_ASN1, &digest::SHA512),
            _ => return None,
        };
        Some(AlgorithmForDigest { algorithm, hash })
    }

    /// Returns the output length of the curve's own hash: SHA-256 for P-256, SHA-384 for P-384.
    fn default_digest_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }
}

/// An aws-lc-rs verification algorithm and the hash whose digest it accepts.
struct AlgorithmForDigest {
    algorithm: &'static EcdsaVerificationAlgorithm,
    hash: &'static digest::Algorithm,
}

/// An ECDSA public key, parsed once for aws-lc-rs.
#[derive(Clone)]
pub struct EcdsaKey {
    curve: Curve,
    /// The uncompressed SEC 1 point.
    point: Box<[u8]>,
    /// The key parsed for the curve's own hash, which nearly every signature uses.
    parsed: ParsedPublicKey,
}

impl EcdsaKey {
    /// Builds the key of a P-256 point that `p256` has already validated.
    pub(crate) fn p256(key: &p256::ecdsa::VerifyingKey) -> Result<Self, KeyRejected> {
        Self::new(Curve::P256, &key.to_sec1_point(false).to_bytes())
    }

    /// Builds the key of a P-384 point that `p384` has already validated.
    pub(crate) fn p384(key: &p384::ecdsa::VerifyingKey) -> Result<Self, KeyRejected> {
        Self::new(Curve::P384, &key.to_sec1_point(false).to_bytes())
    }

    fn new(curve: Curve, point: &[u8]) -> Result<Self, KeyRejected> {
        let default = curve
            .algorithm(curve.default_digest_len())
            .ok_or(KeyRejected)?;
        let parsed = ParsedPublicKey::new(default.algorithm, point).map_err(|_| KeyRejected)?;
        Ok(Self {
            curve,
            point: point.into(),
            parsed,
        })
    }

    /// Returns the uncompressed SEC 1 encoding of the public point.
    pub fn sec1_point(&self) -> &[u8] {
        &self.point
    }

    /// Verifies a DER `ECDSA-Sig-Value` over a digest of any length, used as given.
    ///
    /// A digest longer than the curve's order is truncated to the order's length, and a shorter
    /// one is read as a smaller integer, as FIPS 186-5 and the RustCrypto `ecdsa` crate do.
    /// High-S signatures are accepted, as the `ecdsa` crate accepts them for these curves.
    pub(crate) fn verify_digest(&self, digest: &[u8], signature: &[u8]) -> Result<(), Invalid> {
        // The `ecdsa` crate decides which encodings are DER and which r and s are in range, so
        // this backend accepts exactly the signatures the RustCrypto one did.
        let der_ok = match self.curve {
            Curve::P256 => p256::ecdsa::Signature::from_der(signature).is_ok(),
            Curve::P384 => p384::ecdsa::Signature::from_der(signature).is_ok(),
        };
        if !der_ok {
            return Err(Invalid);
        }

        let Some(for_digest) = self.curve.algorithm(digest.len()) else {
            // aws-lc-rs takes only digests of its named hash functions, so other lengths (such as
            // a 20-byte SHA-1 digest) go to the RustCrypto arithmetic.
            return self.verify_digest_rust_crypto(digest, signature);
        };
        let imported = Digest::import_less_safe(digest, for_digest.hash).map_err(|_| Invalid)?;
        let verified = if digest.len() == self.curve.default_digest_len() {
            self.parsed.verify_digest_sig(&imported, signature)
        } else {
            // A digest of another hash needs a key parsed for that algorithm. Such signatures
            // are rare, so the key is parsed for each one (1 to 2 µs in the backend benchmark).
            aws::UnparsedPublicKey::new(for_digest.algorithm, &self.point)
                .verify_digest(&imported, signature)
        };
        verified.map_err(|_| Invalid)
    }

    fn verify_digest_rust_crypto(&self, digest: &[u8], signature: &[u8]) -> Result<(), Invalid> {
        match self.curve {
            Curve::P256 => {
                let key =
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.point).map_err(|_| Invalid)?;
                let signature = p256::ecdsa::Signature::from_der(signature).map_err(|_| Invalid)?;
                key.verify_prehash(digest, &signature).map_err(|_| Invalid)
            }
            Curve::P384 => {
                let key =
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(&self.point).map_err(|_| Invalid)?;
                let signature = p384::ecdsa::Signature::from_der(signature).map_err(|_| Invalid)?;
                key.verify_prehash(digest, &signature).map_err(|_| Invalid)
            }
        }
    }
}

impl PartialEq for EcdsaKey {
    fn eq(&self, other: &Self) -> bool {
        self.curve == other.curve && self.point == other.point
    }
}

impl Eq for EcdsaKey {}

impl fmt::Debug for EcdsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcdsaKey")
            .field("curve", &self.curve)
            .field("point", &hex::encode(&self.point))
            .finish()
    }
}

/// aws-lc-rs did not accept a point that RustCrypto had validated.
#[derive(Debug)]
pub(crate) struct KeyRejected;

/// The signature did not verify, or was not a DER `ECDSA-Sig-Value` with r and s in range.
#[derive(Debug)]
pub(crate) struct Invalid;

#[cfg(test)]
mod tests {
    //! Pins the signatures and digests that `EcdsaKey::verify_digest` accepts against the
    //! RustCrypto prehash check it replaced.

    use signature::hazmat::{PrehashSigner as _, PrehashVerifier as _};

    use super::*;

    const P256_ORDER: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    const P384_ORDER: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";

    /// One curve's key with the RustCrypto check and signer to compare against.
    struct Fixture {
        name: &'static str,
        key: EcdsaKey,
        field_len: usize,
        order: Vec<u8>,
        /// The check that `EcdsaKey::verify_digest` replaced: a DER signature and a prehash.
        rust_crypto_verify: Box<dyn Fn(&[u8], &[u8]) -> bool>,
        /// Signs a prehash.
        sign: Box<dyn Fn(&[u8]) -> Signed>,
    }

    /// One signature in three encodings.
    struct Signed {
        der: Vec<u8>,
        /// The DER signature with s replaced by n - s.
        negated_der: Vec<u8>,
        /// The fixed-size big-endian r || s.
        fixed: Vec<u8>,
    }

    fn p256_fixture() -> Fixture {
        let signing = p256::ecdsa::SigningKey::from_slice(&[7; 32]).expect("valid scalar");
        let verifying = *signing.verifying_key();
        Fixture {
            name: "P-256",
            key: EcdsaKey::p256(&verifying).expect("valid point"),
            field_len: 32,
            order: hex::decode(P256_ORDER).expect("hex"),
            rust_crypto_verify: Box::new(move |signature, digest| {
                p256::ecdsa::DerSignature::from_bytes(signature)
                    .is_ok_and(|signature| verifying.verify_prehash(digest, &signature).is_ok())
            }),
            sign: Box::new(move |digest| {
                let signature: p256::ecdsa::Signature =
                    signing.sign_prehash(digest).expect("signs");
                let (r, s) = signature.split_scalars();
                let negated = p256::ecdsa::Signature::from_scalars(r, -*s).expect("in range");
                Signed {
                    der: signature.to_der().to_bytes().to_vec(),
                    negated_der: negated.to_der().to_bytes().to_vec(),
                    fixed: signature.to_bytes().to_vec(),
                }
            }),
        }
    }

    fn p384_fixture() -> Fixture {
        let signing = p384::ecdsa::SigningKey::from_slice(&[7; 48]).expect("valid scalar");
        let verifying = *signing.verifying_key();
        Fixture {
            name: "P-384",
            key: EcdsaKey::p384(&verifying).expect("valid point"),
            field_len: 48,
            order: hex::decode(P384_ORDER).expect("hex"),
            rust_crypto_verify: Box::new(move |signature, digest| {
                p384::ecdsa::DerSignature::from_bytes(signature)
                    .is_ok_and(|signature| verifying.verify_prehash(digest, &signature).is_ok())
            }),
            sign: Box::new(move |digest| {
                let signature: p384::ecdsa::Signature =
                    signing.sign_prehash(digest).expect("signs");
                let (r, s) = signature.split_scalars();
                let negated = p384::ecdsa::Signature::from_scalars(r, -*s).expect("in range");
                Signed {
                    der: signature.to_der().to_bytes().to_vec(),
                    negated_der: negated.to_der().to_bytes().to_vec(),
                    fixed: signature.to_bytes().to_vec(),
                }
            }),
        }
    }

    fn fixtures() -> [Fixture; 2] {
        [p256_fixture(), p384_fixture()]
    }

    /// Encodes SEQUENCE { INTEGER r, INTEGER s } from raw INTEGER contents, which may be
    /// non-minimal or negative on purpose. Every length must be below 128.
    fn der(r: &[u8], s: &[u8]) -> Vec<u8> {
        let mut out = vec![0x30, (r.len() + s.len() + 4) as u8];
        for integer in [r, s] {
            out.extend([0x02, integer.len() as u8]);
            out.extend_from_slice(integer);
        }
        out
    }

    /// Splits a short-form DER signature into the contents of its r and s INTEGERs.
    fn integers(signature: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let r_len = usize::from(signature[3]);
        let r = signature[4..4 + r_len].to_vec();
        let s = signature[6 + r_len..].to_vec();
        (r, s)
    }

    fn assert_case(fixture: &Fixture, case: &str, signature: &[u8], digest: &[u8], want: bool) {
        let name = fixture.name;
        assert_eq!(
            fixture.key.verify_digest(digest, signature).is_ok(),
            want,
            "{name} {case}: aws-lc-rs backend"
        );
        assert_eq!(
            (fixture.rust_crypto_verify)(signature, digest),
            want,
            "{name} {case}: RustCrypto"
        );
    }

    #[test]
    fn ecdsa_der_edge_cases() {
        for fixture in fixtures() {
            let digest = vec![0x5a; fixture.field_len];
            let Signed {
                der: signature,
                negated_der,
                fixed,
            } = (fixture.sign)(&digest);
            let (r, s) = integers(&signature);

            let mut trailing = signature.clone();
            trailing.push(0);
            let mut long_form = vec![0x30, 0x81];
            long_form.extend_from_slice(&signature[1..]);
            let mut set_tag = signature.clone();
            set_tag[0] = 0x31;
            let mut padded_r = vec![0];
            padded_r.extend_from_slice(&r);
            let mut negative_r = vec![0x80];
            negative_r.extend_from_slice(&r[r.len() - (fixture.field_len - 1)..]);
            let mut order = vec![0];
            order.extend_from_slice(&fixture.order);

            let cases: [(&str, Vec<u8>, bool); 14] = [
                ("valid", signature.clone(), true),
                // RFC 5280 and X9.62 verifiers accept either S, and so did RustCrypto.
                ("negated s (other half of the order)", negated_der, true),
                ("trailing byte", trailing, false),
                ("long-form length", long_form, false),
                ("SET tag", set_tag, false),
                ("r with a redundant leading zero", der(&padded_r, &s), false),
                ("negative r", der(&negative_r, &s), false),
                ("r zero", der(&[0], &s), false),
                ("s zero", der(&r, &[0]), false),
                ("r equal to the order", der(&order, &s), false),
                ("s equal to the order", der(&r, &order), false),
                ("fixed-size r and s", fixed, false),
                ("empty", Vec::new(), false),
                ("r and s swapped", der(&s, &r), false),
            ];
            for (case, signature, want) in cases {
                assert_case(&fixture, case, &signature, &digest, want);
            }
        }
    }

    #[test]
    fn ecdsa_digest_lengths() {
        for fixture in fixtures() {
            for len in [32, 48, 64] {
                let digest: Vec<u8> = (0..len).map(|i| i as u8 ^ 0xa5).collect();
                let signature = (fixture.sign)(&digest).der;
                assert_case(
                    &fixture,
                    &format!("{len}-byte digest"),
                    &signature,
                    &digest,
                    true,
                );

                // Bytes past the order length are truncated away, so changing them keeps the
                // signature valid; a change inside the order length does not.
                let mut last = digest.clone();
                *last.last_mut().expect("non-empty") ^= 1;
                let beyond_order = len > fixture.field_len;
                let case = format!("{len}-byte digest, last byte changed");
                assert_case(&fixture, &case, &signature, &last, beyond_order);
                let mut first = digest.clone();
                first[0] ^= 1;
                let case = format!("{len}-byte digest, first byte changed");
                assert_case(&fixture, &case, &signature, &first, false);
            }

            // aws-lc-rs has no algorithm for these lengths, so they take the RustCrypto path. A
            // short digest is read as a smaller integer, the same as its zero-padded form.
            for len in [0, 1, 20] {
                let digest: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x3c).collect();
                let mut padded = vec![0; fixture.field_len - len];
                padded.extend_from_slice(&digest);
                let signature = (fixture.sign)(&padded).der;
                assert_case(
                    &fixture,
                    &format!("{len}-byte digest"),
                    &signature,
                    &digest,
                    true,
                );
                let mut other = padded.clone();
                other[fixture.field_len - 1] ^= 0x80;
                let case = format!("{len}-byte digest, other value");
                assert_case(&fixture, &case, &signature, &other, false);
            }
        }
    }

    #[test]
    fn ecdsa_mutations_match_rust_crypto() {
        for fixture in fixtures() {
            let digest = vec![0xc3; fixture.field_len];
            let signature = (fixture.sign)(&digest).der;
            let mut variants = Vec::new();
            for bit in 0..signature.len() * 8 {
                let mut flipped = signature.clone();
                flipped[bit / 8] ^= 1 << (bit % 8);
                variants.push((format!("bit {bit} flipped"), flipped));
            }
            for len in 0..signature.len() {
                variants.push((format!("cut to {len} bytes"), signature[..len].to_vec()));
            }
            for (case, variant) in variants {
                assert_eq!(
                    fixture.key.verify_digest(&digest, &variant).is_ok(),
                    (fixture.rust_crypto_verify)(&variant, &digest),
                    "{} {case}",
                    fixture.name
                );
            }
        }
    }

    #[test]
    fn ecdsa_key_equality_and_point() {
        let first = p256_fixture().key;
        let again = p256_fixture().key;
        let other_curve = p384_fixture().key;
        assert_eq!(first, again);
        assert_ne!(first, other_curve);
        assert_eq!(first.sec1_point().len(), 65);
        assert_eq!(first.sec1_point()[0], 0x04);
        assert_eq!(other_curve.sec1_point().len(), 97);
    }
}
