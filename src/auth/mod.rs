//! Authentication primitives: tokens, API keys and passwords.
//!
//! Pure functions over bytes and strings: no I/O, no clock, no database.
//! Callers pass `now` (Unix seconds), key material and stored hashes, which
//! keeps every rule here unit-testable and the server in charge of storage,
//! JWKS fetching and rate limits.
//!
//! * [`jwt`]: internal ES256 tokens (D13) and OIDC RS256 verification (§3.3).
//! * [`api_key`]: `sk_…` keys, SHA-256 storage, constant-time compare (D14).
//! * [`password`]: Argon2id password hashing for local mode (D11).
//! * [`b64`]: strict base64url shared by the above.

pub mod api_key;
pub mod b64;
pub mod jwt;
pub mod password;

#[cfg(test)]
mod jwt_tests;

pub use api_key::{ApiKeyError, GeneratedKey, KeyHash, ParsedKey};
pub use jwt::{
    decode_header, jwks_document, sign, verify_internal, verify_oidc_rs256, Header, InternalClaims,
    Jwk, JwkKey, Jwks, JwksError, KeyError, OidcClaims, SigningKey, TokenError, VerifyingKey,
};
pub use password::{dummy_verify, hash_password, needs_rehash, verify_password, PasswordError};

pub mod caller;
pub mod keys;
pub mod oidc;
pub mod oidc_login;
pub mod throttle;

pub use caller::{authenticate, Caller, SdkScope};
