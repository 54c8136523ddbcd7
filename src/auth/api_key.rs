//! Environment API keys (v1-identity §3.6, D14).
//!
//! Wire format, kept from upstream because users and the UI see it:
//! `sk_` + first 6 hex chars of the environment id + `_` + 32 base64url
//! characters (24 random bytes = 192 bits), 42 characters in all. The stored
//! `key_prefix` is the 8 characters after `sk_` (e.g. `0190ab_Q`).
//!
//! Storage (D14): SHA-256 of the full key, looked up by that digest. The key
//! carries 192 bits of entropy, so a slow hash (bcrypt/argon2) would add
//! per-request cost without adding security; the full key is never stored.

use ring::digest;
use ring::rand::SecureRandom;
use uuid::Uuid;

use super::b64;

/// Total length of a key.
pub const KEY_LEN: usize = 42;
/// Length of the stored, displayable `key_prefix`.
pub const PREFIX_LEN: usize = 8;
/// Random bytes per key (192 bits).
pub const SECRET_BYTES: usize = 24;

const SCHEME: &str = "sk_";
const ENV_HEX_LEN: usize = 6;
/// Length of the base64url secret part: 24 bytes → 32 chars, no padding.
const SECRET_LEN: usize = 32;

/// SHA-256 of a full key: what the database stores and indexes.
pub type KeyHash = [u8; 32];

/// Why a key could not be made or read. The `Display` of [`ApiKeyError::Invalid`]
/// is the exact client-facing detail (`Invalid API key`, §3.6.2), so a
/// malformed key and an unknown key answer alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    #[error("Invalid API key")]
    Invalid,
    #[error("random number generator failed")]
    Rng,
}

/// A freshly generated key. `key` is shown to the user once and then dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    pub key: String,
    pub key_prefix: String,
    pub hash: KeyHash,
}

impl std::fmt::Debug for GeneratedKey {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

/// Creates a key for `environment_id` with 192 bits from `rng` (use
/// `ring::rand::SystemRandom`).
pub fn generate(
    environment_id: &Uuid,
    rng: &dyn SecureRandom,
) -> Result<GeneratedKey, ApiKeyError> {
    let mut secret = [0u8; SECRET_BYTES];
    rng.fill(&mut secret).map_err(|_| ApiKeyError::Rng)?;
    let env_hex = environment_id.simple().to_string();
    // A simple UUID is always 32 lower-case hex chars, so the slice exists.
    let env_part = env_hex.get(..ENV_HEX_LEN).unwrap_or_default();
    let key = format!("{SCHEME}{env_part}_{}", b64::encode(&secret));
    let parsed = parse(&key)?;
    Ok(GeneratedKey {
        key_prefix: parsed.key_prefix.to_owned(),
        hash: hash(&key),
        key,
    })
}

/// The parts of a well-formed key, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    /// The 6 hex characters from the environment id.
    pub environment_hex: &'a str,
    /// The 8 characters after `sk_` (what the database stores as `key_prefix`).
    pub key_prefix: &'a str,
    /// The 32-character random part. Secret.
    pub secret: &'a str,
}

/// Checks the exact format: `sk_`, 6 lower-case hex, `_`, 32 base64url chars.
/// Anything else (whitespace, padding, wrong length, upper-case hex) is
/// [`ApiKeyError::Invalid`], so garbage never reaches the database lookup.
pub fn parse(key: &str) -> Result<ParsedKey<'_>, ApiKeyError> {
    if key.len() != KEY_LEN {
        return Err(ApiKeyError::Invalid);
    }
    let rest = key.strip_prefix(SCHEME).ok_or(ApiKeyError::Invalid)?;
    // Length 42 is checked, and `split_at_checked` refuses non-char
    // boundaries, so a multi-byte character cannot cause a panic here.
    let (env, rest) = rest
        .split_at_checked(ENV_HEX_LEN)
        .ok_or(ApiKeyError::Invalid)?;
    let secret = rest.strip_prefix('_').ok_or(ApiKeyError::Invalid)?;
    let env_ok = env
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !env_ok || secret.len() != SECRET_LEN || !b64::is_url_safe_alphabet(secret) {
        return Err(ApiKeyError::Invalid);
    }
    let key_prefix = key
        .get(SCHEME.len()..SCHEME.len() + PREFIX_LEN)
        .ok_or(ApiKeyError::Invalid)?;
    Ok(ParsedKey {
        environment_hex: env,
        key_prefix,
        secret,
    })
}

/// True if `key` has the exact API key format.
pub fn validate_format(key: &str) -> bool {
    parse(key).is_ok()
}

/// `key_prefix` of a well-formed key (the 8 characters after `sk_`).
pub fn key_prefix(key: &str) -> Option<&str> {
    parse(key).ok().map(|p| p.key_prefix)
}

