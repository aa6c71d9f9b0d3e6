//! CDS client JWT verification (`crs_cds::auth`) with real keys and signatures.
//!
//! Keys are generated per test run with aws-lc-rs (the backend jsonwebtoken already uses);
//! tokens are assembled and signed by hand so headers can be as hostile as needed.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use crs_cds::auth::{AuthError, AuthSettings, IssuerSettings, Verifier};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ISS: &str = "https://ehr.example.org";
const AUD: &str = "https://cds.example.org/cds-services/crs-icans";

enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

struct TestKey {
    kid: &'static str,
    signer: Signer,
}

fn ec_key(kid: &'static str, alg: &'static signature::EcdsaSigningAlgorithm) -> TestKey {
    TestKey {
        kid,
        signer: Signer::Ec(EcdsaKeyPair::generate(alg).expect("EC key generation")),
    }
}

fn rsa_key(kid: &'static str) -> TestKey {
    TestKey {
        kid,
        signer: Signer::Rsa(
            RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key generation"),
        ),
    }
}

static ES384: LazyLock<TestKey> =
    LazyLock::new(|| ec_key("es384", &signature::ECDSA_P384_SHA384_FIXED_SIGNING));
static ES256: LazyLock<TestKey> =
    LazyLock::new(|| ec_key("es256", &signature::ECDSA_P256_SHA256_FIXED_SIGNING));
static RSA: LazyLock<TestKey> = LazyLock::new(|| rsa_key("rsa"));
/// Same `kid` as [`ES384`], different private key: an impostor.
static IMPOSTOR: LazyLock<TestKey> =
    LazyLock::new(|| ec_key("es384", &signature::ECDSA_P384_SHA384_FIXED_SIGNING));
/// A key that only appears in a refreshed JWK Set.
static ROTATED: LazyLock<TestKey> =
    LazyLock::new(|| ec_key("rotated", &signature::ECDSA_P384_SHA384_FIXED_SIGNING));

impl TestKey {
    /// The public JWK, as a CDS client would publish it.
    fn jwk(&self) -> Value {
        match &self.signer {
            Signer::Ec(kp) => {
                let point = kp.public_key().as_ref();
                let half = (point.len() - 1) / 2;
                let crv = if half == 48 { "P-384" } else { "P-256" };
                json!({
                    "kty": "EC", "crv": crv, "kid": self.kid, "use": "sig",
                    "x": B64.encode(&point[1..=half]),
                    "y": B64.encode(&point[1 + half..]),
                })
            }
            Signer::Rsa(kp) => {
                let public = kp.public_key();
                json!({
                    "kty": "RSA", "kid": self.kid, "use": "sig",
                    "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
                    "e": B64.encode(public.exponent().big_endian_without_leading_zero()),
                })
            }
        }
    }

    /// A compact JWS over `header` and `claims`, signed with this key.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let message = format!("{}.{}", part(header), part(claims));
        let rng = SystemRandom::new();
        let sig = match &self.signer {
            Signer::Ec(kp) => kp
                .sign(&rng, message.as_bytes())
                .expect("ECDSA signing")
                .as_ref()
                .to_vec(),
            Signer::Rsa(kp) => {
                let padding: &dyn signature::RsaEncoding = match header["alg"].as_str() {
                    Some("RS256") => &signature::RSA_PKCS1_SHA256,
                    Some("RS512") => &signature::RSA_PKCS1_SHA512,
                    Some("PS256") => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA384,
                };
                let mut sig = vec![0; kp.public_modulus_len()];
                kp.sign(padding, &rng, message.as_bytes(), &mut sig)
                    .expect("RSA signing");
                sig
            }
        };
        format!("{message}.{}", B64.encode(sig))
    }

    /// A token with the usual header for `alg`.
    fn token(&self, alg: &str, claims: &Value) -> String {
        self.sign(&json!({"alg": alg, "typ": "JWT", "kid": self.kid}), claims)
    }
}

