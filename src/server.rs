//! Wiring: the listener, tiny_http under its supervisor, the dispatch step, the connection
//! watch and the housekeeping thread.
//!
//! Dispatch only routes: it takes each request from tiny_http, decides what it is (a pure
//! function), registers it with the connection watch, takes a handler slot and hands the
//! request to a handler thread (an idle one from `handler_pool`, or a new named thread with a
//! small stack). It never answers a request itself, because tiny_http serialises responses per
//! connection and a request pipelined behind a stream would block it.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tiny_http::{Header, Request};

use crate::absurd_bodies;
use crate::accept_supervisor::{self, Stopped};
use crate::access::{Denied, Need};
use crate::config::Config;
use crate::connection_watch::{Connections, InProgress, Limits, Work};
use crate::credentials::Presented;
use crate::decimal;
use crate::descriptor_limit;
use crate::dispatch_stalls::DispatchStalls;
use crate::handler_pool::HandlerPool;
use crate::handler_slots::{Admission, HandlerSlots};
use crate::heap;
use crate::listener;
use crate::metrics::{self, Counters, Gauges, Rejection};
use crate::pages;
use crate::push;
use crate::registry::Registry;
use crate::request_headers;
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
/// Free heap pages are returned every this many housekeeping rounds (see `heap`).
const HEAP_TRIM_ROUNDS: u32 = 10;
/// When no handler thread can be started, how long dispatch waits for one to come free.
const HANDLER_PATIENCE: Duration = Duration::from_secs(5);

/// Why the relay stopped.
#[derive(Debug)]
pub enum RunError {
    Bind(SocketAddr, io::Error),
    /// tiny_http's accept loop could not be kept alive (see `accept_supervisor`). The process
    /// exits non-zero so that procd or systemd starts a fresh one.
    AcceptLoopDied(Stopped),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Bind(address, error) => write!(f, "cannot listen on {address}: {error}"),
            RunError::AcceptLoopDied(Stopped::CannotRebuild(error)) => write!(
                f,
                "the HTTP server stopped accepting connections and cannot be restarted \
                 ({error}); exiting so that the service manager restarts the relay"
            ),
            RunError::AcceptLoopDied(Stopped::KeepsDying) => write!(
                f,
                "more than {} HTTP servers in a row stopped accepting connections soon after \
                 starting; exiting so that the service manager restarts the relay",
                accept_supervisor::MAX_QUICK_DEATHS
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
    counters: Counters,
    /// For closing the connections of a deleted device.
    connections: Arc<Connections>,
}

/// What dispatch needs, shared by the dispatch threads of every server generation.
struct Dispatcher {
    shared: Arc<Shared>,
    stalls: Arc<DispatchStalls>,
    slots: Arc<HandlerSlots>,
    pool: HandlerPool,
    connections: Arc<Connections>,
}

/// Serves until the accept loop cannot be kept alive.
pub fn run(config: Config) -> Result<(), RunError> {
    let max_idle = idle_connections_allowed(&config);
    let listener = listener::bind(config.listen, config.write_timeout)
        .map_err(|error| RunError::Bind(config.listen, error))?;
    let local = listener
        .local_addr()
        .map_err(|error| RunError::Bind(config.listen, error))?;
    log::info!(
        "listening on {local} (max {} devices, {} viewers each, {} connections, frames up to {} bytes)",
        config.max_devices,
        config.max_viewers,
        config.max_connections,
        config.max_frame_bytes
    );
    let stalls = Arc::new(DispatchStalls::default());
    let connections = Connections::new(
        Limits {
            request_timeout: config.request_timeout,
            max_idle,
        },
        Arc::clone(&stalls),
    );
    connections.start_watch(local, THREAD_STACK_BYTES);
    let dispatcher = Dispatcher {
        slots: Arc::new(HandlerSlots::new(config.max_connections.get())),
        pool: HandlerPool::new(THREAD_STACK_BYTES, Arc::clone(&stalls)),
        stalls: Arc::clone(&stalls),
        connections: Arc::clone(&connections),
        shared: Arc::new(Shared {
            registry: Registry::new(&config),
            uploads: UploadBudget::new(config.max_upload_bytes),
            counters: Counters::default(),
            connections: Arc::clone(&connections),
            config,
        }),
    };
    start_housekeeping(Arc::clone(&dispatcher.shared));
    // By then every connection of a dead server has been closed or has sent its requests.
    let retire_after = config_retire_after(&dispatcher.shared.config);
    let handle = Arc::new(move |request: Request| dispatcher.dispatch(request));
    accept_supervisor::serve(listener, THREAD_STACK_BYTES, retire_after, stalls, handle)
        .map_err(RunError::AcceptLoopDied)
}

/// Raises the descriptor limit, says so if the caps could still run the process out, and
/// returns how many idle connections to allow: `--max-connections`, or fewer when the limit
/// cannot hold that many (each costs two descriptors), so that idle connections alone never
/// exhaust it.
fn idle_connections_allowed(config: &Config) -> usize {
    let max_connections = config.max_connections.get();
    let needed = descriptor_limit::needed_for(max_connections);
    match descriptor_limit::raise() {
        Ok(limit) if limit < needed => {
            let idle = descriptor_limit::idle_connections_within(limit).min(max_connections);
            log::warn!(
                "the file descriptor limit ({limit}) is below the {needed} that \
                 --max-connections {max_connections} may need; keeping at most {idle} idle \
                 connections. Raise it (ulimit -n, LimitNOFILE=) or lower --max-connections"
            );
            idle
        }
        Ok(_) => max_connections,
        Err(error) => {
            log::warn!("cannot read the file descriptor limit: {error}");
            max_connections
        }
    }
}

/// How long the dispatch thread of a dead server waits for requests from its old connections.
fn config_retire_after(config: &Config) -> Duration {
    config.request_timeout + config.push_timeout + Duration::from_secs(60)
}

fn start_housekeeping(shared: Arc<Shared>) {
    let started = thread::Builder::new()
        .name("sp-housekeeping".into())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            let mut round: u32 = 0;
            loop {
                round = round.wrapping_add(1);
                thread::sleep(HOUSEKEEPING_PERIOD);
                shared.registry.sweep();
                if round % HEAP_TRIM_ROUNDS == 0 {
                    heap::give_back();
                }
            }
        });
    if let Err(error) = started {
        // Without it devices are never shown offline nor forgotten, but streams still work.
        log::error!("cannot start the housekeeping thread: {error}");
    }
}

