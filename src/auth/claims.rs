//! The JWT payload: a flat serde struct (no untagged enums, which `arbitrary_precision` breaks).

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::Number;

use super::AuthError;

/// The verified claims of a CDS client's token (CDS Hooks 2.0.1, "Trusting CDS Clients").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The trusted issuer.
    pub iss: String,
    /// The audience values, one of which is the endpoint that was called.
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issue time, seconds since the epoch.
    pub iat: u64,
    /// Not-before time, seconds since the epoch, when present.
    pub nbf: Option<u64>,
    /// The token's unique id (already recorded for replay detection).
    pub jti: String,
    /// The healthcare organisation invoking the hook, when the client sends it.
    pub tenant: Option<String>,
    /// The subject, when present.
    pub sub: Option<String>,
}

/// The payload as sent, before any check.
#[derive(Debug, Deserialize)]
pub(crate) struct RawClaims {
    pub(crate) iss: Option<String>,
    #[serde(default, deserialize_with = "audience")]
    pub(crate) aud: Option<Vec<String>>,
    pub(crate) exp: Option<Number>,
    pub(crate) iat: Option<Number>,
    pub(crate) nbf: Option<Number>,
    pub(crate) jti: Option<String>,
    pub(crate) tenant: Option<String>,
    pub(crate) sub: Option<String>,
}

/// A NumericDate (RFC 7519 section 2): non-negative seconds, fractions allowed and truncated.
pub(crate) fn numeric_date(
    value: Option<&Number>,
    claim: &'static str,
) -> Result<Option<u64>, AuthError> {
    let Some(n) = value else { return Ok(None) };
    if let Some(secs) = n.as_u64() {
        return Ok(Some(secs));
    }
    match n.as_f64() {
        Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => Ok(Some(f as u64)),
        _ => Err(AuthError::InvalidClaim(claim)),
    }
}

/// `aud` is a string or an array of strings (RFC 7519 section 4.1.3).
fn audience<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct AudienceVisitor;

    impl<'de> Visitor<'de> for AudienceVisitor {
        type Value = Option<Vec<String>>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or an array of strings")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(vec![v.to_owned()]))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                out.push(s);
            }
            Ok(Some(out))
        }
    }

    d.deserialize_any(AudienceVisitor)
}