fn part(value: &Value) -> String {
    B64.encode(serde_json::to_vec(value).expect("JSON serialises"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn claims() -> Value {
    let now = now();
    json!({
        "iss": ISS,
        "aud": AUD,
        "exp": now + 300,
        "iat": now,
        "jti": uuid::Uuid::new_v4().to_string(),
        "tenant": "2ddd6c3a-8e9a-44c6-a305-52111ad302a2",
    })
}

fn claims_with(key: &str, value: Value) -> Value {
    let mut c = claims();
    c[key] = value;
    c
}

fn claims_without(key: &str) -> Value {
    let mut c = claims();
    c.as_object_mut().expect("claims are an object").remove(key);
    c
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

fn write_jwks(doc: &Value) -> PathBuf {
    let path = std::env::temp_dir().join(format!("crs-cds-jwks-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, serde_json::to_vec(doc).expect("JSON serialises")).expect("temp dir");
    path
}

fn settings(issuer: IssuerSettings) -> AuthSettings {
    AuthSettings {
        issuers: vec![issuer],
        ..AuthSettings::default()
    }
}

/// A verifier trusting [`ISS`] with the given keys in a JWK Set file.
fn file_verifier(doc: &Value) -> Verifier {
    let issuer = IssuerSettings::with_jwks_file(ISS, write_jwks(doc));
    Verifier::new(settings(issuer), reqwest::Client::new()).expect("valid settings")
}

fn standard_verifier() -> Verifier {
    file_verifier(&jwks(&[&ES384, &ES256, &RSA]))
}

async fn refusal(verifier: &Verifier, token: &str) -> AuthError {
    verifier
        .verify(Some(&bearer(token)), AUD)
        .await
        .expect_err("token must be refused")
}

async fn serve_jwks(server: &MockServer, at: &str, doc: Value) {
    Mock::given(method("GET"))
        .and(path(at))
        .respond_with(ResponseTemplate::new(200).set_body_json(doc))
        .mount(server)
        .await;
}

async fn requests_to(server: &MockServer, at: &str) -> usize {
    server
        .received_requests()
        .await
        .expect("request recording is on")
        .iter()
        .filter(|r| r.url.path() == at)
        .count()
}

#[tokio::test]
async fn es384_token_from_a_trusted_issuer_is_accepted() {
    let verifier = standard_verifier();
    let c = claims();
    let got = verifier
        .verify(Some(&bearer(&ES384.token("ES384", &c))), AUD)
        .await
        .expect("accepted");
    assert_eq!(got.iss, ISS);
    assert_eq!(got.aud, vec![AUD.to_owned()]);
    assert_eq!(Some(got.jti.as_str()), c["jti"].as_str());
    assert_eq!(got.tenant.as_deref(), c["tenant"].as_str());
}

#[tokio::test]
async fn rs384_token_is_accepted() {
    let verifier = standard_verifier();
    let token = RSA.token("RS384", &claims());
    assert!(verifier.verify(Some(&bearer(&token)), AUD).await.is_ok());
}

#[tokio::test]
async fn es256_rs256_rs512_and_ps256_tokens_are_accepted() {
    let verifier = standard_verifier();
    for token in [
        ES256.token("ES256", &claims()),
        RSA.token("RS256", &claims()),
        RSA.token("RS512", &claims()),
        RSA.token("PS256", &claims()),
    ] {
        let result = verifier.verify(Some(&bearer(&token)), AUD).await;
        assert!(result.is_ok(), "{result:?}");
    }
}

#[tokio::test]
async fn alg_none_token_is_refused() {
    let verifier = standard_verifier();
    for alg in ["none", "None"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": "es384"});
        let token = format!("{}.{}.", part(&header), part(&claims()));
        assert!(matches!(
            refusal(&verifier, &token).await,
            AuthError::ForbiddenAlgorithm
        ));
    }
}

#[tokio::test]
async fn hs256_token_is_refused_even_when_the_key_set_holds_its_secret() {
    let secret = b"a shared secret that the JWK Set also publishes";
    let mut doc = jwks(&[&ES384]);
    doc["keys"]
        .as_array_mut()
        .expect("keys array")
        .push(json!({"kty": "oct", "kid": "hs", "k": B64.encode(secret)}));
    let verifier = file_verifier(&doc);
    for (alg, hmac_alg) in [
        ("HS256", aws_lc_rs::hmac::HMAC_SHA256),
        ("HS384", aws_lc_rs::hmac::HMAC_SHA384),
        ("HS512", aws_lc_rs::hmac::HMAC_SHA512),
    ] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": "hs"});
        let message = format!("{}.{}", part(&header), part(&claims()));
        let key = aws_lc_rs::hmac::Key::new(hmac_alg, secret);
        let tag = aws_lc_rs::hmac::sign(&key, message.as_bytes());
        let token = format!("{message}.{}", B64.encode(tag.as_ref()));
        assert!(matches!(
            refusal(&verifier, &token).await,
            AuthError::ForbiddenAlgorithm
        ));
    }
}

#[tokio::test]
async fn token_from_an_unknown_issuer_is_refused() {
    let verifier = standard_verifier();
    let token = ES384.token("ES384", &claims_with("iss", json!("https://evil.example")));
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::UnknownIssuer
    ));
}

#[tokio::test]
async fn token_for_another_endpoint_is_refused() {
    let verifier = standard_verifier();
    let other = "https://cds.example.org/cds-services/other-service";
    let token = ES384.token("ES384", &claims_with("aud", json!(other)));
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::WrongAudience
    ));
}

#[tokio::test]
async fn audience_array_containing_the_endpoint_is_accepted() {
    let verifier = standard_verifier();
    let aud = json!(["https://cds.example.org/cds-services", AUD]);
    let token = ES384.token("ES384", &claims_with("aud", aud));
    assert!(verifier.verify(Some(&bearer(&token)), AUD).await.is_ok());
}

#[tokio::test]
async fn expired_token_is_refused() {
    let verifier = standard_verifier();
    let token = ES384.token("ES384", &claims_with("exp", json!(now() - 120)));
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::Expired
    ));
}

