//! The server's token signing keys (D13): created on first start, kept in the
//! database so restarts keep tokens valid, rotated by `admin rotate-signing-key`.

use redb::{ReadableTable, WriteTransaction};
use ring::rand::SystemRandom;

use super::jwt::{self, InternalClaims, SigningKey, VerifyingKey};
use crate::clock;
use crate::store::codec::{decode, encode};
use crate::store::identity::{SigningKeyRow, SIGNING_KEYS};
use crate::store::{Store, StoreError};

/// Issuer and audiences of the tokens this server mints.
pub const ISSUER: &str = "stardag-api";
/// Internal (workspace-scoped) tokens, as upstream.
pub const INTERNAL_AUDIENCE: &str = "stardag";
/// Local-mode session tokens (D11): same key, different audience, so neither kind
/// is accepted where the other is expected.
pub const SESSION_AUDIENCE: &str = "stardag-session";

/// The key that signs, and every key that still verifies.
#[derive(Clone, Debug)]
pub struct KeySet {
    pub current: SigningKey,
    pub verifying: Vec<VerifyingKey>,
}

impl KeySet {
    pub fn mint_internal(
        &self,
        user: uuid::Uuid,
        workspace: uuid::Uuid,
        ttl_secs: u64,
    ) -> Result<String, jwt::KeyError> {
        let now = clock::now_micros() / 1_000_000;
        let claims = InternalClaims::new(
            user,
            workspace,
            ISSUER,
            INTERNAL_AUDIENCE,
            now,
            ttl_secs as i64,
        );
        jwt::sign(&self.current, &claims)
    }

    /// A session token carries no workspace: the nil UUID fills the claim.
    pub fn mint_session(&self, user: uuid::Uuid, ttl_secs: u64) -> Result<String, jwt::KeyError> {
        self.mint_session_from(user, ttl_secs, 0)
    }

    /// A session issued no earlier than `not_before` (Unix seconds): after a password
    /// change the user's sessions count from the next whole second, and the session
    /// handed out with the change must be one of them.
    pub fn mint_session_from(
        &self,
        user: uuid::Uuid,
        ttl_secs: u64,
        not_before: i64,
    ) -> Result<String, jwt::KeyError> {
        let now = (clock::now_micros() / 1_000_000).max(not_before);
        let claims = InternalClaims::new(
            user,
            uuid::Uuid::nil(),
            ISSUER,
            SESSION_AUDIENCE,
            now,
            ttl_secs as i64,
        );
        jwt::sign(&self.current, &claims)
    }

    pub fn verify_internal(&self, token: &str) -> Result<InternalClaims, jwt::TokenError> {
        let now = clock::now_micros() / 1_000_000;
        jwt::verify_internal(token, &self.verifying, now, ISSUER, INTERNAL_AUDIENCE)
    }

