//! JSON Web Tokens, hand-rolled on ring.
//!
//! Two kinds of token pass through the server (v1-identity §3.1):
//!
//! * **Internal tokens** (D13): ES256 (ECDSA P-256 + SHA-256) JWTs that this
//!   server mints in `/auth/exchange` and verifies on workspace and SDK routes.
//!   [`sign`] / [`verify_internal`].
//! * **OIDC tokens** from the identity provider: RS256 JWTs verified against the
//!   IdP's JWKS (§3.3). [`Jwks`] / [`verify_oidc_rs256`].
//!
//! Hardening (anchors §6.3, RFC 8725): the algorithm is pinned by the caller,
//! never taken from the token (so `alg: none`, HS256 and RS/ES confusion are
//! refused); tokens larger than [`MAX_TOKEN_BYTES`] are refused before any
//! decoding; base64url is decoded strictly; duplicate JSON members in the header
//! or payload are refused (parsers disagree on which one wins); keys embedded in
//! the header (`jwk`, `jku`, `x5u`) are never used; `crit` is refused; the
//! payload is only parsed after the signature has been checked.
//!
//! [`TokenError`]'s `Display` is the exact upstream `detail` text (§3.5.4,
//! §3.3, §11), ready for a `{"detail": ...}` 401 body. The SDK classifies 401s
//! by substring ("expired", "api key", "not authenticated"), so only
//! [`TokenError::Expired`] may contain "expired".

use std::fmt;
use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaPublicKeyComponents};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::b64;

/// Largest token accepted, in bytes of the compact serialization. Our internal
/// tokens are ~400 bytes and IdP tokens rarely exceed 2–3 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// JWS algorithm name of internal tokens.
pub const ALG_ES256: &str = "ES256";
/// JWS algorithm name accepted for OIDC tokens.
pub const ALG_RS256: &str = "RS256";

/// Tolerated clock skew for `nbf` only. `exp` is checked without leeway, as
/// upstream does (§3.3.4, §3.5.4).
pub const NBF_LEEWAY_SECS: i64 = 30;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a token was refused. `Display` is the client-facing `detail` string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// `exp` is in the past.
    #[error("Token has expired")]
    Expired,
    /// Malformed token, disallowed algorithm or bad signature.
    #[error("Invalid token: {0}")]
    Invalid(String),
    /// A registered claim has the wrong value or type (issuer, audience, ...).
    #[error("Invalid token claims: {0}")]
    InvalidClaims(String),
    /// An internal token lacks one of its six claims (§3.5.4).
    #[error("Token missing required '{0}' claim")]
    MissingClaim(&'static str),
    /// An OIDC token lacks `sub`, `iss` or `exp` (§3.3.6).
    #[error("Token missing required '{claim}' ({meaning}) claim")]
    MissingOidcClaim {
        claim: &'static str,
        meaning: &'static str,
    },
    /// The header has no `kid`.
    #[error("Token missing key ID (kid)")]
    MissingKid,
    /// No key with the header's `kid`. For OIDC the caller should force one
    /// (rate-limited, D12) JWKS re-fetch and verify again.
    #[error("Unable to find key with ID: {0}")]
    UnknownKid(String),
    /// OIDC audience mismatch (§3.3.5); both lists are pre-rendered as Python
    /// list reprs, e.g. `['stardag-ui', 'stardag-sdk']`.
    #[error("Invalid audience. Expected one of {expected}, got {got}")]
    InvalidAudience { expected: String, got: String },
    /// For callers: the JWKS could not be fetched (§3.3.3). Never produced by
    /// this module; here so that every OIDC 401 text lives in one place.
    #[error("Unable to validate token (JWKS fetch failed)")]
    JwksUnavailable,
}

impl TokenError {
    fn invalid(msg: impl Into<String>) -> Self {
        TokenError::Invalid(msg.into())
    }

    fn claims(msg: impl Into<String>) -> Self {
        TokenError::InvalidClaims(msg.into())
    }

    /// True for [`TokenError::Expired`].
    pub fn is_expired(&self) -> bool {
        matches!(self, TokenError::Expired)
    }