#[tokio::test]
async fn token_expired_within_the_leeway_is_accepted() {
    let verifier = standard_verifier();
    let token = ES384.token("ES384", &claims_with("exp", json!(now() - 5)));
    assert!(verifier.verify(Some(&bearer(&token)), AUD).await.is_ok());
}

#[tokio::test]
async fn token_issued_in_the_future_is_refused() {
    let verifier = standard_verifier();
    let token = ES384.token("ES384", &claims_with("iat", json!(now() + 600)));
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::IssuedInFuture
    ));
}

#[tokio::test]
async fn token_not_valid_before_a_future_time_is_refused() {
    let verifier = standard_verifier();
    let token = ES384.token("ES384", &claims_with("nbf", json!(now() + 600)));
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::NotYetValid
    ));
}

#[tokio::test]
async fn fractional_numeric_dates_are_accepted() {
    let verifier = standard_verifier();
    let mut c = claims();
    c["exp"] = json!(now() as f64 + 300.5);
    c["iat"] = json!(now() as f64 - 0.25);
    assert!(
        verifier
            .verify(Some(&bearer(&ES384.token("ES384", &c))), AUD)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn tokens_missing_a_required_claim_are_refused() {
    let verifier = standard_verifier();
    for claim in ["jti", "exp", "iat", "aud", "iss"] {
        let token = ES384.token("ES384", &claims_without(claim));
        let err = refusal(&verifier, &token).await;
        assert!(
            matches!(err, AuthError::MissingClaim(c) if c == claim),
            "{claim}: {err:?}"
        );
    }
}

#[tokio::test]
async fn replayed_token_is_refused() {
    let verifier = standard_verifier();
    let header = bearer(&ES384.token("ES384", &claims()));
    assert!(verifier.verify(Some(&header), AUD).await.is_ok());
    assert!(matches!(
        verifier.verify(Some(&header), AUD).await,
        Err(AuthError::Replayed)
    ));
}

#[tokio::test]
async fn reused_jti_in_a_freshly_signed_token_is_refused() {
    let verifier = standard_verifier();
    let c = claims();
    assert!(
        verifier
            .verify(Some(&bearer(&ES384.token("ES384", &c))), AUD)
            .await
            .is_ok()
    );
    let again = RSA.token("RS384", &c);
    assert!(matches!(
        refusal(&verifier, &again).await,
        AuthError::Replayed
    ));
}

#[tokio::test]
async fn token_signed_by_a_different_key_is_refused() {
    let verifier = standard_verifier();
    let token = IMPOSTOR.token("ES384", &claims());
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::BadSignature
    ));
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let verifier = standard_verifier();
    let token = ES384.token("ES384", &claims());
    let mut pieces: Vec<&str> = token.split('.').collect();
    let forged = part(&claims_with("tenant", json!("someone-else")));
    pieces[1] = &forged;
    assert!(matches!(
        refusal(&verifier, &pieces.join(".")).await,
        AuthError::BadSignature
    ));
}

