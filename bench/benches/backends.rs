//! Single-threaded signature verification rates of the candidate signature backends.
//!
//! Compares RustCrypto (`p256`, `p384`, `ed25519-dalek`), `ring` 0.17 and `aws-lc-rs` 1.x on
//! ECDSA P-256 with SHA-256, ECDSA P-384 with SHA-384 (DER signatures) and Ed25519. Each row
//! verifies one valid signature over a 64-byte message in a loop for a fixed time after a warm-up.
//! Rows named "prehash" verify over a SHA-256 or SHA-384 digest computed once, which is how
//! `stella-verify` calls the backend. The key parse column times decoding the public key
//! (an uncompressed SEC 1 point or a raw Ed25519 key) on its own.
//!
//! Run with `cargo bench -p stella-bench --bench backends`. `STELLA_BENCH_SECONDS` sets the
//! measured time of each row in seconds (default 2).

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{self as aws, ParsedPublicKey};
use sha2::Digest as _;
use signature::hazmat::PrehashVerifier as _;
use signature::{Signer as _, Verifier as _};

const MESSAGE: &[u8; 64] = b"stella signature backend benchmark: 64 bytes of message text....";
const WARM_UP: Duration = Duration::from_millis(300);
/// Iterations between two clock reads, so that reading the clock costs little per operation.
const BATCH: u32 = 16;

/// One measured operation.
struct Row {
    algorithm: &'static str,
    backend: &'static str,
    operation: &'static str,
    verify: Rate,
    key_parse: Option<Rate>,
}

#[derive(Clone, Copy)]
struct Rate {
    ops_per_second: f64,
}

impl Rate {
    fn micros_per_op(self) -> f64 {
        1e6 / self.ops_per_second
    }
}

/// Runs `operation` for the warm-up and then for `duration`, and returns its rate. Panics when
/// the operation reports failure, so that a broken setup never yields a figure.
fn measure(duration: Duration, mut operation: impl FnMut() -> bool) -> Rate {
    let run = |operation: &mut dyn FnMut() -> bool, length: Duration| {
        let start = Instant::now();
        let mut count: u64 = 0;
        loop {
            for _ in 0..BATCH {
                assert!(operation(), "the benchmarked operation failed");
            }
            count += u64::from(BATCH);
            let elapsed = start.elapsed();
            if elapsed >= length {
                return count as f64 / elapsed.as_secs_f64();
            }
        }
    };
    run(&mut operation, WARM_UP);
    Rate {
        ops_per_second: run(&mut operation, duration),
    }
}

fn p256_rows(duration: Duration) -> Vec<Row> {
    let signing = p256::ecdsa::SigningKey::from_slice(&[7; 32]).expect("valid P-256 scalar");
    let verifying = *signing.verifying_key();
    let point = verifying.to_sec1_point(false);
    let point = point.as_bytes().to_vec();
    let signature: p256::ecdsa::DerSignature = signing.sign(MESSAGE);
    let signature = signature.to_bytes().to_vec();
    let digest = sha2::Sha256::digest(MESSAGE);

    let rust_crypto_parse = measure(duration, || {
        p256::ecdsa::VerifyingKey::from_sec1_bytes(black_box(&point)).is_ok()
    });
    let rust_crypto = measure(duration, || {
        p256::ecdsa::DerSignature::from_bytes(black_box(&signature))
            .is_ok_and(|signature| verifying.verify(black_box(MESSAGE), &signature).is_ok())
    });
    let rust_crypto_prehash = measure(duration, || {
        p256::ecdsa::DerSignature::from_bytes(black_box(&signature)).is_ok_and(|signature| {
            verifying
                .verify_prehash(black_box(&digest), &signature)
                .is_ok()
        })
    });

    let ring_key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        point.as_slice(),
    );
    let ring = measure(duration, || {
        ring_key
            .verify(black_box(MESSAGE), black_box(&signature))
            .is_ok()
    });

    let aws_parse = measure(duration, || {
        ParsedPublicKey::new(&aws::ECDSA_P256_SHA256_ASN1, black_box(&point)).is_ok()
    });
    let aws_key =
        ParsedPublicKey::new(&aws::ECDSA_P256_SHA256_ASN1, &point).expect("valid P-256 point");
    let aws = measure(duration, || {
        aws_key
            .verify_sig(black_box(MESSAGE), black_box(&signature))
            .is_ok()
    });
    let aws_digest =
        aws_lc_rs::digest::Digest::import_less_safe(&digest, &aws_lc_rs::digest::SHA256)
            .expect("32-byte digest");
    let aws_prehash = measure(duration, || {
        aws_key
            .verify_digest_sig(black_box(&aws_digest), black_box(&signature))
            .is_ok()
    });
    let aws_unparsed_key = aws::UnparsedPublicKey::new(&aws::ECDSA_P256_SHA256_ASN1, &point);
    let aws_unparsed = measure(duration, || {
        aws_unparsed_key
            .verify_digest(black_box(&aws_digest), black_box(&signature))
            .is_ok()
    });

    EcdsaRates {
        rust_crypto,
        rust_crypto_prehash,
        rust_crypto_parse,
        ring,
        aws,
        aws_prehash,
        aws_parse,
        aws_unparsed,
    }
    .rows("ECDSA P-256 SHA-256")
}