    /// The `kid` that matched no key, if that is why the token was refused.
    pub fn unknown_kid(&self) -> Option<&str> {
        match self {
            TokenError::UnknownKid(kid) => Some(kid),
            _ => None,
        }
    }
}

/// Key handling failures (server-side problems, never a client's fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("key rejected: {0}")]
    Rejected(String),
    #[error("random number generator failed")]
    Rng,
    #[error("signing failed")]
    Sign,
    #[error("could not encode token: {0}")]
    Encode(String),
}

/// Errors while reading a JWKS document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JWKS document: {0}")]
pub struct JwksError(String);

// ---------------------------------------------------------------------------
// Internal (ES256) keys
// ---------------------------------------------------------------------------

/// DER prefix of a SubjectPublicKeyInfo for an uncompressed P-256 point
/// (id-ecPublicKey, prime256v1, BIT STRING of 66 bytes). The key id is hashed
/// over the full SPKI, like upstream's default `JWT_KEY_ID` (§2.2).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Length of an uncompressed P-256 point: `0x04 || x || y`.
const P256_POINT_LEN: usize = 65;

/// Key id for a P-256 public key (uncompressed point): the first 16 hex
/// characters of SHA-256 over its DER SubjectPublicKeyInfo.
pub fn derive_kid(public_key: &[u8]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&P256_SPKI_PREFIX);
    ctx.update(public_key);
    hex(&ctx.finish().as_ref()[..8])
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The server's ES256 signing key. The PKCS#8 document is what the server
/// stores in its database (D13); the parsed key pair is kept so that signing
/// does not re-validate the key each time.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    key_pair: Arc<EcdsaKeyPair>,
}

impl SigningKey {
    /// Creates a fresh P-256 key; its `kid` is derived from the public key.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, KeyError> {
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, rng)
            .map_err(|_| KeyError::Rng)?;
        let key_pair = parse_ec_pkcs8(doc.as_ref())?;
        let kid = derive_kid(key_pair.public_key().as_ref());
        Ok(Self {
            kid,
            pkcs8: doc.as_ref().to_vec(),
            key_pair: Arc::new(key_pair),
        })
    }

    /// Loads a stored key (PKCS#8 v1 DER, as produced by [`SigningKey::generate`]).
    pub fn from_pkcs8(kid: impl Into<String>, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let key_pair = parse_ec_pkcs8(pkcs8)?;
        Ok(Self {
            kid: kid.into(),
            pkcs8: pkcs8.to_vec(),
            key_pair: Arc::new(key_pair),
        })
    }

    /// Key id put in the JWT header and the JWKS.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as PKCS#8 DER, for storage. Secret.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// Uncompressed public point (65 bytes).
    pub fn public_key(&self) -> &[u8] {
        self.key_pair.public_key().as_ref()
    }

    /// The matching verification key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            kid: self.kid.clone(),
            public_key: self.public_key().to_vec(),
        }
    }

    /// Public JWK: `{"kty":"EC","crv":"P-256","x","y","kid","use":"sig","alg":"ES256"}`.
    pub fn public_jwk(&self) -> Value {
        ec_jwk(&self.kid, self.public_key())
    }
}

impl fmt::Debug for SigningKey {
    // Never print the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn parse_ec_pkcs8(pkcs8: &[u8]) -> Result<EcdsaKeyPair, KeyError> {
    EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|e| KeyError::Rejected(e.to_string()))
}

fn ec_jwk(kid: &str, point: &[u8]) -> Value {
    // `point` is always 65 bytes here (ring output or checked in
    // `VerifyingKey::new`); `get` keeps this panic-free regardless.
    let x = point.get(1..33).unwrap_or_default();
    let y = point.get(33..65).unwrap_or_default();
    serde_json::json!({
        "kty": "EC",
        "crv": "P-256",
        "x": b64::encode(x),
        "y": b64::encode(y),
        "kid": kid,
        "use": "sig",
        "alg": ALG_ES256,
    })
}

