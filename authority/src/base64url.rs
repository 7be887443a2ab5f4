//! Strict base64url without padding (RFC 4648 section 5), the encoding of
//! every JWS segment (RFC 7515 section 2).

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The engine rejects `=` padding and non-zero trailing bits, so each byte
/// string has exactly one accepted encoding and no two distinct segments
/// decode to the same bytes.
const STRICT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes `text`, or returns `None` for padding, characters outside the
/// base64url alphabet, an impossible length or non-canonical trailing bits.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    STRICT.decode(text).ok()
}

/// Encodes `bytes` without padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    STRICT.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn round_trip() {
        for len in 0..8 {
            let bytes: Vec<u8> = (0..len).map(|i| i * 37 + 5).collect();
            assert_eq!(decode(&encode(&bytes)), Some(bytes));
        }
    }

    #[test]
    fn rejects_padding() {
        assert_eq!(decode("YQ"), Some(b"a".to_vec()));
        assert_eq!(decode("YQ=="), None);
        assert_eq!(decode("YWI="), None);
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        // "YR" has the same first byte as "YQ" but sets a trailing bit.
        assert_eq!(decode("YR"), None);
    }

    #[test]
    fn rejects_standard_alphabet_and_whitespace() {
        assert_eq!(decode("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode("+/8"), None);
        assert_eq!(decode("YW I"), None);
        assert_eq!(decode("YWI\n"), None);
    }

    #[test]
    fn rejects_impossible_length() {
        assert_eq!(decode("YWJjZ"), None);
    }
}