fn p384_rows(duration: Duration) -> Vec<Row> {
    let signing = p384::ecdsa::SigningKey::from_slice(&[7; 48]).expect("valid P-384 scalar");
    let verifying = *signing.verifying_key();
    let point = verifying.to_sec1_point(false);
    let point = point.as_bytes().to_vec();
    let signature: p384::ecdsa::DerSignature = signing.sign(MESSAGE);
    let signature = signature.to_bytes().to_vec();
    let digest = sha2::Sha384::digest(MESSAGE);

    let rust_crypto_parse = measure(duration, || {
        p384::ecdsa::VerifyingKey::from_sec1_bytes(black_box(&point)).is_ok()
    });
    let rust_crypto = measure(duration, || {
        p384::ecdsa::DerSignature::from_bytes(black_box(&signature))
            .is_ok_and(|signature| verifying.verify(black_box(MESSAGE), &signature).is_ok())
    });
    let rust_crypto_prehash = measure(duration, || {
        p384::ecdsa::DerSignature::from_bytes(black_box(&signature)).is_ok_and(|signature| {
            verifying
                .verify_prehash(black_box(&digest), &signature)
                .is_ok()
        })
    });

    let ring_key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P384_SHA384_ASN1,
        point.as_slice(),
    );
    let ring = measure(duration, || {
        ring_key
            .verify(black_box(MESSAGE), black_box(&signature))
            .is_ok()
    });

    let aws_parse = measure(duration, || {
        ParsedPublicKey::new(&aws::ECDSA_P384_SHA384_ASN1, black_box(&point)).is_ok()
    });
    let aws_key =
        ParsedPublicKey::new(&aws::ECDSA_P384_SHA384_ASN1, &point).expect("valid P-384 point");
    let aws = measure(duration, || {
        aws_key
            .verify_sig(black_box(MESSAGE), black_box(&signature))
            .is_ok()
    });
    let aws_digest =
        aws_lc_rs::digest::Digest::import_less_safe(&digest, &aws_lc_rs::digest::SHA384)
            .expect("48-byte digest");
    let aws_prehash = measure(duration, || {
        aws_key
            .verify_digest_sig(black_box(&aws_digest), black_box(&signature))
            .is_ok()
    });
    let aws_unparsed_key = aws::UnparsedPublicKey::new(&aws::ECDSA_P384_SHA384_ASN1, &point);
    let aws_unparsed = measure(duration, || {
        aws_unparsed_key
            .verify_digest(black_box(&aws_digest), black_box(&signature))
            .is_ok()
    });

    EcdsaRates {
        rust_crypto,
        rust_crypto_prehash,
        rust_crypto_parse,
        ring,
        aws,
        aws_prehash,
        aws_parse,
        aws_unparsed,
    }
    .rows("ECDSA P-384 SHA-384")
}

/// The measured rates of one curve.
struct EcdsaRates {
    rust_crypto: Rate,
    rust_crypto_prehash: Rate,
    rust_crypto_parse: Rate,
    /// ring verifies messages only, and parses the key inside each call.
    ring: Rate,
    aws: Rate,
    aws_prehash: Rate,
    aws_parse: Rate,
    aws_unparsed: Rate,
}