/// Public half of an internal signing key, used for verification. The server
/// keeps one per non-retired key so that rotation (D13) does not cut off
/// tokens signed by the previous key.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    kid: String,
    public_key: Vec<u8>,
}

impl VerifyingKey {
    /// From a `kid` and an uncompressed P-256 point (65 bytes, leading 0x04).
    /// Whether the point is on the curve is checked by ring at verification.
    pub fn new(kid: impl Into<String>, public_key: &[u8]) -> Result<Self, KeyError> {
        if public_key.len() != P256_POINT_LEN || public_key.first() != Some(&0x04) {
            return Err(KeyError::Rejected(
                "expected an uncompressed P-256 point".into(),
            ));
        }
        Ok(Self {
            kid: kid.into(),
            public_key: public_key.to_vec(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// Public JWK, as [`SigningKey::public_jwk`].
    pub fn public_jwk(&self) -> Value {
        ec_jwk(&self.kid, &self.public_key)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl From<&SigningKey> for VerifyingKey {
    fn from(key: &SigningKey) -> Self {
        key.verifying_key()
    }
}

/// The `/.well-known/jwks.json` document (§3.5.3, D13): `{"keys": [...]}`.
pub fn jwks_document(keys: &[VerifyingKey]) -> Value {
    serde_json::json!({ "keys": keys.iter().map(VerifyingKey::public_jwk).collect::<Vec<_>>() })
}

// ---------------------------------------------------------------------------
// Internal token claims, signing and verification
// ---------------------------------------------------------------------------

/// The six claims of an internal token (§3.5.2), serialized in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternalClaims {
    /// Internal user id (not the IdP subject).
    pub sub: Uuid,
    /// Workspace the token was minted for.
    pub workspace_id: Uuid,
    pub iss: String,
    /// A plain string, as upstream mints it.
    pub aud: String,
    /// Issue time, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds (`iat` + TTL, D32).
    pub exp: i64,
}

impl InternalClaims {
    /// Claims for a token issued at `now_unix` and valid for `ttl_secs`.
    pub fn new(
        user_id: Uuid,
        workspace_id: Uuid,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        now_unix: i64,
        ttl_secs: i64,
    ) -> Self {
        Self {
            sub: user_id,
            workspace_id,
            iss: issuer.into(),
            aud: audience.into(),
            iat: now_unix,
            exp: now_unix.saturating_add(ttl_secs),
        }
    }
}

/// Signs an internal token:
/// header `{"alg":"ES256","typ":"JWT","kid":<key id>}`, payload = `claims`.
pub fn sign(key: &SigningKey, claims: &InternalClaims) -> Result<String, KeyError> {
    let claims = serde_json::to_value(claims).map_err(|e| KeyError::Encode(e.to_string()))?;
    sign_es256_value(key, &claims)
}

fn sign_es256_value(key: &SigningKey, claims: &Value) -> Result<String, KeyError> {
    let header = serde_json::json!({ "alg": ALG_ES256, "typ": "JWT", "kid": key.kid() });
    es256_sign_input(key, &signing_input(&header, claims)?)
}

/// Appends the ES256 signature of `signing_input` (`header.payload`).
fn es256_sign_input(key: &SigningKey, signing_input: &str) -> Result<String, KeyError> {
    let sig = key
        .key_pair
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .map_err(|_| KeyError::Sign)?;
    Ok(format!("{signing_input}.{}", b64::encode(sig.as_ref())))
}

fn signing_input(header: &Value, claims: &Value) -> Result<String, KeyError> {
    let h = serde_json::to_vec(header).map_err(|e| KeyError::Encode(e.to_string()))?;
    let c = serde_json::to_vec(claims).map_err(|e| KeyError::Encode(e.to_string()))?;
    Ok(format!("{}.{}", b64::encode(&h), b64::encode(&c)))
}

/// Verifies an internal token (§3.5.4, D13) and returns its claims.
///
/// `keys` are all keys still accepted (current and rotated-out ones); the one
/// whose `kid` matches the header is used. Checks, in order: size and shape,
/// header (`alg` must be ES256, `kid` required and known), signature, then
/// claims: `iat`/`nbf` sanity, `exp` (no leeway), `aud` contains
/// `expected_aud`, `iss == expected_iss`, and all six claims present.
pub fn verify_internal(
    token: &str,
    keys: &[VerifyingKey],
    now_unix: i64,
    expected_iss: &str,
    expected_aud: &str,
) -> Result<InternalClaims, TokenError> {
    let parts = split(token)?;
    let header = parse_header(parts.header)?;
    if header.alg != ALG_ES256 {
        return Err(alg_not_allowed());
    }
    let kid = header.kid.ok_or(TokenError::MissingKid)?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(TokenError::UnknownKid(kid))?;
    let sig = decode_signature(parts.signature)?;
    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &key.public_key)
        .verify(parts.signing_input.as_bytes(), &sig)
        .map_err(|_| signature_failed())?;

    let claims = parse_payload(parts.payload)?;
    check_time_claims(&claims, now_unix)?;
    if let Some(aud) = claims.get("aud") {
        let auds = audience_list(aud)?;
        if !auds.iter().any(|a| a == expected_aud) {
            return Err(TokenError::claims("Invalid audience"));
        }
    }
    if let Some(iss) = claims.get("iss") {
        if iss.as_str() != Some(expected_iss) {
            return Err(TokenError::claims("Invalid issuer"));
        }
    }
    check_sub_type(&claims)?;
    for name in ["sub", "workspace_id", "iss", "aud", "exp", "iat"] {
        if !claims.contains_key(name) {
            return Err(TokenError::MissingClaim(name));
        }
    }

    // Present, typed and checked above; only the UUIDs are left to parse.
    let sub = uuid_claim(&claims, "sub", "Subject must be a UUID")?;
    let workspace_id = uuid_claim(&claims, "workspace_id", "Workspace ID must be a UUID")?;
    Ok(InternalClaims {
        sub,
        workspace_id,
        iss: expected_iss.to_owned(),
        aud: expected_aud.to_owned(),
        iat: int_claim(&claims, "iat", IAT_TYPE)?.unwrap_or_default(),
        exp: int_claim(&claims, "exp", EXP_TYPE)?.unwrap_or_default(),
    })
}

fn uuid_claim(claims: &Map<String, Value>, name: &str, msg: &str) -> Result<Uuid, TokenError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::try_parse(s).ok())
        .ok_or_else(|| TokenError::claims(msg))
}

// ---------------------------------------------------------------------------
// Token parsing shared by both kinds
// ---------------------------------------------------------------------------

/// The JOSE header fields we look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: String,
    pub typ: Option<String>,
    pub kid: Option<String>,
}

/// Reads a token's header without verifying anything (§3.3.1). Lets the
/// server see the `kid` before choosing keys or re-fetching a JWKS.
pub fn decode_header(token: &str) -> Result<Header, TokenError> {
    let parts = split(token)?;
    parse_header(parts.header)
}

struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'a str,
}

