//! Tenant identifiers, which come only from a verified token.

use std::fmt;

/// A tenant identifier: 1 to 63 characters from `[a-z0-9._-]`, starting
/// with a lowercase letter or digit.
///
/// The restricted alphabet lets services put a tenant into storage keys and
/// file names without escaping. Because the first character is never `.`,
/// a tenant cannot be `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tenant(String);

impl Tenant {
    /// Maximum length in bytes.
    pub const MAX_LEN: usize = 63;

    /// Checks `value` against the tenant syntax.
    ///
    /// # Errors
    ///
    /// [`InvalidTenant`] if `value` is empty, longer than [`Tenant::MAX_LEN`],
    /// starts with `.`, `_` or `-`, or contains any other character.
    pub fn parse(value: &str) -> Result<Tenant, InvalidTenant> {
        let bytes = value.as_bytes();
        let first_valid = bytes
            .first()
            .is_some_and(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit());
        let rest_valid = bytes.iter().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'.' | b'_' | b'-')
        });
        if first_valid && rest_valid && bytes.len() <= Tenant::MAX_LEN {
            Ok(Tenant(value.to_owned()))
        } else {
            Err(InvalidTenant)
        }
    }

    /// Returns the identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl AsRef<str> for Tenant {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A value that does not match the tenant syntax. The value itself is left
/// out of the message because it may come from an unverified source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid tenant: expected 1 to 63 characters from a-z, 0-9, '.', '_' and '-', \
     starting with a letter or digit"
)]
pub struct InvalidTenant;

#[cfg(test)]
mod tests {
    use super::Tenant;

    #[test]
    fn accepts_valid_names() {
        for name in ["a", "0", "acme", "acme-prod.eu_1", &"x".repeat(63)] {
            assert!(Tenant::parse(name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn rejects_invalid_names() {
        for name in [
            "",
            ".",
            "..",
            "-acme",
            "_acme",
            ".acme",
            "Acme",
            "acme/prod",
            "acme prod",
            "acme\0",
            "acm\u{e9}",
            &"x".repeat(64),
        ] {
            assert!(Tenant::parse(name).is_err(), "{name:?}");
        }
    }
}