impl EcdsaRates {
    fn rows(self, algorithm: &'static str) -> Vec<Row> {
        let row = |backend, operation, verify, key_parse| Row {
            algorithm,
            backend,
            operation,
            verify,
            key_parse,
        };
        vec![
            row(
                "RustCrypto 0.14",
                "message",
                self.rust_crypto,
                Some(self.rust_crypto_parse),
            ),
            row("RustCrypto 0.14", "prehash", self.rust_crypto_prehash, None),
            row("ring 0.17", "message, key parsed per call", self.ring, None),
            row("aws-lc-rs 1.19", "message", self.aws, Some(self.aws_parse)),
            row("aws-lc-rs 1.19", "prehash", self.aws_prehash, None),
            row(
                "aws-lc-rs 1.19",
                "prehash, key parsed per call",
                self.aws_unparsed,
                None,
            ),
        ]
    }
}

fn ed25519_rows(duration: Duration) -> Vec<Row> {
    let algorithm = "Ed25519";
    let signing = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let public = signing.verifying_key().to_bytes();
    let signature = signing.sign(MESSAGE);
    let signature_bytes = signature.to_bytes();

    let dalek_parse = measure(duration, || {
        ed25519_dalek::VerifyingKey::from_bytes(black_box(&public)).is_ok()
    });
    let dalek_key = signing.verifying_key();
    let dalek_strict = measure(duration, || {
        dalek_key
            .verify_strict(black_box(MESSAGE), black_box(&signature))
            .is_ok()
    });
    let dalek = measure(duration, || {
        dalek_key
            .verify(black_box(MESSAGE), black_box(&signature))
            .is_ok()
    });

    let ring_key =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public.as_slice());
    let ring = measure(duration, || {
        ring_key
            .verify(black_box(MESSAGE), black_box(&signature_bytes))
            .is_ok()
    });

    let aws_parse = measure(duration, || {
        ParsedPublicKey::new(&aws::ED25519, black_box(&public)).is_ok()
    });
    let aws_key = ParsedPublicKey::new(&aws::ED25519, public).expect("valid Ed25519 key");
    let aws = measure(duration, || {
        aws_key
            .verify_sig(black_box(MESSAGE), black_box(&signature_bytes))
            .is_ok()
    });

    vec![
        Row {
            algorithm,
            backend: "ed25519-dalek 3.0",
            operation: "verify_strict",
            verify: dalek_strict,
            key_parse: Some(dalek_parse),
        },
        Row {
            algorithm,
            backend: "ed25519-dalek 3.0",
            operation: "verify",
            verify: dalek,
            key_parse: None,
        },
        Row {
            algorithm,
            backend: "ring 0.17",
            operation: "message, key parsed per call",
            verify: ring,
            key_parse: None,
        },
        Row {
            algorithm,
            backend: "aws-lc-rs 1.19",
            operation: "message",
            verify: aws,
            key_parse: Some(aws_parse),
        },
    ]
}

fn main() {
    // `cargo bench` passes `--bench`, and a name filter may follow it: every row runs anyway.
    let seconds = match std::env::var("STELLA_BENCH_SECONDS") {
        Ok(text) => text
            .parse::<f64>()
            .ok()
            .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
            .unwrap_or_else(|| {
                panic!("STELLA_BENCH_SECONDS={text:?} is not a positive number of seconds")
            }),
        Err(_) => 2.0,
    };
    let duration = Duration::from_secs_f64(seconds);

    let mut rows = p256_rows(duration);
    rows.extend(p384_rows(duration));
    rows.extend(ed25519_rows(duration));

    println!("Single-threaded verification, {seconds} s per row after a 0.3 s warm-up");
    println!();
    println!("| Algorithm | Backend | Operation | Verify ops/s | Verify µs/op | Key parse µs |");
    println!("|---|---|---|---:|---:|---:|");
    for row in rows {
        let key_parse = row.key_parse.map_or_else(
            || "-".to_owned(),
            |rate| format!("{:.2}", rate.micros_per_op()),
        );
        println!(
            "| {} | {} | {} | {:.0} | {:.1} | {} |",
            row.algorithm,
            row.backend,
            row.operation,
            row.verify.ops_per_second,
            row.verify.micros_per_op(),
            key_parse
        );
    }
}