fn split(token: &str) -> Result<Parts<'_>, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::invalid("Token is too large"));
    }
    let mut it = token.split('.');
    let (Some(header), Some(payload), Some(signature)) = (it.next(), it.next(), it.next()) else {
        return Err(TokenError::invalid("Not enough segments"));
    };
    if it.next().is_some() {
        return Err(TokenError::invalid("Too many segments"));
    }
    // header + '.' + payload is a prefix of `token`.
    let signing_input = token
        .get(..header.len() + 1 + payload.len())
        .ok_or_else(|| TokenError::invalid("Not enough segments"))?;
    Ok(Parts {
        header,
        payload,
        signature,
        signing_input,
    })
}

fn parse_header(segment: &str) -> Result<Header, TokenError> {
    let bytes =
        b64::decode_strict(segment).ok_or_else(|| TokenError::invalid("Invalid header padding"))?;
    let StrictObject(mut map) = serde_json::from_slice(&bytes)
        .map_err(|e| TokenError::invalid(format!("Invalid header string: {e}")))?;
    if map.contains_key("crit") {
        // RFC 7515 §4.1.11: we understand no extensions, so must refuse.
        return Err(TokenError::invalid("Unsupported critical header parameter"));
    }
    let alg = match map.remove("alg") {
        Some(Value::String(alg)) => alg,
        Some(_) => {
            return Err(TokenError::invalid(
                "Invalid header string: alg must be a string",
            ))
        }
        None => return Err(TokenError::invalid("Invalid header string: missing alg")),
    };
    let kid = match map.remove("kid") {
        Some(Value::String(kid)) => Some(kid),
        None | Some(Value::Null) => None,
        Some(_) => {
            return Err(TokenError::invalid(
                "Invalid header string: kid must be a string",
            ))
        }
    };
    let typ = match map.remove("typ") {
        Some(Value::String(typ)) => Some(typ),
        _ => None,
    };
    Ok(Header { alg, typ, kid })
}

