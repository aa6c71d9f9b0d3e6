//! [`Verifier`]: the checks of CDS Hooks 2.0.1 "Trusting CDS Clients", in order.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::claims::{RawClaims, numeric_date};
use super::keys::{KeySet, KeySource, RemoteKeys, StoredKey};
use super::replay::ReplayCache;
use super::{AuthError, AuthSettings, Claims, IssuerSettings};

/// Longest `Authorization` value looked at; real CDS client tokens are well under 4 KiB.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Longest `iss` value written to logs.
const MAX_LOGGED_ISS: usize = 200;

/// Maps a JOSE `alg` name to an algorithm this service verifies with.
///
/// "JWTs SHALL NOT be signed using the `none` algorithm" and "SHALL NOT be signed using any
/// symmetric algorithm" (CDS Hooks 2.0.1, "JWT Signing Algorithm"): those are refused
/// unconditionally, whatever keys are configured.
pub(crate) fn accepted_algorithm(alg: &str) -> Result<Algorithm, AuthError> {
    match alg {
        "ES256" => Ok(Algorithm::ES256),
        "ES384" => Ok(Algorithm::ES384),
        "RS256" => Ok(Algorithm::RS256),
        "RS384" => Ok(Algorithm::RS384),
        "RS512" => Ok(Algorithm::RS512),
        "PS256" => Ok(Algorithm::PS256),
        "PS384" => Ok(Algorithm::PS384),
        "PS512" => Ok(Algorithm::PS512),
        a if a.eq_ignore_ascii_case("none") || a.to_ascii_uppercase().starts_with("HS") => {
            Err(AuthError::ForbiddenAlgorithm)
        }
        _ => Err(AuthError::UnsupportedAlgorithm),
    }
}

/// The JOSE header fields we act on; `jwk`, `x5u` and `x5c` are ignored (never used to
/// find a key, since that would let the token bring its own key).
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    jku: Option<String>,
    typ: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
}

struct Issuer {
    default_keys: KeySource,
    jku: HashMap<String, RemoteKeys>,
}

/// Verifies CDS client JWTs. Build once at start-up and share it (`Arc<Verifier>`).
pub struct Verifier {
    required: bool,
    issuers: HashMap<String, Issuer>,
    leeway: u64,
    refresh_interval: Duration,
    client: reqwest::Client,
    replay: ReplayCache,
    max_lifetime: u64,
    shared_replay: Option<std::sync::Arc<dyn SharedReplayCache>>,
}

/// A replay cache shared by every replica (PostgreSQL when the feedback database is
/// PostgreSQL): `first_use` records `key` until `valid_until` (seconds since the epoch) if
/// it is absent or expired, and says whether it was.
pub trait SharedReplayCache: Send + Sync {
    /// Insert-if-absent with expiry; `Ok(false)` for a replay, `Err` when unreachable.
    fn first_use<'a>(
        &'a self,
        key: &'a str,
        valid_until: u64,
        now: u64,
    ) -> futures::future::BoxFuture<'a, Result<bool, String>>;
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("required", &self.required)
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

/// `https`, or `http` to a loopback host (tests and sidecars).
fn acceptable_key_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    match parsed.scheme() {
        "https" => true,
        "http" => matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
        _ => false,
    }
}

fn build_issuer(settings: &IssuerSettings) -> Result<Issuer, AuthError> {
    let iss = &settings.iss;
    if iss.is_empty() {
        return Err(AuthError::Config("an issuer has an empty iss".to_owned()));
    }
    let default_keys = match (&settings.jwks_file, &settings.jwks_url) {
        (Some(path), None) => {
            let bytes = std::fs::read(path).map_err(|e| {
                AuthError::Config(format!(
                    "issuer {iss}: cannot read JWK Set file {}: {e}",
                    path.display()
                ))
            })?;
            let set = KeySet::parse(&bytes)
                .map_err(|e| AuthError::Config(format!("issuer {iss}: {}: {e}", path.display())))?;
            if set.len() == 0 {
                return Err(AuthError::Config(format!(
                    "issuer {iss}: {} has no usable signing key with a kid",
                    path.display()
                )));
            }
            KeySource::Static(set)
        }
        (None, Some(url)) => {
            if !acceptable_key_url(url) {
                return Err(AuthError::Config(format!(
                    "issuer {iss}: jwks_url must be an https URL"
                )));
            }
            KeySource::Remote(RemoteKeys::new(url.clone()))
        }
        _ => {
            return Err(AuthError::Config(format!(
                "issuer {iss}: set exactly one of jwks_file and jwks_url"
            )));
        }
    };
    let mut jku = HashMap::new();
    for url in &settings.jku_allow {
        if !acceptable_key_url(url) {
            return Err(AuthError::Config(format!(
                "issuer {iss}: jku_allow entries must be https URLs"
            )));
        }
        jku.insert(url.clone(), RemoteKeys::new(url.clone()));
    }
    Ok(Issuer { default_keys, jku })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One base64url segment of a compact JWS, parsed as JSON.
fn decode_part<T: DeserializeOwned>(part: &str) -> Result<T, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::MalformedToken)?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::MalformedToken)
}

