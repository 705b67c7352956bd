//! Which request is which: a pure function from method and raw target to a [`Route`].
//!
//! Kept free of sockets and state so every URL the relay understands, every alias, and every
//! refusal can be unit-tested. Paths keep the reference server's spelling exactly
//! (`/pump_push/{id}`, `/live.mjpeg?device_id=`), because existing go2rtc configs point at them;
//! the aliases are the ones users of µStreamer (`/stream`, `/snapshot`) and mjpg-streamer
//! (`/?action=stream`) already type.

use std::time::Duration;

use crate::access::Need;
use crate::http::target::RequestTarget;
use crate::refusal::{Extra, Reason, Refusal};
use crate::relay::device_id::DeviceId;
use crate::relay::stream::ViewerOptions;
use crate::text::decimal;
use crate::text::quoted::Quoted;

/// A request the relay will serve.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// `POST /pump_push/{id}`: one JPEG in the body.
    Push(DeviceId),
    /// `GET|HEAD /live.mjpeg?device_id=`: the endless MJPEG stream.
    Stream {
        device: DeviceId,
        options: ViewerOptions,
        head_only: bool,
    },
    /// `GET|HEAD /snapshot.jpg?device_id=`: the latest frame.
    Snapshot(DeviceId),
    /// `GET /api/devices`: JSON status of every device.
    Devices,
    /// `GET /healthz`.
    Health,
    /// `GET /`: the dashboard for browsers, a short text saying what is where for others.
    Index,
    /// `GET /push.html`: the page a phone opens to push its camera.
    PushPage,
    /// `GET /metrics`: counters in Prometheus's text format.
    Metrics,
    /// `GET /api/phone?device_id=`: the links the dashboard's "Add a phone" shows.
    PhoneLinks(DeviceId),
    /// `GET /qr.svg?device_id=`: the push link of `PhoneLinks` as a QR code.
    PhoneCode(DeviceId),
    /// `DELETE /api/devices/{id}`: disconnect the device's pusher and viewers, forget it.
    Forget(DeviceId),
    /// `GET|HEAD /api/devices/{id}/settings`: the settings made for the phone.
    Settings(DeviceId),
    /// `PUT /api/devices/{id}/settings`: change them (a JSON object of the keys to change).
    ChangeSettings(DeviceId),
    /// `GET /api/devices/{id}/wait?watched=0|1`: the phone's long-poll, answered when whether
    /// anyone watches differs from `watched`, or after a while.
    WaitForViewers { device: DeviceId, watched: bool },
    /// `GET /ca.crt`: the relay's own certificate authority, for a phone to install.
    AuthorityCertificate,
    /// `GET /https.html`: how to set a phone up for HTTPS.
    HttpsPage,
    /// `GET /api/https`: the HTTPS port and the authority's fingerprint, for the pages.
    HttpsFacts,
    /// `OPTIONS` on a known path: which methods it takes.
    Options { allow: &'static str },
}

impl Route {
    /// The credential this route needs (see `access`).
    pub fn need(&self) -> Need<'_> {
        match self {
            Route::Push(device) => Need::Push(device),
            Route::Stream { .. }
            | Route::Snapshot(_)
            | Route::Devices
            | Route::Index
            | Route::Metrics
            | Route::PhoneLinks(_)
            | Route::PhoneCode(_)
            | Route::Settings(_) => Need::View,
            Route::Forget(_) | Route::ChangeSettings(_) => Need::Admin,
            // The phone asks, with the credential it pushes with.
            Route::WaitForViewers { device, .. } => Need::Push(device),
            // A preflight never carries credentials; the pages hold no secret. The authority's
            // certificate is public by nature, and a phone must fetch it before it can log in
            // over HTTPS.
            Route::Health
            | Route::PushPage
            | Route::AuthorityCertificate
            | Route::HttpsPage
            | Route::HttpsFacts
            | Route::Options { .. } => Need::Nothing,
        }
    }
}

fn bad_request(message: impl Into<String>) -> Refusal {
    Refusal::new(Reason::BadRequest, message.into())
}