#[tokio::test]
async fn key_of_the_wrong_type_for_the_algorithm_is_refused() {
    let verifier = standard_verifier();
    // An ES384 header pointing at the RSA key, and an ES256 header at the P-384 key.
    let token = ES384.sign(&json!({"alg": "ES384", "kid": "rsa"}), &claims());
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::KeyMismatch
    ));
    let token = ES256.sign(&json!({"alg": "ES256", "kid": "es384"}), &claims());
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::KeyMismatch
    ));
}

#[tokio::test]
async fn token_without_kid_is_refused() {
    let verifier = standard_verifier();
    let token = ES384.sign(&json!({"alg": "ES384", "typ": "JWT"}), &claims());
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::MissingKeyId
    ));
}

#[tokio::test]
async fn critical_header_extensions_are_refused() {
    let verifier = standard_verifier();
    let header = json!({"alg": "ES384", "kid": "es384", "crit": ["exp"], "exp": 1});
    let token = ES384.sign(&header, &claims());
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::UnsupportedHeader
    ));
}

#[tokio::test]
async fn malformed_authorization_headers_are_refused() {
    let verifier = standard_verifier();
    assert!(matches!(
        verifier.verify(None, AUD).await,
        Err(AuthError::MissingAuthorization)
    ));
    for value in [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "garbage",
    ] {
        assert!(
            matches!(
                verifier.verify(Some(value), AUD).await,
                Err(AuthError::MalformedAuthorization)
            ),
            "{value:?}"
        );
    }
    for value in [
        "Bearer garbage",
        "Bearer a.b",
        "Bearer a.b.c",
        "Bearer a.b.c.d",
        "Bearer !!!.???.***",
        "Bearer e30.e30.",
    ] {
        let result = verifier.verify(Some(value), AUD).await;
        assert!(
            matches!(
                result,
                Err(AuthError::MalformedToken | AuthError::UnsupportedAlgorithm)
            ),
            "{value:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn refusal_messages_never_contain_the_token() {
    let verifier = standard_verifier();
    let tokens = [
        IMPOSTOR.token("ES384", &claims()),
        ES384.token("ES384", &claims_with("exp", json!(now() - 999))),
        ES384.token("ES384", &claims_with("aud", json!("https://elsewhere"))),
        ES384.token("ES384", &claims_with("iss", json!("https://evil.example"))),
    ];
    for token in tokens {
        let message = refusal(&verifier, &token).await.to_string();
        for piece in token.split('.') {
            assert!(!message.contains(piece), "{message}");
        }
        assert!(!message.contains("evil"), "{message}");
    }
}

#[tokio::test]
async fn jwks_url_is_fetched_once_and_cached() {
    let server = MockServer::start().await;
    serve_jwks(&server, "/jwks", jwks(&[&ES384])).await;
    let issuer = IssuerSettings::with_jwks_url(ISS, format!("{}/jwks", server.uri()));
    let verifier = Verifier::new(settings(issuer), reqwest::Client::new()).expect("valid");
    for _ in 0..3 {
        let token = ES384.token("ES384", &claims());
        assert!(verifier.verify(Some(&bearer(&token)), AUD).await.is_ok());
    }
    assert_eq!(requests_to(&server, "/jwks").await, 1);
}

#[tokio::test]
async fn unknown_kid_triggers_a_jwks_refetch_that_finds_the_rotated_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&[&ES384])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    serve_jwks(&server, "/jwks", jwks(&[&ES384, &ROTATED])).await;
    let issuer = IssuerSettings::with_jwks_url(ISS, format!("{}/jwks", server.uri()));
    let verifier = Verifier::new(
        AuthSettings {
            jwks_refresh_min_interval_secs: 0,
            ..settings(issuer)
        },
        reqwest::Client::new(),
    )
    .expect("valid");

    let first = ES384.token("ES384", &claims());
    assert!(verifier.verify(Some(&bearer(&first)), AUD).await.is_ok());
    let rotated = ROTATED.token("ES384", &claims());
    let result = verifier.verify(Some(&bearer(&rotated)), AUD).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(requests_to(&server, "/jwks").await, 2);
}

