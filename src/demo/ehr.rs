//! The demo EHR (`serve --demo` only, issue 13): `GET /demo/ehr` lists the demo patients
//! with the grading card the patient-view service answers for each (computed by the
//! service's own patient-view path against `/demo/fhir`) and the card's links;
//! `GET /demo/ehr/launch?patient=…` plays the EHR's part of a SMART launch: it makes a
//! launch id and redirects to this server's own `/app/launch` with `iss` and `launch`
//! (never to a URL taken from the request).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::auth::DemoAuth;
use super::patients::PATIENTS;
use crate::domain::Timestamp;
use crate::http::AppState;
use crate::http::routes::app::{escape, html_page};
use crate::protocol::cards::{Card, GRADING_TOPIC};

/// Where the demo EHR is mounted.
pub const EHR_PATH: &str = "/demo/ehr";
/// The CSS class of the card's SMART link (the browser test clicks it).
pub const SMART_LINK_CLASS: &str = "app-link-smart";

/// The `/demo/ehr` routes.
pub fn scope() -> actix_web::Scope {
    web::scope(EHR_PATH)
        .route("", web::get().to(ehr))
        .route("/launch", web::get().to(launch))
}

fn card_html(patient: &str, card: &Card) -> String {
    let links: String = card
        .links
        .iter()
        .map(|l| match l.kind {
            "smart" => format!(
                "<a class=\"app-link {SMART_LINK_CLASS}\" id=\"app-link-{patient}\" href=\"{EHR_PATH}/launch?patient={patient}\">{}</a>",
                escape(&l.label)
            ),
            _ => format!(
                "<a class=\"app-link app-link-absolute\" id=\"app-link-absolute-{patient}\" href=\"{}\">{} (standalone)</a>",
                escape(&l.url),
                escape(&l.label)
            ),
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "<div class=\"card {}\"><p class=\"summary\">{}</p><p class=\"links\">{links}</p></div>",
        card.indicator.name(),
        escape(&card.summary)
    )
}

async fn ehr(state: web::Data<AppState>) -> HttpResponse {
    let Some(base) = state.app.public_base.clone() else {
        return html_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Demo EHR unavailable",
            "No public base URL.",
        );
    };
    let fhir = format!("{base}{}", super::FHIR_PATH);
    let now = Timestamp(chrono::Utc::now().timestamp_millis());
    let answers =
        futures::future::join_all(PATIENTS.iter().map(|p| {
            let state = state.clone();
            let fhir = fhir.clone();
            async move {
                crate::http::routes::service::patient_view_cards(&state, &fhir, p.id, now).await
            }
        }))
        .await;
    let rows: String = PATIENTS
        .iter()
        .zip(answers)
        .map(|(p, answer)| {
            let cards = match answer {
                Ok(r) => {
                    let grading: Vec<String> = r
                        .cards
                        .iter()
                        .filter(|c| c.source.topic.code == GRADING_TOPIC)
                        .map(|c| card_html(p.id, c))
                        .collect();
                    if grading.is_empty() {
                        "<p class=\"no-cards\">No cards (no CAR-T infusion on record).</p>".to_string()
                    } else {
                        grading.join("")
                    }
                }
                Err(e) => format!("<p class=\"error\">The service could not answer: {}</p>", escape(&e.to_string())),
            };
            format!(
                "<section class=\"patient\" id=\"patient-{id}\"><h2>{id}</h2><p>{}</p>{cards}</section>",
                escape(p.summary),
                id = p.id
            )
        })
        .collect();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>crs-cds demo EHR</title></head><body><h1>crs-cds demo EHR (synthetic patients)</h1><p>Each patient's patient-view grading card, as the CDS service answers it now. The \"CRS/ICANS course\" link launches the SMART app.</p>{rows}</body></html>\n"
        ))
}

#[derive(Deserialize)]
struct LaunchQuery {
    patient: Option<String>,
}

async fn launch(
    query: web::Query<LaunchQuery>,
    state: web::Data<AppState>,
    auth: web::Data<DemoAuth>,
) -> HttpResponse {
    let Some(base) = state.app.public_base.as_deref() else {
        return html_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Demo EHR unavailable",
            "No public base URL.",
        );
    };
    let Some(patient) = query
        .patient
        .as_deref()
        .and_then(|p| PATIENTS.iter().find(|d| d.id == p))
    else {
        return html_page(
            StatusCode::BAD_REQUEST,
            "Unknown patient",
            "Launch the app from a demo patient's card.",
        );
    };
    let app_context = state
        .app
        .links
        .iter()
        .find(|l| l.kind == "smart")
        .and_then(|l| l.app_context.clone());
    let id = auth.new_launch(patient.id, app_context.as_deref());
    let iss = format!("{base}{}", super::FHIR_PATH);
    let url = format!(
        "{base}/app/launch?iss={}&launch={}",
        super::encode(&iss),
        super::encode(&id)
    );
    HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}
