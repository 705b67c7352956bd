//! The web layer.
pub mod app;
pub mod metrics;
pub mod pages;
pub mod responses;
pub mod routes;
pub mod status;