#[tokio::test]
async fn unknown_kid_refetch_is_rate_limited() {
    let server = MockServer::start().await;
    serve_jwks(&server, "/jwks", jwks(&[&ES384])).await;
    let issuer = IssuerSettings::with_jwks_url(ISS, format!("{}/jwks", server.uri()));
    let verifier = Verifier::new(settings(issuer), reqwest::Client::new()).expect("valid");

    let known = ES384.token("ES384", &claims());
    assert!(verifier.verify(Some(&bearer(&known)), AUD).await.is_ok());
    for kid in ["made-up-1", "made-up-2"] {
        let token = ES384.sign(&json!({"alg": "ES384", "kid": kid}), &claims());
        assert!(matches!(
            refusal(&verifier, &token).await,
            AuthError::UnknownKey
        ));
    }
    assert_eq!(requests_to(&server, "/jwks").await, 1);
}

#[tokio::test]
async fn unreachable_jwks_url_refuses_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let issuer = IssuerSettings::with_jwks_url(ISS, format!("{}/jwks", server.uri()));
    let verifier = Verifier::new(settings(issuer), reqwest::Client::new()).expect("valid");
    let token = ES384.token("ES384", &claims());
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::KeySetUnavailable
    ));
    // Within the refresh interval the failed fetch is not retried, and says so.
    let token = ES384.token("ES384", &claims());
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::KeySetUnavailable
    ));
    assert_eq!(requests_to(&server, "/jwks").await, 1);
}

#[tokio::test]
async fn jku_not_on_the_allow_list_is_refused_without_fetching_it() {
    let server = MockServer::start().await;
    serve_jwks(&server, "/attacker-jwks", jwks(&[&IMPOSTOR])).await;
    let verifier = standard_verifier();
    let header = json!({
        "alg": "ES384", "typ": "JWT", "kid": "es384",
        "jku": format!("{}/attacker-jwks", server.uri()),
    });
    let token = IMPOSTOR.sign(&header, &claims());
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::JkuNotAllowed
    ));
    assert_eq!(requests_to(&server, "/attacker-jwks").await, 0);
}

#[tokio::test]
async fn jku_on_the_allow_list_supplies_the_keys() {
    let server = MockServer::start().await;
    let jku = format!("{}/ehr/jwks", server.uri());
    serve_jwks(&server, "/ehr/jwks", jwks(&[&ROTATED])).await;
    let issuer = IssuerSettings {
        jku_allow: vec![jku.clone()],
        ..IssuerSettings::with_jwks_file(ISS, write_jwks(&jwks(&[&ES384])))
    };
    let verifier = Verifier::new(settings(issuer), reqwest::Client::new()).expect("valid");

    let header = json!({"alg": "ES384", "typ": "JWT", "kid": "rotated", "jku": jku});
    let token = ROTATED.sign(&header, &claims());
    let result = verifier.verify(Some(&bearer(&token)), AUD).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(requests_to(&server, "/ehr/jwks").await, 1);

    // Without the jku header the file's keys apply, and they do not hold "rotated".
    let token = ROTATED.token("ES384", &claims());
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::UnknownKey
    ));
}

#[test]
fn issuer_needs_exactly_one_key_source() {
    let file = write_jwks(&jwks(&[&ES384]));
    let both = IssuerSettings {
        jwks_url: Some("https://ehr.example.org/jwks".to_owned()),
        ..IssuerSettings::with_jwks_file(ISS, file)
    };
    let neither = IssuerSettings {
        jwks_url: None,
        ..IssuerSettings::with_jwks_url(ISS, "unused")
    };
    for issuer in [both, neither] {
        assert!(matches!(
            Verifier::new(settings(issuer), reqwest::Client::new()),
            Err(AuthError::Config(_))
        ));
    }
}

#[test]
fn plain_http_jwks_urls_are_a_config_error() {
    let issuer = IssuerSettings::with_jwks_url(ISS, "http://ehr.example.org/jwks");
    assert!(matches!(
        Verifier::new(settings(issuer), reqwest::Client::new()),
        Err(AuthError::Config(_))
    ));
}

#[test]
fn required_auth_without_issuers_is_a_config_error() {
    assert!(matches!(
        Verifier::new(AuthSettings::default(), reqwest::Client::new()),
        Err(AuthError::Config(_))
    ));
}

