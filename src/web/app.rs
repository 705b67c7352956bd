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

use crate::access::credentials::{self, Presented};
use crate::access::Need;
use crate::config::Config;
use crate::host_addresses;
use crate::http::body::{Body, Framing};
use crate::http::connection::Load;
use crate::http::head::Version;
use crate::http::input::Wire;
use crate::http::{Headers, Reply, Request, Response, Service};
use crate::https::Https;
use crate::qr::{self, QrCode};
use crate::refusal::{Reason, Refusal};
use crate::relay::device::{Device, HangUp, Peer};
use crate::relay::device_id::DeviceId;
use crate::relay::health::Health;
use crate::relay::push::{self, Limits, Upload};
use crate::relay::registry::Registry;
use crate::relay::settings::{self, Settings};
use crate::relay::settings_store::{Rejected, SettingsStore};
use crate::relay::stream::{self, ViewerOptions};
use crate::relay::{mjpeg, push_stream};
use crate::text::decimal;
use crate::web::https;
use crate::web::metrics::{self, Counters, Gauges};
use crate::web::pages;
use crate::web::phone_links::{HttpsPort, PhoneLinks, PushToken};
use crate::web::responses;
use crate::web::routes::{self, Route};
use crate::web::status;

/// The connection limit is logged at most this often while clients keep hitting it.
const LIMIT_LOG_PERIOD: Duration = Duration::from_secs(10);
/// How long the phone's long-poll is held at most: under the 30 s after which some mobile
/// networks and proxies drop a quiet connection, and well under `--push-timeout`'s default.
const LONG_POLL: Duration = Duration::from_secs(25);

/// Headers of a push and its answer that carry settings and health between relay and page
/// (see `relay::settings_store` and `relay::health`).
mod header {
    /// Request: the settings version the page has applied. Answer: the device's version.
    pub const SETTINGS_VERSION: &str = "X-Streampump-Settings-Version";
    /// Answer: the settings as JSON, when the page's version is not the device's.
    pub const SETTINGS: &str = "X-Streampump-Settings";
    /// Answer: viewers watching now, so the page knows whether to idle.
    pub const VIEWERS: &str = "X-Streampump-Viewers";
    /// Request: the page's health report.
    pub const HEALTH: &str = "X-Streampump-Health";
    /// Request: the settings the page runs with, as JSON (changed on the phone, or applied).
    pub const EFFECTIVE: &str = "X-Streampump-Effective";
}

