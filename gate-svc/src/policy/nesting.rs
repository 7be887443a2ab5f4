//! A linear scan that bounds how deeply a policy file nests, before any YAML parser reads it.
//!
//! The YAML parse takes time that grows with the square of the nesting depth, so a file of
//! 1 MiB made of nested flow mappings (`{a: {a: ...`) would keep a core busy for minutes.
//! Real policies nest about six levels deep. The scan counts flow brackets outside quoted
//! scalars and comments, and the indentation of each line, which bounds block nesting.

use super::locate::Position;

/// Maximum depth of nested flow collections (`{` and `[`).
pub(super) const MAX_FLOW_DEPTH: usize = 32;
/// Maximum indentation of a line, in columns.
pub(super) const MAX_INDENT: usize = 256;

/// The position and description of nesting beyond the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TooDeep {
    pub position: Position,
    pub why: String,
}

/// Returns the first place where `bytes` nests deeper than the limits allow.
pub(super) fn check_nesting(bytes: &[u8]) -> Option<TooDeep> {
    let mut depth = 0_usize;
    let mut quote: Option<u8> = None;
    for (index, line) in bytes.split(|byte| *byte == b'\n').enumerate() {
        let line_number = index + 1;
        let indent = line.iter().take_while(|byte| **byte == b' ').count();
        if quote.is_none() && indent > MAX_INDENT {
            return Some(TooDeep {
                position: Position { line: line_number, column: indent + 1 },
                why: format!("indented {indent} columns, the maximum is {MAX_INDENT}"),
            });
        }
        let mut previous = b' ';
        for (column, &byte) in line.iter().enumerate() {
            match quote {
                // A doubled single quote or a backslash escape may end the scan of a quoted
                // scalar early or late; the bound stays approximate but linear.
                Some(open) if byte == open && previous != b'\\' => quote = None,
                Some(_) => {}
                None => match byte {
                    b'#' if previous == b' ' || previous == b'\t' => break,
                    b'"' | b'\'' if matches!(previous, b' ' | b'\t' | b'{' | b'[' | b',' | b':') => {
                        quote = Some(byte);
                    }
                    b'{' | b'[' => {
                        depth += 1;
                        if depth > MAX_FLOW_DEPTH {
                            return Some(TooDeep {
                                position: Position { line: line_number, column: column + 1 },
                                why: format!("flow collections nest deeper than {MAX_FLOW_DEPTH} levels"),
                            });
                        }
                    }
                    b'}' | b']' => depth = depth.saturating_sub(1),
                    _ => {}
                },
            }
            previous = byte;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_flow_mappings_rejected() {
        let text = "a: ".to_owned() + &"{a: ".repeat(MAX_FLOW_DEPTH + 1);
        let found = check_nesting(text.as_bytes()).expect("too deep");
        assert_eq!(found.position.line, 1);
        assert!(found.why.contains("deeper than 32"), "{}", found.why);
    }

    #[test]
    fn deep_indentation_rejected() {
        let text = format!("a:\n{}b: 1\n", " ".repeat(MAX_INDENT + 1));
        let found = check_nesting(text.as_bytes()).expect("too deep");
        assert_eq!(found.position.line, 2);
    }

    #[test]
    fn brackets_in_quotes_and_comments_ignored() {
        let text = format!("a: \"{}\" # {}\nb: '{}'\n", "[".repeat(100), "{".repeat(100), "{".repeat(100));
        assert_eq!(check_nesting(text.as_bytes()), None);
    }

    #[test]
    fn ordinary_policy_passes() {
        let text = "environments:\n  prod:\n    require:\n      - identity: /https://github\\.com/[a-z]+/x/\n        issuer: https://issuer.example\n";
        assert_eq!(check_nesting(text.as_bytes()), None);
    }
}
