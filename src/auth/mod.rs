//! Authentication of CDS clients (CDS Hooks 2.0.1, "Trusting CDS Clients").
//!
//! A CDS client signs a short-lived JWT with its private key and presents it as
//! `Authorization: Bearer <JWT>` on every call. [`Verifier`] checks that token: asymmetric
//! algorithm only, trusted `iss`, key found by `kid` in that issuer's JWK Set (a file, a URL,
//! or an allow-listed `jku`), `aud` equal to the endpoint's public URL, `exp`/`iat`/`nbf`
//! within a small leeway, and a `jti` never seen before.
//!
//! The verifier is framework-agnostic: it takes the header value and the audience and returns
//! [`Claims`] or an [`AuthError`]. [`middleware`] adapts it to actix-web. This module must not
//! depend on `domain`, `adapter` or `protocol`: it knows nothing about grading.
//!
//! Claims and headers are parsed into flat structs of our own rather than through
//! `jsonwebtoken::decode`: serde_json's `arbitrary_precision` (switched on program-wide by
//! fhirbolt) breaks that crate's numeric `exp`/`nbf` parsing, so jsonwebtoken is used for the
//! signature check only.

mod claims;
mod error;
mod keys;
pub mod middleware;
mod replay;
mod settings;
mod verifier;

pub use claims::Claims;
pub use error::AuthError;
pub use settings::{AuthSettings, IssuerSettings};
pub use verifier::{SharedReplayCache, Verifier};