    pub fn verify_session(&self, token: &str) -> Result<InternalClaims, jwt::TokenError> {
        let now = clock::now_micros() / 1_000_000;
        jwt::verify_internal(token, &self.verifying, now, ISSUER, SESSION_AUDIENCE)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing key: {0}")]
    Key(#[from] jwt::KeyError),
}

/// Loads the key set, creating the first key on an empty database. Keys retired longer
/// ago than `verify_window_secs` (the longest token lifetime) no longer verify.
pub fn load_or_create(store: &Store, verify_window_secs: u64) -> Result<KeySet, KeysError> {
    let rows = read_rows(store)?;
    if rows.iter().any(|r| r.retired_at.is_none()) {
        return build(rows, verify_window_secs);
    }
    let key = SigningKey::generate(&SystemRandom::new())?;
    let row = SigningKeyRow {
        kid: key.kid().to_owned(),
        pkcs8: key.pkcs8().to_vec(),
        created_at: clock::now_micros(),
        retired_at: None,
    };
    store.write_blocking(move |tx| insert_row(tx, &row))?;
    build(read_rows(store)?, verify_window_secs)
}

/// Adds a new signing key and retires the current one (kept for verification).
pub fn rotate(store: &Store) -> Result<String, KeysError> {
    let key = SigningKey::generate(&SystemRandom::new())?;
    let kid = key.kid().to_owned();
    let row = SigningKeyRow {
        kid: kid.clone(),
        pkcs8: key.pkcs8().to_vec(),
        created_at: clock::now_micros(),
        retired_at: None,
    };
    store.write_blocking(move |tx| -> Result<(), StoreError> {
        let now = clock::now_micros();
        let mut table = tx.open_table(SIGNING_KEYS)?;
        let mut active = Vec::new();
        for entry in table.iter()? {
            let (_, v) = entry?;
            let old: SigningKeyRow = decode("signing_keys", v.value())?;
            if old.retired_at.is_none() {
                active.push(old);
            }
        }
        for mut old in active {
            old.retired_at = Some(now);
            let bytes = encode(&old)?;
            table.insert(old.kid.as_str(), bytes.as_slice())?;
        }
        drop(table);
        insert_row(tx, &row)
    })?;
    Ok(kid)
}

fn insert_row(tx: &WriteTransaction, row: &SigningKeyRow) -> Result<(), StoreError> {
    let bytes = encode(row)?;
    tx.open_table(SIGNING_KEYS)?
        .insert(row.kid.as_str(), bytes.as_slice())?;
    Ok(())
}

fn read_rows(store: &Store) -> Result<Vec<SigningKeyRow>, StoreError> {
    store.read_blocking(|tx| {
        let table = match tx.open_table(SIGNING_KEYS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut rows = Vec::new();
        for entry in table.iter()? {
            let (_, v) = entry?;
            rows.push(decode::<SigningKeyRow>("signing_keys", v.value())?);
        }
        Ok(rows)
    })
}

fn build(mut rows: Vec<SigningKeyRow>, verify_window_secs: u64) -> Result<KeySet, KeysError> {
    rows.sort_by_key(|r| r.created_at);
    let now = clock::now_micros();
    let window = verify_window_secs as i64 * 1_000_000;
    let mut current = None;
    let mut verifying = Vec::new();
    for row in rows {
        let key = SigningKey::from_pkcs8(row.kid.clone(), &row.pkcs8)?;
        match row.retired_at {
            None => {
                verifying.push(key.verifying_key());
                current = Some(key);
            }
            Some(at) if now - at <= window => verifying.push(key.verifying_key()),
            Some(_) => {}
        }
    }
    let current = current.ok_or_else(|| jwt::KeyError::Rejected("no active signing key".into()))?;
    Ok(KeySet { current, verifying })
}

/// Verified internal tokens by SHA-256 of the token text, so a client that sends the
/// same token on every request pays one ECDSA verification, not one per request. An
/// entry is only a memo of a successful verification: expiry is checked on every hit.
pub struct VerifiedTokens {
    entries: std::sync::Mutex<std::collections::HashMap<[u8; 32], InternalClaims>>,
}

/// More distinct live tokens than this and the memo starts over (bounded memory).
const VERIFIED_TOKENS_MAX: usize = 10_000;

impl Default for VerifiedTokens {
    fn default() -> Self {
        VerifiedTokens {
            entries: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }
}

impl VerifiedTokens {
    pub fn verify_internal(
        &self,
        keys: &KeySet,
        token: &str,
    ) -> Result<InternalClaims, jwt::TokenError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        let now = clock::now_micros() / 1_000_000;
        let cached = {
            let map = match self.entries.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            map.get(&key).cloned()
        };
        if let Some(claims) = cached {
            // Same rule as the verifier: expired once now >= exp.
            if now < claims.exp {
                return Ok(claims);
            }
            return Err(jwt::TokenError::Expired);
        }
        let claims = keys.verify_internal(token)?;
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() >= VERIFIED_TOKENS_MAX {
            map.clear();
        }
        map.insert(key, claims.clone());
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_set() -> KeySet {
        let current = SigningKey::generate(&SystemRandom::new()).unwrap();
        KeySet {
            verifying: vec![current.verifying_key()],
            current,
        }
    }

    #[test]
    fn memoised_tokens_still_expire_and_foreign_ones_still_fail() {
        let keys = key_set();
        let memo = VerifiedTokens::default();
        let (user, ws) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let token = keys.mint_internal(user, ws, 1).unwrap();
        let first = memo.verify_internal(&keys, &token).unwrap();
        assert_eq!((first.sub, first.workspace_id), (user, ws));
        assert_eq!(memo.verify_internal(&keys, &token).unwrap(), first);
        // A token from another key is verified, not looked up, and fails.
        let other = key_set().mint_internal(user, ws, 600).unwrap();
        assert!(memo.verify_internal(&keys, &other).is_err());
        // Past `exp` the memo answers like the verifier: expired.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(
            memo.verify_internal(&keys, &token),
            Err(jwt::TokenError::Expired)
        );
    }
}
