//! Wiring: the listener, tiny_http, the dispatch loop and the housekeeping thread.
//!
//! The dispatch loop only routes: it takes each request from tiny_http, decides what it is (a
//! pure function), takes a handler slot and hands the request to a handler thread (an idle one
//! from `handler_pool`, or a new named thread with a small stack). It never answers or drops a
//! request itself, because tiny_http serialises responses per connection and a request
//! pipelined behind a stream would block it.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tiny_http::Request;

use crate::absurd_bodies;
use crate::config::Config;
use crate::handler_pool::HandlerPool;
use crate::handler_slots::{Admission, HandlerSlots};
use crate::listener;
use crate::pool_nudge;
use crate::push;
use crate::registry::Registry;
use crate::responses;
use crate::routes::{self, Route};
use crate::status;
use crate::stream;
use crate::upload_budget::UploadBudget;

/// Stack for every thread the relay starts (and, through `RUST_MIN_STACK`, tiny_http's).
/// Handlers touch a few kilobytes of it; 128 KiB leaves a wide margin and costs a sixteenth of
/// the 2 MiB default in address space, which matters with two threads per open stream on a
/// 32-bit router.
pub const THREAD_STACK_BYTES: usize = 128 * 1024;

/// How often devices are checked for going offline and for eviction.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(1);

/// Why the relay stopped.
#[derive(Debug)]
pub enum RunError {
    Bind(SocketAddr, io::Error),
    Start(String),
    /// tiny_http's accept loop ended (for example out of file descriptors). The process exits
    /// non-zero so that procd or systemd starts a fresh one.
    AcceptLoopDied(io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Bind(address, error) => write!(f, "cannot listen on {address}: {error}"),
            RunError::Start(error) => write!(f, "cannot start the HTTP server: {error}"),
            RunError::AcceptLoopDied(error) => write!(
                f,
                "the HTTP server stopped accepting connections ({error}); exiting so the \
                 service manager restarts the relay"
            ),
        }
    }
}

impl std::error::Error for RunError {}

/// State shared by every handler.
struct Shared {
    config: Config,
    registry: Registry,
    uploads: UploadBudget,
}

/// Serves until the accept loop dies.
pub fn run(config: Config) -> Result<(), RunError> {
    let listener = listener::bind(config.listen, config.write_timeout)
        .map_err(|error| RunError::Bind(config.listen, error))?;
    let local = listener
        .local_addr()
        .map_err(|error| RunError::Bind(config.listen, error))?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|error| RunError::Start(error.to_string()))?;
    log::info!(
        "listening on {local} (max {} devices, {} viewers each, {} connections, frames up to {} bytes)",
        config.max_devices,
        config.max_viewers,
        config.max_connections,
        config.max_frame_bytes
    );
    let slots = Arc::new(HandlerSlots::new(config.max_connections.get()));
    let pool = HandlerPool::new(THREAD_STACK_BYTES);
    let shared = Arc::new(Shared {
        registry: Registry::new(&config),
        uploads: UploadBudget::new(config.max_upload_bytes),
        config,
    });
    start_housekeeping(Arc::clone(&shared));
    pool_nudge::start(local, THREAD_STACK_BYTES);
    loop {
        let request = server.recv().map_err(RunError::AcceptLoopDied)?;
        dispatch(request, &shared, &slots, &pool);
    }
}

fn start_housekeeping(shared: Arc<Shared>) {
    let started = thread::Builder::new()
        .name("sp-housekeeping".into())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || loop {
            thread::sleep(HOUSEKEEPING_PERIOD);
            shared.registry.sweep();
        });
    if let Err(error) = started {
        // Without it devices are never shown offline nor forgotten, but streams still work.
        log::error!("cannot start the housekeeping thread: {error}");
    }
}

fn dispatch(request: Request, shared: &Arc<Shared>, slots: &Arc<HandlerSlots>, pool: &HandlerPool) {
    let route = routes::route(request.method().as_str(), request.url());
    let slot = slots.acquire();
    let shared = Arc::clone(shared);
    let limit = slots.limit();
    let started = pool.run(Box::new(move || {
        // The slot is held until this handler returns (or unwinds).
        let slot = slot;
        // Before anything answers (and so drops) the request: see `absurd_bodies`.
        if absurd_bodies::is_absurd(&request) {
            absurd_bodies::refuse_and_hold(request);
            return;
        }
        if slot.admission == Admission::Refuse {
            log::warn!(
                "connection limit reached ({limit}); refusing {}",
                request.url()
            );
            let message = format!(
                "server busy: {limit} requests in progress (--max-connections); try again later"
            );
            let _ = request.respond(responses::unavailable(&message));
            return;
        }
        handle(request, route, &shared);
    }));
    if let Err(error) = started {
        // The request went down with the job; tiny_http answers it with a 500.
        log::error!("cannot start a handler thread: {error}");
    }
}

fn handle(request: Request, route: Result<Route, routes::Refusal>, shared: &Shared) {
    let registry = &shared.registry;
    let answer = match route {
        Err(refusal) => {
            log::debug!(
                "refused {} {}: {} {}",
                request.method(),
                request.url(),
                refusal.status,
                refusal.reason
            );
            request.respond(responses::refusal(&refusal))
        }
        Ok(Route::Push(device)) => {
            push::serve(
                request,
                registry,
                &shared.uploads,
                &device,
                shared.config.max_frame_bytes,
            );
            Ok(())
        }
        Ok(Route::Stream {
            device,
            options,
            head_only,
        }) => {
            stream::serve(request, registry, &device, options, head_only);
            Ok(())
        }
        Ok(Route::Snapshot(device)) => match registry.latest(&device) {
            Some(frame) => {
                let age = frame.received_at.elapsed().as_millis();
                request.respond(responses::jpeg(&frame.part, age))
            }
            None => request.respond(responses::reason(
                404,
                &format!("device {device} has no frame yet"),
            )),
        },
        Ok(Route::Devices) => {
            let json = status::devices_json(&registry.statuses());
            request.respond(responses::json(json))
        }
        Ok(Route::Health) => request.respond(responses::text(200, "ok")),
        Ok(Route::Index) => request.respond(responses::text(200, &status::index_text())),
        Ok(Route::Options { allow }) => request.respond(responses::options(allow)),
    };
    if let Err(error) = answer {
        log::debug!("answer not delivered: {error}");
    }
}