#[test]
fn auth_settings_parse_from_toml_with_defaults() {
    let settings: AuthSettings = toml::from_str(
        r#"
        required = true
        [[issuers]]
        iss = "https://ehr.example.org"
        jwks_file = "/etc/crs-cds/keys/ehr.jwks.json"
        "#,
    )
    .expect("valid TOML");
    assert_eq!(settings.leeway_secs, 30);
    assert_eq!(settings.jwks_refresh_min_interval_secs, 60);
    assert_eq!(settings.issuers.len(), 1);
    assert!(settings.issuers[0].jku_allow.is_empty());
}

mod middleware {
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, http::StatusCode, test, web};
    use crs_cds::auth::Claims;
    use crs_cds::auth::middleware::{AuthGate, require_cds_client_jwt};

    use super::*;

    async fn handler(req: actix_web::HttpRequest) -> HttpResponse {
        use actix_web::HttpMessage as _;
        let jti = req.extensions().get::<Claims>().map(|c| c.jti.clone());
        HttpResponse::Ok().body(jti.unwrap_or_default())
    }

    #[actix_web::test]
    async fn middleware_lets_requests_through_when_auth_is_not_required() {
        let settings = AuthSettings {
            required: false,
            ..AuthSettings::default()
        };
        let verifier = Verifier::new(settings, reqwest::Client::new()).expect("valid settings");
        let gate = AuthGate::new(Arc::new(verifier), "https://cds.example.org");
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(gate))
                .wrap(from_fn(require_cds_client_jwt))
                .route("/cds-services/crs-icans", web::post().to(handler)),
        )
        .await;
        let request = test::TestRequest::post()
            .uri("/cds-services/crs-icans")
            .to_request();
        assert_eq!(
            test::call_service(&app, request).await.status(),
            StatusCode::OK
        );
    }

    #[actix_web::test]
    async fn middleware_passes_good_tokens_and_answers_401_otherwise() {
        let gate = AuthGate::new(Arc::new(standard_verifier()), "https://cds.example.org/");
        let app = test::init_service(
            App::new().app_data(web::Data::new(gate)).service(
                web::scope("/cds-services")
                    .wrap(from_fn(require_cds_client_jwt))
                    .route("/crs-icans", web::post().to(handler)),
            ),
        )
        .await;

        let c = claims();
        let good = test::TestRequest::post()
            .uri("/cds-services/crs-icans?x=1")
            .insert_header(("Authorization", bearer(&ES384.token("ES384", &c))))
            .to_request();
        let response = test::call_service(&app, good).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = test::read_body(response).await;
        assert_eq!(
            Some(std::str::from_utf8(&body).expect("utf-8")),
            c["jti"].as_str()
        );

        let missing = test::TestRequest::post()
            .uri("/cds-services/crs-icans")
            .to_request();
        let response = test::call_service(&app, missing).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response
                .headers()
                .get("WWW-Authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer")
        );
        assert!(test::read_body(response).await.is_empty());
    }
}

// ---- The running service (issue 5: "every request, discovery included") ----

/// The app with one trusted issuer (ES384 and RSA keys from a JWKS file) and a public
/// base URL, on loopback port 0.
async fn spawn_authenticated_app() -> crate::helpers::TestApp {
    let path = write_jwks(&jwks(&[&ES384, &RSA]));
    crate::helpers::spawn_app_with(move |s| {
        s.server.public_base_url = Some("https://cds.example.org".into());
        s.auth = settings(IssuerSettings::with_jwks_file(ISS, path));
    })
    .await
}

fn token_for(path: &str) -> String {
    ES384.token(
        "ES384",
        &claims_with("aud", json!(format!("https://cds.example.org{path}"))),
    )
}

#[tokio::test]
async fn the_service_refuses_calls_without_a_token_with_401_and_no_detail() {
    let app = spawn_authenticated_app().await;
    let r = app
        .client
        .get(format!("{}/cds-services", app.address))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    // Issue 11: an OperationOutcome like every error, with the same generic text for every
    // refusal (never the reason, never the token).
    let body: Value = r.json().await.expect("a JSON body");
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(body["error"], "unauthorized");
    assert!(
        !body.to_string().contains("missing"),
        "no reason is given: {body}"
    );
    let r = app
        .client
        .post(format!("{}/cds-services/crs-icans-grading", app.address))
        .header("Authorization", "Bearer not.a.jwt")
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn the_service_accepts_a_good_token_for_the_endpoint_called() {
    let app = spawn_authenticated_app().await;
    let r = app
        .client
        .get(format!("{}/cds-services", app.address))
        .header("Authorization", bearer(&token_for("/cds-services")))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    // The same kind of token minted for discovery does not open the service endpoint.
    let r = app
        .client
        .post(format!("{}/cds-services/crs-icans-grading", app.address))
        .header("Authorization", bearer(&token_for("/cds-services")))
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 401);
    let rsa = RSA.token(
        "RS384",
        &claims_with(
            "aud",
            json!("https://cds.example.org/cds-services/crs-icans-grading"),
        ),
    );
    let r = app
        .client
        .post(format!("{}/cds-services/crs-icans-grading", app.address))
        .header("Authorization", bearer(&rsa))
        .body("{}")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        r.status(),
        400,
        "authenticated, then refused as a bad request"
    );
    app.stop().await;
}

