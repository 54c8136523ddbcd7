//! Tests for `jwt`: internal ES256 tokens and OIDC RS256 verification.
//! Only the public API (including `jwt::test_support`) is used, as the
//! server will use it.

use ring::rand::SystemRandom;
use serde_json::{json, Value};
use uuid::Uuid;

use super::b64;
use super::jwt::test_support::{
    assemble, es256_sign_input, es256_sign_json, rsa_jwks_json, rsa_sign, rsa_sign_with_header,
};
use super::jwt::*;

const NOW: i64 = 1_770_000_000;
const ISS: &str = "stardag-api";
const AUD: &str = "stardag";

/// RSA-2048 test key (PKCS#8 DER), also used by the main crate's tests.
const RSA_PKCS8: &[u8] = include_bytes!("../../tests/fixtures/oidc-test-rsa.pk8");
const RSA_KID: &str = "idp-key-1";
const IDP_ISS: &str = "http://keycloak:8080/realms/stardag";
const IDP_EXT_ISS: &str = "http://localhost:8080/realms/stardag";

fn user() -> Uuid {
    Uuid::parse_str("0190ab12-3456-7abc-8def-0123456789ab").unwrap()
}

fn workspace() -> Uuid {
    Uuid::parse_str("0190ab12-3456-7abc-8def-ba9876543210").unwrap()
}

fn key() -> SigningKey {
    SigningKey::generate(&SystemRandom::new()).unwrap()
}

fn claims() -> InternalClaims {
    InternalClaims::new(user(), workspace(), ISS, AUD, NOW, 600)
}

fn claims_json() -> Value {
    serde_json::to_value(claims()).unwrap()
}

fn verify(token: &str, key: &SigningKey) -> Result<InternalClaims, TokenError> {
    verify_internal(token, &[key.verifying_key()], NOW, ISS, AUD)
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

fn decode_json(segment: &str) -> Value {
    serde_json::from_slice(&b64::decode_strict(segment).unwrap()).unwrap()
}

/// Re-encodes `value` as a segment (without signing anything).
fn encode_json(value: &Value) -> String {
    b64::encode(value.to_string().as_bytes())
}

fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", encode_json(header), encode_json(claims));
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&k, input.as_bytes());
    format!("{input}.{}", b64::encode(tag.as_ref()))
}

fn invalid(msg: &str) -> TokenError {
    TokenError::Invalid(msg.to_owned())
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

#[test]
fn generated_key_has_derived_kid_and_reloads_from_pkcs8() {
    let k = key();
    assert_eq!(k.kid().len(), 16);
    assert!(k
        .kid()
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(k.kid(), derive_kid(k.public_key()));
    assert_eq!(k.public_key().len(), 65);

    let reloaded = SigningKey::from_pkcs8(k.kid(), k.pkcs8()).unwrap();
    assert_eq!(reloaded.public_key(), k.public_key());
    let token = sign(&reloaded, &claims()).unwrap();
    assert_eq!(verify(&token, &k).unwrap(), claims());

    // Two fresh keys differ.
    assert_ne!(key().kid(), k.kid());
}

#[test]
fn kid_is_sha256_of_spki_der() {
    // Public point and kid computed independently with OpenSSL:
    //   openssl pkey -pubout -outform DER | sha256sum | cut -c1-16
    let point = [
        0x04, 0xfc, 0x01, 0x55, 0x6b, 0x1e, 0x19, 0x46, 0xa0, 0x16, 0x99, 0xff, 0xcc, 0x1d, 0x41,
        0x1e, 0xc8, 0xfb, 0xd1, 0x9b, 0x38, 0xa0, 0xd1, 0x2b, 0x0e, 0xc2, 0x9d, 0xe6, 0x53, 0x31,
        0xed, 0x96, 0xa2, 0x95, 0x47, 0x13, 0xdf, 0xa1, 0x2c, 0x5a, 0xd2, 0x92, 0x19, 0xc5, 0x45,
        0xc5, 0xe5, 0xca, 0x11, 0x1e, 0x80, 0xdd, 0xc1, 0x76, 0x82, 0xb9, 0x63, 0x78, 0xbb, 0x4f,
        0xd6, 0x64, 0xda, 0x58, 0xc7,
    ];
    assert_eq!(derive_kid(&point), "d8f8ac27c9dbc356");
}

#[test]
fn from_pkcs8_rejects_garbage_and_rsa_keys() {
    assert!(SigningKey::from_pkcs8("k", b"").is_err());
    assert!(SigningKey::from_pkcs8("k", b"not a key").is_err());
    assert!(SigningKey::from_pkcs8("k", RSA_PKCS8).is_err());
}

#[test]
fn public_jwk_has_ec_members() {
    let k = key();
    let jwk = k.public_jwk();
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["kid"], k.kid());
    let x = b64::decode_strict(jwk["x"].as_str().unwrap()).unwrap();
    let y = b64::decode_strict(jwk["y"].as_str().unwrap()).unwrap();
    assert_eq!(x.len(), 32);
    assert_eq!(y.len(), 32);
    assert_eq!([&[4u8][..], &x, &y].concat(), k.public_key());
    assert_eq!(jwk.as_object().unwrap().len(), 7);
    assert_eq!(k.verifying_key().public_jwk(), jwk);

    let doc = jwks_document(&[k.verifying_key()]);
    assert_eq!(doc["keys"].as_array().unwrap().len(), 1);
    assert_eq!(doc["keys"][0], jwk);
}

#[test]
fn debug_output_hides_private_key() {
    let k = key();
    let dbg = format!("{k:?}");
    assert!(dbg.contains(k.kid()));
    assert!(!dbg.contains(&format!("{:?}", k.pkcs8())));
    assert!(!dbg.contains("pkcs8"));
}

#[test]
fn verifying_key_checks_point_shape() {
    assert!(VerifyingKey::new("k", &[4u8; 64]).is_err());
    assert!(VerifyingKey::new("k", &[2u8; 65]).is_err());
    assert!(VerifyingKey::new("k", &[]).is_err());
    // Right shape but not on the curve: refused at verification, no panic.
    let bogus = VerifyingKey::new("k", &[4u8; 65]).unwrap();
    let k = key();
    let token = es256_sign_json(
        &SigningKey::from_pkcs8("k", k.pkcs8()).unwrap(),
        &claims_json(),
    )
    .unwrap();
    assert_eq!(
        verify_internal(&token, &[bogus], NOW, ISS, AUD),
        Err(invalid("Signature verification failed."))
    );
}

// ---------------------------------------------------------------------------
// Internal tokens: happy paths
// ---------------------------------------------------------------------------

#[test]
fn sign_and_verify_round_trip() {
    let k = key();
    let token = sign(&k, &claims()).unwrap();
    let parts = segments(&token);
    assert_eq!(parts.len(), 3);
    assert_eq!(
        decode_json(&parts[0]),
        json!({"alg": "ES256", "typ": "JWT", "kid": k.kid()})
    );
    assert_eq!(
        decode_json(&parts[1]),
        json!({
            "sub": user().to_string(),
            "workspace_id": workspace().to_string(),
            "iss": ISS,
            "aud": AUD,
            "iat": NOW,
            "exp": NOW + 600,
        })
    );
    assert_eq!(b64::decode_strict(&parts[2]).unwrap().len(), 64);

    let got = verify(&token, &k).unwrap();
    assert_eq!(got, claims());
    assert_eq!(got.exp - got.iat, 600);

    let header = decode_header(&token).unwrap();
    assert_eq!(header.alg, "ES256");
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.kid.as_deref(), Some(k.kid()));
}

