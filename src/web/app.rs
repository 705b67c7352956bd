//! What each request gets: the relay's [`Service`] for the connection layer.
//!
//! One request goes through the same steps whatever it asks for: route it (a pure function),
//! work out its CORS headers, check its credentials, then hand it to the endpoint. Every
//! refusal is counted before its answer goes out, so a client reading `/metrics` right after
//! its answer already sees it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::access::credentials::Presented;
use crate::access::Need;
use crate::config::Config;
use crate::http::body::{Body, Framing};
use crate::http::connection::Load;
use crate::http::head::Version;
use crate::http::input::Wire;
use crate::http::{Headers, Reply, Request, Response, Service};
use crate::https::Https;
use crate::refusal::{Reason, Refusal};
use crate::relay::device::{HangUp, Peer};
use crate::relay::device_id::DeviceId;
use crate::relay::push::{self, Limits, Upload};
use crate::relay::registry::Registry;
use crate::relay::stream::{self, ViewerOptions};
use crate::relay::upload_budget::UploadBudget;
use crate::relay::{mjpeg, push_stream};
use crate::text::decimal;
use crate::web::https;
use crate::web::metrics::{self, Counters, Gauges};
use crate::web::pages;
use crate::web::responses;
use crate::web::routes::{self, Route};
use crate::web::status;

/// The connection limit is logged at most this often while clients keep hitting it.
const LIMIT_LOG_PERIOD: Duration = Duration::from_secs(10);

/// Everything the endpoints share.
pub struct App {
    pub config: Config,
    pub registry: Registry,
    pub uploads: UploadBudget,
    pub counters: Counters,
    pub load: Arc<Load>,
    /// The HTTPS port, when there is one (set before the app is shared). Not in a build
    /// without TLS, so that none of what serves it is in that binary either.
    #[cfg(feature = "tls")]
    pub https: Option<Https>,
    /// When the connection limit was last logged: once every [`LIMIT_LOG_PERIOD`] is enough.
    limit_logged: Mutex<Option<Instant>>,
}

impl App {
    pub fn new(config: Config, load: Arc<Load>) -> App {
        App {
            registry: Registry::new(&config),
            uploads: UploadBudget::new(config.max_upload_bytes),
            counters: Counters::default(),
            load,
            #[cfg(feature = "tls")]
            https: None,
            limit_logged: Mutex::new(None),
            config,
        }
    }

    /// The HTTPS port as the pages see it; always `None` in a build without TLS.
    fn https(&self) -> Option<&Https> {
        #[cfg(feature = "tls")]
        return self.https.as_ref();
        #[cfg(not(feature = "tls"))]
        None
    }

    fn refuse(&self, refusal: &Refusal, cors: &Headers) -> Reply {
        self.counters.reject(refusal.reason);
        let mut response = Response::refusal(refusal);
        response.add_headers(cors);
        Reply::Answer(response)
    }

    /// Lets a request through, or gives the 401 or 403 to answer it with (see `access`). With
    /// no credentials configured, nothing is parsed: an open relay pays nothing for the check.
    fn admit(&self, request: &Request<'_>, need: Need) -> Result<(), Refusal> {
        let policy = &self.config.access;
        if need == Need::Nothing || policy.is_open() {
            return Ok(());
        }
        policy.check(need, &Presented::from_head(request.head()))
    }

    /// CORS headers for this request's answer: none unless `--allow-origin` lets its `Origin`
    /// in. A preflight (`OPTIONS` with `Access-Control-Request-Method`) gets the path's
    /// methods too.
    fn cors(&self, request: &Request<'_>, route: &Result<Route, Refusal>) -> Headers {
        let preflight_methods = match route {
            Ok(Route::Options { allow })
                if request.header("Access-Control-Request-Method").is_some() =>
            {
                Some(*allow)
            }
            _ => None,
        };
        self.config
            .allowed_origins
            .headers(request.header("Origin"), preflight_methods)
    }