/// The token from an `Authorization: Bearer <token>` value.
fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::MissingAuthorization)?.trim();
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(AuthError::MalformedAuthorization)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.contains(char::is_whitespace)
    {
        return Err(AuthError::MalformedAuthorization);
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::MalformedToken);
    }
    Ok(token)
}

impl Verifier {
    /// Validates the settings and loads every `jwks_file`. URLs are fetched on first use.
    pub fn new(
        settings: AuthSettings,
        http_client: reqwest::Client,
    ) -> Result<Verifier, AuthError> {
        let mut issuers = HashMap::new();
        for issuer in &settings.issuers {
            let built = build_issuer(issuer)?;
            if issuers.insert(issuer.iss.clone(), built).is_some() {
                return Err(AuthError::Config(format!(
                    "issuer {} is listed twice",
                    issuer.iss
                )));
            }
        }
        if settings.required && issuers.is_empty() {
            return Err(AuthError::Config(
                "auth is required but no issuer is trusted".to_owned(),
            ));
        }
        if settings.replay_cache_capacity == 0 {
            return Err(AuthError::Config(
                "replay_cache_capacity must be positive".to_owned(),
            ));
        }
        Ok(Verifier {
            required: settings.required,
            issuers,
            leeway: settings.leeway_secs,
            refresh_interval: Duration::from_secs(settings.jwks_refresh_min_interval_secs),
            client: http_client,
            replay: ReplayCache::new(settings.replay_cache_capacity),
            max_lifetime: settings.max_token_lifetime_secs,
            shared_replay: None,
        })
    }

    /// Uses `cache` (shared by all replicas) instead of the per-process replay cache.
    pub fn with_shared_replay_cache(
        mut self,
        cache: std::sync::Arc<dyn SharedReplayCache>,
    ) -> Verifier {
        self.shared_replay = Some(cache);
        self
    }

    /// Whether requests must carry a token (`[auth] required`). When false the HTTP layer
    /// may skip [`Verifier::verify`] entirely.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// Verifies the `Authorization` header value for a call to `audience`, the public URL of
    /// the endpoint being called (for example `https://cds.example.org/cds-services/crs`).
    ///
    /// On success the token's `jti` is recorded, so the same token is refused next time.
    /// Refusals are logged with their reason only.
    pub async fn verify(
        &self,
        authorization_header: Option<&str>,
        audience: &str,
    ) -> Result<Claims, AuthError> {
        let mut iss_for_log = None;
        let result = self
            .verify_inner(authorization_header, audience, &mut iss_for_log)
            .await;
        if let Err(err) = &result {
            let iss = iss_for_log.as_deref().unwrap_or("-");
            if err.is_suspicious() {
                tracing::warn!(
                    reason = err.reason(),
                    iss,
                    "refused CDS client token: {err}"
                );
            } else {
                tracing::info!(
                    reason = err.reason(),
                    iss,
                    "refused CDS client token: {err}"
                );
            }
        }
        result
    }

