//! The one integration-test binary (STYLE.md "Tests"): every suite is a module.

mod auth;
mod examples;
mod fixtures;
mod manifests;
mod properties;
mod tidy;