    /// A page, or the 406 (with its `Vary`) for a client that does not take gzip.
    fn page(&self, request: &Request<'_>, page: &pages::Page) -> Result<Response, Reply> {
        pages::serve(request.header("Accept-Encoding"), page).map_err(|(refusal, vary)| {
            self.counters.reject(refusal.reason);
            Reply::Answer(Response::refusal(&refusal).with_header("Vary", vary))
        })
    }

    fn push(&self, request: &mut Request<'_>, device: &DeviceId) -> Result<(), Refusal> {
        let limits = Limits {
            uploads: &self.uploads,
            max_frame_bytes: self.config.max_frame_bytes,
        };
        let chunked = request.body().framing() == Framing::Chunked;
        let is_stream = push_stream::is_stream(request.header("Content-Type"), chunked);
        let peer = Peer::new(request.peer(), hang_up(request.wire()));
        let addr = request.peer();
        let mut upload = Pushed {
            body: request.body(),
            timeout: self.config.push_timeout,
        };
        if is_stream {
            push_stream::receive(&mut upload, &self.registry, device, &limits, peer)
        } else {
            push::receive(&mut upload, &self.registry, device, &limits, Some(addr))
        }
    }

    fn stream(
        &self,
        request: &Request<'_>,
        device: &DeviceId,
        options: ViewerOptions,
        head_only: bool,
        cors: &Headers,
    ) -> Reply {
        let http_10 = request.version() == Version::Http10;
        if head_only {
            let head = mjpeg::response_head(http_10, true, cors.as_str());
            if let Err(error) = request.writer().write_all(head.as_bytes()) {
                log::debug!("{device}: HEAD answer not delivered: {error}");
            }
            return Reply::Streamed;
        }
        let peer = Peer::new(request.peer(), hang_up(request.wire()));
        let viewer = match self.registry.watch(device, peer) {
            Ok(viewer) => viewer,
            Err(refusal) => {
                log::warn!("{device}: viewer refused: {}", refusal.message);
                return self.refuse(&refusal, cors);
            }
        };
        let head = mjpeg::response_head(http_10, false, cors.as_str());
        stream::run(viewer, request.writer(), &head, options);
        Reply::Streamed
    }
}

