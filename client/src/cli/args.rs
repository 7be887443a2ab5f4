//! Parsers for option values: expiry times, digests, subjects and key references.
//!
//! Each parser returns a message naming the rejected value, which clap shows as a usage error.

use std::path::PathBuf;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A `sha256:<64 lowercase hex>` digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sha256Digest {
    /// The 64 lowercase hex digits, without the `sha256:` prefix.
    pub hex: String,
}

impl Sha256Digest {
    /// Returns the digest as `sha256:<hex>`.
    pub fn prefixed(&self) -> String {
        format!("sha256:{}", self.hex)
    }
}

/// Parses `sha256:<64 lowercase hex digits>`.
pub fn parse_sha256_digest(text: &str) -> Result<Sha256Digest, String> {
    let Some(hex) = text.strip_prefix("sha256:") else {
        return Err(format!(
            "invalid digest {text:?}: expected sha256:<64 hex digits>"
        ));
    };
    let valid = hex.len() == 64
        && hex
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if !valid {
        return Err(format!(
            "invalid digest {text:?}: expected sha256: followed by 64 lowercase hex digits"
        ));
    }
    Ok(Sha256Digest {
        hex: hex.to_owned(),
    })
}

/// A subject given as `NAME=sha256:HEX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectArg {
    pub name: String,
    pub digest: Sha256Digest,
}

/// Parses `NAME=sha256:HEX`. The name may itself contain `=`, because the digest never does.
pub fn parse_subject(text: &str) -> Result<SubjectArg, String> {
    let Some((name, digest)) = text.rsplit_once('=') else {
        return Err(format!(
            "invalid subject {text:?}: expected NAME=sha256:<64 hex digits>"
        ));
    };
    if name.is_empty() {
        return Err(format!(
            "invalid subject {text:?}: the name before '=' is empty"
        ));
    }
    let digest = parse_sha256_digest(digest)
        .map_err(|error| format!("invalid subject {text:?}: {error}"))?;
    Ok(SubjectArg {
        name: name.to_owned(),
        digest,
    })
}

/// A KMS public key given as `ID=PEMFILE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKeyArg {
    pub id: String,
    pub pem_file: PathBuf,
}

/// Parses `ID=PEMFILE`, splitting at the first `=`.
pub fn parse_kms_key(text: &str) -> Result<KmsKeyArg, String> {
    let Some((id, path)) = text.split_once('=') else {
        return Err(format!("invalid KMS key {text:?}: expected ID=PEMFILE"));
    };
    if id.is_empty() {
        return Err(format!(
            "invalid KMS key {text:?}: the key id before '=' is empty"
        ));
    }
    if path.is_empty() {
        return Err(format!(
            "invalid KMS key {text:?}: the PEM file after '=' is empty"
        ));
    }
    Ok(KmsKeyArg {
        id: id.to_owned(),
        pem_file: PathBuf::from(path),
    })
}

/// Latest expiry, in Unix seconds: 9999-12-31T23:59:59Z. A bundle manifest writes times as RFC 3339
/// text, which has four-digit years.
pub const MAX_EXPIRES_AT: i64 = 253_402_300_799;

/// An expiry given either as an RFC 3339 time or as a duration from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiresArg {
    /// Unix seconds (UTC).
    At(i64),
    /// Seconds after the current time.
    After(i64),
}

