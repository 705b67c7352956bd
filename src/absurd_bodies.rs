//! Requests that declare an absurd body, held open instead of dropped.
//!
//! When a request with an unread body is dropped, tiny_http 0.12 discards the rest by
//! allocating a zeroed buffer of the whole remaining declared length at once
//! (`EqualReader::drop`). `oversize_alloc` makes that cheap (address space, not memory) up to
//! what the address space can hold, but a declared length beyond it (`Content-Length:
//! 1000000000000000` on a 64-bit Pi, a few gigabytes on a 32-bit router) cannot be mapped, and
//! a failed allocation aborts the process. Reading the body does not help either: tiny_http
//! runs the same discard when the client hangs up mid-body.
//!
//! So a request declaring more than [`DISCARD_LIMIT`] is never dropped: it is answered 413 and
//! its body reader is kept, unread, for the life of the process. That pins one tiny_http
//! thread and two descriptors per such request, so at most [`MAX_HELD`] are kept; one more
//! makes the relay log why and exit non-zero, for procd or systemd to start a clean one, rather
//! than abort with nothing in the log.

use parking_lot::Mutex;
use tiny_http::{ReadWrite, Request};

use crate::responses;

/// Largest declared body that may be dropped (and so discarded by tiny_http). Far above any
/// frame (`--max-frame-bytes` is at most 64 MiB), far below what the address space can map.
#[cfg(target_pointer_width = "64")]
pub const DISCARD_LIMIT: usize = 1 << 40;
#[cfg(not(target_pointer_width = "64"))]
pub const DISCARD_LIMIT: usize = 256 << 20;

/// Most absurd requests held before the relay restarts itself.
pub const MAX_HELD: usize = 64;

static HELD: Mutex<Vec<Box<dyn ReadWrite + Send>>> = Mutex::new(Vec::new());

/// Whether dropping this request would make tiny_http try to allocate its declared body.
pub fn is_absurd(request: &Request) -> bool {
    request
        .body_length()
        .is_some_and(|length| length > DISCARD_LIMIT)
}

/// Answers 413 and keeps the request's unread body for good (see the module docs).
pub fn refuse_and_hold(request: Request) {
    let declared = request.body_length().unwrap_or_default();
    let peer = request.remote_addr().copied();
    let answer = responses::reason(
        413,
        &format!("a body of {declared} bytes is not accepted; frames are a few megabytes at most"),
    );
    // `upgrade` is the one way to answer without dropping the body reader. It adds
    // `Upgrade: none` and `Connection: upgrade` and sends no length, so the client reads the
    // reason until it gives up on the connection: fine for a client that announced a petabyte.
    let connection = request.upgrade("none", answer);
    let mut held = HELD.lock();
    held.push(connection);
    log::warn!(
        "holding a connection from {} that declared a {declared}-byte body ({} held)",
        peer.map_or_else(|| "a client".to_string(), |peer| peer.to_string()),
        held.len()
    );
    if held.len() > MAX_HELD {
        log::error!(
            "{MAX_HELD} connections declared absurd bodies, which tiny_http cannot discard \
             without allocating them; exiting so the service manager starts a clean relay"
        );
        std::process::exit(1);
    }
}
