//! `GET /` (an HTML page for people: the services, their hooks, links, and in demo mode how
//! to point the CDS Hooks Sandbox or curl at the demo data) and `GET /openapi.json`.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::protocol::discovery;

/// The OpenAPI 3.1 description of every route (the file `docs/openapi.json`).
pub const OPENAPI_JSON: &str = include_str!("../../../docs/openapi.json");

/// Whether the landing page shows the demo instructions (app data, set by the startup).
#[derive(Clone, Copy, Debug)]
pub struct LandingMode {
    /// `serve --demo`.
    pub demo: bool,
}

/// `GET /openapi.json`.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI_JSON)
}

use crate::render::escape_html as escape;

/// `GET /`.
pub async fn landing(req: HttpRequest, mode: Option<web::Data<LandingMode>>) -> HttpResponse {
    let demo = mode.is_some_and(|m| m.demo);
    let info = req.connection_info();
    let base = format!("{}://{}", info.scheme(), info.host());
    let mut services = String::new();
    for s in discovery::services() {
        services.push_str(&format!(
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td><code>POST {}/cds-services/{}</code></td></tr>\n",
            escape(&s.id),
            escape(&s.hook),
            escape(&s.title),
            escape(&base),
            escape(&s.id),
        ));
    }
    let demo_section = if demo {
        demo_html(&base)
    } else {
        String::new()
    };
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>crs-cds</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}}td,th{{padding:.2em .6em;text-align:left;vertical-align:top}}code,pre{{background:#f4f4f4}}pre{{padding:.6em;overflow:auto}}</style>
</head><body>
<h1>crs-cds {version}</h1>
<p>An HL7 CDS Hooks 2.0.1 service that grades cytokine release syndrome (CRS) and ICANS after CAR-T
therapy (ASTCT 2019). Research software, not clinically validated.</p>
<h2>Services</h2>
<table><tr><th>id</th><th>hook</th><th>title</th><th>call</th></tr>
{services}</table>
<h2>Links</h2>
<ul>
<li><a href="/cds-services">/cds-services</a>: CDS Hooks discovery (needs a JWT when auth is on)</li>
<li><a href="/openapi.json">/openapi.json</a>: OpenAPI 3.1 description of every route</li>
<li><a href="/healthz">/healthz</a> (liveness), <a href="/readyz">/readyz</a> (readiness)</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
</ul>
{demo_section}</body></html>
"#,
        version = env!("CARGO_PKG_VERSION"),
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html)
}

fn demo_html(base: &str) -> String {
    let fhir = format!("{base}{}", crate::demo::FHIR_PATH);
    let mut rows = String::new();
    for p in crate::demo::PATIENTS {
        rows.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td></tr>\n",
            escape(p.id),
            escape(p.summary)
        ));
    }
    let curl = format!(
        "curl -s {base}/cds-services/crs-icans-grading -H 'Content-Type: application/json' \\\n  -d '{{\"hook\":\"patient-view\",\"hookInstance\":\"d1b7c6a0-0000-4000-8000-000000000001\",\"fhirServer\":\"{fhir}\",\"context\":{{\"userId\":\"Practitioner/demo\",\"patientId\":\"demo-crs-3\"}}}}'"
    );
    format!(
        r#"<h2>Demo mode</h2>
<p><strong>Synthetic data only.</strong> This server also answers a read-only FHIR R4 endpoint at
<a href="{fhir}/metadata"><code>{fhir}</code></a> with these patients, generated relative to now:</p>
<table><tr><th>patient id</th><th>record</th></tr>
{rows}</table>
<h3>With curl</h3>
<pre>{curl}</pre>
<p>The service fetches every prefetch key from <code>fhirServer</code> and answers the cards;
<code>.cards[0].extension["org.crs-cds"]</code> holds the grades.</p>
<h3>In the CDS Hooks Sandbox</h3>
<ol>
<li>Open the CDS Hooks Sandbox in a browser on this machine.</li>
<li>Settings (gear) → <em>Change FHIR Server</em>: <code>{fhir}</code></li>
<li>Settings → <em>Add CDS Services</em>: <code>{base}/cds-services</code></li>
<li>Settings → <em>Change Patient</em>: a patient id above, e.g. <code>demo-crs-3</code></li>
<li>The Patient View tab calls <code>crs-icans-grading</code> and shows the cards.</li>
</ol>
<p>Authentication is off because this server listens on a loopback address without trusted issuers;
README.md "Try it in the CDS Hooks Sandbox" says how to trust the Sandbox's issuer instead.</p>
<h3>The CRS/ICANS course app</h3>
<p>The <a href="{base}/demo/ehr">demo EHR</a> shows each patient's grading card; its
"CRS/ICANS course" link launches the SMART app through the demo authorization server.</p>
"#,
        curl = escape(&curl),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_openapi_document_is_json() {
        let v: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("JSON");
        assert_eq!(v["openapi"], "3.1.0");
    }

    #[test]
    fn html_special_characters_are_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