fn parse_payload(segment: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = b64::decode_strict(segment)
        .ok_or_else(|| TokenError::invalid("Invalid payload padding"))?;
    let StrictObject(map) = serde_json::from_slice(&bytes)
        .map_err(|e| TokenError::invalid(format!("Invalid payload string: {e}")))?;
    Ok(map)
}

fn decode_signature(segment: &str) -> Result<Vec<u8>, TokenError> {
    b64::decode_strict(segment).ok_or_else(|| TokenError::invalid("Invalid crypto padding"))
}

fn alg_not_allowed() -> TokenError {
    TokenError::invalid("The specified alg value is not allowed")
}

fn signature_failed() -> TokenError {
    TokenError::invalid("Signature verification failed.")
}

/// A JSON object whose top-level keys are unique. serde_json's `Map` keeps the
/// last duplicate silently; for `alg`, `kid`, `aud`, ... that ambiguity is a
/// known JWT attack surface, so duplicates are an error.
struct StrictObject(Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&key) {
                        return Err(serde::de::Error::custom(format_args!(
                            "duplicate member `{key}`"
                        )));
                    }
                    map.insert(key, value);
                }
                Ok(StrictObject(map))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

const EXP_TYPE: &str = "Expiration Time claim (exp) must be an integer.";
const IAT_TYPE: &str = "Issued At claim (iat) must be an integer.";
const NBF_TYPE: &str = "Not Before claim (nbf) must be an integer.";

/// A NumericDate claim: `None` if absent, an error if not a number. Fractional
/// values are truncated (RFC 7519 allows them; python-jose does `int(...)`).
fn int_claim(
    claims: &Map<String, Value>,
    name: &str,
    type_msg: &'static str,
) -> Result<Option<i64>, TokenError> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let n = value
        .as_number()
        .ok_or_else(|| TokenError::claims(type_msg))?;
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        // `as` saturates at i64 bounds, which is the right clamp for a time.
        Some(f) if f.is_finite() => Ok(Some(f.trunc() as i64)),
        _ => Err(TokenError::claims(type_msg)),
    }
}

/// python-jose's order: `iat` type, `nbf` (with leeway), then `exp` (none).
fn check_time_claims(claims: &Map<String, Value>, now: i64) -> Result<(), TokenError> {
    int_claim(claims, "iat", IAT_TYPE)?;
    if let Some(nbf) = int_claim(claims, "nbf", NBF_TYPE)? {
        if nbf > now.saturating_add(NBF_LEEWAY_SECS) {
            return Err(TokenError::claims("The token is not yet valid (nbf)"));
        }
    }
    if let Some(exp) = int_claim(claims, "exp", EXP_TYPE)? {
        // RFC 7519 §4.1.4: valid only while now < exp.
        if now >= exp {
            return Err(TokenError::Expired);
        }
    }
    Ok(())
}

/// `aud` as a list: a string is a one-element list.
fn audience_list(aud: &Value) -> Result<Vec<String>, TokenError> {
    let invalid = || TokenError::claims("Invalid claim format in token");
    match aud {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect(),
        _ => Err(invalid()),
    }
}

fn check_sub_type(claims: &Map<String, Value>) -> Result<(), TokenError> {
    match claims.get("sub") {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => Err(TokenError::claims("Subject must be a string.")),
    }
}

