//! crs-cds: an HL7 CDS Hooks service that grades cytokine release syndrome (CRS) and
//! immune effector cell-associated neurotoxicity syndrome (ICANS) after CAR-T therapy,
//! following the ASTCT 2019 consensus.
//!
//! Layers, from the inside out (see ARCHITECTURE.md):
//! - [`domain`]: the pure grading engine (std only, no IO, no clock, no serde).
//! - [`adapter`]: FHIR R4 JSON to domain facts (fhirbolt), with issues beside the facts.
//! - [`protocol`]: CDS Hooks JSON shapes and domain → card mapping.
//! - [`http`]: the actix-web service (routes, FHIR client, feedback store, metrics).
//! - [`auth`]: CDS client JWT verification (CDS Hooks "Trusting CDS Clients").
//! - [`cli`], [`config`], [`telemetry`]: the binary's glue.
//! - [`demo`]: synthetic FHIR data for `serve --demo` (never mounted otherwise).

pub mod adapter;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod outbound;
pub mod protocol;
pub mod render;
pub mod telemetry;
