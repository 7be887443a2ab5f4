//! Inclusion verification over gRPC against a running attestor: latency of sequential
//! `VerifyInclusion` calls with a cold and then a warm tile node cache, and the rate of one
//! `VerifyInclusionStream` call.

use std::time::{Duration, Instant};

use stella_log_forge::Seed;
use stella_proto::attestor::v1 as pb;
use tonic::codegen::tokio_stream;

use crate::access::BenchClient;

/// Figures of the verification measurements.
pub struct VerificationFigures {
    /// Latencies of the first pass of sequential `VerifyInclusion` calls, which fills the
    /// attestor's node cache.
    pub cold_latencies: Vec<Duration>,
    /// Latencies of a second pass over the same entries, served from the warm node cache.
    pub warm_latencies: Vec<Duration>,
    /// Requests in the `VerifyInclusionStream` call.
    pub stream_requests: usize,
    /// Wall time of that call, from sending the first request to reading the last response.
    pub stream_time: Duration,
}

/// Builds the request that proves entry `index` of the forged log.
fn inclusion_request(origin: &str, seed: &Seed, index: u64, sequence: u64) -> pb::VerifyInclusionRequest {
    pb::VerifyInclusionRequest {
        origin: origin.to_owned(),
        index,
        entry: seed.entry(index).to_vec(),
        sequence,
    }
}

/// Times one `VerifyInclusion` call per entry of `indexes`, one after another, and fails when an
/// entry is not reported as included.
async fn sequential_pass(
    client: &mut BenchClient,
    origin: &str,
    seed: &Seed,
    indexes: &[u64],
) -> Result<Vec<Duration>, String> {
    let mut latencies = Vec::with_capacity(indexes.len());
    for &index in indexes {
        let request = inclusion_request(origin, seed, index, 0);
        let start = Instant::now();
        let response = client
            .verify_inclusion(request)
            .await
            .map_err(|status| format!("VerifyInclusion of entry {index} failed: {status}"))?
            .into_inner();
        latencies.push(start.elapsed());
        if !response.included {
            return Err(format!(
                "entry {index} not included: {:?} {}",
                response.reason_codes, response.detail
            ));
        }
    }
    Ok(latencies)
}

/// Measures sequential calls over `call_indexes` twice (cold, then warm), then sends every entry
/// of `stream_indexes` in one `VerifyInclusionStream` call.
pub async fn measure(
    client: &mut BenchClient,
    origin: &str,
    seed: &Seed,
    call_indexes: &[u64],
    stream_indexes: &[u64],
) -> Result<VerificationFigures, String> {
    let cold_latencies = sequential_pass(client, origin, seed, call_indexes).await?;
    let warm_latencies = sequential_pass(client, origin, seed, call_indexes).await?;

    let requests: Vec<pb::VerifyInclusionRequest> = stream_indexes
        .iter()
        .zip(0_u64..)
        .map(|(&index, sequence)| inclusion_request(origin, seed, index, sequence))
        .collect();
    let stream_requests = requests.len();
    let start = Instant::now();
    let mut responses = client
        .verify_inclusion_stream(tokio_stream::iter(requests))
        .await
        .map_err(|status| format!("VerifyInclusionStream failed: {status}"))?
        .into_inner();
    let mut received = 0_usize;
    while let Some(response) = responses
        .message()
        .await
        .map_err(|status| format!("VerifyInclusionStream failed after {received} responses: {status}"))?
    {
        if !response.included {
            return Err(format!(
                "stream request {} not included: {:?} {}",
                response.sequence, response.reason_codes, response.detail
            ));
        }
        received = received.saturating_add(1);
    }
    let stream_time = start.elapsed();
    if received != stream_requests {
        return Err(format!(
            "VerifyInclusionStream returned {received} responses to {stream_requests} requests"
        ));
    }

    Ok(VerificationFigures {
        cold_latencies,
        warm_latencies,
        stream_requests,
        stream_time,
    })
}

/// Returns the `percent` percentile of sorted latencies (nearest rank).
pub fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or(Duration::ZERO)
}

/// Formats latencies as "p50 X ms, p99 Y ms, Z calls/s", with calls/s over their sum.
pub fn describe_latencies(latencies: &[Duration]) -> String {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let total: Duration = sorted.iter().sum();
    let per_second = sorted.len() as f64 / total.as_secs_f64();
    format!(
        "p50 {:.3} ms, p99 {:.3} ms, {per_second:.0} calls/s",
        percentile(&sorted, 50).as_secs_f64() * 1000.0,
        percentile(&sorted, 99).as_secs_f64() * 1000.0
    )
}

/// Returns the sequential calls per second of `latencies`.
pub fn calls_per_second(latencies: &[Duration]) -> f64 {
    let total: Duration = latencies.iter().sum();
    latencies.len() as f64 / total.as_secs_f64()
}
