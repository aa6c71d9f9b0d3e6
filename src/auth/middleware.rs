//! actix-web adapter: a `from_fn` middleware that verifies the CDS client JWT.
//!
//! Wire it with the gate as app data:
//!
//! ```text
//! let gate = web::Data::new(AuthGate::new(verifier, "https://cds.example.org"));
//! App::new()
//!     .app_data(gate.clone())
//!     .service(web::scope("/cds-services").wrap(from_fn(require_cds_client_jwt)) ...)
//! ```
//!
//! On success the verified [`Claims`] are put in the request extensions
//! (`req.extensions().get::<Claims>()`); on refusal the response is 401 with
//! `WWW-Authenticate: Bearer` and an empty body.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, web};

use super::{Claims, Verifier};

/// What the middleware needs: the verifier and the service's public base URL, from which
/// each request's audience (`{public_base_url}{path}`) is built.
#[derive(Debug, Clone)]
pub struct AuthGate {
    verifier: Arc<Verifier>,
    public_base_url: String,
}

impl AuthGate {
    /// `public_base_url` is the externally visible base, such as `https://cds.example.org`
    /// (a trailing slash is ignored). It must match what CDS clients put in `aud`.
    pub fn new(verifier: Arc<Verifier>, public_base_url: impl Into<String>) -> AuthGate {
        let mut base = public_base_url.into();
        while base.ends_with('/') {
            base.pop();
        }
        AuthGate {
            verifier,
            public_base_url: base,
        }
    }

    /// The audience a token must name for a request to `path` (query excluded).
    pub fn audience_for(&self, path: &str) -> String {
        format!("{}{}", self.public_base_url, path)
    }

    /// The shared verifier.
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }
}

/// `from_fn` middleware: verifies the `Authorization` header against the [`AuthGate`] in app
/// data. When auth is not required the request passes unverified. A missing `AuthGate` is a
/// wiring bug and answers 500 rather than letting requests through.
pub async fn require_cds_client_jwt(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(gate) = req.app_data::<web::Data<AuthGate>>().cloned() else {
        tracing::error!("auth middleware installed without an AuthGate in app data");
        let response = HttpResponse::InternalServerError().finish();
        return Ok(req.into_response(response).map_into_right_body());
    };
    if !gate.verifier.is_required() {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let audience = gate.audience_for(req.path());
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        // A header that is not visible ASCII is malformed, not missing.
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    match gate
        .verifier
        .verify(authorization.as_deref(), &audience)
        .await
    {
        Ok(claims) => {
            req.extensions_mut().insert::<Claims>(claims);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(_) => {
            // The refusal was already logged by the verifier, with its reason.
            let response = HttpResponse::Unauthorized()
                .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                .finish();
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}
