//! The HTTP/1.1 layer: the relay's own, so that no request can freeze, abort or restart it.
//!
//! It accepts connections (`accept`), serves each on a thread of its own (`connection`),
//! parses request heads with `httparse` into one fixed buffer per connection (`head`,
//! `input`), frames and reads bodies under deadlines (`body`), and writes answers whose
//! headers cannot be forged by a request (`response`). Above it, a [`connection::Service`]
//! turns each request into an answer.
//!
//! It knows nothing of cameras: it may use `std`, `httparse`, `log`, the system calls in
//! `sys` and the refusal vocabulary in `refusal`, nothing else of the relay.

pub mod accept;
pub mod body;
pub mod connection;
pub mod date;
pub mod head;
pub mod input;
pub mod response;
pub mod script;
pub mod socket;
pub mod target;

pub use connection::{Reply, Request, Service};
pub use response::{Headers, Payload, Response, SharedBytes};