    async fn verify_inner(
        &self,
        authorization_header: Option<&str>,
        audience: &str,
        iss_for_log: &mut Option<String>,
    ) -> Result<Claims, AuthError> {
        let token = bearer_token(authorization_header)?;
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::MalformedToken);
        };

        let header: RawHeader = decode_part(header_b64)?;
        let alg = accepted_algorithm(&header.alg)?;
        if header.crit.is_some()
            || header
                .typ
                .as_deref()
                .is_some_and(|t| !t.eq_ignore_ascii_case("JWT"))
        {
            return Err(AuthError::UnsupportedHeader);
        }

        // The payload is read before the signature check only to choose the issuer's keys;
        // nothing in it is trusted until the signature verifies with those keys.
        let raw: RawClaims = decode_part(payload_b64)?;
        let iss = raw.iss.as_deref().ok_or(AuthError::MissingClaim("iss"))?;
        *iss_for_log = Some(iss.chars().take(MAX_LOGGED_ISS).collect());
        let issuer = self.issuers.get(iss).ok_or(AuthError::UnknownIssuer)?;
        let kid = header.kid.as_deref().ok_or(AuthError::MissingKeyId)?;

        let key = self.find_key(issuer, header.jku.as_deref(), kid).await?;
        if !key.fits(alg) {
            return Err(AuthError::KeyMismatch);
        }
        let message_len = header_b64.len() + 1 + payload_b64.len();
        let message = &token.as_bytes()[..message_len];
        let verified = jsonwebtoken::crypto::verify(signature_b64, message, &key.key, alg)
            .map_err(|_| AuthError::BadSignature)?;
        if !verified {
            return Err(AuthError::BadSignature);
        }

        let claims = self.check_claims(raw, audience)?;
        let valid_until = claims.exp.saturating_add(self.leeway);
        match &self.shared_replay {
            Some(shared) => {
                // Length-prefixed issuer then jti: unambiguous, and text PostgreSQL accepts
                // (no NUL).
                let key = format!("{}:{}{}", claims.iss.len(), claims.iss, claims.jti);
                match shared.first_use(&key, valid_until, now_secs()).await {
                    Ok(true) => {}
                    Ok(false) => return Err(AuthError::Replayed),
                    // The database is down: hook calls go on (CDS must not stop with the
                    // feedback database), guarded by this replica's own cache meanwhile.
                    Err(why) => {
                        tracing::warn!(%why, "shared replay cache unavailable; using the per-process cache");
                        self.replay
                            .record(&claims.iss, &claims.jti, valid_until, now_secs())?;
                    }
                }
            }
            None => self
                .replay
                .record(&claims.iss, &claims.jti, valid_until, now_secs())?,
        }
        Ok(claims)
    }

    async fn find_key(
        &self,
        issuer: &Issuer,
        jku: Option<&str>,
        kid: &str,
    ) -> Result<std::sync::Arc<StoredKey>, AuthError> {
        match jku {
            // "CDS Services SHOULD limit the CDS Clients they trust by maintaining an
            // allowlist of iss and jku urls": a jku off the list is refused, not ignored.
            Some(url) => {
                let remote = issuer.jku.get(url).ok_or(AuthError::JkuNotAllowed)?;
                remote.find(kid, &self.client, self.refresh_interval).await
            }
            None => {
                issuer
                    .default_keys
                    .find(kid, &self.client, self.refresh_interval)
                    .await
            }
        }
    }

    /// The registered claims after the signature has verified (RFC 7519 section 4.1).
    fn check_claims(&self, raw: RawClaims, audience: &str) -> Result<Claims, AuthError> {
        let now = now_secs();
        let aud = raw.aud.ok_or(AuthError::MissingClaim("aud"))?;
        if !aud.iter().any(|a| a == audience) {
            return Err(AuthError::WrongAudience);
        }
        let exp = numeric_date(raw.exp.as_ref(), "exp")?.ok_or(AuthError::MissingClaim("exp"))?;
        let iat = numeric_date(raw.iat.as_ref(), "iat")?.ok_or(AuthError::MissingClaim("iat"))?;
        let nbf = numeric_date(raw.nbf.as_ref(), "nbf")?;
        if exp.saturating_add(self.leeway) < now {
            return Err(AuthError::Expired);
        }
        if iat > now.saturating_add(self.leeway) {
            return Err(AuthError::IssuedInFuture);
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(self.leeway)) {
            return Err(AuthError::NotYetValid);
        }
        // A bounded lifetime bounds how long a jti must be remembered (and so the replay
        // cache): from nbf when given (Epic sets it 5 min before iat), else from iat.
        if exp.saturating_sub(nbf.unwrap_or(iat)) > self.max_lifetime {
            return Err(AuthError::LifetimeTooLong);
        }
        let jti = raw.jti.ok_or(AuthError::MissingClaim("jti"))?;
        if jti.is_empty() {
            return Err(AuthError::InvalidClaim("jti"));
        }
        Ok(Claims {
            iss: raw.iss.ok_or(AuthError::MissingClaim("iss"))?,
            aud,
            exp,
            iat,
            nbf,
            jti,
            tenant: raw.tenant,
            sub: raw.sub,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_hmac_algorithms_are_forbidden_in_any_case() {
        for alg in ["none", "None", "NONE", "HS256", "HS384", "HS512", "hs256"] {
            assert!(matches!(
                accepted_algorithm(alg),
                Err(AuthError::ForbiddenAlgorithm)
            ));
        }
    }

    #[test]
    fn recommended_algorithms_are_accepted() {
        assert_eq!(accepted_algorithm("ES384").ok(), Some(Algorithm::ES384));
        assert_eq!(accepted_algorithm("RS384").ok(), Some(Algorithm::RS384));
        assert!(matches!(
            accepted_algorithm("EdDSA"),
            Err(AuthError::UnsupportedAlgorithm)
        ));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(
            bearer_token(Some("bearer abc.def.ghi")).ok(),
            Some("abc.def.ghi")
        );
        assert!(bearer_token(Some("Basic abc")).is_err());
        assert!(bearer_token(Some("Bearer")).is_err());
        assert!(bearer_token(Some("Bearer a b")).is_err());
        assert!(bearer_token(None).is_err());
    }

    #[test]
    fn key_urls_must_be_https_unless_loopback() {
        assert!(acceptable_key_url("https://ehr.example.org/jwks"));
        assert!(acceptable_key_url("http://127.0.0.1:8080/jwks"));
        assert!(!acceptable_key_url("http://ehr.example.org/jwks"));
        assert!(!acceptable_key_url("file:///etc/passwd"));
    }
}
