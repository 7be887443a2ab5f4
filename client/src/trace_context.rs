//! The W3C trace context (`traceparent` header, version 00) that every request of this process
//! carries, so that the services' spans of one `stella` command form one trace.
//!
//! When the environment variable `TRACEPARENT` contains a valid header, requests carry it
//! unchanged and the command joins the caller's trace. Otherwise the process starts a trace with
//! a random trace id. The CLI exports no spans of its own.
//!
//! NOTE: a fresh trace names a random parent span id that no collector receives, so a trace
//! viewer may show the services' top spans as children of a missing span.

use std::sync::OnceLock;

/// Environment variable whose `traceparent` value a command continues.
pub const TRACEPARENT_ENV: &str = "TRACEPARENT";

/// gRPC metadata key of the W3C trace context.
pub const TRACEPARENT_KEY: &str = "traceparent";

/// The `traceparent` value of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    header: String,
}

impl TraceParent {
    /// Parses a `traceparent` header of version 00: `00-<32 hex trace id>-<16 hex parent id>-<2
    /// hex flags>`, lowercase, with neither id all zeros. Returns `None` for any other value.
    pub fn parse(header: &str) -> Option<TraceParent> {
        let parts: Vec<&str> = header.split('-').collect();
        let [version, trace_id, parent_id, flags] = parts.as_slice() else {
            return None;
        };
        let is_lower_hex = |text: &str, len: usize| {
            text.len() == len
                && text
                    .bytes()
                    .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        };
        let is_zero = |text: &str| text.bytes().all(|byte| byte == b'0');
        let valid = *version == "00"
            && is_lower_hex(trace_id, 32)
            && is_lower_hex(parent_id, 16)
            && is_lower_hex(flags, 2)
            && !is_zero(trace_id)
            && !is_zero(parent_id);
        valid.then(|| TraceParent {
            header: header.to_owned(),
        })
    }

    /// Starts a sampled trace from 24 random bytes: a 16-byte trace id and an 8-byte parent id.
    /// Returns `None` when the system random number generator fails or returns zeros.
    pub fn random() -> Option<TraceParent> {
        let mut bytes = [0_u8; 24];
        getrandom::fill(&mut bytes).ok()?;
        let (trace_id, parent_id) = bytes.split_at(16);
        TraceParent::parse(&format!(
            "00-{}-{}-01",
            hex::encode(trace_id),
            hex::encode(parent_id)
        ))
    }

    /// Returns the header value.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// Returns the 32 hex digits of the trace id, which a trace viewer searches for.
    pub fn trace_id(&self) -> &str {
        &self.header[3..35]
    }
}

/// Returns the trace context of this process: `TRACEPARENT` when valid, a fresh trace otherwise.
/// It is made on the first call and reused. Returns `None` only when the random number generator
/// failed, and requests then carry no trace context.
pub fn process_trace() -> Option<&'static TraceParent> {
    static TRACE: OnceLock<Option<TraceParent>> = OnceLock::new();
    TRACE
        .get_or_init(|| {
            if let Ok(value) = std::env::var(TRACEPARENT_ENV) {
                match TraceParent::parse(value.trim()) {
                    Some(parent) => return Some(parent),
                    None => eprintln!(
                        "stella: ignoring {TRACEPARENT_ENV}={value:?}: not a W3C traceparent of version 00; starting a new trace"
                    ),
                }
            }
            TraceParent::random()
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_w3c_example() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parent = TraceParent::parse(header).expect("valid header rejected");
        assert_eq!(parent.header(), header);
        assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn parse_rejects_invalid_headers() {
        let cases = [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bg-01",
        ];
        for header in cases {
            assert_eq!(TraceParent::parse(header), None, "{header:?} accepted");
        }
    }

    #[test]
    fn random_traces_differ() {
        let first = TraceParent::random().expect("random trace");
        let second = TraceParent::random().expect("random trace");
        assert!(TraceParent::parse(first.header()).is_some(), "{first:?}");
        assert!(first.header().ends_with("-01"), "{first:?} not sampled");
        assert_ne!(first.trace_id(), second.trace_id());
    }
}