impl ExpiresArg {
    /// Resolves the expiry against `now` (Unix seconds) and rejects one that is not in the future
    /// or lies after [`MAX_EXPIRES_AT`].
    pub fn resolve(self, now: i64) -> Result<i64, String> {
        let expires_at = match self {
            ExpiresArg::At(at) => at,
            ExpiresArg::After(seconds) => now
                .checked_add(seconds)
                .filter(|at| *at <= MAX_EXPIRES_AT)
                .ok_or_else(|| {
                    format!(
                        "expiry {seconds} s after now ({}) lies after {}, the latest expiry",
                        format_rfc3339(now),
                        format_rfc3339(MAX_EXPIRES_AT)
                    )
                })?,
        };
        if expires_at > MAX_EXPIRES_AT {
            return Err(format!(
                "expiry {} lies after {}, the latest expiry",
                format_rfc3339(expires_at),
                format_rfc3339(MAX_EXPIRES_AT)
            ));
        }
        if expires_at <= now {
            return Err(format!(
                "expiry {} is not in the future (now is {})",
                format_rfc3339(expires_at),
                format_rfc3339(now)
            ));
        }
        Ok(expires_at)
    }
}

/// Fault of an invalid duration argument such as `30d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationFault {
    /// The last character is not one of the units `s`, `m`, `h` and `d`.
    Unit,
    /// The part before the unit is not a whole number.
    Number,
    /// The duration overflows 64 bits of seconds.
    TooLarge,
}

/// Parses a duration: a whole number followed by `s`, `m`, `h` or `d`. Returns seconds, which
/// may be zero.
pub fn parse_duration_secs(text: &str) -> Result<u64, DurationFault> {
    let split = text.len().saturating_sub(1);
    let (number, unit) = (
        text.get(..split).unwrap_or(""),
        text.get(split..).unwrap_or(""),
    );
    let unit_seconds: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(DurationFault::Unit),
    };
    if number.is_empty() || !number.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(DurationFault::Number);
    }
    number
        .parse::<u64>()
        .ok()
        .and_then(|count| count.checked_mul(unit_seconds))
        .ok_or(DurationFault::TooLarge)
}

/// Parses `--expires`: an RFC 3339 time such as `2027-01-31T00:00:00Z`, or a duration such as
/// `30d`, `12h`, `45m` or `90s`.
pub fn parse_expires(text: &str) -> Result<ExpiresArg, String> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        let at = at.unix_timestamp();
        if at > MAX_EXPIRES_AT {
            // An offset can move 9999-12-31T23:59:59 past the end of the year 9999 in UTC.
            return Err(format!(
                "invalid expiry {text:?}: it lies after {}, the latest expiry",
                format_rfc3339(MAX_EXPIRES_AT)
            ));
        }
        return Ok(ExpiresArg::At(at));
    }

    let seconds = match parse_duration_secs(text) {
        Ok(seconds) => i64::try_from(seconds).unwrap_or(i64::MAX),
        Err(DurationFault::Unit) => {
            return Err(format!(
                "invalid expiry {text:?}: expected an RFC 3339 time (2027-01-31T00:00:00Z) \
                 or a duration with unit s, m, h or d (30d)"
            ));
        }
        Err(DurationFault::Number) => {
            return Err(format!(
                "invalid expiry {text:?}: a duration is a whole number followed by s, m, h or d"
            ));
        }
        Err(DurationFault::TooLarge) => {
            return Err(format!("invalid expiry {text:?}: the duration is too large"));
        }
    };
    if seconds == 0 {
        return Err(format!(
            "invalid expiry {text:?}: the duration must be positive"
        ));
    }
    // Any later time would be past the latest expiry, whatever the current time.
    if seconds > MAX_EXPIRES_AT {
        return Err(format!(
            "invalid expiry {text:?}: the duration reaches past {}, the latest expiry",
            format_rfc3339(MAX_EXPIRES_AT)
        ));
    }
    Ok(ExpiresArg::After(seconds))
}

/// Parses a timeout in milliseconds, which must be at least 1: a zero timeout would fail every
/// call.
pub fn parse_timeout_ms(text: &str) -> Result<u64, String> {
    let value: u64 = text.parse().map_err(|error| {
        format!("invalid timeout {text:?}: expected whole milliseconds ({error})")
    })?;
    if value == 0 {
        return Err("the timeout must be at least 1 millisecond".to_owned());
    }
    Ok(value)
}