// ---------------------------------------------------------------------------
// OIDC (RS256) verification
// ---------------------------------------------------------------------------

/// One key of an IdP's JWKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: String,
    /// The JWK's own `alg`, if it declares one.
    pub alg: Option<String>,
    /// The JWK's `use`, if it declares one (`sig` or `enc`).
    pub key_use: Option<String>,
    pub key: JwkKey,
}

/// Key material of a [`Jwk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwkKey {
    /// Big-endian modulus and exponent without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// A key we cannot verify RS256 with (other `kty`, or broken `n`/`e`).
    /// Kept so that its `kid` is "known": a token naming it is refused
    /// outright instead of triggering JWKS re-fetches.
    Unusable { reason: String },
}

/// A parsed JWKS document (`{"keys": [...]}`), as served by the IdP
/// (OIDC `jwks_uri`) or read from `oidc.jwks_file` (D12).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses a JWKS document. The document must be an object with a `keys`
    /// array; keys without a string `kid` are skipped (a token can only name
    /// a key by `kid`), other odd keys are kept as [`JwkKey::Unusable`].
    pub fn from_json(document: &[u8]) -> Result<Self, JwksError> {
        let doc: Value = serde_json::from_slice(document).map_err(|e| JwksError(e.to_string()))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| JwksError("expected an object with a \"keys\" array".into()))?;
        let keys = keys.iter().filter_map(parse_jwk).collect();
        Ok(Self { keys })
    }

    /// The key with this `kid`, if any (the first one, should it repeat).
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn contains_kid(&self, kid: &str) -> bool {
        self.find(kid).is_some()
    }

    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn parse_jwk(value: &Value) -> Option<Jwk> {
    let obj = value.as_object()?;
    let kid = obj.get("kid")?.as_str()?.to_owned();
    let text = |name: &str| obj.get(name).and_then(Value::as_str).map(str::to_owned);
    let key = match obj.get("kty").and_then(Value::as_str) {
        Some("RSA") => {
            let component = |name: &str| {
                text(name)
                    .and_then(|s| b64::decode_lenient(&s))
                    .map(strip_leading_zeros)
                    .filter(|v| !v.is_empty())
            };
            match (component("n"), component("e")) {
                (Some(n), Some(e)) => JwkKey::Rsa { n, e },
                _ => JwkKey::Unusable {
                    reason: "malformed RSA key".into(),
                },
            }
        }
        Some(other) => JwkKey::Unusable {
            reason: format!("unsupported key type {other}"),
        },
        None => JwkKey::Unusable {
            reason: "missing key type".into(),
        },
    };
    Some(Jwk {
        kid,
        alg: text("alg"),
        key_use: text("use"),
        key,
    })
}

fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|&&b| b == 0).count();
    v.drain(..zeros);
    v
}

/// The claims of a verified OIDC token that provisioning needs (§3.3.7).
#[derive(Debug, Clone, PartialEq)]
pub struct OidcClaims {
    pub sub: String,
    pub email: Option<String>,
    /// Defaults to false; never checked (§3.3.7). Accepts `true` or `"true"`
    /// (Cognito sends a string).
    pub email_verified: bool,
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub preferred_username: Option<String>,
    pub iss: String,
    /// Empty when the token has no `aud`.
    pub aud: Vec<String>,
    pub exp: i64,
    /// 0 when absent.
    pub iat: i64,
    /// Every claim of the token, for anything not extracted above.
    pub raw: Map<String, Value>,
}

impl OidcClaims {
    /// Display name (§3.3.8): `name`; else `given_name family_name` (those
    /// present); else `preferred_username`; else the email's local part;
    /// else `sub`. Empty strings count as absent, so the result is non-empty
    /// whenever `sub` is.
    pub fn display_name(&self) -> String {
        fn present(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.is_empty())
        }
        if let Some(name) = present(&self.name) {
            return name.to_owned();
        }
        let parts: Vec<&str> = [present(&self.given_name), present(&self.family_name)]
            .into_iter()
            .flatten()
            .collect();
        if !parts.is_empty() {
            return parts.join(" ");
        }
        if let Some(username) = present(&self.preferred_username) {
            return username.to_owned();
        }
        if let Some(local) = present(&self.email)
            .and_then(|e| e.split('@').next())
            .filter(|l| !l.is_empty())
        {
            return local.to_owned();
        }
        self.sub.clone()
    }
}

