//! Witness cosignatures (<https://c2sp.org/tlog-cosignature>) on the checkpoint that proves an
//! entry, as the report's `TlogRef` lists them.
//!
//! Only cosignature/v1 signatures (note key type `0x04`) by witness keys of the trust set count.
//! Each one carries the witness's own timestamp, which policies use as the checkpoint's time.

use crate::checkpoint::VerifiedCheckpoint;
use crate::note::{KeyType, NoteVerifier};
use crate::report::WitnessCosignature;
use crate::trust_root::TrustSet;

/// Returns the cosignature/v1 witness keys of the trust set.
pub(super) fn witness_verifiers(trust: &TrustSet) -> Vec<&NoteVerifier> {
    trust
        .note_verifiers
        .iter()
        .filter(|verifier| verifier.key_type() == KeyType::CosignatureEd25519)
        .collect()
}

/// Returns the checkpoint's verified cosignatures whose key name and key ID are those of one of
/// `witnesses`, sorted by witness name, then timestamp, without repeated pairs.
///
/// The inclusion source verified the checkpoint, so its cosignatures verified under the keys the
/// source was given. The match against `witnesses` keeps a source that was given other keys from
/// adding witnesses that the trust set does not list.
pub(super) fn trusted_cosignatures(
    checkpoint: &VerifiedCheckpoint,
    witnesses: &[&NoteVerifier],
) -> Vec<WitnessCosignature> {
    let mut cosignatures: Vec<WitnessCosignature> = checkpoint
        .cosignatures()
        .iter()
        .filter(|signature| {
            witnesses.iter().any(|witness| {
                witness.name() == signature.name && witness.key_id() == signature.key_id
            })
        })
        .filter_map(|signature| {
            // Every cosignature/v1 signature carries a timestamp. One past i64::MAX seconds is
            // no real time, so that cosignature is left out.
            let timestamp = i64::try_from(signature.timestamp?).ok()?;
            Some(WitnessCosignature {
                witness: signature.name.clone(),
                timestamp,
            })
        })
        .collect();
    cosignatures.sort();
    // Two keys of one witness (during a key rotation) may cosign with the same timestamp.
    cosignatures.dedup();
    cosignatures
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use ed25519_dalek::{Signer as _, SigningKey};

    use super::super::tlog::tests::{Candidates, happy_rekor2_case};
    use super::super::{
        Artifact, BundleInclusionSource, InclusionSource, Outcome, VerifyInput, verify_bundle,
        verify_bundle_with_own_proof,
    };
    use super::*;
    use crate::note::parse_note;
    use crate::report::EntryReport;

    /// Origin and leaf index of the `rekor2-happy-path` entry.
    const ORIGIN: &str = "log2025-alpha1.rekor.sigstage.dev";
    const INDEX: u64 = 735;

    /// Verification time of the tests, within the case's trusted root.
    const NOW: i64 = 1_780_000_000;

    /// A witness key of the tests.
    struct Witness {
        name: &'static str,
        secret: [u8; 32],
    }

    const WITNESS_A: Witness = Witness {
        name: "witness-a.example",
        secret: [0xa1; 32],
    };
    /// A second key named like [`WITNESS_A`], as during a key rotation.
    const WITNESS_A_ROTATED: Witness = Witness {
        name: "witness-a.example",
        secret: [0xa2; 32],
    };
    const WITNESS_B: Witness = Witness {
        name: "witness-b.example",
        secret: [0xb1; 32],
    };

    impl Witness {
        fn verifier(&self) -> NoteVerifier {
            let key = SigningKey::from_bytes(&self.secret);
            NoteVerifier::cosignature_ed25519(self.name, key.verifying_key().as_bytes())
                .expect("witness verifier")
        }

        /// Returns the cosignature/v1 signature line of this witness over checkpoint `text` at
        /// `timestamp`.
        fn cosignature_line(&self, text: &str, timestamp: u64) -> String {
            let key = SigningKey::from_bytes(&self.secret);
            let message = format!("cosignature/v1\ntime {timestamp}\n{text}");
            let mut payload = self.verifier().key_id().to_be_bytes().to_vec();
            payload.extend_from_slice(&timestamp.to_be_bytes());
            payload.extend_from_slice(&key.sign(message.as_bytes()).to_bytes());
            format!("\u{2014} {} {}\n", self.name, STANDARD.encode(payload))
        }
    }

    /// Returns the bundle JSON with a cosignature line of each (witness, timestamp) appended to
    /// its checkpoint.
    fn cosigned_bundle(bundle_json: &[u8], cosigners: &[(&Witness, u64)]) -> Vec<u8> {
        let mut json: serde_json::Value = serde_json::from_slice(bundle_json).expect("bundle JSON");
        let envelope = json
            .pointer_mut("/verificationMaterial/tlogEntries/0/inclusionProof/checkpoint/envelope")
            .expect("checkpoint envelope");
        let mut note = envelope.as_str().expect("envelope string").to_owned();
        let text = parse_note(note.as_bytes()).expect("checkpoint note").text;
        for (witness, timestamp) in cosigners {
            note.push_str(&witness.cosignature_line(&text, *timestamp));
        }
        *envelope = note.into();
        serde_json::to_vec(&json).expect("serialize bundle")
    }

    fn verify_own_proof(trust: &TrustSet, bundle_json: &[u8]) -> EntryReport {
        verify_bundle_with_own_proof(&VerifyInput {
            bundle_json,
            trust,
            artifact: Artifact::None,
            now: NOW,
        })
    }

    fn cosignature(witness: &Witness, timestamp: i64) -> WitnessCosignature {
        WitnessCosignature {
            witness: witness.name.to_owned(),
            timestamp,
        }
    }

    #[test]
    fn tlog_lists_trusted_cosignatures_only() {
        let Some((plain_trust, bundle_json)) = happy_rekor2_case() else {
            return;
        };
        let plain = verify_own_proof(&plain_trust, &bundle_json);
        assert_eq!(plain.outcome, Outcome::Verified, "{:?}", plain.detail);

        struct Row {
            name: &'static str,
            cosigners: Vec<(&'static Witness, u64)>,
            trusted: Vec<&'static Witness>,
            expected: Vec<WitnessCosignature>,
        }
        let rows = [
            Row {
                name: "trusted witness",
                cosigners: vec![(&WITNESS_A, 1_700_000_300)],
                trusted: vec![&WITNESS_A],
                expected: vec![cosignature(&WITNESS_A, 1_700_000_300)],
            },
            Row {
                name: "untrusted witness",
                cosigners: vec![(&WITNESS_A, 1_700_000_300)],
                trusted: Vec::new(),
                expected: Vec::new(),
            },
            Row {
                name: "one of two witnesses trusted",
                cosigners: vec![(&WITNESS_A, 1_700_000_300), (&WITNESS_B, 1_700_000_200)],
                trusted: vec![&WITNESS_B],
                expected: vec![cosignature(&WITNESS_B, 1_700_000_200)],
            },
            Row {
                name: "sorted by witness, then timestamp",
                cosigners: vec![
                    (&WITNESS_B, 1_700_000_200),
                    (&WITNESS_A, 1_700_000_300),
                    (&WITNESS_A_ROTATED, 1_700_000_100),
                ],
                trusted: vec![&WITNESS_A, &WITNESS_A_ROTATED, &WITNESS_B],
                expected: vec![
                    cosignature(&WITNESS_A, 1_700_000_100),
                    cosignature(&WITNESS_A, 1_700_000_300),
                    cosignature(&WITNESS_B, 1_700_000_200),
                ],
            },
            Row {
                name: "equal pairs listed once",
                cosigners: vec![
                    (&WITNESS_A, 1_700_000_300),
                    (&WITNESS_A_ROTATED, 1_700_000_300),
                ],
                trusted: vec![&WITNESS_A, &WITNESS_A_ROTATED],
                expected: vec![cosignature(&WITNESS_A, 1_700_000_300)],
            },
        ];

        for row in rows {
            let name = row.name;
            let mut trust = plain_trust.clone();
            trust.note_verifiers = row
                .trusted
                .iter()
                .map(|witness| witness.verifier())
                .collect();
            let cosigned = cosigned_bundle(&bundle_json, &row.cosigners);

            let report = verify_own_proof(&trust, &cosigned);
            assert_eq!(
                report.outcome,
                Outcome::Verified,
                "row {name}: {:?}",
                report.detail
            );
            let tlog = report.tlog.clone().expect("tlog reference");
            assert_eq!(tlog.cosignatures, row.expected, "row {name}");

            // Apart from the cosignatures, the report is that of the checkpoint without them.
            let mut without = report;
            if let Some(tlog) = &mut without.tlog {
                tlog.cosignatures.clear();
            }
            assert_eq!(without, plain, "row {name}");
        }
    }

    #[test]
    fn source_witness_outside_trust_set_ignored() {
        let Some((plain_trust, bundle_json)) = happy_rekor2_case() else {
            return;
        };
        let cosigned = cosigned_bundle(&bundle_json, &[(&WITNESS_A, 1_700_000_300)]);
        let bundle = crate::bundle::parse_bundle(&cosigned).expect("bundle parses");

        // The source verifies the checkpoint with the witness key, which the trust set lacks.
        let mut source_keys = plain_trust.checkpoint_verifiers();
        source_keys.push(WITNESS_A.verifier());
        let candidate = BundleInclusionSource::new(&bundle, source_keys)
            .inclusion(ORIGIN, INDEX)
            .expect("own proof");
        assert_eq!(
            candidate.checkpoint.cosignatures().len(),
            1,
            "the source must have verified the cosignature"
        );

        // The trust set lists no witness, another witness, or another key of the same name.
        let rows: [(&str, Vec<&Witness>); 3] = [
            ("no witness", Vec::new()),
            ("other witness", vec![&WITNESS_B]),
            ("other key of the same name", vec![&WITNESS_A_ROTATED]),
        ];
        for (name, trusted) in rows {
            let mut trust = plain_trust.clone();
            trust.note_verifiers = trusted.iter().map(|witness| witness.verifier()).collect();
            let input = VerifyInput {
                bundle_json: &cosigned,
                trust: &trust,
                artifact: Artifact::None,
                now: NOW,
            };
            let report = verify_bundle(&input, &Candidates(vec![candidate.clone()]));
            assert_eq!(
                report.outcome,
                Outcome::Verified,
                "row {name}: {:?}",
                report.detail
            );
            let tlog = report.tlog.expect("tlog reference");
            assert_eq!(tlog.cosignatures, Vec::new(), "row {name}");
        }
    }
}
