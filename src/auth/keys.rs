//! JWK Sets: parsing, and the cached, rate-limited fetch of a JWK Set URL.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use super::AuthError;

/// A JWK Set larger than this is refused (a client's set holds a handful of keys).
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// A JWK Set fetch taking longer than this fails; the fetch lock is held meanwhile.
const JWKS_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The key types we verify with. Symmetric (`oct`) keys are never loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    P256,
    P384,
    Rsa,
}

/// One usable public key.
pub(crate) struct StoredKey {
    kind: KeyKind,
    /// The JWK's own `alg`, which, when present, pins the key to that algorithm.
    alg: Option<Algorithm>,
    pub(crate) key: DecodingKey,
}

impl StoredKey {
    /// Whether this key may verify a signature made with `alg`.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        let kind_fits = match alg {
            Algorithm::ES256 => self.kind == KeyKind::P256,
            Algorithm::ES384 => self.kind == KeyKind::P384,
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => self.kind == KeyKind::Rsa,
            _ => false,
        };
        kind_fits && self.alg.is_none_or(|pinned| pinned == alg)
    }
}

/// Public keys by `kid`. Keys without a `kid` are skipped: CDS Hooks requires `kid`.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, Arc<StoredKey>>,
}

#[derive(Deserialize)]
struct RawJwkSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

impl KeySet {
    /// Parses a JWK Set document. Unusable entries (unknown types, encryption keys,
    /// symmetric keys, missing `kid`) are skipped so one odd key does not hide the others.
    pub(crate) fn parse(bytes: &[u8]) -> Result<KeySet, String> {
        let raw: RawJwkSet =
            serde_json::from_slice(bytes).map_err(|e| format!("not a JWK Set: {e}"))?;
        let mut keys = HashMap::new();
        for value in raw.keys {
            let Ok(jwk) = serde_json::from_value::<RawJwk>(value) else {
                continue;
            };
            if let Some((kid, key)) = stored_key(jwk) {
                keys.insert(kid, Arc::new(key));
            }
        }
        Ok(KeySet { keys })
    }

    pub(crate) fn get(&self, kid: &str) -> Option<Arc<StoredKey>> {
        self.keys.get(kid).cloned()
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

fn stored_key(jwk: RawJwk) -> Option<(String, StoredKey)> {
    let kid = jwk.kid?;
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let alg = match jwk.alg.as_deref() {
        None => None,
        Some(a) => Some(super::verifier::accepted_algorithm(a).ok()?),
    };
    let (kind, key) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("EC", Some(crv @ ("P-256" | "P-384"))) => {
            let key = DecodingKey::from_ec_components(jwk.x.as_deref()?, jwk.y.as_deref()?).ok()?;
            let kind = if crv == "P-256" {
                KeyKind::P256
            } else {
                KeyKind::P384
            };
            (kind, key)
        }
        ("RSA", _) => {
            let key =
                DecodingKey::from_rsa_components(jwk.n.as_deref()?, jwk.e.as_deref()?).ok()?;
            (KeyKind::Rsa, key)
        }
        _ => return None,
    };
    Some((kid, StoredKey { kind, alg, key }))
}

/// A JWK Set behind a URL: cached, and refetched when an unknown `kid` shows up, at most
/// once per refresh interval (so a stream of made-up `kid`s cannot hammer the issuer).
pub(crate) struct RemoteKeys {
    url: String,
    keys: RwLock<Arc<KeySet>>,
    /// When the last fetch started and whether it succeeded; the lock also serialises fetches.
    last_fetch: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl RemoteKeys {
    pub(crate) fn new(url: String) -> RemoteKeys {
        RemoteKeys {
            url,
            keys: RwLock::new(Arc::new(KeySet::default())),
            last_fetch: tokio::sync::Mutex::new(None),
        }
    }

    fn cached(&self, kid: &str) -> Option<Arc<StoredKey>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kid)
    }

    /// The key for `kid`, fetching the set when it is unknown and the rate limit allows.
    pub(crate) async fn find(
        &self,
        kid: &str,
        client: &reqwest::Client,
        min_interval: Duration,
    ) -> Result<Arc<StoredKey>, AuthError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Another request may have fetched the set while this one waited for the lock.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        if let Some((at, succeeded)) = *last_fetch
            && at.elapsed() < min_interval
        {
            return Err(if succeeded {
                AuthError::UnknownKey
            } else {
                AuthError::KeySetUnavailable
            });
        }
        let started = Instant::now();
        *last_fetch = Some((started, false));
        let set = self.fetch(client).await?;
        *last_fetch = Some((started, true));
        tracing::info!(url = %self.url, keys = set.len(), "fetched JWK Set");
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        self.cached(kid).ok_or(AuthError::UnknownKey)
    }

    async fn fetch(&self, client: &reqwest::Client) -> Result<KeySet, AuthError> {
        let unavailable = |why: String| {
            tracing::warn!(url = %self.url, %why, "JWK Set fetch failed");
            AuthError::KeySetUnavailable
        };
        let response = client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(JWKS_FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("status {}", response.status())));
        }
        // A client that followed a redirect would hand us keys from another URL: only
        // the configured URL's own answer is trusted (the service's client follows none).
        if response.url().as_str()
            != reqwest::Url::parse(&self.url).map_or(String::new(), String::from)
        {
            return Err(unavailable("redirected".to_owned()));
        }
        // Streamed with the cap checked per chunk: an endless body costs at most the cap.
        let body = crate::outbound::read_capped(response, MAX_JWKS_BYTES)
            .await
            .map_err(|e| match e {
                crate::outbound::CappedBodyError::TooLarge => {
                    unavailable("body too large".to_owned())
                }
                crate::outbound::CappedBodyError::Broken(e) => unavailable(e.to_string()),
            })?;
        KeySet::parse(&body).map_err(unavailable)
    }
}

/// Where an issuer's keys come from when the token has no `jku`.
pub(crate) enum KeySource {
    /// A file loaded at start-up.
    Static(KeySet),
    /// A URL fetched on demand.
    Remote(RemoteKeys),
}

impl KeySource {
    pub(crate) async fn find(
        &self,
        kid: &str,
        client: &reqwest::Client,
        min_interval: Duration,
    ) -> Result<Arc<StoredKey>, AuthError> {
        match self {
            KeySource::Static(set) => set.get(kid).ok_or(AuthError::UnknownKey),
            KeySource::Remote(remote) => remote.find(kid, client, min_interval).await,
        }
    }
}
