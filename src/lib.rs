//! streampump: a tiny relay from phones pushing JPEG frames to MJPEG viewers.
//!
//! A phone POSTs each frame to `/pump_push/{device_id}`; the relay keeps only the newest frame
//! of each device and streams it to any number of viewers at `/live.mjpeg?device_id=`.
//!
//! The folders are the layers, and the arrows point one way: `web` (what each URL does) uses
//! `relay` (devices, frames, the MJPEG wire format), `access` (credentials, CORS) and `http`
//! (connections, requests, answers); `relay` and `http` know nothing of each other. All of
//! them speak of refusals in one vocabulary (`refusal`). `server` wires the layers together,
//! `config` holds the validated settings (`machine` the memory they are sized for), `state` the
//! few files that outlive a restart, `sys` every system call std has no wrapper for. `tls`
//! (with the `tls` feature) puts HTTPS under the connection layer on a port of its own;
//! `https` is what the pages and metrics know of it in every build.

pub mod access;
pub mod announce;
pub mod config;
pub mod host_addresses;
pub mod http;
pub mod https;
pub mod logging;
pub mod machine;
pub mod on_event;
pub mod qr;
pub mod refusal;
pub mod relay;
pub mod server;
pub mod state;
pub mod sys;
pub mod text;
#[cfg(feature = "tls")]
pub mod tls;
pub mod web;
