//! `stella rekor inclusion-batch --origin O --entries-file F`: checks many log entries in one
//! VerifyInclusionStream call.
//!
//! The entries file is JSON Lines: one object `{"index": N, "entry_base64": "..."}` per line,
//! with the standard (RFC 4648, padded) base64 of the exact entry bytes. Blank lines are
//! skipped. The whole file is checked before anything is sent, so a bad line fails the command
//! with a usage error naming the file and line, and no entry is verified.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value, json};

use super::files;
use super::output::{Exit, Failure, Report, codes_text, sorted_codes};
use super::{RekorInclusionBatchArgs, Services};
use crate::attestor::{VerifyInclusionRequest, VerifyInclusionResponse};

/// Maximum number of entries in one file: the most the attestor accepts in one call.
pub const MAX_BATCH_ENTRIES: usize = 1_000_000;

/// One line of the entries file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryLine {
    index: u64,
    entry_base64: String,
}

/// An entry to verify, with the file line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BatchEntry {
    /// One-based line number in the entries file, sent as the request's `sequence`.
    line: u64,
    index: u64,
    entry: Vec<u8>,
}

/// `stella rekor inclusion-batch`: exit 0 when every entry is included, 1 otherwise.
pub async fn run(services: &Services, args: &RekorInclusionBatchArgs) -> Result<Report, Failure> {
    if args.origin.is_empty() {
        return Err(Failure::usage("--origin must not be empty"));
    }
    let bytes = files::read(&args.entries_file)?;
    let entries = parse_entries(&args.entries_file, &bytes)?;

    let requests: Vec<VerifyInclusionRequest> = entries
        .iter()
        .map(|entry| VerifyInclusionRequest {
            origin: args.origin.clone(),
            index: entry.index,
            entry: entry.entry.clone(),
            sequence: entry.line,
        })
        .collect();
    let mut attestor = services.attestor().await?;
    let mut responses = attestor
        .verify_inclusion_stream(tokio_stream::iter(requests))
        .await?;

    let mut results = Vec::with_capacity(entries.len());
    for entry in &entries {
        let Some(response) = responses.next().await? else {
            return Err(Failure::other(format!(
                "the attestor ended the call after {} of {} responses; treat the remaining entries as not included",
                results.len(),
                entries.len()
            )));
        };
        if response.sequence != entry.line {
            return Err(Failure::other(format!(
                "the attestor sent the response to request {} where the response to request {} was expected; the responses are out of order",
                response.sequence, entry.line
            )));
        }
        results.push(response);
    }
    if let Some(extra) = responses.next().await? {
        return Err(Failure::other(format!(
            "the attestor sent an extra response (sequence {}) after the responses to all {} requests",
            extra.sequence,
            entries.len()
        )));
    }

    Ok(batch_report(
        &args.origin,
        &args.entries_file,
        &entries,
        &results,
    ))
}

/// Parses and checks the whole entries file.
fn parse_entries(path: &Path, bytes: &[u8]) -> Result<Vec<BatchEntry>, Failure> {
    let name = path.display();
    let text = std::str::from_utf8(bytes).map_err(|error| {
        Failure::usage(format!(
            "{name}: the entries file is not UTF-8 text: {error}"
        ))
    })?;
    let mut entries = Vec::new();
    for (position, content) in text.lines().enumerate() {
        let line = u64::try_from(position)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        if content.trim().is_empty() {
            continue;
        }
        if entries.len() >= MAX_BATCH_ENTRIES {
            return Err(Failure::usage(format!(
                "{name}: line {line}: more than {MAX_BATCH_ENTRIES} entries; split the file"
            )));
        }
        let parsed: EntryLine = serde_json::from_str(content).map_err(|error| {
            Failure::usage(format!(
                "{name}: line {line}: expected {{\"index\": N, \"entry_base64\": \"...\"}}: {error}"
            ))
        })?;
        let entry = BASE64
            .decode(parsed.entry_base64.as_bytes())
            .map_err(|error| {
                Failure::usage(format!(
                    "{name}: line {line}: entry_base64 is not valid padded base64: {error}"
                ))
            })?;
        entries.push(BatchEntry {
            line,
            index: parsed.index,
            entry,
        });
    }
    if entries.is_empty() {
        return Err(Failure::usage(format!(
            "{name}: the entries file holds no entries; add one JSON object per line"
        )));
    }
    Ok(entries)
}