#[test]
fn custom_issuer_and_audience() {
    let k = key();
    let c = InternalClaims::new(user(), workspace(), "my-iss", "my-aud", NOW, 60);
    let token = sign(&k, &c).unwrap();
    let got = verify_internal(&token, &[k.verifying_key()], NOW, "my-iss", "my-aud").unwrap();
    assert_eq!(got, c);
    assert_eq!(
        verify(&token, &k),
        Err(TokenError::InvalidClaims("Invalid audience".into()))
    );
}

#[test]
fn audience_list_containing_ours_is_accepted() {
    let k = key();
    let mut c = claims_json();
    c["aud"] = json!(["other", AUD]);
    let token = es256_sign_json(&k, &c).unwrap();
    assert_eq!(verify(&token, &k).unwrap().aud, AUD);
}

#[test]
fn rotation_keeps_old_tokens_valid_until_key_is_dropped() {
    let old = key();
    let new = key();
    let old_token = sign(&old, &claims()).unwrap();
    let new_token = sign(&new, &claims()).unwrap();
    let both = [new.verifying_key(), old.verifying_key()];
    assert!(verify_internal(&old_token, &both, NOW, ISS, AUD).is_ok());
    assert!(verify_internal(&new_token, &both, NOW, ISS, AUD).is_ok());
    let only_new = [new.verifying_key()];
    assert_eq!(
        verify_internal(&old_token, &only_new, NOW, ISS, AUD),
        Err(TokenError::UnknownKid(old.kid().to_owned()))
    );
    assert!(verify_internal(&old_token, &[], NOW, ISS, AUD).is_err());
}

#[test]
fn fractional_times_are_accepted() {
    let k = key();
    let mut c = claims_json();
    c["iat"] = json!(NOW as f64 + 0.5);
    c["exp"] = json!(NOW as f64 + 600.25);
    let got = verify(&es256_sign_json(&k, &c).unwrap(), &k).unwrap();
    assert_eq!((got.iat, got.exp), (NOW, NOW + 600));
}

// ---------------------------------------------------------------------------
// Internal tokens: time and claim checks
// ---------------------------------------------------------------------------

#[test]
fn expired_token() {
    let k = key();
    let token = sign(&k, &claims()).unwrap();
    let exp = NOW + 600;
    let at = |now| verify_internal(&token, &[k.verifying_key()], now, ISS, AUD);
    assert!(at(exp - 1).is_ok());
    assert_eq!(at(exp), Err(TokenError::Expired));
    assert_eq!(at(exp + 3600), Err(TokenError::Expired));
    let err = at(exp).unwrap_err();
    assert!(err.is_expired());
    assert_eq!(err.to_string(), "Token has expired");
}

#[test]
fn not_before_in_the_future() {
    let k = key();
    let mut c = claims_json();
    c["nbf"] = json!(NOW + NBF_LEEWAY_SECS);
    assert!(verify(&es256_sign_json(&k, &c).unwrap(), &k).is_ok());
    c["nbf"] = json!(NOW + NBF_LEEWAY_SECS + 1);
    assert_eq!(
        verify(&es256_sign_json(&k, &c).unwrap(), &k)
            .unwrap_err()
            .to_string(),
        "Invalid token claims: The token is not yet valid (nbf)"
    );
}

