//! Rules for paths inside a bundle, and the reversible encoding of log origins into directory
//! names.
//!
//! A path is relative, made of `/`-separated components drawn from the POSIX portable filename
//! character set (`A–Z a–z 0–9 . _ -`), with no empty, `.` or `..` component. That excludes
//! absolute paths, parent references, backslashes, NUL and every other control character by
//! construction, and keeps paths meaningful on any file system a user might extract them to.

/// Maximum path length in bytes. A ustar header stores a path as up to 155 bytes of prefix, a
/// slash and up to 100 bytes of name, and v1 archives carry no PAX or GNU long-name headers.
pub const MAX_PATH_BYTES: usize = 256;

fn is_portable(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-')
}

/// Checks a path against the rules in the module documentation and returns the first rule it
/// breaks.
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if path.as_bytes().contains(&0) {
        return Err("path contains a NUL byte".into());
    }
    if path.contains('\\') {
        return Err("path contains a backslash".into());
    }
    if path.starts_with('/') {
        return Err("absolute path".into());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!(
            "path is {} bytes long, over the maximum of {MAX_PATH_BYTES}",
            path.len()
        ));
    }
    for component in path.split('/') {
        match component {
            "" => return Err("path has an empty component (\"//\" or a trailing slash)".into()),
            "." => return Err("path has a \".\" component".into()),
            ".." => return Err("path has a \"..\" component".into()),
            _ => {}
        }
        if let Some(bad) = component
            .chars()
            .find(|c| !u8::try_from(*c).is_ok_and(is_portable))
        {
            return Err(format!(
                "path contains {bad:?}, outside the portable set A-Z a-z 0-9 . _ -"
            ));
        }
    }
    Ok(())
}

/// Checks a single file-name stem chosen by a user (KMS key id, Sigstore bundle name): portable
/// characters only, not starting with a dot.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let Some(first) = name.bytes().next() else {
        return Err("empty name".into());
    };
    if first == b'.' {
        return Err(format!("name {name:?} starts with a dot"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !u8::try_from(*c).is_ok_and(is_portable))
    {
        return Err(format!(
            "name {name:?} contains {bad:?}, outside the portable set A-Z a-z 0-9 . _ -"
        ));
    }
    Ok(())
}

/// Escape byte of the origin encoding.
const ESCAPE: u8 = b'_';

/// Encodes a log origin as one path component.
///
/// ASCII letters, digits, `-` and `.` stay as they are, except a leading `.`. Every other byte of
/// the UTF-8 text, `_` included, becomes `_` and two lowercase hex digits. The encoding is
/// injective, so two origins never share a directory, and never yields `.` or `..`. For example
/// `example.com/log` becomes `example.com_2flog`.
#[must_use]
pub fn encode_origin(origin: &str) -> String {
    let mut out = String::with_capacity(origin.len());
    for (position, byte) in origin.bytes().enumerate() {
        let keep = byte.is_ascii_alphanumeric() || byte == b'-' || (byte == b'.' && position > 0);
        if keep {
            out.push(char::from(byte));
        } else {
            out.push(char::from(ESCAPE));
            out.push_str(&hex::encode([byte]));
        }
    }
    out
}

/// Decodes a directory name written by [`encode_origin`].
///
/// # Errors
///
/// A description of the fault when `encoded` is not the encoding of a non-empty UTF-8 origin, or
/// is another spelling of it than [`encode_origin`] writes, so each origin has one directory name.
pub fn decode_origin(encoded: &str) -> Result<String, String> {
    let bad_escape = || format!("{encoded:?}: \"_\" not followed by two hex digits");
    let mut decoded = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == ESCAPE {
            let (digits, after) = tail.split_at_checked(2).ok_or_else(bad_escape)?;
            let mut value = [0u8; 1];
            hex::decode_to_slice(digits, &mut value).map_err(|_| bad_escape())?;
            let [escaped] = value;
            decoded.push(escaped);
            rest = after;
        } else {
            decoded.push(byte);
            rest = tail;
        }
    }
    let origin = String::from_utf8(decoded)
        .map_err(|_| format!("{encoded:?} does not decode to UTF-8 text"))?;
    if origin.is_empty() {
        return Err("empty origin".into());
    }
    if encode_origin(&origin) != encoded {
        return Err(format!(
            "{encoded:?} is not the canonical encoding of origin {origin:?} (expected {:?})",
            encode_origin(&origin)
        ));
    }
    Ok(origin)
}