/// Everything the endpoints share.
pub struct App {
    pub config: Config,
    pub registry: Registry,
    pub settings: SettingsStore,
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
        let mut registry = Registry::new(&config);
        if let Some(command) = &config.on_event {
            match crate::on_event::start(command.clone(), config.event_timeout) {
                Ok(runner) => registry = registry.with_listener(runner),
                Err(error) => log::error!("cannot start the --on-event thread: {error}"),
            }
        }
        App {
            registry,
            settings: SettingsStore::open(
                Some(config.state_dir.clone()),
                config.max_devices.get(),
                config.offline_after,
            ),
            counters: Counters::default(),
            load,
            #[cfg(feature = "tls")]
            https: None,
            limit_logged: Mutex::new(None),
            config,
        }
    }

    /// The HTTPS port as the pages see it; always `None` in a build without TLS.
    pub fn https(&self) -> Option<&Https> {
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

    /// Receives a push; for a single frame, returns the device it went to.
    fn push(
        &self,
        request: &mut Request<'_>,
        device: &DeviceId,
    ) -> Result<Option<Arc<Device>>, Refusal> {
        let limits = Limits {
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
            push_stream::receive(&mut upload, &self.registry, device, &limits, peer).map(|()| None)
        } else {
            push::receive(&mut upload, &self.registry, device, &limits, Some(addr)).map(Some)
        }
    }

    /// The answer to a single push: `OK`, and what the page needs to know: whether anyone
    /// watches, and its settings if it has not applied their latest version. Also keeps the
    /// health report and effective settings that came with the push.
    fn pushed(&self, request: &Request<'_>, device: &Device) -> Response {
        let health = request.header(header::HEALTH).and_then(Health::parse);
        // Garbage is ignored: an effective-settings header only informs the dashboard.
        let effective = request
            .header(header::EFFECTIVE)
            .and_then(|json| Settings::default().updated(json).ok());
        if health.is_some() || effective.is_some() {
            self.registry.report(device, health, effective);
        }
        let mut response = Response::text(200, "OK");
        response.add_header(header::VIEWERS, &device.viewers().to_string());
        // Most answers carry the version only: the settings are looked up and written out
        // when the page has not applied them yet.
        let version = self.settings.version(device.id());
        if version > 0 {
            let version = version.to_string();
            response.add_header(header::SETTINGS_VERSION, &version);
            if request.header(header::SETTINGS_VERSION) != Some(version.as_str()) {
                if let Some(current) = self.settings.get(device.id()) {
                    response.add_header(header::SETTINGS, &current.settings.to_json());
                }
            }
        }
        response
    }

    /// `PUT /api/devices/{id}/settings`.
    fn change_settings(
        &self,
        request: &mut Request<'_>,
        device: &DeviceId,
    ) -> Result<Response, Refusal> {
        let limit = settings::MAX_DOCUMENT_BYTES;
        if request
            .body()
            .declared_length()
            .is_some_and(|d| d > limit as u64)
        {
            return Err(Refusal::new(
                Reason::TooLarge,
                format!("settings document over {limit} bytes"),
            ));
        }
        let mut document = Vec::new();
        // Read as a push's body is (`dyn Upload`), so that both share one copy of std's
        // `read_to_end` (1.5 KB less on mipsel).
        let mut body = Pushed {
            body: request.body(),
            timeout: self.config.push_timeout,
        };
        let body: &mut dyn Upload = &mut body;
        body.take(limit as u64 + 1)
            .read_to_end(&mut document)
            .map_err(|error| push::interrupted(document.len() as u64, None, &error))?;
        let document = std::str::from_utf8(&document)
            .map_err(|_| Refusal::new(Reason::BadRequest, "settings must be UTF-8 JSON"))?;
        match self.settings.change(device, document) {
            Ok(changed) => Ok(settings_json(&changed.settings, changed.version)),
            Err(Rejected::Invalid(message)) => Err(Refusal::new(Reason::BadRequest, message)),
            Err(Rejected::Full(limit)) => Err(Refusal::new(
                Reason::DeviceLimit,
                format!("{limit} devices already have settings (see --max-devices)"),
            )),
            Err(Rejected::NotSaved(_, error)) => Ok(responses::reason(
                500,
                &format!("settings changed but not saved: {error}"),
            )),
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

/// "Add a phone": the push link for the dashboard, as text (`/api/phone`) and as a QR code
/// (`/qr.svg`), both built by `phone_links` from the same facts.
impl App {
    fn phone_links(&self, request: &Request<'_>, device: &DeviceId) -> PhoneLinks {
        let presented = credentials::query_token(request.target());
        let token = self.push_token(device, presented.as_deref());
        PhoneLinks::for_dashboard(
            request.header("Host"),
            &self.config,
            self.https_port(),
            device,
            token,
            host_addresses::lan_addresses,
        )
    }

    /// The token the push link carries: the dashboard's own `?token=` when it may push for
    /// this device (the push token, the device's token, or the admin token), else a
    /// placeholder. A Basic login is never put in a link.
    fn push_token<'t>(&self, device: &DeviceId, presented: Option<&'t str>) -> PushToken<'t> {
        let policy = &self.config.access;
        if !policy.push_is_protected() {
            return PushToken::NotNeeded;
        }
        match presented {
            Some(token) if policy.token_may_push(device, token) => PushToken::Carried(token),
            _ => PushToken::Needed,
        }
    }

    /// What the links know of the HTTPS port: its number and whether phones install the
    /// relay's own authority.
    pub fn https_port(&self) -> Option<HttpsPort> {
        self.https().map(|https| HttpsPort {
            port: https.port,
            own_authority: https.authority.is_some(),
        })
    }

    /// The push link (or with `page=setup` in the query, the certificate set-up page's) as an
    /// SVG QR code. Only links the relay builds itself are encoded, so this is no QR service
    /// for whatever text a client sends.
    fn phone_code(&self, request: &Request<'_>, device: &DeviceId) -> Result<Response, Refusal> {
        let wants_setup = request
            .target()
            .split_once('?')
            .is_some_and(|(_, query)| query.split('&').any(|pair| pair == "page=setup"));
        let link = match self.phone_links(request, device) {
            PhoneLinks::Links { setup, .. } if wants_setup => setup.ok_or_else(|| {
                Refusal::new(
                    Reason::NotFound,
                    "no set-up page: phones need none with this relay's certificate",
                )
            })?,
            PhoneLinks::Links { push, .. } => push,
            PhoneLinks::Unreachable(why) => {
                return Err(Refusal::new(
                    Reason::NotFound,
                    format!("no phone link: {why}"),
                ))
            }
        };
        let code = QrCode::encode(link.as_bytes()).map_err(|too_long| {
            Refusal::new(
                Reason::NotFound,
                format!("no code for this link ({too_long}); type it instead"),
            )
        })?;
        Ok(responses::svg(qr::svg::render(&code)))
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
                Ok(Some(published_to)) => self.pushed(request, &published_to),
                Ok(None) => Response::text(200, "OK"),
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
                let settings_of = |id: &DeviceId| self.settings.get(id);
                let json = status::devices_json(&self.registry.statuses(), &settings_of);
                let mut response = responses::json(json);
                // The dashboard writes this user name into the snippets it offers (see
                // `access`); only a viewer who passed the check gets here.
                let access = &self.config.access;
                if let Some((user, _)) = &access.view_login {
                    response.add_header("X-View-User", user);
                }
                if access.push_is_protected() {
                    response.add_header("X-Push-Auth", "token");
                }
                status::add_memory_headers(&mut response, &self.registry.memory().snapshot());
                response
            }
            Route::Metrics => {
                let gauges = Gauges {
                    connections: self.load.open(),
                    requests_in_progress: self.load.busy(),
                };
                let memory = self.registry.memory().snapshot();
                let handshakes = self.https().map(|https| https.handshakes.counts());
                let text = metrics::render(
                    &self.registry.statuses(),
                    &self.counters,
                    gauges,
                    &memory,
                    handshakes,
                );
                responses::metrics(text)
            }
            // The device's settings go with it: an id given up keeps no place under the limit.
            Route::Forget(device) => {
                match (self.registry.forget(&device), self.settings.forget(&device)) {
                    (Some(lines), _) => {
                        for line in &lines {
                            line.hang_up();
                        }
                        let message =
                            format!("forgot {device}; closing its {} connections", lines.len());
                        responses::reason(200, &message)
                    }
                    (None, true) => responses::reason(200, &format!("forgot {device}'s settings")),
                    (None, false) => {
                        let refusal = Refusal::new(Reason::NotFound, format!("no device {device}"));
                        return self.refuse(&refusal, &cors);
                    }
                }
            }
            Route::Settings(device) => match self.settings.get(&device) {
                Some(current) => settings_json(&current.settings, current.version),
                None => settings_json(&Settings::default(), 0),
            },
            Route::ChangeSettings(device) => match self.change_settings(request, &device) {
                Ok(response) => response,
                Err(refusal) => return self.refuse(&refusal, &cors),
            },
            Route::WaitForViewers { device, watched } => match self.registry.device(&device) {
                Some(found) => {
                    let viewers = found.wait_for_viewers(watched, LONG_POLL);
                    let mut response = responses::json(format!("{{\"viewers\":{viewers}}}\n"));
                    response.add_header(header::VIEWERS, &viewers.to_string());
                    response
                }
                None => {
                    let refusal = Refusal::new(
                        Reason::NotFound,
                        format!("no device {device}; push a frame first"),
                    );
                    return self.refuse(&refusal, &cors);
                }
            },
            Route::PhoneLinks(device) => responses::json(self.phone_links(request, &device).json()),
            Route::PhoneCode(device) => match self.phone_code(request, &device) {
                Ok(response) => response,
                Err(refusal) => return self.refuse(&refusal, &cors),
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

/// A device's settings as `GET` and `PUT /api/devices/{id}/settings` answer them: the
/// settings with their version (0: never set, these are the defaults).
fn settings_json(settings: &Settings, version: u32) -> Response {
    let json = settings.to_json();
    let mut response = responses::json(format!("{{\"version\":{version},{}\n", &json[1..]));
    response.add_header(header::SETTINGS_VERSION, &version.to_string());
    response
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