#[test]
fn wrong_issuer_and_audience() {
    let k = key();
    let token = sign(&k, &claims()).unwrap();
    let vk = [k.verifying_key()];
    assert_eq!(
        verify_internal(&token, &vk, NOW, "other-iss", AUD)
            .unwrap_err()
            .to_string(),
        "Invalid token claims: Invalid issuer"
    );
    assert_eq!(
        verify_internal(&token, &vk, NOW, ISS, "other-aud")
            .unwrap_err()
            .to_string(),
        "Invalid token claims: Invalid audience"
    );
}

#[test]
fn missing_claims_are_named() {
    let k = key();
    for name in ["sub", "workspace_id", "iss", "aud", "exp", "iat"] {
        let mut c = claims_json();
        c.as_object_mut().unwrap().remove(name);
        let err = verify(&es256_sign_json(&k, &c).unwrap(), &k).unwrap_err();
        assert_eq!(err, TokenError::MissingClaim(name));
        assert_eq!(
            err.to_string(),
            format!("Token missing required '{name}' claim")
        );
    }
}

#[test]
fn claim_types_are_checked() {
    let k = key();
    let cases: [(&str, Value, &str); 9] = [
        (
            "exp",
            json!("soon"),
            "Invalid token claims: Expiration Time claim (exp) must be an integer.",
        ),
        (
            "exp",
            json!(null),
            "Invalid token claims: Expiration Time claim (exp) must be an integer.",
        ),
        (
            "iat",
            json!([1]),
            "Invalid token claims: Issued At claim (iat) must be an integer.",
        ),
        (
            "nbf",
            json!(true),
            "Invalid token claims: Not Before claim (nbf) must be an integer.",
        ),
        (
            "sub",
            json!(42),
            "Invalid token claims: Subject must be a string.",
        ),
        (
            "sub",
            json!("not-a-uuid"),
            "Invalid token claims: Subject must be a UUID",
        ),
        (
            "workspace_id",
            json!("nope"),
            "Invalid token claims: Workspace ID must be a UUID",
        ),
        (
            "aud",
            json!(7),
            "Invalid token claims: Invalid claim format in token",
        ),
        (
            "iss",
            json!(["stardag-api"]),
            "Invalid token claims: Invalid issuer",
        ),
    ];
    for (name, value, msg) in cases {
        let mut c = claims_json();
        c[name] = value;
        let err = verify(&es256_sign_json(&k, &c).unwrap(), &k).unwrap_err();
        assert_eq!(err.to_string(), msg, "{name}");
    }
}

#[test]
fn huge_exp_does_not_overflow() {
    let k = key();
    let mut c = claims_json();
    c["exp"] = json!(1e300);
    assert!(verify(&es256_sign_json(&k, &c).unwrap(), &k).is_ok());
    c["exp"] = json!(-1e300);
    assert_eq!(
        verify(&es256_sign_json(&k, &c).unwrap(), &k),
        Err(TokenError::Expired)
    );
    c["exp"] = json!(u64::MAX);
    assert!(verify(&es256_sign_json(&k, &c).unwrap(), &k).is_ok());
    let far = InternalClaims::new(user(), workspace(), ISS, AUD, i64::MAX - 5, 600);
    assert_eq!(far.exp, i64::MAX);
}

// ---------------------------------------------------------------------------
// Internal tokens: forgeries and malformed input
// ---------------------------------------------------------------------------

#[test]
fn tampered_signature_or_payload() {
    let k = key();
    let token = sign(&k, &claims()).unwrap();
    let parts = segments(&token);

    // Flip one signature byte.
    let mut sig = b64::decode_strict(&parts[2]).unwrap();
    sig[10] ^= 1;
    let forged = format!("{}.{}.{}", parts[0], parts[1], b64::encode(&sig));
    assert_eq!(
        verify(&forged, &k),
        Err(invalid("Signature verification failed."))
    );

    // Swap the workspace in the payload, keep the signature.
    let mut c = claims_json();
    c["workspace_id"] = json!(Uuid::nil().to_string());
    let forged = format!("{}.{}.{}", parts[0], encode_json(&c), parts[2]);
    assert_eq!(
        verify(&forged, &k),
        Err(invalid("Signature verification failed."))
    );

    // Truncated or empty signature.
    let short = format!("{}.{}.{}", parts[0], parts[1], b64::encode(&sig[..32]));
    assert_eq!(
        verify(&short, &k),
        Err(invalid("Signature verification failed."))
    );
    let empty = format!("{}.{}.", parts[0], parts[1]);
    assert_eq!(
        verify(&empty, &k),
        Err(invalid("Signature verification failed."))
    );
}

#[test]
fn alg_none_is_refused() {
    let k = key();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": k.kid()});
        for sig in [&b""[..], b"x"] {
            let token = assemble(&header, &claims_json(), sig);
            assert_eq!(
                verify(&token, &k),
                Err(invalid("The specified alg value is not allowed")),
                "{alg}"
            );
        }
    }
    // Also without a kid.
    let token = assemble(&json!({"alg": "none"}), &claims_json(), b"");
    assert_eq!(
        verify(&token, &k),
        Err(invalid("The specified alg value is not allowed"))
    );
}

#[test]
fn hs256_is_refused_even_with_the_public_key_as_secret() {
    let k = key();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": k.kid()});
    for secret in [k.public_key(), b"secret".as_slice(), k.kid().as_bytes()] {
        let token = hs256(secret, &header, &claims_json());
        assert_eq!(
            verify(&token, &k),
            Err(invalid("The specified alg value is not allowed"))
        );
    }
}

