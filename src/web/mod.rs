//! What each URL does: routing (`routes`, a pure function), the service the connection layer
//! calls (`app`), and the documents it answers with: the pages (`pages`), device status as JSON
//! (`status`), Prometheus metrics (`metrics`), the HTTPS set-up answers (`https`), and the small
//! answers (`responses`).
//!
//! The only layer that knows both sides: it may use `http`, `relay`, `access`, `refusal`,
//! `text`, `config` and `https` (what the TLS port publishes).
pub mod app;
pub mod https;
pub mod metrics;
pub mod pages;
pub mod phone_links;
pub mod responses;
pub mod routes;
pub mod status;
