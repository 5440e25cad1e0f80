//! The commerce HTTP API: a thin actix-web layer over the domain crates.
//! `main.rs` is the `commerce-api` binary; tests use [`startup::Application`].

pub mod auth;
pub mod config;
pub mod docs;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod jobs;
pub mod metrics;
pub mod middleware;
pub mod relay;
pub mod routes;
pub mod seed;
pub mod sink;
pub mod startup;
pub mod state;
pub mod telemetry;
