//! The one integration-test binary.

mod cli;
mod discovery;
mod feedback;
mod helpers;
mod logging;
mod service;
