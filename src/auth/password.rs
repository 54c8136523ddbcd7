//! Local-mode passwords (D11): Argon2id with OWASP parameters, PHC strings.
//!
//! OWASP Password Storage Cheat Sheet minimum for Argon2id: m = 19 MiB,
//! t = 2, p = 1. The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`)
//! records the parameters, so they can be raised later: old hashes still
//! verify, and [`needs_rehash`] tells the login handler to re-hash.
//!
//! Hashing costs ~19 MiB and tens of milliseconds of CPU: call these from
//! `tokio::task::spawn_blocking`, never on the async executor.

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use ring::rand::{SecureRandom, SystemRandom};

/// Shortest accepted password, in bytes (D11).
pub const MIN_PASSWORD_BYTES: usize = 8;
/// Longest accepted password, in bytes (D11). Also bounds hashing work.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Argon2id memory cost in KiB (19 MiB).
pub const M_COST_KIB: u32 = 19 * 1024;
/// Argon2id iterations.
pub const T_COST: u32 = 2;
/// Argon2id lanes.
pub const P_COST: u32 = 1;

const SALT_BYTES: usize = 16;

/// A valid Argon2id hash with the current parameters, of a random password
/// nobody knows. [`dummy_verify`] checks against it so that a login for an
/// unknown email costs the same as one for a known email (D11).
const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$OcXM9pQOItW6RiatURaA7A$59JQkQKsjO2ezBfuiarJ2ErttV8GyBZz3JB1K8oSldc";

/// Password rule violations and hashing failures. The rule variants'
/// `Display` is meant for a 400/422 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("Password must be at least 8 characters long")]
    TooShort,
    #[error("Password must be at most 1024 bytes long")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Checks the length rule (8..=1024 bytes of UTF-8).
pub fn validate_password(password: &str) -> Result<(), PasswordError> {
    match password.len() {
        n if n < MIN_PASSWORD_BYTES => Err(PasswordError::TooShort),
        n if n > MAX_PASSWORD_BYTES => Err(PasswordError::TooLong),
        _ => Ok(()),
    }
}

/// The production parameters (m = 19 MiB, t = 2, p = 1, 32-byte output).
pub fn owasp_params() -> Result<Params, PasswordError> {
    Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Validates the length rule, then hashes with a fresh 128-bit salt from
/// ring's `SystemRandom`. Returns a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    validate_password(password)?;
    hash_with_params(password, owasp_params()?)
}

fn hash_with_params(password: &str, params: Params) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_BYTES];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::Hash("random number generator failed".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let hashed = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()));
    crate::memory::release_free_memory();
    hashed
}

/// True if `password` matches the PHC string `phc`. False for a wrong
/// password, an unparsable or non-Argon2id `phc`, or a password over
/// [`MAX_PASSWORD_BYTES`] (refused before any hashing work). The comparison of
/// the outputs is constant-time (done by the `password-hash` crate).
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return false;
    }
    // `Argon2::default()` only supplies the hasher; algorithm, version,
    // parameters and salt are all taken from `parsed`.
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    crate::memory::release_free_memory();
    matches
}

/// Burns the same time as [`verify_password`] against a real hash. Call it
/// when the email is unknown, then answer `Invalid email or password` (D11).
pub fn dummy_verify(password: &str) {
    std::hint::black_box(verify_password(password, DUMMY_PHC));
}

