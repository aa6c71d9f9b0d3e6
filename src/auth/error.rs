//! Why a token was refused. No variant carries the token or attacker-chosen text.

/// A refused CDS client token or an unusable auth configuration.
///
/// Every token-related variant maps to HTTP 401; [`AuthError::Config`] is a start-up error.
/// Display strings never contain the token, its claims or its header values.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request has no `Authorization` header.
    #[error("missing authorization header")]
    MissingAuthorization,
    /// The `Authorization` header is not `Bearer <token>`.
    #[error("authorization header is not a bearer token")]
    MalformedAuthorization,
    /// The token is not a compact JWS with a JSON header and payload.
    #[error("token is not a well-formed compact jws")]
    MalformedToken,
    /// `alg` is `none` or a symmetric (HMAC) algorithm, which CDS Hooks forbids.
    #[error("token algorithm is forbidden (none or symmetric)")]
    ForbiddenAlgorithm,
    /// `alg` is some other algorithm this service does not accept.
    #[error("token algorithm is not supported")]
    UnsupportedAlgorithm,
    /// The header has a `crit` extension or a `typ` other than `JWT`.
    #[error("token header has a critical extension or an unexpected type")]
    UnsupportedHeader,
    /// The header has no `kid`, which CDS Hooks requires.
    #[error("token header has no kid")]
    MissingKeyId,
    /// `iss` is not on the allow-list.
    #[error("token issuer is not trusted")]
    UnknownIssuer,
    /// The header's `jku` is not on this issuer's `jku_allow` list.
    #[error("token jku is not allowed for its issuer")]
    JkuNotAllowed,
    /// The issuer's key set has no key with the token's `kid` (after a refetch, if allowed).
    #[error("no key with the token's kid in the issuer's key set")]
    UnknownKey,
    /// The key found by `kid` is of another type or curve than `alg` needs.
    #[error("the key for the token's kid does not fit its algorithm")]
    KeyMismatch,
    /// The issuer's JWK Set URL could not be fetched or parsed.
    #[error("the issuer's key set is unavailable")]
    KeySetUnavailable,
    /// The signature does not verify with the issuer's key.
    #[error("token signature does not verify")]
    BadSignature,
    /// A required claim is absent.
    #[error("token lacks the required claim {0}")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an impossible value.
    #[error("token claim {0} is malformed")]
    InvalidClaim(&'static str),
    /// `aud` does not name the endpoint being called.
    #[error("token audience does not match this endpoint")]
    WrongAudience,
    /// `exp` is in the past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `iat` is in the future (beyond the leeway).
    #[error("token is issued in the future")]
    IssuedInFuture,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `exp - (nbf or iat)` is over `auth.max_token_lifetime_secs`.
    #[error("token lifetime is over the accepted maximum")]
    LifetimeTooLong,

    /// This issuer's `jti` was already presented while the token was still valid.
    #[error("token jti was already used")]
    Replayed,
    /// The replay cache holds only unexpired entries and is full; failing closed.
    #[error("replay cache is full")]
    ReplayCacheFull,
    /// The auth settings are inconsistent, or a JWK Set file cannot be loaded.
    #[error("invalid auth configuration: {0}")]
    Config(String),
}

impl AuthError {
    /// A short stable code for logs and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingAuthorization => "missing_authorization",
            AuthError::MalformedAuthorization => "malformed_authorization",
            AuthError::MalformedToken => "malformed_token",
            AuthError::ForbiddenAlgorithm => "forbidden_algorithm",
            AuthError::UnsupportedAlgorithm => "unsupported_algorithm",
            AuthError::UnsupportedHeader => "unsupported_header",
            AuthError::MissingKeyId => "missing_kid",
            AuthError::UnknownIssuer => "unknown_issuer",
            AuthError::JkuNotAllowed => "jku_not_allowed",
            AuthError::UnknownKey => "unknown_kid",
            AuthError::KeyMismatch => "key_mismatch",
            AuthError::KeySetUnavailable => "jwks_unavailable",
            AuthError::BadSignature => "bad_signature",
            AuthError::MissingClaim(_) => "missing_claim",
            AuthError::InvalidClaim(_) => "invalid_claim",
            AuthError::WrongAudience => "wrong_audience",
            AuthError::Expired => "expired",
            AuthError::IssuedInFuture => "issued_in_future",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::LifetimeTooLong => "lifetime_too_long",

            AuthError::Replayed => "replayed",
            AuthError::ReplayCacheFull => "replay_cache_full",
            AuthError::Config(_) => "config",
        }
    }

    /// Whether the refusal looks like an attack or a misbehaving client rather than
    /// ordinary expiry or misconfiguration; such refusals are logged at warn level.
    pub fn is_suspicious(&self) -> bool {
        matches!(
            self,
            AuthError::ForbiddenAlgorithm
                | AuthError::BadSignature
                | AuthError::Replayed
                | AuthError::JkuNotAllowed
                | AuthError::KeyMismatch
                | AuthError::ReplayCacheFull
                | AuthError::LifetimeTooLong
        )
    }
}
