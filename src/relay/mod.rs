//! The relay itself: devices and their latest frame, the MJPEG wire format, pushes in and
//! streams out.
//!
//! A push is read into a frame laid out as the multipart part every viewer will send
//! (`mjpeg::Part`), published to its device (`device`, found or made in `registry`), and every
//! viewer of the device is woken to send it from the same shared buffer (`stream`). JPEG
//! structure is checked in `jpeg` and `splitter` (frames found in a streamed body). Every frame
//! and every body being received is charged to one memory budget (`memory`), and the registry
//! decides whose frame goes when room must be made.
//!
//! This layer knows nothing of sockets or HTTP: bodies come in as `push::Upload` (anything
//! that reads), streams go out to anything that writes, connections to end are `HangUp`
//! handles, and refusals are `refusal::Refusal`s. It may use `std`, `parking_lot`, `log`,
//! `refusal`, `text` and `config`.
pub mod assets;
pub mod device;
pub mod device_id;
pub mod events;
pub mod health;
pub mod jpeg;
pub mod memory;
pub mod mjpeg;
pub mod push;
pub mod push_stream;
pub mod rate_meter;
pub mod registry;
pub mod settings;
pub mod settings_store;
pub mod splitter;
pub mod stream;