/// SHA-256 of the full key, as stored.
pub fn hash(key: &str) -> KeyHash {
    let digest = digest::digest(&digest::SHA256, key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Compares two digests in constant time.
///
/// A fixed-length XOR-OR fold over all 32 bytes, with no early exit, rather
/// than `ring::constant_time` (deprecated, "no promises regarding side
/// channels") or a double-HMAC through `ring::hmac::verify` (correct, but two
/// HMACs and a throw-away key to compare 32 bytes). `black_box` stops the
/// optimiser from turning the fold back into a short-circuiting compare. The
/// inputs are digests of a 192-bit secret, so even a leak here would reveal
/// nothing useful; this is defence in depth.
pub fn digests_equal(a: &KeyHash, b: &KeyHash) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= std::hint::black_box(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

/// Full check of a presented key against a stored digest: format, then
/// constant-time digest comparison.
pub fn verify(key: &str, stored: &KeyHash) -> bool {
    validate_format(key) && digests_equal(&hash(key), stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn env() -> Uuid {
        Uuid::parse_str("0190ab12-3456-7abc-8def-0123456789ab").unwrap()
    }

    #[test]
    fn generated_key_has_wire_format() {
        let rng = SystemRandom::new();
        let k = generate(&env(), &rng).unwrap();
        assert_eq!(k.key.len(), KEY_LEN);
        assert!(k.key.starts_with("sk_0190ab_"));
        assert_eq!(k.key_prefix.len(), PREFIX_LEN);
        assert_eq!(k.key_prefix, &k.key[3..11]);
        assert!(k.key_prefix.starts_with("0190ab_"));
        assert_eq!(k.hash, hash(&k.key));
        let p = parse(&k.key).unwrap();
        assert_eq!(p.environment_hex, "0190ab");
        assert_eq!(p.secret.len(), 32);
        assert_eq!(b64::decode_strict(p.secret).unwrap().len(), SECRET_BYTES);
        assert!(verify(&k.key, &k.hash));
        assert!(!format!("{k:?}").contains(&k.key));
    }

    #[test]
    fn keys_are_unique() {
        let rng = SystemRandom::new();
        let a = generate(&env(), &rng).unwrap();
        let b = generate(&env(), &rng).unwrap();
        assert_ne!(a.key, b.key);
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn parse_rejects_malformed_keys() {
        let good = "sk_0190ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd-_";
        assert_eq!(good.len(), KEY_LEN);
        assert!(validate_format(good));
        assert_eq!(key_prefix(good), Some("0190ab_A"));
        let bad = [
            "",
            "invalid-key",
            "sk_",
            "Sk_0190ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd-_",
            "pk_0190ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd-_",
            "sk_0190AB_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd-_", // upper-case hex
            "sk_0190ag_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd-_", // not hex
            "sk_0190ab-ABCDEFGHIJKLMNOPQRSTUVWXYZabcd-_", // separator
            "sk_0190ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd+/", // std alphabet
            "sk_0190ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabc==",  // padding, short
            "sk_0190ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd-_ ", // trailing space
            " sk_0190ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd-_",
            "sk_0190ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd-", // too short
            "sk_0190ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd-_x", // too long
            "sk_0190ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd\n_",
            "sk_0190ab_ABCDEFGHIJKLMNOPQRSTUVWXYZab\u{e9}-_", // multi-byte
            "sk_0190\u{e9}_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd-",  // multi-byte in hex
        ];
        for key in bad {
            assert_eq!(parse(key), Err(ApiKeyError::Invalid), "{key:?}");
            assert!(key_prefix(key).is_none());
            assert!(!verify(key, &hash(key)));
        }
        assert_eq!(ApiKeyError::Invalid.to_string(), "Invalid API key");
        assert!(ApiKeyError::Invalid
            .to_string()
            .to_lowercase()
            .contains("api key"));
    }

    #[test]
    fn hash_is_sha256_of_full_key() {
        // SHA-256("abc"), FIPS 180-2 test vector.
        let expected = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
            0xf2, 0x00, 0x15, 0xad,
        ];
        assert_eq!(hash("abc"), expected);
    }

    #[test]
    fn digest_comparison() {
        let a = hash("sk_0190ab_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd-_");
        let mut b = a;
        assert!(digests_equal(&a, &b));
        for i in 0..32 {
            b = a;
            b[i] ^= 0x01;
            assert!(!digests_equal(&a, &b), "byte {i}");
            b[i] ^= 0x81;
            assert!(!digests_equal(&a, &b), "byte {i}");
        }
        assert!(!digests_equal(&[0u8; 32], &[0xffu8; 32]));
    }

    #[test]
    fn verify_rejects_other_keys() {
        let rng = SystemRandom::new();
        let a = generate(&env(), &rng).unwrap();
        let b = generate(&env(), &rng).unwrap();
        assert!(!verify(&b.key, &a.hash));
        assert!(!verify(&a.key, &b.hash));
    }
}
