//! The one integration-test binary (STYLE.md "Tests").

mod fixtures;