#[tokio::test]
async fn probes_and_cors_preflight_need_no_token() {
    let app = spawn_authenticated_app().await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/cds-services/crs-icans-grading", app.address),
        )
        .header("Origin", "https://sandbox.cds-hooks.org")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[test]
fn binding_a_public_address_without_trusted_issuers_is_refused() {
    let env = [("CRS_CDS_BIND".to_string(), "0.0.0.0:8080".to_string())];
    let err = crs_cds::config::Settings::from_sources(None, env).expect_err("refused");
    assert!(err.to_string().contains("without authentication"), "{err}");
    let ok = crs_cds::config::Settings::from_sources(None, []).expect("loopback default");
    assert!(!ok.auth_enabled());
}

#[test]
fn auth_on_needs_a_public_base_url_for_the_audience() {
    let text = "[server]\nbind = \"0.0.0.0:8080\"\n[[auth.issuers]]\niss = \"https://ehr.example.org\"\njwks_file = \"k.json\"\n";
    let err =
        crs_cds::config::Settings::from_sources(Some((std::path::Path::new("c.toml"), text)), [])
            .expect_err("refused");
    assert!(err.to_string().contains("public_base_url"), "{err}");
}

// ---- issue 10: token lifetime, JWKS redirects and endless bodies, shared replay cache ----

fn claims_lifetime(from_iat: u64, nbf_before_iat: Option<u64>) -> Value {
    let mut c = claims();
    let now = now();
    c["exp"] = json!(now + from_iat);
    if let Some(b) = nbf_before_iat {
        c["nbf"] = json!(now - b);
    }
    c
}

#[tokio::test]
async fn a_token_valid_for_ten_years_is_refused() {
    let verifier = standard_verifier();
    let token = ES384.token("ES384", &claims_lifetime(10 * 365 * 24 * 3600, None));
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::LifetimeTooLong
    ));
}

#[tokio::test]
async fn a_lifetime_of_exactly_the_maximum_is_accepted_and_one_second_more_is_refused() {
    let verifier = standard_verifier();
    let at_max = ES384.token("ES384", &claims_lifetime(3600, None));
    assert!(verifier.verify(Some(&bearer(&at_max)), AUD).await.is_ok());
    let over = ES384.token("ES384", &claims_lifetime(3601, None));
    assert!(matches!(
        refusal(&verifier, &over).await,
        AuthError::LifetimeTooLong
    ));
}

#[tokio::test]
async fn an_epic_style_token_with_nbf_five_minutes_before_iat_is_accepted() {
    let verifier = standard_verifier();
    let token = ES384.token("ES384", &claims_lifetime(900, Some(300)));
    assert!(verifier.verify(Some(&bearer(&token)), AUD).await.is_ok());
    // Counted from nbf: 3400 s after iat plus 300 s before it is over 3600.
    let long = ES384.token("ES384", &claims_lifetime(3400, Some(300)));
    assert!(matches!(
        refusal(&verifier, &long).await,
        AuthError::LifetimeTooLong
    ));
}

#[tokio::test]
async fn keys_behind_a_jwks_redirect_are_not_trusted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(
            ResponseTemplate::new(302)
                .insert_header("Location", format!("{}/attacker-jwks", server.uri())),
        )
        .mount(&server)
        .await;
    serve_jwks(&server, "/attacker-jwks", jwks(&[&IMPOSTOR])).await;
    let issuer = IssuerSettings::with_jwks_url(ISS, format!("{}/jwks", server.uri()));
    // Even a client that follows redirects (reqwest's default) must not hand us those keys.
    let verifier = Verifier::new(settings(issuer), reqwest::Client::new()).expect("valid");
    let token = IMPOSTOR.token("ES384", &claims());
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::KeySetUnavailable
    ));
}