#[test]
fn other_algorithms_are_refused() {
    let k = key();
    let good = sign(&k, &claims()).unwrap();
    let parts = segments(&good);
    for alg in [
        json!("RS256"),
        json!("ES384"),
        json!("es256"),
        json!("ES256 "),
        json!(null),
        json!(1),
    ] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": k.kid()});
        // Keep the real signature: only the header changes.
        let token = format!("{}.{}.{}", encode_json(&header), parts[1], parts[2]);
        assert!(
            verify(&token, &k)
                .unwrap_err()
                .to_string()
                .starts_with("Invalid token: "),
            "{alg}"
        );
    }
    // RS256 token from the IdP key, carrying our kid.
    let token = rsa_sign(RSA_PKCS8, k.kid(), &claims_json()).unwrap();
    assert_eq!(
        verify(&token, &k),
        Err(invalid("The specified alg value is not allowed"))
    );
}

#[test]
fn token_from_another_es256_key() {
    let ours = key();
    let theirs = key();
    // Their own kid: unknown to us.
    let token = sign(&theirs, &claims()).unwrap();
    let err = verify(&token, &ours).unwrap_err();
    assert_eq!(err.unknown_kid(), Some(theirs.kid()));
    assert_eq!(
        err.to_string(),
        format!("Unable to find key with ID: {}", theirs.kid())
    );
    // Forged kid: the signature check catches it.
    let impostor = SigningKey::from_pkcs8(ours.kid(), theirs.pkcs8()).unwrap();
    let token = sign(&impostor, &claims()).unwrap();
    assert_eq!(
        verify(&token, &ours),
        Err(invalid("Signature verification failed."))
    );
}

#[test]
fn missing_or_non_string_kid() {
    let k = key();
    let parts = segments(&sign(&k, &claims()).unwrap());
    let no_kid = format!(
        "{}.{}.{}",
        encode_json(&json!({"alg": "ES256", "typ": "JWT"})),
        parts[1],
        parts[2]
    );
    assert_eq!(verify(&no_kid, &k), Err(TokenError::MissingKid));
    assert_eq!(
        TokenError::MissingKid.to_string(),
        "Token missing key ID (kid)"
    );
    let num_kid = format!(
        "{}.{}.{}",
        encode_json(&json!({"alg": "ES256", "kid": 5})),
        parts[1],
        parts[2]
    );
    assert!(verify(&num_kid, &k)
        .unwrap_err()
        .to_string()
        .starts_with("Invalid token: "));
}

#[test]
fn oversize_token_is_refused_before_decoding() {
    let k = key();
    // A genuinely signed token just under the limit still verifies.
    let mut c = claims_json();
    c["pad"] = json!("");
    let base = es256_sign_json(&k, &c).unwrap().len();
    let room = (MAX_TOKEN_BYTES - base) * 3 / 4;
    c["pad"] = json!("x".repeat(room));
    let token = es256_sign_json(&k, &c).unwrap();
    assert!(token.len() <= MAX_TOKEN_BYTES, "{}", token.len());
    assert!(token.len() > MAX_TOKEN_BYTES - 8);
    assert!(verify(&token, &k).is_ok());

    c["pad"] = json!("x".repeat(room + 8));
    let token = es256_sign_json(&k, &c).unwrap();
    assert!(token.len() > MAX_TOKEN_BYTES);
    assert_eq!(verify(&token, &k), Err(invalid("Token is too large")));
    // Garbage of any size is refused on length alone.
    let junk = "A".repeat(10 * 1024 * 1024);
    assert_eq!(verify(&junk, &k), Err(invalid("Token is too large")));
    assert_eq!(decode_header(&junk), Err(invalid("Token is too large")));
}

#[test]
fn padded_or_non_canonical_base64_is_refused() {
    let k = key();
    let token = sign(&k, &claims()).unwrap();
    let p = segments(&token);
    let variants = [
        (
            format!("{}=.{}.{}", p[0], p[1], p[2]),
            "Invalid header padding",
        ),
        (
            format!("{}==.{}.{}", p[0], p[1], p[2]),
            "Invalid header padding",
        ),
        (
            format!("{}.{}=.{}", p[0], p[1], p[2]),
            "Invalid payload padding",
        ),
        (
            format!("{}.{}.{}=", p[0], p[1], p[2]),
            "Invalid crypto padding",
        ),
        (
            format!("{}.{}.{}==", p[0], p[1], p[2]),
            "Invalid crypto padding",
        ),
        (
            format!("{} .{}.{}", p[0], p[1], p[2]),
            "Invalid header padding",
        ),
        (
            format!("{}.{}.{}\n", p[0], p[1], p[2]),
            "Invalid crypto padding",
        ),
    ];
    for (t, msg) in &variants {
        let err = verify(t, &k).unwrap_err();
        // Payload is only decoded after the signature check, which fails
        // first for an altered payload segment.
        if *msg == "Invalid payload padding" {
            assert_eq!(err, invalid("Signature verification failed."), "{t}");
        } else {
            assert_eq!(err, invalid(msg), "{t}");
        }
    }
    // Standard alphabet in the signature.
    let std_sig = p[2].replace('-', "+").replace('_', "/");
    if std_sig != p[2] {
        let t = format!("{}.{}.{}", p[0], p[1], std_sig);
        assert_eq!(verify(&t, &k), Err(invalid("Invalid crypto padding")));
    }
    // Padding in correctly *signed* segments: the signature is valid over
    // the padded text, so only the strict decoder can refuse it. Vary a
    // filler claim so that both padding lengths (1 and 2) occur.
    let mut padded_cases = 0;
    for filler in ["", "a", "aa"] {
        let mut c = claims_json();
        c["f"] = json!(filler);
        let mut payload = encode_json(&c);
        if payload.len().is_multiple_of(4) {
            continue;
        }
        while !payload.len().is_multiple_of(4) {
            payload.push('=');
        }
        let t = es256_sign_input(&k, &format!("{}.{payload}", p[0])).unwrap();
        assert_eq!(verify(&t, &k), Err(invalid("Invalid payload padding")));
        padded_cases += 1;
    }
    assert_eq!(padded_cases, 2);
    // Our header is 52 bytes of JSON, so its base64 needs two '='.
    let mut header = p[0].clone();
    assert_eq!(header.len() % 4, 2);
    header.push_str("==");
    let t = es256_sign_input(&k, &format!("{header}.{}", p[1])).unwrap();
    assert_eq!(verify(&t, &k), Err(invalid("Invalid header padding")));
    // Sanity: the helper itself produces verifiable tokens.
    let t = es256_sign_input(&k, &format!("{}.{}", p[0], p[1])).unwrap();
    assert!(verify(&t, &k).is_ok());
}