impl Service for App {
    fn serve(&self, request: &mut Request<'_>) -> Reply {
        let route = routes::route(request.method(), request.target());
        let cors = self.cors(request, &route);
        let route = match route {
            Ok(route) => route,
            Err(refusal) => {
                log::debug!(
                    "refused {} {}: {refusal}",
                    request.method(),
                    request.target()
                );
                return self.refuse(&refusal, &cors);
            }
        };
        if let Err(refusal) = self.admit(request, route.need()) {
            log::info!(
                "refused {} {} from {}: {}",
                request.method(),
                request.target(),
                request.peer(),
                refusal.status()
            );
            return self.refuse(&refusal, &cors);
        }
        let answer = match route {
            Route::Push(device) => match self.push(request, &device) {
                Ok(()) => Response::text(200, "OK"),
                Err(refusal) => {
                    log::debug!("{device}: push refused: {refusal}");
                    return self.refuse(&refusal, &cors);
                }
            },
            Route::Stream {
                device,
                options,
                head_only,
            } => return self.stream(request, &device, options, head_only, &cors),
            Route::Snapshot(device) => match self.registry.latest(&device) {
                Some(frame) => responses::jpeg(
                    &frame.part,
                    decimal::whole_millis(frame.received_at.elapsed()),
                ),
                None => {
                    let refusal = Refusal::new(
                        Reason::NotFound,
                        format!("device {device} has no frame yet"),
                    );
                    return self.refuse(&refusal, &cors);
                }
            },
            Route::Devices => {
                let mut response = responses::json(status::devices_json(&self.registry.statuses()));
                // The dashboard writes this user name into the snippets it offers (see
                // `access`); only a viewer who passed the check gets here.
                let access = &self.config.access;
                if let Some((user, _)) = &access.view_login {
                    response.add_header("X-View-User", user);
                }
                if access.push_is_protected() {
                    response.add_header("X-Push-Auth", "token");
                }
                response
            }
            Route::Metrics => {
                let gauges = Gauges {
                    connections: self.load.open(),
                    requests_in_progress: self.load.busy(),
                };
                let handshakes = self.https().map(|https| https.handshakes.counts());
                let text = metrics::render(
                    &self.registry.statuses(),
                    &self.counters,
                    gauges,
                    handshakes,
                );
                responses::metrics(text)
            }
            Route::Forget(device) => match self.registry.forget(&device) {
                Some(lines) => {
                    for line in &lines {
                        line.hang_up();
                    }
                    let message =
                        format!("forgot {device}; closing its {} connections", lines.len());
                    responses::reason(200, &message)
                }
                None => {
                    let refusal = Refusal::new(Reason::NotFound, format!("no device {device}"));
                    return self.refuse(&refusal, &cors);
                }
            },
            Route::Health => Response::text(200, "ok"),
            Route::Index if request.header("Accept").is_some_and(pages::prefers_html) => {
                match self.page(request, &pages::DASHBOARD) {
                    Ok(response) => response,
                    Err(reply) => return reply,
                }
            }
            Route::Index => pages::text_index(&status::index_text()),
            Route::PushPage => match self.page(request, &pages::PUSH) {
                Ok(response) => response,
                Err(reply) => return reply,
            },
            #[cfg(feature = "tls")]
            Route::AuthorityCertificate => match https::authority_certificate(self.https()) {
                Ok(response) => response,
                Err(refusal) => return self.refuse(&refusal, &cors),
            },
            #[cfg(feature = "tls")]
            Route::HttpsPage => match self.page(request, &pages::HTTPS) {
                Ok(response) => response,
                Err(reply) => return reply,
            },
            #[cfg(feature = "tls")]
            Route::HttpsFacts => responses::json(https::facts_json(self.https())),
            // A build without TLS (the small MIPS one) has nothing of it to serve; the pages
            // then give their advice for a relay without HTTPS.
            #[cfg(not(feature = "tls"))]
            Route::AuthorityCertificate | Route::HttpsPage | Route::HttpsFacts => {
                return self.refuse(&https::not_built_in(), &cors)
            }
            Route::Options { allow } => responses::options(allow),
        };
        let mut answer = answer;
        answer.add_headers(&cors);
        Reply::Answer(answer)
    }

    fn refused(&self, refusal: &Refusal, peer: SocketAddr) {
        self.counters.reject(refusal.reason);
        if refusal.reason == Reason::ConnectionLimit {
            let mut logged = self.limit_logged.lock();
            if logged.is_none_or(|at| at.elapsed() >= LIMIT_LOG_PERIOD) {
                *logged = Some(Instant::now());
                log::warn!("turned {peer} away: {}", refusal.message);
            }
            return;
        }
        // Scanners and broken clients are counted, not logged at info: they would drown the
        // log of a relay on a busy network.
        log::debug!("{peer}: refused a request: {refusal}");
    }
}

/// A push's body as the relay sees it.
struct Pushed<'b, 'c> {
    body: &'b mut Body<'c>,
    timeout: Duration,
}

impl Read for Pushed<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.body.read(out)
    }
}

impl Upload for Pushed<'_, '_> {
    fn declared_length(&self) -> Option<u64> {
        self.body.declared_length()
    }

    fn frame_arrived(&mut self) {
        self.body.extend_deadline(self.timeout);
    }
}

/// Ends a connection by shutting its socket, waking its thread wherever it waits.
struct Line(Arc<dyn Wire>);

impl HangUp for Line {
    fn hang_up(&self) {
        self.0.shutdown(Shutdown::Both);
    }
}

fn hang_up(wire: Arc<dyn Wire>) -> Arc<dyn HangUp> {
    Arc::new(Line(wire))
}