/// Verifies an IdP token (§3.3) against `jwks`.
///
/// Order: header (`kid` required), key lookup by `kid` (an unknown one gives
/// [`TokenError::UnknownKid`]: re-fetch the JWKS, rate-limited, and call
/// again), `alg` must be RS256, signature, then `iat`/`nbf`/`exp`, audience
/// (checked only when the token has a non-empty `aud`; then at least one value
/// must be in `allowed_audiences`), issuer in `allowed_issuers`, and required
/// `sub`, `iss`, `exp`.
pub fn verify_oidc_rs256(
    token: &str,
    jwks: &Jwks,
    now_unix: i64,
    allowed_issuers: &[String],
    allowed_audiences: &[String],
) -> Result<OidcClaims, TokenError> {
    let parts = split(token)?;
    let header = parse_header(parts.header)?;
    let kid = header.kid.ok_or(TokenError::MissingKid)?;
    let jwk = jwks.find(&kid).ok_or(TokenError::UnknownKid(kid))?;
    if header.alg != ALG_RS256 {
        return Err(alg_not_allowed());
    }
    let (n, e) = match &jwk.key {
        JwkKey::Rsa { n, e } => (n, e),
        JwkKey::Unusable { reason } => {
            return Err(TokenError::invalid(format!("Unusable key: {reason}")))
        }
    };
    if jwk.alg.as_deref().is_some_and(|a| a != ALG_RS256)
        || jwk.key_use.as_deref().is_some_and(|u| u != "sig")
    {
        return Err(TokenError::invalid(
            "Unusable key: not an RS256 signing key",
        ));
    }
    let sig = decode_signature(parts.signature)?;
    // RSA_PKCS1_2048_8192_SHA256 also refuses moduli under 2048 bits.
    RsaPublicKeyComponents { n, e }
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            parts.signing_input.as_bytes(),
            &sig,
        )
        .map_err(|_| signature_failed())?;

    let claims = parse_payload(parts.payload)?;
    check_time_claims(&claims, now_unix)?;

    // Upstream tests Python truthiness: absent, null, "" and [] all mean "no
    // audience", which passes whatever the client (§3.3.5).
    let aud = match claims.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if s.is_empty() => Vec::new(),
        Some(aud) => audience_list(aud)?,
    };
    if !aud.is_empty() && !aud.iter().any(|a| allowed_audiences.contains(a)) {
        return Err(TokenError::InvalidAudience {
            expected: py_list_repr(allowed_audiences),
            got: py_list_repr(&aud),
        });
    }

    let iss = match claims.get("iss") {
        None => {
            return Err(TokenError::MissingOidcClaim {
                claim: "iss",
                meaning: "issuer",
            })
        }
        Some(Value::String(iss)) if allowed_issuers.contains(iss) => iss.clone(),
        Some(_) => return Err(TokenError::claims("Invalid issuer")),
    };
    check_sub_type(&claims)?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(TokenError::MissingOidcClaim {
            claim: "sub",
            meaning: "subject",
        })?
        .to_owned();
    let exp = int_claim(&claims, "exp", EXP_TYPE)?.ok_or(TokenError::MissingOidcClaim {
        claim: "exp",
        meaning: "expiration",
    })?;
    let iat = int_claim(&claims, "iat", IAT_TYPE)?.unwrap_or(0);

    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let email_verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    Ok(OidcClaims {
        email: text("email"),
        name: text("name"),
        given_name: text("given_name"),
        family_name: text("family_name"),
        preferred_username: text("preferred_username"),
        email_verified,
        sub,
        iss,
        aud,
        exp,
        iat,
        raw: claims,
    })
}