#[test]
fn malformed_tokens() {
    let k = key();
    let cases = [
        ("", "Invalid token: Not enough segments"),
        ("garbage", "Invalid token: Not enough segments"),
        ("a.b", "Invalid token: Not enough segments"),
        ("a.b.c.d", "Invalid token: Too many segments"),
        ("a.b.c.d.e", "Invalid token: Too many segments"),
        (
            "..",
            "Invalid token: Invalid header string: EOF while parsing a value at line 1 column 0",
        ),
        ("!!.b.c", "Invalid token: Invalid header padding"),
        ("\u{e9}.b.c", "Invalid token: Invalid header padding"),
    ];
    for (t, msg) in cases {
        assert_eq!(verify(t, &k).unwrap_err().to_string(), msg, "{t:?}");
    }
    // Header that is JSON but not an object, or not JSON.
    for h in [json!([1, 2]), json!("alg"), json!(null)] {
        let t = format!("{}.e30.", encode_json(&h));
        assert!(verify(&t, &k)
            .unwrap_err()
            .to_string()
            .starts_with("Invalid token: Invalid header string: "));
    }
    let t = format!("{}.e30.", b64::encode(b"{not json"));
    assert!(verify(&t, &k)
        .unwrap_err()
        .to_string()
        .starts_with("Invalid token: Invalid header string: "));
}

#[test]
fn signed_non_object_payload_is_refused() {
    let k = key();
    for payload in [json!([1]), json!("x"), json!(1), json!(null)] {
        let token = es256_sign_json(&k, &payload).unwrap();
        assert!(verify(&token, &k)
            .unwrap_err()
            .to_string()
            .starts_with("Invalid token: Invalid payload string: "));
    }
}