impl Dispatcher {
    fn dispatch(&self, request: Request) {
        let route = routes::route(request.method().as_str(), request.url());
        // Credentials are checked here, once, because whether a stream will run decides how
        // its connection is watched: a client answering a 401 with its login on the same
        // connection must not look pipelined behind a stream.
        let denied = route
            .as_ref()
            .ok()
            .and_then(|route| admit(&request, route.need(), &self.shared).err());
        // Any body must arrive within --push-timeout, whatever the route: tiny_http reads an
        // unread body to its end after the answer (a 404 or 503 too), so a trickled body would
        // otherwise hold the handler however the request is answered.
        let work = if has_body(&request) {
            Work::Upload {
                deadline: Instant::now() + self.shared.config.push_timeout,
            }
        } else if matches!(
            route,
            Ok(Route::Stream {
                head_only: false,
                ..
            })
        ) && denied.is_none()
        {
            Work::Stream
        } else {
            Work::Other
        };
        let begun = self.connections.begin(request.remote_addr().copied(), work);
        if begun.behind_stream {
            // tiny_http would hold this request until the endless stream ends; the connection
            // watch closes the connection instead, which ends both.
            log::warn!(
                "{} sent {} while its stream is open on the same connection; closing it",
                peer_name(&request),
                request.url()
            );
        }
        let in_progress = begun.in_progress;
        let slot = self.slots.acquire(&self.stalls);
        let shared = Arc::clone(&self.shared);
        let limit = self.slots.limit();
        // Read now, on the dispatch thread, for `/metrics` only.
        let gauges = if matches!(route, Ok(Route::Metrics)) {
            Gauges {
                connections: self.connections.count(),
                requests_in_progress: self.slots.serving(),
            }
        } else {
            Gauges::default()
        };
        let job = Box::new(move || {
            // The slot and the registration are held until this handler returns (or unwinds).
            let mut in_progress = in_progress;
            let slot = slot;
            // Before anything answers (and so drops) the request: see `absurd_bodies`.
            if absurd_bodies::is_absurd(&request) {
                shared.counters.reject(Rejection::TooLarge);
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
                shared.counters.reject(Rejection::ConnectionLimit);
                let _ = request.respond(responses::unavailable(&message));
                return;
            }
            handle(
                request,
                route,
                denied,
                &shared,
                gauges,
                in_progress.as_mut(),
            );
        });
        if let Err((error, job)) = self.pool.run(job, HANDLER_PATIENCE) {
            // Dropping the job answers its request with tiny_http's 500.
            log::error!("cannot start a handler thread and none came free: {error}");
            self.shared.counters.reject(Rejection::Other);
            drop(job);
        }
    }
}

/// Whether the request carries a body: a declared length above zero, or a transfer coding
/// (chunked).
fn has_body(request: &Request) -> bool {
    request.body_length().is_some_and(|length| length > 0)
        || request_headers::value(request, "Transfer-Encoding").is_some()
}

