//! `stella rekor consistency`: the consistency proof between two stored checkpoints of one log,
//! built by the attestor from its cached tiles and checked again here.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use stella_proto::attestor::v1::{
    CheckpointRef, ProveConsistencyRequest, ProveConsistencyResponse,
};
use stella_verify::merkle::{self, Hash};

use super::output::{Exit, Failure, Report, codes_text, sorted_codes};
use super::{RekorConsistencyArgs, Services};
use crate::{ClientError, Service};

/// `stella rekor consistency --origin O --from N --to M`: exit 0 when the checkpoint of size M
/// extends the one of size N, 1 when it is not proven to.
pub async fn prove(services: &Services, args: &RekorConsistencyArgs) -> Result<Report, Failure> {
    if args.origin.is_empty() {
        return Err(Failure::usage("--origin must not be empty"));
    }
    if args.from > args.to {
        return Err(Failure::usage(format!(
            "--from {} is larger than --to {}; give the older, smaller tree size as --from",
            args.from, args.to
        )));
    }
    let mut attestor = services.attestor().await?;
    let mut request = tonic::Request::new(ProveConsistencyRequest {
        origin: args.origin.clone(),
        old_size: args.from,
        new_size: args.to,
    });
    request.set_timeout(services.options.request_timeout);
    let url = attestor.url().to_owned();
    let response = attestor
        .client()
        .prove_consistency(request)
        .await
        .map_err(|status| ClientError::from_status(Service::Attestor, &url, status))?
        .into_inner();

    if response.consistent {
        check_response(&response, args)?;
    }
    Ok(report(&response, args))
}

/// Verifies a response that claims consistency: it must name the requested checkpoints, and its
/// proof must verify between their roots. The attestor already did this, so a failure here
/// means an invalid response.
fn check_response(
    response: &ProveConsistencyResponse,
    args: &RekorConsistencyArgs,
) -> Result<(), Failure> {
    let invalid = |why: String| {
        Failure::other(format!(
            "the attestor reported {} sizes {} and {} consistent, but its response is invalid: {why}; treat them as \
             not proven consistent",
            args.origin, args.from, args.to
        ))
    };
    let old_root = checkpoint_root(response.old_checkpoint.as_ref(), &args.origin, args.from)
        .map_err(&invalid)?;
    let new_root = checkpoint_root(response.new_checkpoint.as_ref(), &args.origin, args.to)
        .map_err(&invalid)?;
    let proof = response
        .proof
        .iter()
        .map(|text| decode_hash(text))
        .collect::<Result<Vec<Hash>, String>>()
        .map_err(&invalid)?;
    merkle::verify_consistency(args.from, args.to, &proof, &old_root, &new_root)
        .map_err(|error| invalid(format!("the proof does not verify: {error}")))
}

/// Returns the root of a response checkpoint after checking that it is the requested one.
fn checkpoint_root(
    checkpoint: Option<&CheckpointRef>,
    origin: &str,
    size: u64,
) -> Result<Hash, String> {
    let checkpoint =
        checkpoint.ok_or_else(|| format!("the checkpoint of size {size} is missing"))?;
    if checkpoint.origin != origin || checkpoint.tree_size != size {
        return Err(format!(
            "it names checkpoint {} size {} instead of {origin} size {size}",
            checkpoint.origin, checkpoint.tree_size
        ));
    }
    decode_hash(&checkpoint.root_hash)
}

fn decode_hash(text: &str) -> Result<Hash, String> {
    let bytes = BASE64
        .decode(text)
        .map_err(|error| format!("hash {text:?} is not base64: {error}"))?;
    Hash::try_from(bytes.as_slice())
        .map_err(|_| format!("hash {text:?} has {} bytes, expected 32", bytes.len()))
}

fn checkpoint_json(checkpoint: Option<&CheckpointRef>) -> Value {
    match checkpoint {
        Some(checkpoint) => json!({
            "origin": checkpoint.origin,
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash,
        }),
        None => Value::Null,
    }
}

fn report(response: &ProveConsistencyResponse, args: &RekorConsistencyArgs) -> Report {
    let reason_codes = sorted_codes(&response.reason_codes);
    let exit = if response.consistent {
        Exit::Success
    } else {
        Exit::Failure
    };
    let mut report = Report::new(exit);
    report
        .field("origin", args.origin.clone())
        .field("old_size", args.from)
        .field("new_size", args.to)
        .field("consistent", response.consistent)
        .field(
            "old_checkpoint",
            checkpoint_json(response.old_checkpoint.as_ref()),
        )
        .field(
            "new_checkpoint",
            checkpoint_json(response.new_checkpoint.as_ref()),
        )
        .field("proof", response.proof.clone())
        .field("reason_codes", reason_codes.clone())
        .field("detail", response.detail.clone())
        .field("missing_tiles", response.missing_tiles.clone());

    let verdict = if response.consistent {
        "consistent"
    } else {
        "not proven consistent"
    };
    report.line(format!(
        "{}: tree size {} is {verdict} with tree size {}",
        args.origin, args.to, args.from
    ));
    for (label, checkpoint) in [
        ("old", &response.old_checkpoint),
        ("new", &response.new_checkpoint),
    ] {
        if let Some(checkpoint) = checkpoint {
            report.line(format!(
                "{label} checkpoint: size {} root {}",
                checkpoint.tree_size, checkpoint.root_hash
            ));
        }
    }
    if response.consistent {
        report.line(format!("proof: {} hashes", response.proof.len()));
        for hash in &response.proof {
            report.line(format!("  {hash}"));
        }
    } else {
        report.line(format!("reason codes: {}", codes_text(&reason_codes)));
    }
    for path in &response.missing_tiles {
        report.line(format!("missing tile: {path}"));
    }
    if !response.detail.is_empty() {
        report.line(format!("detail: {}", response.detail));
    }
    report
}
