//! The one integration-test binary (STYLE.md): every suite is a module.

mod auth;
mod examples;
mod manifests;
mod properties;
mod tidy;
