//! Base64url helpers (RFC 4648 §5, no padding), as used by JWS/JWK and API keys.
//!
//! Tokens are decoded *strictly*: padding, the standard alphabet (`+`, `/`),
//! whitespace and non-canonical trailing bits are all refused, so one token has
//! exactly one textual form. JWKS documents come from a configured, trusted
//! source and some identity providers pad their `n`/`e` values, so JWK fields
//! get a lenient variant that only tolerates trailing `=`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Encodes `bytes` as base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding, strictly.
///
/// `URL_SAFE_NO_PAD` in base64 0.22 requires no padding and rejects
/// non-zero trailing bits, which is exactly the canonical form we want.
pub fn decode_strict(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()
}

/// Decodes base64url, tolerating trailing `=` padding (for JWK members only).
pub fn decode_lenient(text: &str) -> Option<Vec<u8>> {
    decode_strict(text.trim_end_matches('='))
}

/// True if every byte of `text` is in the base64url alphabet (`A-Z a-z 0-9 - _`).
pub fn is_url_safe_alphabet(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = encode(&data);
            assert!(!text.contains('='));
            assert!(is_url_safe_alphabet(&text));
            assert_eq!(decode_strict(&text).as_deref(), Some(&data[..]));
        }
    }

    #[test]
    fn strict_refuses_padding_std_alphabet_and_junk() {
        assert_eq!(decode_strict("YQ").as_deref(), Some(&b"a"[..]));
        assert!(decode_strict("YQ==").is_none());
        assert!(decode_strict("YQ=").is_none());
        assert!(decode_strict("+/8").is_none());
        assert!(decode_strict("YW Jj").is_none());
        assert!(decode_strict("YWJj\n").is_none());
        // "YR" carries non-zero trailing bits: a second spelling of "a".
        assert!(decode_strict("YR").is_none());
        // A single trailing character can never be valid.
        assert!(decode_strict("YWJjZ").is_none());
    }

    #[test]
    fn lenient_accepts_padding_only() {
        assert_eq!(decode_lenient("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_lenient("YQ").as_deref(), Some(&b"a"[..]));
        assert!(decode_lenient("+/8=").is_none());
    }
}