/// Checks text meant for a manifest string field that is not a path (an origin, a subject name):
/// non-empty, no control characters.
pub(crate) fn check_text(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty string".into());
    }
    if let Some(bad) = text.chars().find(|c| c.is_control()) {
        return Err(format!("{text:?} contains the control character {bad:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_path_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("plain file", "manifest.json", true),
            ("nested tile", "logs/0/tile/0/x001/234.p/17", true),
            ("dot inside name", "kms/aws.key-1.pem", true),
            ("dotdot inside name", "a/..b", true),
            ("empty", "", false),
            ("absolute", "/etc/passwd", false),
            ("parent", "../x", false),
            ("parent inside", "a/../../x", false),
            ("current dir", "./a", false),
            ("double slash", "a//b", false),
            ("trailing slash", "a/", false),
            ("backslash", "a\\b", false),
            ("nul", "a\0b", false),
            ("newline", "a\nb", false),
            ("space", "a b", false),
            ("colon", "c:x", false),
            ("non ascii", "caf\u{e9}", false),
        ];
        for (name, path, ok) in cases {
            assert_eq!(
                check_path(path).is_ok(),
                *ok,
                "row {name}: {path:?} -> {:?}",
                check_path(path)
            );
        }
        assert!(check_path(&"a".repeat(MAX_PATH_BYTES)).is_ok());
        assert!(check_path(&"a".repeat(MAX_PATH_BYTES + 1)).is_err());
    }

    #[test]
    fn origin_encoding_round_trip() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "hostname",
                "log2025-1.rekor.sigstore.dev",
                "log2025-1.rekor.sigstore.dev",
            ),
            (
                "path origin",
                "example.com/log/testdata",
                "example.com_2flog_2ftestdata",
            ),
            (
                "rekor v1",
                "rekor.sigstore.dev - 26",
                "rekor.sigstore.dev_20-_2026",
            ),
            ("underscore", "a_b", "a_5fb"),
            ("leading dot", ".", "_2e"),
            ("dotdot", "..", "_2e."),
            ("non ascii", "\u{e9}", "_c3_a9"),
        ];
        for (name, origin, encoded) in cases {
            assert_eq!(encode_origin(origin), *encoded, "row {name}");
            assert_eq!(decode_origin(encoded).as_deref(), Ok(*origin), "row {name}");
            assert!(
                check_path(encoded).is_ok(),
                "row {name}: encoded form must be a valid path"
            );
        }
    }

    #[test]
    fn origin_decoding_rejects_non_canonical() {
        let cases: &[(&str, &str)] = &[
            ("escaped letter", "_61"),
            ("uppercase hex", "a_2Fb"),
            ("short escape", "a_2"),
            ("bad hex", "a_zz"),
            ("leading dot", ".a"),
            ("invalid utf8", "_ff"),
            ("empty", ""),
        ];
        for (name, encoded) in cases {
            assert!(
                decode_origin(encoded).is_err(),
                "row {name}: {encoded:?} must be rejected"
            );
        }
    }

    #[test]
    fn check_name_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("simple", "release-1.2", true),
            ("underscore", "aws_kms", true),
            ("empty", "", false),
            ("leading dot", ".hidden", false),
            ("slash", "a/b", false),
            ("space", "a b", false),
        ];
        for (name, value, ok) in cases {
            assert_eq!(check_name(value).is_ok(), *ok, "row {name}: {value:?}");
        }
    }
}