/// Answers one request; `denied` is the 401 or 403 from `admit`, if the credentials failed.
fn handle(
    request: Request,
    route: Result<Route, routes::Refusal>,
    denied: Option<responses::TextResponse>,
    shared: &Shared,
    gauges: Gauges,
    in_progress: Option<&mut InProgress>,
) {
    let registry = &shared.registry;
    let counters = &shared.counters;
    let cors = cors_headers(&request, &route, shared);
    if let Some(response) = denied {
        log::info!(
            "refused {} {} from {}: {}",
            request.method(),
            request.url(),
            peer_name(&request),
            response.status_code().0
        );
        counters.reject(Rejection::Unauthorized);
        let _ = request.respond(responses::with_headers(response, &cors));
        return;
    }
    let respond = |request: Request, response: responses::TextResponse| {
        request.respond(responses::with_headers(response, &cors))
    };
    // Every refusal is counted before its answer goes out, so a client reading `/metrics`
    // after its answer already sees it.
    let answer = match route {
        Err(refusal) => {
            log::debug!(
                "refused {} {}: {} {}",
                request.method(),
                request.url(),
                refusal.status,
                refusal.reason
            );
            counters.reject(Rejection::for_status(refusal.status));
            respond(request, responses::refusal(&refusal))
        }
        Ok(Route::Push(device)) => {
            push::serve(
                request,
                registry,
                counters,
                &shared.uploads,
                &device,
                &shared.config,
                in_progress,
                &cors,
            );
            Ok(())
        }
        Ok(Route::Stream {
            device,
            options,
            head_only,
        }) => {
            stream::serve(
                request, registry, counters, &device, options, head_only, &cors,
            );
            Ok(())
        }
        Ok(Route::Snapshot(device)) => match registry.latest(&device) {
            Some(frame) => {
                let age = decimal::whole_millis(frame.received_at.elapsed());
                let response = responses::jpeg(&frame.part, age);
                request.respond(responses::with_headers(response, &cors))
            }
            None => {
                counters.reject(Rejection::NotFound);
                respond(
                    request,
                    responses::reason(404, &format!("device {device} has no frame yet")),
                )
            }
        },
        Ok(Route::Devices) => {
            let json = status::devices_json(&registry.statuses());
            let mut response = responses::json(json);
            // The dashboard writes this user name into the snippets it offers (see `access`);
            // only a viewer who passed the check gets here.
            let access = &shared.config.access;
            if let Some((user, _)) = &access.view_login {
                response.add_header(responses::header("X-View-User", user));
            }
            if access.push_is_protected() {
                response.add_header(responses::header("X-Push-Auth", "token"));
            }
            respond(request, response)
        }
        Ok(Route::Metrics) => {
            let text = metrics::render(&registry.statuses(), counters, gauges);
            respond(request, responses::metrics(text))
        }
        Ok(Route::Forget(device)) => match registry.forget(&device) {
            Some(peers) => {
                shared.connections.close(&peers);
                let message = format!("forgot {device}; closing its {} connections", peers.len());
                respond(request, responses::reason(200, &message))
            }
            None => {
                counters.reject(Rejection::NotFound);
                respond(
                    request,
                    responses::reason(404, &format!("no device {device}")),
                )
            }
        },
        Ok(Route::Health) => respond(request, responses::text(200, "ok")),
        Ok(Route::Index) => {
            if request_headers::value(&request, "Accept").is_some_and(pages::prefers_html) {
                pages::serve(request, &pages::DASHBOARD, counters)
            } else {
                respond(request, pages::text_index(&status::index_text()))
            }
        }
        Ok(Route::PushPage) => pages::serve(request, &pages::PUSH, counters),
        Ok(Route::Options { allow }) => respond(request, responses::options(allow)),
    };
    if let Err(error) = answer {
        log::debug!("answer not delivered: {error}");
    }
}

/// Lets a request through, or gives the 401 or 403 to answer it with (see `access`). With no
/// credentials configured, nothing is parsed: an open relay pays nothing for the check.
fn admit(request: &Request, need: Need, shared: &Shared) -> Result<(), responses::TextResponse> {
    let policy = &shared.config.access;
    if need == Need::Nothing || policy.is_open() {
        return Ok(());
    }
    match policy.check(need, &Presented::from_request(request)) {
        Ok(()) => Ok(()),
        Err(Denied::Unauthenticated { challenge }) => Err(responses::unauthorized(challenge)),
        Err(Denied::AdminDisabled) => Err(responses::reason(
            403,
            "deleting devices needs --admin-token, which is not set",
        )),
    }
}

/// CORS headers for this request's answer: none unless `--allow-origin` lets its `Origin` in.
/// A preflight (`OPTIONS` with `Access-Control-Request-Method`) gets the path's methods too.
fn cors_headers(
    request: &Request,
    route: &Result<Route, routes::Refusal>,
    shared: &Shared,
) -> Vec<Header> {
    let preflight_methods = match route {
        Ok(Route::Options { allow })
            if request_headers::value(request, "Access-Control-Request-Method").is_some() =>
        {
            Some(*allow)
        }
        _ => None,
    };
    shared
        .config
        .allowed_origins
        .headers(request_headers::value(request, "Origin"), preflight_methods)
}

fn peer_name(request: &Request) -> String {
    request
        .remote_addr()
        .map_or_else(|| "a client".to_string(), |peer| peer.to_string())
}