/// Highest `?fps=` a viewer may ask for, in millionths; above it the cap means nothing anyway.
const MAX_VIEWER_FPS: u64 = 1000 * decimal::ONE;
/// Lowest `?fps=`: a frame at least every 5 s, so a stream is never silent for long (Home
/// Assistant gives up after 10 s) and a departed viewer is still noticed soon.
const MIN_VIEWER_FPS: u64 = decimal::ONE / 5;

/// The endpoints, before the method is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource<'a> {
    Push(&'a str),
    Stream,
    Snapshot,
    Devices,
    Health,
    Index,
    PushPage,
    Metrics,
    PhoneLinks,
    PhoneCode,
    AuthorityCertificate,
    HttpsPage,
    HttpsFacts,
    Device(&'a str),
    DeviceSettings(&'a str),
    DeviceWait(&'a str),
}

impl Resource<'_> {
    fn allow(self) -> &'static str {
        match self {
            Resource::Push(_) => "POST, PUT, OPTIONS",
            Resource::Device(_) => "DELETE, OPTIONS",
            Resource::DeviceSettings(_) => "GET, HEAD, PUT, OPTIONS",
            _ => "GET, HEAD, OPTIONS",
        }
    }
}

/// Routes one request. `method` is case-sensitive, as HTTP says.
pub fn route(method: &str, raw_target: &str) -> Result<Route, Refusal> {
    let target = RequestTarget::parse(raw_target).map_err(|e| bad_request(e.to_string()))?;
    let resource = resource(&target)?;
    let allowed = match resource {
        // PUT too: `curl -T file` uploads with PUT.
        Resource::Push(_) => method == "POST" || method == "PUT",
        Resource::Device(_) => method == "DELETE",
        Resource::DeviceSettings(_) => matches!(method, "GET" | "HEAD" | "PUT"),
        _ => method == "GET" || method == "HEAD",
    };
    if method == "OPTIONS" {
        return Ok(Route::Options {
            allow: resource.allow(),
        });
    }
    if !allowed {
        return Err(Refusal::new(
            Reason::MethodNotAllowed,
            format!("method {method} not allowed here; use {}", resource.allow()),
        )
        .with(Extra::Allow(resource.allow())));
    }
    Ok(match resource {
        Resource::Push(raw_id) => Route::Push(device_in_path(raw_id)?),
        Resource::Stream => Route::Stream {
            device: device_in_query(&target)?,
            options: viewer_options(&target)?,
            head_only: method == "HEAD",
        },
        Resource::Snapshot => Route::Snapshot(device_in_query(&target)?),
        Resource::Devices => Route::Devices,
        Resource::Health => Route::Health,
        Resource::Index => Route::Index,
        Resource::PushPage => Route::PushPage,
        Resource::Metrics => Route::Metrics,
        Resource::PhoneLinks => Route::PhoneLinks(device_in_query(&target)?),
        Resource::PhoneCode => Route::PhoneCode(device_in_query(&target)?),
        Resource::AuthorityCertificate => Route::AuthorityCertificate,
        Resource::HttpsPage => Route::HttpsPage,
        Resource::HttpsFacts => Route::HttpsFacts,
        Resource::Device(raw_id) => Route::Forget(device_in_api_path(raw_id)?),
        Resource::DeviceSettings(raw_id) if method == "PUT" => {
            Route::ChangeSettings(device_in_api_path(raw_id)?)
        }
        Resource::DeviceSettings(raw_id) => Route::Settings(device_in_api_path(raw_id)?),
        Resource::DeviceWait(raw_id) => Route::WaitForViewers {
            device: device_in_api_path(raw_id)?,
            watched: match target.param("watched") {
                Some("1") => true,
                None | Some("0") => false,
                Some(other) => {
                    return Err(bad_request(format!(
                        "watched must be 1 or 0, got {}",
                        Quoted(other)
                    )))
                }
            },
        },
    })
}

fn resource(target: &RequestTarget) -> Result<Resource<'_>, Refusal> {
    let path = target.path.as_str();
    if let Some(raw_id) = path.strip_prefix("/pump_push/") {
        return Ok(Resource::Push(raw_id));
    }
    if let Some(rest) = path.strip_prefix("/api/devices/") {
        return Ok(match rest.rsplit_once('/') {
            Some((raw_id, "settings")) => Resource::DeviceSettings(raw_id),
            Some((raw_id, "wait")) => Resource::DeviceWait(raw_id),
            _ => Resource::Device(rest),
        });
    }
    match path {
        "/pump_push" => Ok(Resource::Push("")),
        "/live.mjpeg" | "/stream" => Ok(Resource::Stream),
        "/snapshot.jpg" | "/snapshot" => Ok(Resource::Snapshot),
        "/api/devices" => Ok(Resource::Devices),
        "/healthz" => Ok(Resource::Health),
        "/push.html" => Ok(Resource::PushPage),
        "/metrics" => Ok(Resource::Metrics),
        "/api/phone" => Ok(Resource::PhoneLinks),
        "/qr.svg" => Ok(Resource::PhoneCode),
        "/ca.crt" => Ok(Resource::AuthorityCertificate),
        "/https.html" => Ok(Resource::HttpsPage),
        "/api/https" => Ok(Resource::HttpsFacts),
        // mjpg-streamer puts the endpoint in `?action=`.
        "/" => match target.param("action") {
            None => Ok(Resource::Index),
            Some("stream") => Ok(Resource::Stream),
            Some("snapshot") => Ok(Resource::Snapshot),
            Some(other) => Err(bad_request(format!(
                "unknown action {}; use action=stream or action=snapshot",
                Quoted(other)
            ))),
        },
        _ => Err(Refusal::new(
            Reason::NotFound,
            format!(
                "no such endpoint {}; try /live.mjpeg?device_id=ID, /snapshot.jpg?device_id=ID, \
                 /api/devices or POST /pump_push/ID",
                Quoted(path)
            ),
        )),
    }
}

