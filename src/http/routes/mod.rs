//! Route handlers.

pub mod app;
pub mod feedback;
pub mod health;
pub mod landing;
pub mod service;

use actix_web::HttpRequest;
use actix_web::web;
use futures::StreamExt;

use super::error::ApiError;

/// Reads a request body up to `limit` bytes (413 beyond) within `timeout` (408 after), so
/// every body error comes back in the service's JSON error shape. A body broken off or
/// malformed on the wire is the client's fault: 400, logged at info.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let read = async {
        let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                tracing::debug!(error = %e, "request body broke off");
                ApiError::BodyRead
            })?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(ApiError::BodyTimeout))
}

/// The service id a `/cds-services/{id}` or `/cds-services/{id}/feedback` request names:
/// from the `{id}` segment when the route has one, else from the (static) path.
pub fn service_id(req: &HttpRequest) -> String {
    if let Some(id) = req.match_info().get("id") {
        return id.to_string();
    }
    let path = req.path();
    let rest = path.strip_prefix("/cds-services/").unwrap_or(path);
    rest.strip_suffix("/feedback").unwrap_or(rest).to_string()
}

/// A fixed metrics label for a request path (no allocation, no route resolution).
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/" => "/",
        "/openapi.json" => "/openapi.json",
        "/cds-services" => "/cds-services",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        "/bench/ceiling" => "/bench/ceiling",
        "/bench/naive-fhirbolt" => "/bench/naive-fhirbolt",
        "/app/launch" => "/app/launch",
        "/app/callback" => "/app/callback",
        p => match p.strip_prefix("/cds-services/") {
            Some(rest) if rest.ends_with("/feedback") && !rest[..rest.len() - 9].contains('/') => {
                "/cds-services/{id}/feedback"
            }
            Some(rest) if !rest.is_empty() && !rest.contains('/') => "/cds-services/{id}",
            _ if p.starts_with("/demo/fhir/") => "/demo/fhir",
            _ if p.starts_with("/app/static/") => "/app/static",
            _ if p.starts_with("/demo/auth/") => "/demo/auth",
            _ if p == "/demo/ehr" || p.starts_with("/demo/ehr/") => "/demo/ehr",
            _ => "unmatched",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn route_labels_are_fixed_strings() {
        assert_eq!(route_label("/cds-services"), "/cds-services");
        assert_eq!(
            route_label("/cds-services/crs-icans-grading"),
            "/cds-services/{id}"
        );
        assert_eq!(
            route_label("/cds-services/x/feedback"),
            "/cds-services/{id}/feedback"
        );
        assert_eq!(route_label("/cds-services/a/b/c"), "unmatched");
        assert_eq!(route_label("/cds-services/"), "unmatched");
        assert_eq!(route_label("/nope"), "unmatched");
        assert_eq!(route_label("/app/callback"), "/app/callback");
        assert_eq!(route_label("/app/static/app.js"), "/app/static");
        assert_eq!(route_label("/demo/auth/token"), "/demo/auth");
        assert_eq!(route_label("/demo/ehr/launch"), "/demo/ehr");
        assert_eq!(route_label("/demo/ehrx"), "unmatched");
    }
}