/// Maximum length of a request id, in bytes.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// Parses `--request-id`: 1 to 128 bytes of ASCII letters, digits and `.`, `_`, `:`, `-`, the
/// rule the gate applies.
pub fn parse_request_id(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > MAX_REQUEST_ID_BYTES {
        return Err(format!(
            "invalid request id {text:?}: expected 1 to {MAX_REQUEST_ID_BYTES} bytes, got {}",
            text.len()
        ));
    }
    if let Some(invalid) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(format!(
            "invalid request id {text:?}: {invalid:?} is not allowed; use only A-Z, a-z, 0-9, '.', '_', ':' and '-'"
        ));
    }
    Ok(text.to_owned())
}

/// Parses a point in time: an RFC 3339 time such as `2026-12-04T10:00:00Z`, or whole Unix
/// seconds such as `1796378400`. Returns Unix seconds from 1 (the gate reads 0 as "now") to
/// [`MAX_EXPIRES_AT`].
pub fn parse_time(text: &str) -> Result<i64, String> {
    let seconds = match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(at) => at.unix_timestamp(),
        Err(_) if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) => {
            text.parse::<i64>().map_err(|_| {
                format!("invalid time {text:?}: the number of Unix seconds is too large")
            })?
        }
        Err(_) => {
            return Err(format!(
                "invalid time {text:?}: expected an RFC 3339 time (2026-12-04T10:00:00Z) or \
                 whole Unix seconds (1796378400)"
            ));
        }
    };
    if !(1..=MAX_EXPIRES_AT).contains(&seconds) {
        return Err(format!(
            "invalid time {text:?}: it must lie after 1970-01-01T00:00:00Z and not after {}",
            format_rfc3339(MAX_EXPIRES_AT)
        ));
    }
    Ok(seconds)
}

/// Formats Unix seconds as RFC 3339 UTC, or as the plain number when out of range.
pub fn format_rfc3339(unix_seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{unix_seconds} (Unix seconds)"))
}

