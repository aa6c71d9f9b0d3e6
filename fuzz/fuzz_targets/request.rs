//! A CDS Hooks request body, end to end without HTTP: parse, validate for every hook,
//! read the prefetch and draft orders, grade and build the cards. Nothing may panic.
#![no_main]

use crs_cds::adapter::{Document, Terminology, map_documents};
use crs_cds::domain::{Policy, Timestamp, assess};
use crs_cds::protocol::cards::{CardInput, cards};
use crs_cds::protocol::discovery::Hook;
use crs_cds::protocol::request::CdsRequest;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;
use common::allow_contained_fhirbolt_panics;

fuzz_target!(|data: &[u8]| {
    allow_contained_fhirbolt_panics();
    let terminology = Terminology::embedded();
    let policy = Policy::default();
    let now = Timestamp(1_763_899_200_000);
    for hook in [Hook::PatientView, Hook::OrderSelect, Hook::OrderSign] {
        let Ok(request) = CdsRequest::parse(data) else { return };
        let Ok(valid) = request.validate(hook) else { continue };
        let documents: Vec<Document<'_>> = valid
            .raw
            .prefetch
            .iter()
            .flatten()
            .map(|(k, v)| Document { origin: k.as_str(), json: v.get() })
            .collect();
        let draft = valid.draft_orders().map(|json| Document { origin: "draftOrders", json });
        let mapped = map_documents(&documents, draft, valid.selections(), now, &terminology);
        let a = assess(&mapped.facts, &mapped.orders, now, &policy);
        let draft_json = valid.draft_orders().and_then(|j| serde_json::from_str(j).ok());
        let input = CardInput {
            hook,
            patient_id: &valid.patient_id,
            assessment: &a,
            orders: &mapped.orders,
            data_issues: &[],
            draft_orders: draft_json.as_ref(),
        };
        let out = cards(&input);
        let _ = serde_json::to_string(&out);
    }
});
