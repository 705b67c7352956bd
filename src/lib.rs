//! streampump: a tiny relay from phones pushing JPEG frames to MJPEG viewers.
//!
//! A phone POSTs each frame to `/pump_push/{device_id}`; the relay keeps only the newest frame
//! of each device and streams it to any number of viewers at `/live.mjpeg?device_id=`. See the
//! README for the API and DESIGN notes in each module for the reasons behind the choices.

pub mod absurd_bodies;
pub mod accept_supervisor;
pub mod access;
pub mod assets;
pub mod config;
pub mod connection_watch;
pub mod cors;
pub mod credentials;
pub mod decimal;
pub mod descriptor_limit;
pub mod device;
pub mod device_id;
pub mod dispatch_stalls;
pub mod hand_off;
pub mod handler_pool;
pub mod handler_slots;
pub mod heap;
pub mod jpeg;
pub mod jpeg_splitter;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod mjpeg;
pub mod oversize_alloc;
pub mod own_sockets;
pub mod pages;
pub mod pool_nudge;
pub mod push;
pub mod push_stream;
pub mod quoted;
pub mod rate_meter;
pub mod registry;
pub mod request_headers;
pub mod request_target;
pub mod responses;
pub mod routes;
pub mod server;
pub mod status;
pub mod stream;
pub mod upload_budget;