fn device_in_path(raw_id: &str) -> Result<DeviceId, Refusal> {
    if raw_id.is_empty() {
        return Err(bad_request(
            "missing device id: push to /pump_push/{device_id}",
        ));
    }
    DeviceId::parse(raw_id).map_err(|e| bad_request(e.to_string()))
}

fn device_in_api_path(raw_id: &str) -> Result<DeviceId, Refusal> {
    DeviceId::parse(raw_id).map_err(|e| bad_request(e.to_string()))
}

fn device_in_query(target: &RequestTarget) -> Result<DeviceId, Refusal> {
    match target.param("device_id") {
        None | Some("") => Err(bad_request(
            "missing device_id query parameter, e.g. ?device_id=cam_living",
        )),
        Some(raw_id) => DeviceId::parse(raw_id).map_err(|e| bad_request(e.to_string())),
    }
}

fn viewer_options(target: &RequestTarget) -> Result<ViewerOptions, Refusal> {
    let min_interval = match target.param("fps") {
        None | Some("") => None,
        Some(raw) => {
            let fps_millionths = decimal::parse_millionths(raw)
                .filter(|fps| (MIN_VIEWER_FPS..=MAX_VIEWER_FPS).contains(fps))
                .ok_or_else(|| {
                    bad_request(format!(
                        "fps must be a number from 0.2 to 1000, got {}",
                        Quoted(raw)
                    ))
                })?;
            const NANOS_PER_SECOND_IN_MILLIONTHS: u64 = 1_000_000_000 * decimal::ONE;
            Some(Duration::from_nanos(
                NANOS_PER_SECOND_IN_MILLIONTHS / fps_millionths,
            ))
        }
    };
    let advance_headers = match target.param("advance_headers") {
        None | Some("0") | Some("false") => false,
        Some("") | Some("1") | Some("true") => true,
        Some(other) => {
            return Err(bad_request(format!(
                "advance_headers must be 1 or 0, got {}",
                Quoted(other)
            )))
        }
    };
    Ok(ViewerOptions {
        min_interval,
        advance_headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> DeviceId {
        DeviceId::parse(text).unwrap()
    }

    fn stream(device: &str) -> Route {
        Route::Stream {
            device: id(device),
            options: ViewerOptions::default(),
            head_only: false,
        }
    }

    fn status_of(method: &str, target: &str) -> u16 {
        route(method, target).unwrap_err().status()
    }

    #[test]
    fn phone_links_and_their_code_need_a_device() {
        assert_eq!(
            route("GET", "/api/phone?device_id=cam_1"),
            Ok(Route::PhoneLinks(id("cam_1")))
        );
        assert_eq!(
            route("GET", "/qr.svg?device_id=cam_1&token=t"),
            Ok(Route::PhoneCode(id("cam_1")))
        );
        assert_eq!(Route::PhoneCode(id("cam_1")).need(), Need::View);
        assert_eq!(status_of("GET", "/qr.svg"), 400);
        assert_eq!(status_of("GET", "/qr.svg?device_id=a%20b"), 400);
        assert_eq!(status_of("POST", "/api/phone?device_id=cam_1"), 405);
    }

    #[test]
    fn https_set_up_is_public() {
        for (target, expected) in [
            ("/ca.crt", Route::AuthorityCertificate),
            ("/https.html", Route::HttpsPage),
            ("/api/https", Route::HttpsFacts),
        ] {
            let route = route("GET", target).unwrap();
            assert_eq!(route, expected);
            assert_eq!(route.need(), Need::Nothing);
        }
        assert_eq!(status_of("POST", "/ca.crt"), 405);
    }

    #[test]
    fn reference_endpoints() {
        assert_eq!(
            route("POST", "/pump_push/cam_living"),
            Ok(Route::Push(id("cam_living")))
        );
        assert_eq!(
            route("GET", "/live.mjpeg?device_id=cam_living"),
            Ok(stream("cam_living"))
        );
    }

    #[test]
    fn aliases_reach_the_same_routes() {
        for target in [
            "/stream?device_id=c",
            "/?action=stream&device_id=c",
            "http://relay:19999/live.mjpeg?device_id=c",
        ] {
            assert_eq!(route("GET", target), Ok(stream("c")), "{target}");
        }
        for target in [
            "/snapshot.jpg?device_id=c",
            "/snapshot?device_id=c",
            "/?action=snapshot&device_id=c",
        ] {
            assert_eq!(
                route("GET", target),
                Ok(Route::Snapshot(id("c"))),
                "{target}"
            );
        }
        assert_eq!(route("GET", "/api/devices"), Ok(Route::Devices));
        assert_eq!(route("GET", "/healthz"), Ok(Route::Health));
        assert_eq!(route("GET", "/"), Ok(Route::Index));
        assert_eq!(route("GET", "/push.html"), Ok(Route::PushPage));
        assert_eq!(route("GET", "/metrics"), Ok(Route::Metrics));
        assert_eq!(
            route("GET", "/push.html?device_id=cam_kitchen"),
            Ok(Route::PushPage)
        );
    }

    #[test]
    fn head_is_marked_for_streams() {
        assert_eq!(
            route("HEAD", "/live.mjpeg?device_id=c"),
            Ok(Route::Stream {
                device: id("c"),
                options: ViewerOptions::default(),
                head_only: true
            })
        );
        assert_eq!(
            route("HEAD", "/snapshot.jpg?device_id=c"),
            Ok(Route::Snapshot(id("c")))
        );
    }

    #[test]
    fn viewer_options_are_parsed_and_checked() {
        let Ok(Route::Stream { options, .. }) =
            route("GET", "/live.mjpeg?device_id=c&fps=4&advance_headers=1")
        else {
            panic!("not a stream");
        };
        assert_eq!(options.min_interval, Some(Duration::from_millis(250)));
        assert!(options.advance_headers);
        for bad in [
            "fps=0",
            "fps=0.1",
            "fps=-1",
            "fps=abc",
            "fps=NaN",
            "fps=inf",
            "fps=5000",
            "advance_headers=yes",
        ] {
            assert_eq!(
                status_of("GET", &format!("/live.mjpeg?device_id=c&{bad}")),
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_or_missing_ids_are_400() {
        assert_eq!(status_of("POST", "/pump_push/"), 400);
        assert_eq!(status_of("POST", "/pump_push"), 400);
        assert_eq!(status_of("POST", "/pump_push/a%2Fb"), 400);
        assert_eq!(status_of("POST", "/pump_push/..%2F"), 400);
        assert_eq!(status_of("POST", "/pump_push/a/b"), 400);
        assert_eq!(status_of("GET", "/live.mjpeg"), 400);
        assert_eq!(status_of("GET", "/live.mjpeg?device_id="), 400);
        assert_eq!(status_of("GET", "/live.mjpeg?device_id=a%00"), 400);
        assert_eq!(status_of("GET", "/snapshot.jpg?device_id=a%20b"), 400);
        assert_eq!(status_of("GET", "/snapshot.jpg?device_id=%ZZ"), 400);
        assert_eq!(status_of("GET", "/?action=dance"), 400);
    }

    #[test]
    fn wrong_methods_are_405_with_allow() {
        let refusal = route("GET", "/pump_push/cam").unwrap_err();
        assert_eq!(refusal.status(), 405);
        assert_eq!(refusal.extra, Some(Extra::Allow("POST, PUT, OPTIONS")));
        let refusal = route("POST", "/live.mjpeg?device_id=c").unwrap_err();
        assert_eq!(refusal.status(), 405);
        assert_eq!(refusal.extra, Some(Extra::Allow("GET, HEAD, OPTIONS")));
        assert_eq!(status_of("get", "/healthz"), 405);
        assert_eq!(status_of("BREW", "/healthz"), 405);
    }

    #[test]
    fn devices_are_forgotten_with_delete() {
        assert_eq!(
            route("DELETE", "/api/devices/cam_1"),
            Ok(Route::Forget(id("cam_1")))
        );
        assert_eq!(status_of("GET", "/api/devices/cam_1"), 405);
        assert_eq!(status_of("DELETE", "/api/devices/"), 400);
        assert_eq!(status_of("DELETE", "/api/devices"), 405);
        assert_eq!(
            route("DELETE", "/api/devices/c").unwrap().need(),
            Need::Admin
        );
        assert_eq!(route("GET", "/healthz").unwrap().need(), Need::Nothing);
        assert_eq!(route("GET", "/metrics").unwrap().need(), Need::View);
    }

    #[test]
    fn settings_and_the_long_poll_have_their_routes_and_credentials() {
        assert_eq!(
            route("GET", "/api/devices/cam_1/settings"),
            Ok(Route::Settings(id("cam_1")))
        );
        let change = route("PUT", "/api/devices/cam_1/settings").unwrap();
        assert_eq!(change, Route::ChangeSettings(id("cam_1")));
        assert_eq!(change.need(), Need::Admin);
        assert_eq!(
            route("GET", "/api/devices/cam_1/settings").unwrap().need(),
            Need::View
        );
        let wait = route("GET", "/api/devices/cam_1/wait?watched=1").unwrap();
        assert_eq!(
            wait,
            Route::WaitForViewers {
                device: id("cam_1"),
                watched: true
            }
        );
        assert_eq!(wait.need(), Need::Push(&id("cam_1")));
        assert_eq!(status_of("POST", "/api/devices/cam_1/settings"), 405);
        assert_eq!(status_of("GET", "/api/devices/cam_1/wait?watched=2"), 400);
        assert_eq!(status_of("PUT", "/api/devices/a%2Fb/settings"), 400);
        assert_eq!(status_of("DELETE", "/api/devices/cam_1/other"), 400);
    }

    #[test]
    fn options_lists_methods() {
        assert_eq!(
            route("OPTIONS", "/pump_push/cam"),
            Ok(Route::Options {
                allow: "POST, PUT, OPTIONS"
            })
        );
    }

    #[test]
    fn unknown_paths_are_404() {
        assert_eq!(status_of("GET", "/nope"), 404);
        assert_eq!(status_of("GET", "/live.mjpeg/extra"), 404);
        assert_eq!(status_of("POST", "/pump_pushx/cam"), 404);
    }
}