/// Python `repr()` of a list of strings, e.g. `['stardag-ui', 'stardag-sdk']`,
/// as upstream's audience error shows it.
fn py_list_repr(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| py_str_repr(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// Python `repr()` of a `str`: single quotes unless the text contains `'` and
/// no `"`; escapes backslash, the chosen quote and control characters.
fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

// ---------------------------------------------------------------------------
// Test support (public: the main crate's integration tests use it too)
// ---------------------------------------------------------------------------

/// Helpers for tests: mint RS256 "IdP" tokens with a test RSA key, build the
/// matching JWKS, and craft arbitrary (also invalid) tokens.
///
/// Plain public code, because integration tests in `tests/` compile the
/// library without `cfg(test)`. Nothing here is used by the server itself, and
/// no key material is embedded: callers pass the PKCS#8 bytes (the fixture
/// lives at `tests/fixtures/oidc-test-rsa.pk8`).
pub mod test_support {
    use ring::rand::SystemRandom;
    use ring::signature::{self, RsaKeyPair, RsaPublicKeyComponents};
    use serde_json::Value;

    use super::{b64, signing_input, KeyError, SigningKey, ALG_RS256};

    /// Signs `claims` as an RS256 JWT with header
    /// `{"alg":"RS256","typ":"JWT","kid":kid}`. `pkcs8`: an RSA private key,
    /// PKCS#8 DER.
    pub fn rsa_sign(pkcs8: &[u8], kid: &str, claims: &Value) -> Result<String, KeyError> {
        let header = serde_json::json!({ "alg": ALG_RS256, "typ": "JWT", "kid": kid });
        rsa_sign_with_header(pkcs8, &header, claims)
    }

    /// Like [`rsa_sign`] with a caller-chosen header (e.g. no `kid`).
    pub fn rsa_sign_with_header(
        pkcs8: &[u8],
        header: &Value,
        claims: &Value,
    ) -> Result<String, KeyError> {
        let key = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| KeyError::Rejected(e.to_string()))?;
        let input = signing_input(header, claims)?;
        let mut sig = vec![0u8; key.public().modulus_len()];
        key.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .map_err(|_| KeyError::Sign)?;
        Ok(format!("{input}.{}", b64::encode(&sig)))
    }

    /// The public JWK of an RSA private key:
    /// `{"kty":"RSA","use":"sig","alg":"RS256","kid","n","e"}`.
    pub fn rsa_jwk(pkcs8: &[u8], kid: &str) -> Result<Value, KeyError> {
        let key = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| KeyError::Rejected(e.to_string()))?;
        let parts: RsaPublicKeyComponents<Vec<u8>> = key.public().into();
        Ok(serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": ALG_RS256,
            "kid": kid,
            "n": b64::encode(&parts.n),
            "e": b64::encode(&parts.e),
        }))
    }

    /// A JWKS document (`{"keys":[jwk]}`) holding the public half of `pkcs8`.
    pub fn rsa_jwks_json(pkcs8: &[u8], kid: &str) -> Result<String, KeyError> {
        Ok(serde_json::json!({ "keys": [rsa_jwk(pkcs8, kid)?] }).to_string())
    }

    /// Signs arbitrary JSON `claims` with an internal ES256 key and the
    /// standard header: for tokens with missing or odd claims.
    pub fn es256_sign_json(key: &SigningKey, claims: &Value) -> Result<String, KeyError> {
        super::sign_es256_value(key, claims)
    }

    /// Signs an arbitrary, caller-built signing input (`<header>.<payload>`
    /// text, taken verbatim) with an internal key and returns the full token:
    /// for validly signed tokens with padding, duplicate members, ...
    pub fn es256_sign_input(key: &SigningKey, signing_input: &str) -> Result<String, KeyError> {
        super::es256_sign_input(key, signing_input)
    }

    /// Joins `header`, `claims` and raw `signature` bytes into a compact JWT
    /// without checking anything: for forged tokens (`alg: none`, HS256, ...).
    pub fn assemble(header: &Value, claims: &Value, signature: &[u8]) -> String {
        let enc = |v: &Value| b64::encode(v.to_string().as_bytes());
        format!("{}.{}.{}", enc(header), enc(claims), b64::encode(signature))
    }
}
