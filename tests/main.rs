//! The one integration-test binary (STYLE.md "Tests"): every suite is a module.

mod auth;
mod browser;
mod cli;
mod course;
mod demo;
mod discovery;
mod examples;
mod feedback;
mod fhir_r4;
mod fixture_cards;
mod fixtures;
mod hardening;
mod helpers;
mod hostile;
mod integrator;
mod logging;
mod manifests;
mod properties;
mod realworld;
mod service;
mod smart;
mod suggestions;
mod tidy;