/// Builds the report: one text line per entry and a summary line.
fn batch_report(
    origin: &str,
    path: &Path,
    entries: &[BatchEntry],
    responses: &[VerifyInclusionResponse],
) -> Report {
    let included = responses
        .iter()
        .filter(|response| response.included)
        .count();
    let all_included = included == entries.len();
    let mut report = Report::new(if all_included {
        Exit::Success
    } else {
        Exit::Failure
    });

    let mut results = Vec::with_capacity(entries.len());
    for (entry, response) in entries.iter().zip(responses) {
        let reason_codes = sorted_codes(&response.reason_codes);
        report.line(result_line(entry, response, &reason_codes));
        let checkpoint = response.checkpoint.as_ref().map(|checkpoint| {
            json!({
                "origin": checkpoint.origin,
                "tree_size": checkpoint.tree_size,
                "root_hash": checkpoint.root_hash,
            })
        });
        results.push(json!({
            "line": entry.line,
            "index": entry.index,
            "included": response.included,
            "checkpoint": checkpoint.unwrap_or(Value::Null),
            "proof_source": response.proof_source,
            "reason_codes": reason_codes,
            "detail": response.detail,
        }));
    }
    report.line(format!(
        "{included} of {} entries of {origin} included",
        entries.len()
    ));
    report
        .field("origin", origin.to_owned())
        .field("entries_file", path.display().to_string())
        .field("total", entries.len())
        .field("included", included)
        .field("all_included", all_included)
        .field("results", results);
    report
}

fn result_line(entry: &BatchEntry, response: &VerifyInclusionResponse, codes: &[String]) -> String {
    let position = format!("line {} index {}", entry.line, entry.index);
    if response.included {
        let (size, root) = response
            .checkpoint
            .as_ref()
            .map(|checkpoint| (checkpoint.tree_size, checkpoint.root_hash.as_str()))
            .unwrap_or((0, ""));
        format!(
            "{position}: included at tree size {size} root {root} (proof from {})",
            response.proof_source
        )
    } else {
        format!(
            "{position}: not included: {}: {}",
            codes_text(codes),
            response.detail
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<BatchEntry>, Failure> {
        parse_entries(Path::new("entries.jsonl"), text.as_bytes())
    }

    #[test]
    fn entries_parse_lines_and_skip_blanks() {
        let entries = parse("{\"index\": 0, \"entry_base64\": \"b25l\"}\n\n{\"index\": 7, \"entry_base64\": \"\"}\n")
            .expect("valid file");
        assert_eq!(
            entries,
            vec![
                BatchEntry {
                    line: 1,
                    index: 0,
                    entry: b"one".to_vec(),
                },
                BatchEntry {
                    line: 3,
                    index: 7,
                    entry: Vec::new(),
                },
            ]
        );
    }

    #[test]
    fn entries_reject_bad_lines() {
        let rows = [
            (
                "not json",
                "{\"index\": 0, \"entry_base64\": \"b25l\"}\nnot json",
                "line 2",
            ),
            (
                "negative index",
                "{\"index\": -1, \"entry_base64\": \"b25l\"}",
                "line 1",
            ),
            (
                "unknown field",
                "{\"index\": 0, \"entry_base64\": \"b25l\", \"x\": 1}",
                "line 1",
            ),
            ("missing entry", "{\"index\": 0}", "line 1"),
            (
                "bad base64",
                "{\"index\": 0, \"entry_base64\": \"b25\"}",
                "line 1",
            ),
            ("empty file", "\n\n", "no entries"),
        ];
        for (name, text, expected) in rows {
            let failure = parse(text).expect_err(name);
            assert_eq!(failure.exit, Exit::Usage, "row {name}");
            assert!(
                failure.message.starts_with("entries.jsonl: "),
                "row {name}: {}",
                failure.message
            );
            assert!(
                failure.message.contains(expected),
                "row {name}: {}",
                failure.message
            );
        }
    }
}