/// Reads the current time as Unix seconds. The CLI reads the clock once per command.
pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";

    #[test]
    fn expires_accepts_each_form() {
        let rows = [
            (
                "rfc3339 utc",
                "2027-01-31T00:00:00Z",
                ExpiresArg::At(1_801_353_600),
            ),
            (
                "rfc3339 offset",
                "2027-01-31T02:00:00+02:00",
                ExpiresArg::At(1_801_353_600),
            ),
            ("days", "30d", ExpiresArg::After(30 * 86_400)),
            ("hours", "12h", ExpiresArg::After(12 * 3_600)),
            ("minutes", "45m", ExpiresArg::After(45 * 60)),
            ("seconds", "90s", ExpiresArg::After(90)),
        ];
        for (name, text, want) in rows {
            assert_eq!(parse_expires(text), Ok(want), "row {name}: {text}");
        }
    }

    #[test]
    fn expires_rejects_bad_values() {
        let rows = [
            ("empty", ""),
            ("unit only", "d"),
            ("no unit", "30"),
            ("unknown unit", "3w"),
            ("negative", "-3d"),
            ("zero", "0d"),
            ("fraction", "1.5d"),
            ("overflow", "99999999999999999999d"),
            ("past year 9999", "99999999d"),
            ("offset past year 9999", "9999-12-31T23:59:59-01:00"),
            ("date only", "2027-01-31"),
        ];
        for (name, text) in rows {
            assert!(
                parse_expires(text).is_err(),
                "row {name}: {text:?} was accepted"
            );
        }
    }

    #[test]
    fn expires_resolve_rejects_past() {
        let now = 1_800_000_000;
        assert_eq!(ExpiresArg::After(60).resolve(now), Ok(now + 60));
        assert!(ExpiresArg::At(now).resolve(now).is_err());
        assert!(ExpiresArg::At(now - 1).resolve(now).is_err());
        assert!(ExpiresArg::After(i64::MAX).resolve(now).is_err());
    }

    #[test]
    fn expires_resolve_rejects_after_year_9999() {
        let now = 1_800_000_000;
        assert_eq!(
            ExpiresArg::At(MAX_EXPIRES_AT).resolve(now),
            Ok(MAX_EXPIRES_AT)
        );
        assert_eq!(format_rfc3339(MAX_EXPIRES_AT), "9999-12-31T23:59:59Z");
        let remaining = MAX_EXPIRES_AT - now;
        assert_eq!(
            ExpiresArg::After(remaining).resolve(now),
            Ok(MAX_EXPIRES_AT)
        );
        let error = ExpiresArg::After(remaining + 1)
            .resolve(now)
            .expect_err("one second too late");
        assert!(error.contains("9999-12-31T23:59:59Z"), "{error}");
    }

    #[test]
    fn timeout_ms_rejects_zero() {
        assert_eq!(parse_timeout_ms("1"), Ok(1));
        assert_eq!(parse_timeout_ms("120000"), Ok(120_000));
        for text in ["0", "-1", "1.5", "", "5s"] {
            assert!(parse_timeout_ms(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn request_id_charset_and_length() {
        let longest = "a".repeat(MAX_REQUEST_ID_BYTES);
        for valid in ["ci-run:4711.2", "A_b", longest.as_str()] {
            assert_eq!(parse_request_id(valid), Ok(valid.to_owned()), "{valid:?}");
        }
        let too_long = "a".repeat(MAX_REQUEST_ID_BYTES + 1);
        for invalid in ["", "run 1", "run/1", "r\u{e9}", "run\n1", too_long.as_str()] {
            assert!(
                parse_request_id(invalid).is_err(),
                "{invalid:?} was accepted"
            );
        }
    }

    #[test]
    fn time_accepts_rfc3339_and_unix() {
        assert_eq!(parse_time("2026-12-04T10:00:00Z"), Ok(1_796_378_400));
        assert_eq!(parse_time("2026-12-04T12:00:00+02:00"), Ok(1_796_378_400));
        assert_eq!(parse_time("1796378400"), Ok(1_796_378_400));
        assert_eq!(parse_time("253402300799"), Ok(MAX_EXPIRES_AT));
        for invalid in [
            "",
            "0",
            "-5",
            "+5",
            "1.5",
            "253402300800",
            "99999999999999999999",
            "2026-12-04",
            "now",
        ] {
            assert!(parse_time(invalid).is_err(), "{invalid:?} was accepted");
        }
    }

    #[test]
    fn subject_splits_at_last_equals() {
        let subject =
            parse_subject(&format!("pkg:oci/app?tag=v1=sha256:{HEX}")).expect("valid subject");
        assert_eq!(subject.name, "pkg:oci/app?tag=v1");
        assert_eq!(subject.digest.hex, HEX);
    }

    #[test]
    fn subject_rejects_bad_values() {
        let upper = HEX.to_uppercase();
        let rows = [
            ("no equals", format!("sha256:{HEX}")),
            ("empty name", format!("=sha256:{HEX}")),
            ("sha512", format!("a.txt=sha512:{HEX}")),
            ("short hex", "a.txt=sha256:abcd".to_owned()),
            ("uppercase hex", format!("a.txt=sha256:{upper}")),
        ];
        for (name, text) in rows {
            assert!(
                parse_subject(&text).is_err(),
                "row {name}: {text:?} was accepted"
            );
        }
    }

    #[test]
    fn kms_key_splits_at_first_equals() {
        let key = parse_kms_key("release-key=keys/a=b.pem").expect("valid key");
        assert_eq!(key.id, "release-key");
        assert_eq!(key.pem_file, PathBuf::from("keys/a=b.pem"));
        assert!(parse_kms_key("=x.pem").is_err());
        assert!(parse_kms_key("id=").is_err());
        assert!(parse_kms_key("id").is_err());
    }
}
