//! Plain configuration types for [`crate::auth::Verifier`]; the config layer maps TOML into them.

use std::path::PathBuf;

use serde::Deserialize;

/// How CDS clients are authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Whether every request must carry a valid JWT. When false the HTTP layer skips
    /// verification altogether (development and sandbox use only).
    #[serde(default = "default_required")]
    pub required: bool,
    /// The trusted issuers (`iss`), each with its JWK Set.
    #[serde(default)]
    pub issuers: Vec<IssuerSettings>,
    /// Clock skew tolerated on `exp`, `iat` and `nbf`, in seconds.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// Minimum time between two fetches of one JWK Set URL triggered by an unknown `kid`.
    #[serde(default = "default_jwks_refresh_min_interval_secs")]
    pub jwks_refresh_min_interval_secs: u64,
    /// Most `jti` values remembered at once for replay detection.
    #[serde(default = "default_replay_cache_capacity")]
    pub replay_cache_capacity: usize,
    /// The longest accepted token lifetime, `exp - (nbf or iat)`, in seconds (default
    /// 3600). Longer-lived tokens are refused, so no `jti` is remembered for longer than
    /// this plus the leeway (Epic issues 900 s tokens with `nbf` 5 min before `iat`).
    #[serde(default = "default_max_token_lifetime_secs")]
    pub max_token_lifetime_secs: u64,
}

/// One trusted issuer and where its public keys come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// The exact `iss` claim value.
    pub iss: String,
    /// A JWK Set file, read once at start-up (exclusive with `jwks_url`).
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// A JWK Set URL, fetched on first use and again when an unknown `kid` appears
    /// (exclusive with `jwks_file`).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// `jku` header values honoured for this issuer, compared exactly.
    #[serde(default)]
    pub jku_allow: Vec<String>,
}

fn default_required() -> bool {
    true
}

fn default_leeway_secs() -> u64 {
    30
}

fn default_jwks_refresh_min_interval_secs() -> u64 {
    60
}

fn default_max_token_lifetime_secs() -> u64 {
    3600
}

fn default_replay_cache_capacity() -> usize {
    100_000
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            required: default_required(),
            issuers: Vec::new(),
            leeway_secs: default_leeway_secs(),
            jwks_refresh_min_interval_secs: default_jwks_refresh_min_interval_secs(),
            replay_cache_capacity: default_replay_cache_capacity(),
            max_token_lifetime_secs: default_max_token_lifetime_secs(),
        }
    }
}

impl IssuerSettings {
    /// An issuer whose keys come from a JWK Set file.
    pub fn with_jwks_file(iss: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        IssuerSettings {
            iss: iss.into(),
            jwks_file: Some(path.into()),
            jwks_url: None,
            jku_allow: Vec::new(),
        }
    }

    /// An issuer whose keys come from a JWK Set URL.
    pub fn with_jwks_url(iss: impl Into<String>, url: impl Into<String>) -> Self {
        IssuerSettings {
            iss: iss.into(),
            jwks_file: None,
            jwks_url: Some(url.into()),
            jku_allow: Vec::new(),
        }
    }
}