/// True if `phc` was not made with the current algorithm and parameters, so
/// the caller should store a fresh [`hash_password`] after a successful login.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT || parsed.version != Some(Version::V0x13.into()) {
        return true;
    }
    match Params::try_from(&parsed) {
        Ok(p) => p.m_cost() != M_COST_KIB || p.t_cost() != T_COST || p.p_cost() != P_COST,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// TEST ONLY: minimal-cost parameters (8 KiB, t = 1) so that the many
    /// behavioural tests below stay fast. Production code never uses them;
    /// `real_parameters_round_trip` exercises the OWASP parameters.
    fn cheap() -> Params {
        Params::new(8, 1, 1, None).unwrap()
    }

    #[test]
    fn real_parameters_round_trip() {
        let phc = hash_password("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery staple", &phc));
        assert!(!verify_password("correct horse battery stapler", &phc));
        assert!(!needs_rehash(&phc));
    }

    #[test]
    fn salts_differ() {
        let a = hash_with_params("password123", cheap()).unwrap();
        let b = hash_with_params("password123", cheap()).unwrap();
        assert_ne!(a, b);
        assert!(verify_password("password123", &a));
        assert!(verify_password("password123", &b));
    }

    #[test]
    fn length_rule() {
        assert_eq!(validate_password(""), Err(PasswordError::TooShort));
        assert_eq!(validate_password("1234567"), Err(PasswordError::TooShort));
        assert_eq!(validate_password("12345678"), Ok(()));
        // Bytes, not characters: 3 × 'é' = 6 bytes.
        assert_eq!(validate_password("ééé"), Err(PasswordError::TooShort));
        assert_eq!(validate_password("éééé"), Ok(()));
        assert_eq!(validate_password(&"a".repeat(1024)), Ok(()));
        assert_eq!(
            validate_password(&"a".repeat(1025)),
            Err(PasswordError::TooLong)
        );
        assert_eq!(hash_password("short"), Err(PasswordError::TooShort));
        assert_eq!(
            hash_password(&"a".repeat(2000)),
            Err(PasswordError::TooLong)
        );
        assert!(PasswordError::TooShort.to_string().contains('8'));
        assert!(PasswordError::TooLong.to_string().contains("1024"));
    }

    #[test]
    fn verify_handles_garbage_without_panicking() {
        let phc = hash_with_params("password123", cheap()).unwrap();
        for bad in [
            "",
            "$",
            "not a hash",
            "$argon2id$",
            "$argon2id$v=19$m=8,t=1,p=1$",
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$",
            "$2b$12$abcdefghijklmnopqrstuuK0kYzY5dE5rG0vH8oJ6yQm5r1aY9bKq",
            &phc[..phc.len() - 4],
            &phc.replace("argon2id", "argon2i"),
        ] {
            assert!(!verify_password("password123", bad), "{bad}");
            assert!(needs_rehash(bad), "{bad}");
        }
        // Too-long passwords are refused without hashing.
        assert!(!verify_password(&"a".repeat(1025), &phc));
    }

    #[test]
    fn verify_accepts_max_length_password() {
        let pw = "p".repeat(MAX_PASSWORD_BYTES);
        let phc = hash_with_params(&pw, cheap()).unwrap();
        assert!(verify_password(&pw, &phc));
        assert!(!verify_password(&pw[1..], &phc));
    }

    #[test]
    fn weaker_parameters_need_rehash() {
        let phc = hash_with_params("password123", cheap()).unwrap();
        assert!(needs_rehash(&phc));
    }

    #[test]
    fn dummy_hash_uses_current_parameters_and_costs_like_a_real_check() {
        assert!(
            !needs_rehash(DUMMY_PHC),
            "DUMMY_PHC must track the parameters"
        );
        let parsed = PasswordHash::new(DUMMY_PHC).unwrap();
        assert!(parsed.hash.is_some() && parsed.salt.is_some());

        let real = hash_password("some password").unwrap();
        // Minimum of three runs each, to be robust against a busy machine.
        // Loose bound: the point is that the dummy does real Argon2 work at
        // the same cost, not that timings are identical.
        let time = |f: &dyn Fn()| {
            (0..3)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed()
                })
                .min()
                .unwrap()
        };
        let real_time = time(&|| assert!(!verify_password("other password", &real)));
        let dummy_time = time(&|| dummy_verify("other password"));
        assert!(
            dummy_time * 3 > real_time && real_time * 3 > dummy_time,
            "dummy {dummy_time:?} vs real {real_time:?}"
        );
    }
}