#[tokio::test]
async fn an_endless_jwks_body_is_abandoned_at_the_cap() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        if let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            let _ = s.write_all(head.as_bytes()).await;
            let filler = " ".repeat(65536);
            let chunk = format!("{:x}\r\n{filler}\r\n", filler.len());
            while s.write_all(chunk.as_bytes()).await.is_ok() {
                counter.fetch_add(filler.len(), Ordering::Relaxed);
            }
        }
    });
    let issuer = IssuerSettings::with_jwks_url(ISS, url);
    let verifier = Verifier::new(settings(issuer), reqwest::Client::new()).expect("valid");
    let token = ES384.token("ES384", &claims());
    assert!(matches!(
        refusal(&verifier, &token).await,
        AuthError::KeySetUnavailable
    ));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // The cap is 256 KiB; socket buffers add a few MiB at most. Read whole, it would be
    // gigabytes before the 5 s fetch timeout.
    let bytes = sent.load(Ordering::Relaxed);
    assert!(bytes < 32 * 1024 * 1024, "the server sent {bytes} bytes");
}

/// An in-memory stand-in for the PostgreSQL cache, shared by two verifiers.
#[derive(Default)]
struct SharedSet(std::sync::Mutex<std::collections::HashMap<String, u64>>);

impl crs_cds::auth::SharedReplayCache for SharedSet {
    fn first_use<'a>(
        &'a self,
        key: &'a str,
        valid_until: u64,
        now: u64,
    ) -> futures::future::BoxFuture<'a, Result<bool, String>> {
        let mut seen = self.0.lock().expect("not poisoned");
        let first = seen.get(key).is_none_or(|&until| until < now);
        if first {
            seen.insert(key.to_string(), valid_until);
        }
        Box::pin(async move { Ok(first) })
    }
}

#[tokio::test]
async fn a_token_replayed_to_another_replica_sharing_the_cache_is_refused() {
    let shared = Arc::new(SharedSet::default());
    let doc = jwks(&[&ES384]);
    let a = file_verifier(&doc).with_shared_replay_cache(shared.clone());
    let b = file_verifier(&doc).with_shared_replay_cache(shared);
    let token = ES384.token("ES384", &claims());
    assert!(a.verify(Some(&bearer(&token)), AUD).await.is_ok());
    assert!(matches!(refusal(&b, &token).await, AuthError::Replayed));
}

/// Two service instances on one PostgreSQL database share the `jti` cache: a token used at
/// one is refused at the other. Needs `CRS_CDS_TEST_POSTGRES_URL` (set by `.ci/run`; in CI
/// its absence is a failure).
#[tokio::test]
async fn a_token_replayed_to_a_second_instance_on_the_same_postgresql_is_refused() {
    let Ok(url) = std::env::var("CRS_CDS_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide CRS_CDS_TEST_POSTGRES_URL"
        );
        eprintln!("CRS_CDS_TEST_POSTGRES_URL not set: shared replay cache test skipped");
        return;
    };
    let jwks_path = write_jwks(&jwks(&[&ES384]));
    let configure = |s: &mut crs_cds::config::Settings| {
        s.feedback.database_url = url.clone();
        s.auth.required = true;
        s.auth.issuers = vec![IssuerSettings::with_jwks_file(ISS, jwks_path.clone())];
        s.server.public_base_url = Some("https://cds.example.org".into());
    };
    let a = crate::helpers::spawn_app_with(configure).await;
    let b = crate::helpers::spawn_app_with(configure).await;
    let service = "crs-icans-grading";
    let mut c = claims();
    c["aud"] = json!(format!("https://cds.example.org/cds-services/{service}"));
    let token = ES384.token("ES384", &c);
    let body = crate::helpers::patient_view("p1", Some(crate::helpers::non_cart_prefetch("p1")));
    let call = |app: &crate::helpers::TestApp| {
        app.client
            .post(format!("{}/cds-services/{service}", app.address))
            .header("Authorization", bearer(&token))
            .json(&body)
            .send()
    };
    assert_eq!(call(&a).await.expect("sent").status(), 200);
    assert_eq!(call(&b).await.expect("sent").status(), 401);
    a.stop().await;
    b.stop().await;
}