#[test]
fn duplicate_members_and_crit_are_refused() {
    let k = key();
    let parts = segments(&sign(&k, &claims()).unwrap());
    let dup_header = format!(r#"{{"alg":"none","alg":"ES256","kid":"{}"}}"#, k.kid());
    let t = format!(
        "{}.{}.{}",
        b64::encode(dup_header.as_bytes()),
        parts[1],
        parts[2]
    );
    let err = verify(&t, &k).unwrap_err().to_string();
    assert!(
        err.starts_with("Invalid token: Invalid header string: duplicate member `alg`"),
        "{err}"
    );

    let crit = json!({"alg": "ES256", "kid": k.kid(), "crit": ["exp"]});
    let t = format!("{}.{}.{}", encode_json(&crit), parts[1], parts[2]);
    assert_eq!(
        verify(&t, &k),
        Err(invalid("Unsupported critical header parameter"))
    );

    // Duplicate claim in a correctly signed payload: `sub` twice.
    let dup_payload = format!(
        r#"{{"sub":"{}","sub":"{}","workspace_id":"{}","iss":"{ISS}","aud":"{AUD}","iat":{NOW},"exp":{}}}"#,
        user(),
        Uuid::nil(),
        workspace(),
        NOW + 600
    );
    let t = es256_sign_input(
        &k,
        &format!("{}.{}", parts[0], b64::encode(dup_payload.as_bytes())),
    )
    .unwrap();
    let err = verify(&t, &k).unwrap_err().to_string();
    assert!(
        err.starts_with("Invalid token: Invalid payload string: duplicate member `sub`"),
        "{err}"
    );
}

#[test]
fn embedded_keys_in_header_are_ignored() {
    // A token signed by the attacker, carrying the attacker's public key in
    // `jwk` (and a `jku`) next to our kid, must not verify.
    let ours = key();
    let attacker = key();
    let header = json!({
        "alg": "ES256", "typ": "JWT", "kid": ours.kid(),
        "jwk": attacker.public_jwk(),
        "jku": "http://attacker.invalid/jwks.json",
    });
    let input = format!("{}.{}", encode_json(&header), encode_json(&claims_json()));
    let t = es256_sign_input(&attacker, &input).unwrap();
    assert_eq!(
        verify(&t, &ours),
        Err(invalid("Signature verification failed."))
    );
    // The same token verifies with the attacker's key: the check above
    // failed because of the key choice, not because of the extra members.
    let theirs = VerifyingKey::new(ours.kid(), attacker.public_key()).unwrap();
    assert!(verify_internal(&t, &[theirs], NOW, ISS, AUD).is_ok());
}

// ---------------------------------------------------------------------------
// Error texts
// ---------------------------------------------------------------------------

#[test]
fn error_texts_keep_sdk_substrings_apart() {
    let all = [
        TokenError::Expired,
        TokenError::Invalid("Signature verification failed.".into()),
        TokenError::InvalidClaims("Invalid issuer".into()),
        TokenError::MissingClaim("workspace_id"),
        TokenError::MissingOidcClaim {
            claim: "sub",
            meaning: "subject",
        },
        TokenError::MissingKid,
        TokenError::UnknownKid("abc".into()),
        TokenError::InvalidAudience {
            expected: "['a']".into(),
            got: "['b']".into(),
        },
        TokenError::JwksUnavailable,
    ];
    for e in &all {
        let text = e.to_string().to_lowercase();
        assert_eq!(text.contains("expired"), e.is_expired(), "{text}");
        assert!(!text.contains("api key"), "{text}");
        assert!(!text.contains("not authenticated"), "{text}");
    }
    assert_eq!(
        TokenError::JwksUnavailable.to_string(),
        "Unable to validate token (JWKS fetch failed)"
    );
    assert_eq!(
        TokenError::MissingClaim("workspace_id").to_string(),
        "Token missing required 'workspace_id' claim"
    );
}

// ---------------------------------------------------------------------------
// OIDC (RS256)
// ---------------------------------------------------------------------------

fn jwks() -> Jwks {
    Jwks::from_json(rsa_jwks_json(RSA_PKCS8, RSA_KID).unwrap().as_bytes()).unwrap()
}

fn issuers() -> Vec<String> {
    vec![IDP_ISS.to_owned(), IDP_EXT_ISS.to_owned()]
}

fn audiences() -> Vec<String> {
    vec!["stardag-ui".to_owned(), "stardag-sdk".to_owned()]
}

fn idp_claims() -> Value {
    json!({
        "sub": "f3b1c2d4-idp-subject",
        "iss": IDP_ISS,
        "aud": "stardag-sdk",
        "exp": NOW + 300,
        "iat": NOW,
        "email": "jane.doe@example.com",
        "email_verified": true,
        "name": "Jane Doe",
        "given_name": "Jane",
        "family_name": "Doe",
        "preferred_username": "jane",
        "azp": "stardag-sdk",
    })
}

fn oidc(token: &str) -> Result<OidcClaims, TokenError> {
    verify_oidc_rs256(token, &jwks(), NOW, &issuers(), &audiences())
}

fn idp_token(claims: &Value) -> String {
    rsa_sign(RSA_PKCS8, RSA_KID, claims).unwrap()
}

#[test]
fn oidc_round_trip_extracts_claims() {
    let token = idp_token(&idp_claims());
    assert_eq!(decode_header(&token).unwrap().kid.as_deref(), Some(RSA_KID));
    let c = oidc(&token).unwrap();
    assert_eq!(c.sub, "f3b1c2d4-idp-subject");
    assert_eq!(c.email.as_deref(), Some("jane.doe@example.com"));
    assert!(c.email_verified);
    assert_eq!(c.name.as_deref(), Some("Jane Doe"));
    assert_eq!(c.given_name.as_deref(), Some("Jane"));
    assert_eq!(c.family_name.as_deref(), Some("Doe"));
    assert_eq!(c.preferred_username.as_deref(), Some("jane"));
    assert_eq!(c.iss, IDP_ISS);
    assert_eq!(c.aud, vec!["stardag-sdk".to_owned()]);
    assert_eq!((c.iat, c.exp), (NOW, NOW + 300));
    assert_eq!(c.raw["azp"], "stardag-sdk");
    assert_eq!(c.display_name(), "Jane Doe");
}

#[test]
fn oidc_minimal_claims() {
    let token = idp_token(&json!({"sub": "s", "iss": IDP_EXT_ISS, "exp": NOW + 1}));
    let c = oidc(&token).unwrap();
    assert_eq!(c.iss, IDP_EXT_ISS);
    assert_eq!(c.iat, 0);
    assert!(c.aud.is_empty());
    assert!(!c.email_verified);
    assert_eq!(c.email, None);
    assert_eq!(c.display_name(), "s");
}

#[test]
fn oidc_email_verified_variants() {
    for (v, expected) in [
        (json!("true"), true),
        (json!("True"), true),
        (json!("false"), false),
        (json!(false), false),
        (json!(1), false),
    ] {
        let mut c = idp_claims();
        c["email_verified"] = v;
        assert_eq!(oidc(&idp_token(&c)).unwrap().email_verified, expected);
    }
}

#[test]
fn oidc_missing_kid() {
    let token = rsa_sign_with_header(
        RSA_PKCS8,
        &json!({"alg": "RS256", "typ": "JWT"}),
        &idp_claims(),
    )
    .unwrap();
    let err = oidc(&token).unwrap_err();
    assert_eq!(err, TokenError::MissingKid);
    assert!(err.to_string().contains("missing key ID"));
}

#[test]
fn oidc_unknown_kid_reports_kid_for_refetch() {
    let token = rsa_sign(RSA_PKCS8, "rotated-key", &idp_claims()).unwrap();
    let err = oidc(&token).unwrap_err();
    assert_eq!(err.to_string(), "Unable to find key with ID: rotated-key");
    assert_eq!(err.unknown_kid(), Some("rotated-key"));
    // After the (caller's) re-fetch the key is there.
    let jwks =
        Jwks::from_json(rsa_jwks_json(RSA_PKCS8, "rotated-key").unwrap().as_bytes()).unwrap();
    assert!(verify_oidc_rs256(&token, &jwks, NOW, &issuers(), &audiences()).is_ok());
}

#[test]
fn internal_token_sent_as_oidc_gets_unknown_kid() {
    // §3.2 (F)/(X): an internal token is reported with the OIDC error.
    let k = key();
    let token = sign(&k, &claims()).unwrap();
    assert_eq!(
        oidc(&token).unwrap_err().to_string(),
        format!("Unable to find key with ID: {}", k.kid())
    );
}

#[test]
fn oidc_token_is_not_an_internal_token() {
    let k = key();
    let token = idp_token(&idp_claims());
    assert!(verify(&token, &k).is_err());
}

#[test]
fn oidc_expired() {
    let mut c = idp_claims();
    c["exp"] = json!(NOW);
    assert_eq!(oidc(&idp_token(&c)), Err(TokenError::Expired));
    c["exp"] = json!(NOW - 1000);
    assert_eq!(
        oidc(&idp_token(&c)).unwrap_err().to_string(),
        "Token has expired"
    );
}

#[test]
fn oidc_issuer() {
    let mut c = idp_claims();
    c["iss"] = json!("http://evil.example/realms/stardag");
    assert_eq!(
        oidc(&idp_token(&c)).unwrap_err().to_string(),
        "Invalid token claims: Invalid issuer"
    );
    c["iss"] = json!(7);
    assert_eq!(
        oidc(&idp_token(&c)).unwrap_err().to_string(),
        "Invalid token claims: Invalid issuer"
    );
}

#[test]
fn oidc_audience_rules() {
    let check = |aud: Value| {
        let mut c = idp_claims();
        c["aud"] = aud;
        oidc(&idp_token(&c))
    };
    assert!(check(json!("stardag-ui")).is_ok());
    assert!(check(json!(["account", "stardag-sdk"])).is_ok());
    // No audience at all passes regardless (Cognito access tokens).
    assert!(check(json!("")).is_ok());
    assert!(check(json!([])).is_ok());
    assert!(check(json!(null)).is_ok());
    let mut c = idp_claims();
    c.as_object_mut().unwrap().remove("aud");
    assert!(oidc(&idp_token(&c)).is_ok());

    assert_eq!(
        check(json!(["account"])).unwrap_err().to_string(),
        "Invalid audience. Expected one of ['stardag-ui', 'stardag-sdk'], got ['account']"
    );
    assert_eq!(
        check(json!("account")).unwrap_err().to_string(),
        "Invalid audience. Expected one of ['stardag-ui', 'stardag-sdk'], got ['account']"
    );
    assert_eq!(
        check(json!(["it's", "a\\b"])).unwrap_err().to_string(),
        r#"Invalid audience. Expected one of ['stardag-ui', 'stardag-sdk'], got ["it's", 'a\\b']"#
    );
    assert_eq!(
        check(json!([1])).unwrap_err().to_string(),
        "Invalid token claims: Invalid claim format in token"
    );
}

#[test]
fn oidc_missing_required_claims() {
    for (name, text) in [
        ("sub", "Token missing required 'sub' (subject) claim"),
        ("iss", "Token missing required 'iss' (issuer) claim"),
        ("exp", "Token missing required 'exp' (expiration) claim"),
    ] {
        let mut c = idp_claims();
        c.as_object_mut().unwrap().remove(name);
        assert_eq!(oidc(&idp_token(&c)).unwrap_err().to_string(), text);
    }
    let mut c = idp_claims();
    c["sub"] = json!("");
    assert_eq!(
        oidc(&idp_token(&c)).unwrap_err().to_string(),
        "Token missing required 'sub' (subject) claim"
    );
}

#[test]
fn oidc_tampered_and_wrong_algorithms() {
    let token = idp_token(&idp_claims());
    let p = segments(&token);
    let mut c = idp_claims();
    c["sub"] = json!("someone-else");
    let forged = format!("{}.{}.{}", p[0], encode_json(&c), p[2]);
    assert_eq!(
        oidc(&forged),
        Err(invalid("Signature verification failed."))
    );

    // HS256 using the RSA modulus (public) as the HMAC secret.
    let n = b64::decode_strict(
        jwks()
            .find(RSA_KID)
            .map(|k| match &k.key {
                JwkKey::Rsa { n, .. } => b64::encode(n),
                JwkKey::Unusable { .. } => String::new(),
            })
            .unwrap()
            .as_str(),
    )
    .unwrap();
    let hs = hs256(&n, &json!({"alg": "HS256", "kid": RSA_KID}), &idp_claims());
    assert_eq!(
        oidc(&hs),
        Err(invalid("The specified alg value is not allowed"))
    );

    let none = assemble(&json!({"alg": "none", "kid": RSA_KID}), &idp_claims(), b"");
    assert_eq!(
        oidc(&none),
        Err(invalid("The specified alg value is not allowed"))
    );

    // Same RSA key but PS256/RS512 names.
    for alg in ["RS512", "PS256", "rs256"] {
        let t = format!(
            "{}.{}.{}",
            encode_json(&json!({"alg": alg, "kid": RSA_KID})),
            p[1],
            p[2]
        );
        assert_eq!(
            oidc(&t),
            Err(invalid("The specified alg value is not allowed"))
        );
    }
}

#[test]
fn oidc_oversize_and_padding() {
    let mut c = idp_claims();
    c["pad"] = json!("x".repeat(MAX_TOKEN_BYTES));
    assert_eq!(oidc(&idp_token(&c)), Err(invalid("Token is too large")));
    let token = idp_token(&idp_claims());
    assert_eq!(
        oidc(&format!("{token}=")),
        Err(invalid("Invalid crypto padding"))
    );
}

#[test]
fn jwks_parsing() {
    let rsa = serde_json::from_str::<Value>(&rsa_jwks_json(RSA_PKCS8, RSA_KID).unwrap()).unwrap()
        ["keys"][0]
        .clone();
    assert_eq!(rsa["kty"], "RSA");
    assert_eq!(rsa["alg"], "RS256");
    assert_eq!(rsa["use"], "sig");
    assert_eq!(rsa["e"], "AQAB");
    assert_eq!(
        b64::decode_strict(rsa["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );

    // Keycloak-like document: an encryption key, an EC key, a key without
    // kid, and ours with padded n and a leading zero byte.
    let n = b64::decode_strict(rsa["n"].as_str().unwrap()).unwrap();
    let padded_n = {
        let with_zero = [&[0u8][..], &n].concat();
        let s = b64::encode(&with_zero);
        format!("{s}{}", "=".repeat((4 - s.len() % 4) % 4))
    };
    let doc = json!({"keys": [
        {"kid": "enc-key", "kty": "RSA", "use": "enc", "alg": "RSA-OAEP", "n": rsa["n"], "e": "AQAB"},
        {"kid": "ec-key", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "RSA", "n": rsa["n"], "e": "AQAB"},
        {"kid": "broken", "kty": "RSA", "n": "!!!", "e": "AQAB"},
        {"kid": RSA_KID, "kty": "RSA", "n": padded_n, "e": "AQAB"},
        "not an object",
    ]});
    let jwks = Jwks::from_json(doc.to_string().as_bytes()).unwrap();
    assert_eq!(jwks.len(), 4);
    assert!(!jwks.is_empty());
    assert!(jwks.contains_kid("ec-key"));
    assert!(!jwks.contains_kid("nope"));
    assert!(matches!(
        jwks.find("ec-key").unwrap().key,
        JwkKey::Unusable { .. }
    ));
    assert!(matches!(
        jwks.find("broken").unwrap().key,
        JwkKey::Unusable { .. }
    ));
    match &jwks.find(RSA_KID).unwrap().key {
        JwkKey::Rsa { n: got, e } => {
            assert_eq!(got, &n);
            assert_eq!(e, &vec![1, 0, 1]);
        }
        other => panic!("{other:?}"),
    }
    let ok = verify_oidc_rs256(
        &idp_token(&idp_claims()),
        &jwks,
        NOW,
        &issuers(),
        &audiences(),
    );
    assert!(ok.is_ok(), "{ok:?}");

    // Tokens naming unusable keys are refused without "unknown kid".
    for kid in ["enc-key", "ec-key", "broken"] {
        let t = rsa_sign(RSA_PKCS8, kid, &idp_claims()).unwrap();
        let err = verify_oidc_rs256(&t, &jwks, NOW, &issuers(), &audiences()).unwrap_err();
        assert!(err.unknown_kid().is_none(), "{kid}: {err}");
        assert!(
            err.to_string().starts_with("Invalid token: Unusable key"),
            "{kid}: {err}"
        );
    }

    // Malformed documents.
    for bad in [
        &b""[..],
        b"[]",
        b"{}",
        b"{\"keys\": {}}",
        b"not json",
        b"{\"keys\": [1,2]",
    ] {
        assert!(
            Jwks::from_json(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(Jwks::from_json(b"{\"keys\": []}").unwrap().is_empty());
}

#[test]
fn oidc_with_empty_jwks() {
    let token = idp_token(&idp_claims());
    let err =
        verify_oidc_rs256(&token, &Jwks::default(), NOW, &issuers(), &audiences()).unwrap_err();
    assert_eq!(err.unknown_kid(), Some(RSA_KID));
}

#[test]
fn display_name_precedence() {
    let base = oidc(&idp_token(&idp_claims())).unwrap();
    let with = |f: &dyn Fn(&mut OidcClaims)| {
        let mut c = base.clone();
        f(&mut c);
        c.display_name()
    };
    assert_eq!(with(&|_| {}), "Jane Doe");
    assert_eq!(with(&|c| c.name = None), "Jane Doe");
    assert_eq!(
        with(&|c| {
            c.name = Some(String::new());
            c.family_name = None;
        }),
        "Jane"
    );
    assert_eq!(
        with(&|c| {
            c.name = None;
            c.given_name = None;
        }),
        "Doe"
    );
    let no_names = |c: &mut OidcClaims| {
        c.name = None;
        c.given_name = None;
        c.family_name = None;
    };
    assert_eq!(with(&no_names), "jane");
    assert_eq!(
        with(&|c| {
            no_names(c);
            c.preferred_username = None;
        }),
        "jane.doe"
    );
    assert_eq!(
        with(&|c| {
            no_names(c);
            c.preferred_username = None;
            c.email = Some("test@example.com".into());
        }),
        "test"
    );
    assert_eq!(
        with(&|c| {
            no_names(c);
            c.preferred_username = None;
            c.email = None;
        }),
        "f3b1c2d4-idp-subject"
    );
    assert_eq!(
        with(&|c| {
            no_names(c);
            c.preferred_username = None;
            c.email = Some("@example.com".into());
        }),
        "f3b1c2d4-idp-subject"
    );
}
