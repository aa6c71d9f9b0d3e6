//! The one integration-test binary (STYLE.md): every suite is a module.

mod examples;
mod properties;
mod tidy;
