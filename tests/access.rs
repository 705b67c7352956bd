//! Access control and CORS against the real binary: push tokens (global, per device, from a
//! file and from the environment), the viewers' login and token, the admin token that deleting
//! a device needs, what a refusal looks like and that it reveals nothing, refusals in
//! `/metrics`, secrets kept out of the log and out of `--check`, and the cross-origin headers
//! `--allow-origin` adds.
//!
//! Every credential is presented the ways real clients present it: `Authorization: Bearer`,
//! `X-Auth-Token`, `?token=` and as the password of a Basic login. Whether secrets are compared
//! in constant time cannot be told from outside without timing, so it is left to the unit
//! tests of `access`.

mod support;
// Not through `support`: loadgen includes it too, and the abuse tests include both.
#[path = "support/base64.rs"]
mod base64;

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{
    has_answer, jpeg, read_response, run_streampump, tag_of, MjpegStream, Relay, Response,
};

const BEARER_CHALLENGE: &str = "Bearer realm=\"streampump\"";
const BASIC_CHALLENGE: &str = "Basic realm=\"streampump\", charset=\"UTF-8\"";
const UNAUTHORIZED_METRIC: &str = "streampump_requests_rejected_total{reason=\"unauthorized\"}";

/// The `Authorization` header value of a Basic login.
fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::encode(format!("{user}:{password}").as_bytes())
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `target` with `?token=` (or `&token=`) added.
fn with_query_token(target: &str, token: &str) -> String {
    let separator = if target.contains('?') { '&' } else { '?' };
    format!("{target}{separator}token={token}")
}

/// One way of presenting credentials: extra headers and a query token.
#[derive(Debug, Clone, Default)]
struct Creds {
    headers: Vec<(&'static str, String)>,
    query_token: Option<String>,
}

impl Creds {
    fn none() -> Creds {
        Creds::default()
    }

    fn header(name: &'static str, value: String) -> Creds {
        Creds {
            headers: vec![(name, value)],
            query_token: None,
        }
    }

    fn bearer(token: &str) -> Creds {
        Creds::header("Authorization", bearer(token))
    }

    fn basic(user: &str, password: &str) -> Creds {
        Creds::header("Authorization", basic(user, password))
    }

    fn query(token: &str) -> Creds {
        Creds {
            headers: Vec::new(),
            query_token: Some(token.to_string()),
        }
    }

    /// Every way a client can present `token`.
    fn every_way(token: &str) -> Vec<Creds> {
        vec![
            Creds::bearer(token),
            Creds::header("X-Auth-Token", token.to_string()),
            Creds::query(token),
            Creds::basic("whoever", token),
        ]
    }

    fn with(mut self, name: &'static str, value: &str) -> Creds {
        self.headers.push((name, value.to_string()));
        self
    }

    fn target(&self, target: &str) -> String {
        match &self.query_token {
            Some(token) => with_query_token(target, token),
            None => target.to_string(),
        }
    }

    fn header_lines(&self) -> String {
        self.headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\r\n"))
            .collect()
    }
}

/// A request with no body and `Connection: close`, answered in full.
fn send(relay: &Relay, method: &str, target: &str, creds: &Creds) -> Response {
    let request = format!(
        "{method} {} HTTP/1.1\r\nHost: t\r\n{}Connection: close\r\n\r\n",
        creds.target(target),
        creds.header_lines()
    );
    relay.raw(request.as_bytes())
}

fn get(relay: &Relay, target: &str, creds: &Creds) -> Response {
    send(relay, "GET", target, creds)
}

/// One JPEG pushed to `device`.
fn push(relay: &Relay, device: &str, frame: &[u8], creds: &Creds) -> Response {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n{}Content-Length: {}\r\n\
         Connection: close\r\n\r\n",
        creds.target(&format!("/pump_push/{device}")),
        creds.header_lines(),
        frame.len()
    );
    relay.raw(&[head.as_bytes(), frame].concat())
}

/// Opens an MJPEG stream presenting `creds` and reads the response head.
fn stream(relay: &Relay, target: &str, creds: &Creds) -> MjpegStream {
    let mut connection = relay.connect();
    write!(
        connection,
        "GET {} HTTP/1.1\r\nHost: t\r\n{}\r\n",
        creds.target(target),
        creds.header_lines()
    )
    .expect("send request");
    let mut reader = BufReader::new(connection);
    let head = read_response(&mut reader, false);
    MjpegStream { head, reader }
}

/// Reads until the relay closes the connection; fails if it is still open after `within`.
fn wait_for_close(connection: &mut impl Read, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match connection.read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // Reset or aborted: closed all the same.
            Err(_) => return,
        }
        assert!(
            Instant::now() < deadline,
            "{what} still open after {within:?}"
        );
    }
}

fn assert_unauthorized(response: &Response, challenge: &str, what: &str) {
    assert_eq!(response.status, 401, "{what}: {}", response.text());
    assert_eq!(
        response.header("WWW-Authenticate"),
        Some(challenge),
        "{what}"
    );
}

/// The parts of a 401 that a client sees, to compare two of them.
fn refusal_seen(response: &Response) -> (u16, Option<String>, Option<String>, Vec<u8>) {
    (
        response.status,
        response.header("WWW-Authenticate").map(str::to_string),
        response.header("Content-Type").map(str::to_string),
        response.body.clone(),
    )
}

fn devices_listed(relay: &Relay, creds: &Creds) -> Vec<String> {
    let response = get(relay, "/api/devices", creds);
    assert_eq!(response.status, 200, "{}", response.text());
    let devices: serde_json::Value = serde_json::from_slice(&response.body).expect("JSON");
    devices
        .as_array()
        .expect("an array")
        .iter()
        .map(|device| device["id"].as_str().expect("an id").to_string())
        .collect()
}

/// The `reason="unauthorized"` count in `/metrics`.
fn unauthorized_count(relay: &Relay, creds: &Creds) -> u64 {
    let metrics = get(relay, "/metrics", creds);
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    text.lines()
        .find_map(|line| line.strip_prefix(UNAUTHORIZED_METRIC))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {UNAUTHORIZED_METRIC} in:\n{text}"))
}

/// A file in the temporary directory, named for the test that writes it, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("streampump-access-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("write a temporary file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// --- Deleting on an open relay --------------------------------------------------------------

#[test]
fn an_open_relay_lets_anyone_forget_a_device() {
    let relay = Relay::start(&[]);
    relay.push_ok("cam", &jpeg(8, 8, 1, 500));
    let deleted = send(&relay, "DELETE", "/api/devices/cam", &Creds::none());
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert!(relay.device("cam").is_none());
    let again = send(&relay, "DELETE", "/api/devices/cam", &Creds::none());
    assert_eq!(again.status, 404, "{}", again.text());
}

// --- Pushing ----------------------------------------------------------------------------------

#[test]
fn pushing_takes_the_push_token_wherever_a_client_puts_it() {
    let relay = Relay::start(&["--push-token", "push-secret"]);
    let frame = jpeg(8, 8, 1, 500);

    let refused = push(&relay, "cam", &frame, &Creds::none());
    assert_unauthorized(&refused, BEARER_CHALLENGE, "no token");
    for wrong in Creds::every_way("not-the-token") {
        let response = push(&relay, "cam", &frame, &wrong);
        assert_unauthorized(&response, BEARER_CHALLENGE, &format!("{wrong:?}"));
        assert_eq!(
            response.body, refused.body,
            "the same words whatever was wrong"
        );
    }
    assert!(
        relay.device("cam").is_none(),
        "a refused push makes no device"
    );

    for (tag, creds) in Creds::every_way("push-secret").into_iter().enumerate() {
        let frame = jpeg(8, 8, tag as u8 + 10, 500);
        let response = push(&relay, "cam", &frame, &creds);
        assert_eq!(
            (response.status, response.text().as_str()),
            (200, "OK"),
            "{creds:?}"
        );
        assert_eq!(relay.get("/snapshot.jpg?device_id=cam").body, frame);
    }
}

#[test]
fn a_device_token_works_for_its_own_device_only() {
    let relay = Relay::start(&[
        "--push-token",
        "global-token",
        "--device-token",
        "cam_01=own-01",
        "--device-token",
        "cam_02=own-02",
    ]);
    let frame = jpeg(8, 8, 1, 500);
    let status =
        |device: &str, token: &str| push(&relay, device, &frame, &Creds::bearer(token)).status;
    assert_eq!(status("cam_01", "own-01"), 200);
    assert_eq!(status("cam_02", "own-02"), 200);
    assert_eq!(status("cam_01", "own-02"), 401, "another device's token");
    assert_eq!(status("cam_02", "own-01"), 401, "another device's token");
    assert_eq!(
        status("cam_09", "own-01"),
        401,
        "a device with no token of its own"
    );
    // The global token still works for every device, with or without a token of its own.
    assert_eq!(status("cam_01", "global-token"), 200);
    assert_eq!(status("cam_09", "global-token"), 200);

    // Device tokens alone close pushing for every device.
    let relay = Relay::start(&["--device-token", "cam_01=own-01"]);
    let refused = push(&relay, "cam_09", &frame, &Creds::none());
    assert_unauthorized(
        &refused,
        BEARER_CHALLENGE,
        "a device with no token of its own",
    );
    let wrong = push(&relay, "cam_09", &frame, &Creds::bearer("own-01"));
    assert_eq!(refusal_seen(&wrong), refusal_seen(&refused));
    assert_eq!(
        push(&relay, "cam_01", &frame, &Creds::query("own-01")).status,
        200
    );
}

#[test]
fn viewing_stays_open_when_only_pushing_is_protected() {
    let relay = Relay::start(&["--push-token", "push-secret"]);
    let frame = jpeg(8, 8, 1, 500);
    assert_eq!(
        push(&relay, "cam", &frame, &Creds::bearer("push-secret")).status,
        200
    );

    assert_eq!(relay.get("/snapshot.jpg?device_id=cam").body, frame);
    for target in ["/metrics", "/"] {
        assert_eq!(relay.get(target).status, 200, "{target}");
    }
    let mut viewer = relay.stream("/live.mjpeg?device_id=cam");
    assert_eq!(viewer.head.status, 200);
    assert_eq!(viewer.next_part().body, frame);

    let devices = relay.get("/api/devices");
    assert_eq!(devices.status, 200);
    assert_eq!(devices.header("X-Push-Auth"), Some("token"));
    assert_eq!(devices.header("X-View-User"), None);
}

// --- Viewing ----------------------------------------------------------------------------------

/// The viewing endpoints that answer with a whole body.
const VIEW_TARGETS: [&str; 4] = [
    "/snapshot.jpg?device_id=cam",
    "/api/devices",
    "/metrics",
    "/",
];

#[test]
fn viewing_takes_the_login_the_view_token_or_the_admin_token() {
    let relay = Relay::start(&[
        "--view-user",
        "ha",
        "--view-password",
        "pass:word",
        "--view-token",
        "view-secret",
        "--admin-token",
        "admin-secret",
    ]);
    let frame = jpeg(8, 8, 1, 500);
    // Pushing stays open: only viewing is protected.
    relay.push_ok("cam", &frame);

    let refused = [
        Creds::none(),
        Creds::basic("ha", "wrong"),
        Creds::basic("someone", "pass:word"),
        Creds::bearer("pass:word"),
        Creds::bearer("wrong"),
        Creds::query("wrong"),
        Creds::header("X-Auth-Token", "wrong".into()),
    ];
    for target in VIEW_TARGETS.iter().chain(&["/live.mjpeg?device_id=cam"]) {
        for creds in &refused {
            let response = get(&relay, target, creds);
            assert_unauthorized(&response, BASIC_CHALLENGE, &format!("{target} {creds:?}"));
        }
    }
    let dashboard = get(
        &relay,
        "/",
        &Creds::none()
            .with("Accept", "text/html,application/xhtml+xml")
            .with("Accept-Encoding", "gzip"),
    );
    assert_unauthorized(&dashboard, BASIC_CHALLENGE, "the dashboard");

    let mut admitted = vec![Creds::basic("ha", "pass:word")];
    admitted.extend(Creds::every_way("view-secret"));
    admitted.extend(Creds::every_way("admin-secret"));
    for creds in &admitted {
        for target in VIEW_TARGETS {
            let response = get(&relay, target, creds);
            assert_eq!(
                response.status,
                200,
                "{target} {creds:?}: {}",
                response.text()
            );
        }
        let snapshot = get(&relay, "/snapshot.jpg?device_id=cam", creds);
        assert_eq!(snapshot.body, frame, "{creds:?}");
        let mut viewer = stream(&relay, "/live.mjpeg?device_id=cam", creds);
        assert_eq!(viewer.head.status, 200, "{creds:?}");
        assert_eq!(viewer.next_part().body, frame, "{creds:?}");
        viewer.close();
    }
    let dashboard = get(
        &relay,
        "/",
        &Creds::basic("ha", "pass:word")
            .with("Accept", "text/html")
            .with("Accept-Encoding", "gzip"),
    );
    assert_eq!(dashboard.status, 200);
    assert_eq!(dashboard.header("Content-Encoding"), Some("gzip"));

    // The health check, the push page and OPTIONS need nothing.
    assert_eq!(relay.get("/healthz").status, 200);
    let push_page = get(
        &relay,
        "/push.html",
        &Creds::none().with("Accept-Encoding", "gzip"),
    );
    assert_eq!(push_page.status, 200);
    for target in [
        "/live.mjpeg?device_id=cam",
        "/api/devices",
        "/pump_push/cam",
    ] {
        assert_eq!(
            send(&relay, "OPTIONS", target, &Creds::none()).status,
            204,
            "{target}"
        );
    }

    // The dashboard learns the user name for its snippets; pushing is not protected here.
    let devices = get(&relay, "/api/devices", &Creds::bearer("view-secret"));
    assert_eq!(devices.header("X-View-User"), Some("ha"));
    assert_eq!(devices.header("X-Push-Auth"), None);
}

#[test]
fn a_view_token_alone_asks_for_a_bearer_token() {
    let relay = Relay::start(&["--view-token", "view-secret"]);
    let refused = relay.get("/api/devices");
    assert_unauthorized(&refused, BEARER_CHALLENGE, "no token");
    let devices = get(
        &relay,
        "/api/devices",
        &Creds::basic("anyone", "view-secret"),
    );
    assert_eq!(devices.status, 200);
    assert_eq!(devices.header("X-View-User"), None);
}

#[test]
fn a_refusal_says_nothing_about_which_devices_exist() {
    let relay = Relay::start(&[
        "--view-user",
        "ha",
        "--view-password",
        "pass-word",
        "--push-token",
        "push-secret",
    ]);
    assert_eq!(
        push(
            &relay,
            "real_cam",
            &jpeg(8, 8, 1, 500),
            &Creds::bearer("push-secret")
        )
        .status,
        200
    );
    for (existing, made_up) in [
        (
            "/snapshot.jpg?device_id=real_cam",
            "/snapshot.jpg?device_id=made_up_cam",
        ),
        (
            "/live.mjpeg?device_id=real_cam",
            "/live.mjpeg?device_id=made_up_cam",
        ),
    ] {
        for creds in [Creds::none(), Creds::basic("ha", "wrong")] {
            let known = get(&relay, existing, &creds);
            let unknown = get(&relay, made_up, &creds);
            assert_unauthorized(&known, BASIC_CHALLENGE, existing);
            assert_eq!(
                refusal_seen(&known),
                refusal_seen(&unknown),
                "{existing} {creds:?}"
            );
        }
    }
    // Pushing: the same answer for an existing and a new device, with no token or a wrong one.
    let frame = jpeg(8, 8, 2, 500);
    let first = push(&relay, "real_cam", &frame, &Creds::none());
    assert_unauthorized(&first, BEARER_CHALLENGE, "push without a token");
    for (device, creds) in [
        ("made_up_cam", Creds::none()),
        ("real_cam", Creds::bearer("wrong")),
        ("made_up_cam", Creds::query("wrong")),
    ] {
        let response = push(&relay, device, &frame, &creds);
        assert_eq!(
            refusal_seen(&response),
            refusal_seen(&first),
            "{device} {creds:?}"
        );
    }
}

// --- Deleting ---------------------------------------------------------------------------------

#[test]
fn deleting_a_device_needs_the_admin_token() {
    let relay = Relay::start(&[
        "--admin-token",
        "admin-secret",
        "--push-token",
        "push-secret",
    ]);
    let frame = jpeg(8, 8, 1, 500);
    assert_eq!(
        push(&relay, "cam", &frame, &Creds::bearer("push-secret")).status,
        200
    );

    for creds in [
        Creds::none(),
        Creds::bearer("push-secret"),
        Creds::bearer("wrong"),
    ] {
        let response = send(&relay, "DELETE", "/api/devices/cam", &creds);
        assert_unauthorized(&response, BEARER_CHALLENGE, &format!("{creds:?}"));
    }
    assert!(
        relay.device("cam").is_some(),
        "a refused delete keeps the device"
    );

    let unknown = send(
        &relay,
        "DELETE",
        "/api/devices/nobody",
        &Creds::bearer("admin-secret"),
    );
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    let deleted = send(
        &relay,
        "DELETE",
        "/api/devices/cam",
        &Creds::query("admin-secret"),
    );
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert!(relay.device("cam").is_none());

    // The admin token also pushes.
    let pushed = push(
        &relay,
        "cam",
        &frame,
        &Creds::basic("admin", "admin-secret"),
    );
    assert_eq!(pushed.status, 200);
}

#[test]
fn without_an_admin_token_deleting_is_forbidden_once_anything_is_protected() {
    let relay = Relay::start(&["--push-token", "push-secret", "--view-token", "view-secret"]);
    let frame = jpeg(8, 8, 1, 500);
    assert_eq!(
        push(&relay, "cam", &frame, &Creds::bearer("push-secret")).status,
        200
    );
    for creds in [
        Creds::none(),
        Creds::bearer("push-secret"),
        Creds::bearer("view-secret"),
    ] {
        let response = send(&relay, "DELETE", "/api/devices/cam", &creds);
        assert_eq!(response.status, 403, "{creds:?}: {}", response.text());
        assert!(
            response.text().contains("--admin-token"),
            "{}",
            response.text()
        );
    }
    assert_eq!(
        devices_listed(&relay, &Creds::bearer("view-secret")),
        ["cam"]
    );
}

/// Starts a chunked streaming push of `frame` to `device`, presenting the push token.
fn start_streaming_push(relay: &Relay, device: &str, token: &str, frame: &[u8]) -> TcpStream {
    let mut pusher = relay.connect();
    write!(
        pusher,
        "POST /pump_push/{device} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: video/x-motion-jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    send_chunk(&mut pusher, frame).expect("send the first frame");
    pusher
}

fn send_chunk(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    write!(stream, "{:x}\r\n", bytes.len())?;
    stream.write_all(bytes)?;
    stream.write_all(b"\r\n")
}

#[test]
fn deleting_a_device_disconnects_its_viewer_and_streaming_pusher() {
    let relay = Relay::start(&[
        "--admin-token",
        "admin-secret",
        "--push-token",
        "push-secret",
    ]);
    let frame = jpeg(32, 24, 1, 2_000);
    let mut pusher = start_streaming_push(&relay, "doomed", "push-secret", &frame);
    relay.eventually(Duration::from_secs(5), "the streamed frame", || {
        relay
            .device("doomed")
            .is_some_and(|d| d["frames_received"] == 1)
    });
    let mut viewer = relay.stream("/live.mjpeg?device_id=doomed");
    assert_eq!(viewer.head.status, 200);
    assert_eq!(viewer.next_part().body, frame);
    relay.eventually(Duration::from_secs(5), "the viewer counted", || {
        relay.device("doomed").is_some_and(|d| d["viewers"] == 1)
    });

    let deleted = send(
        &relay,
        "DELETE",
        "/api/devices/doomed",
        &Creds::bearer("admin-secret"),
    );
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert!(
        relay.device("doomed").is_none(),
        "deleted devices are not listed"
    );

    wait_for_close(
        &mut viewer.reader,
        Duration::from_secs(5),
        "the viewer's stream",
    );
    // The pusher's connection is closed, or its next frame is refused and then it is closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !has_answer(&pusher) {
        assert!(
            Instant::now() < deadline,
            "the streaming pusher is still connected"
        );
        if send_chunk(&mut pusher, &frame).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for_close(&mut pusher, Duration::from_secs(5), "the streaming push");
    assert!(
        relay.device("doomed").is_none(),
        "the pusher did not make it anew"
    );
}

// --- Metrics and logs -------------------------------------------------------------------------

#[test]
fn refusals_are_counted_as_unauthorized_in_metrics() {
    let relay = Relay::start(&["--push-token", "push-secret", "--view-token", "view-secret"]);
    let viewer = Creds::bearer("view-secret");
    assert_eq!(unauthorized_count(&relay, &viewer), 0);
    assert_eq!(
        push(&relay, "cam", &jpeg(8, 8, 1, 500), &Creds::none()).status,
        401
    );
    assert_eq!(
        get(&relay, "/api/devices", &Creds::bearer("wrong")).status,
        401
    );
    assert_eq!(get(&relay, "/metrics", &Creds::none()).status, 401);
    // Deletion without an admin token is refused with 403, counted the same way.
    assert_eq!(
        send(&relay, "DELETE", "/api/devices/cam", &viewer).status,
        403
    );
    assert_eq!(unauthorized_count(&relay, &viewer), 4);
}

#[test]
fn tokens_in_urls_never_reach_the_log() {
    let relay = Relay::start_logging(
        "debug",
        &[
            "--push-token",
            "PUSH-SECRET-1",
            "--view-token",
            "VIEW-SECRET-2",
        ],
    );
    let frame = jpeg(8, 8, 1, 500);
    // Refused for a wrong token: logged at info with the URL.
    let refused_view = get(
        &relay,
        "/live.mjpeg?device_id=cam&token=WRONG-SECRET-3",
        &Creds::none(),
    );
    assert_eq!(refused_view.status, 401);
    let refused_push = push(
        &relay,
        "cam",
        &frame,
        &Creds::query("WRONG-SECRET-4").with("Authorization", "Bearer WRONG-SECRET-5"),
    );
    assert_eq!(refused_push.status, 401);
    // A good token on a request refused for another reason: logged at debug with the URL.
    let bad_request = get(&relay, "/snapshot.jpg?token=VIEW-SECRET-2", &Creds::none());
    assert_eq!(bad_request.status, 400, "{}", bad_request.text());
    // Accepted, with the token in the URL.
    assert_eq!(
        push(&relay, "cam", &frame, &Creds::query("PUSH-SECRET-1")).status,
        200
    );
    let mut viewer = stream(
        &relay,
        "/live.mjpeg?device_id=cam",
        &Creds::query("VIEW-SECRET-2"),
    );
    assert_eq!(viewer.next_part().body, frame);
    viewer.close();

    for line in [
        "/live.mjpeg?device_id=cam&token=***",
        "/pump_push/cam?token=***",
        "/snapshot.jpg?token=***",
        "cam: online from 127.0.0.1",
        "stopped watching",
    ] {
        relay.wait_for_log(line, Duration::from_secs(5));
    }
    for secret in [
        "PUSH-SECRET-1",
        "VIEW-SECRET-2",
        "WRONG-SECRET-3",
        "WRONG-SECRET-4",
        "WRONG-SECRET-5",
    ] {
        assert!(!relay.logged(secret), "{secret} is in the log");
    }
}

// --- The command line -------------------------------------------------------------------------

#[test]
fn check_shows_every_secret_as_stars() {
    let output = run_streampump(
        &[
            "--check",
            "--push-token",
            "push-hunter2",
            "--device-token",
            "cam=device-hunter2",
            "--view-user",
            "ha",
            "--view-password",
            "view-pass-hunter2",
            "--view-token",
            "view-hunter2",
            "--allow-origin",
            "http://ha.lan:8123",
        ],
        &[("STREAMPUMP_ADMIN_TOKEN", "admin-hunter2")],
    );
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);
    for line in [
        "--push-token ***",
        "--device-token cam=***",
        "--view-user ha",
        "--view-password ***",
        "--view-token ***",
        "--admin-token ***",
        "--allow-origin http://ha.lan:8123",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "{line:?} in:\n{printed}"
        );
    }
    let everything = format!("{printed}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        !everything.contains("hunter2"),
        "a secret was printed:\n{everything}"
    );
}

#[test]
fn credentials_come_from_the_environment_too() {
    let output = run_streampump(
        &["--check"],
        &[
            ("STREAMPUMP_PUSH_TOKEN", "env-push-hunter2"),
            ("STREAMPUMP_DEVICE_TOKEN", "cam_a=a-hunter2 cam_b=b-hunter2"),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);
    for line in [
        "--push-token ***",
        "--device-token cam_a=***",
        "--device-token cam_b=***",
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "{line:?} in:\n{printed}"
        );
    }
    assert!(!printed.contains("hunter2"), "{printed}");

    let relay = Relay::start_configured("info", &[], |command| {
        command
            .env("STREAMPUMP_DEVICE_TOKEN", "cam_a=a-token cam_b=b-token")
            .env("STREAMPUMP_VIEW_TOKEN", "view-token");
    });
    let frame = jpeg(8, 8, 1, 500);
    assert_eq!(
        push(&relay, "cam_a", &frame, &Creds::bearer("a-token")).status,
        200
    );
    assert_eq!(
        push(&relay, "cam_b", &frame, &Creds::bearer("b-token")).status,
        200
    );
    assert_eq!(
        push(&relay, "cam_a", &frame, &Creds::bearer("b-token")).status,
        401
    );
    assert_eq!(relay.get("/api/devices").status, 401);
    assert_eq!(devices_listed(&relay, &Creds::query("view-token")).len(), 2);
}

#[test]
fn invalid_credentials_stop_the_start_without_echoing_the_secret() {
    for (args, env, named) in [
        (
            vec!["--check", "--push-token", "hunter two"],
            vec![],
            "--push-token",
        ),
        (
            vec!["--check", "--device-token", "cam=hunter two"],
            vec![],
            "--device-token",
        ),
        (
            vec!["--check"],
            vec![("STREAMPUMP_VIEW_TOKEN", "hunter\ttwo")],
            "STREAMPUMP_VIEW_TOKEN",
        ),
        (
            vec!["--check", "--admin-token", "hunter-two-\u{e9}"],
            vec![],
            "--admin-token",
        ),
        // Tokens keep to letters, digits and -._~, which no URL, env file or log line alters.
        (
            vec!["--check", "--push-token", "hunter'two"],
            vec![],
            "--push-token",
        ),
        (
            vec!["--check", "--view-token", "hunter+two"],
            vec![],
            "--view-token",
        ),
    ] {
        let output = run_streampump(&args, &env);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains(named), "{args:?}: {message}");
        assert!(
            !message.contains("hunter"),
            "the secret was echoed: {message}"
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }

    // A login needs both halves.
    let output = run_streampump(&["--check", "--view-user", "ha"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("--view-password"), "{message}");
    let output = run_streampump(&["--check", "--view-password", "hunter-two"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("--view-user"), "{message}");
    assert!(!message.contains("hunter"), "{message}");
}

#[test]
fn device_tokens_come_from_a_file_with_comments_and_blank_lines() {
    let file = TempFile::new(
        "tokens-good",
        "# phones in the house\n\ncam_a=a-token\n   \n  # the garage\ncam_b = b-token\n",
    );
    let relay = Relay::start(&["--device-tokens-file", file.path()]);
    let frame = jpeg(8, 8, 1, 500);
    assert_eq!(
        push(&relay, "cam_a", &frame, &Creds::bearer("a-token")).status,
        200
    );
    assert_eq!(
        push(
            &relay,
            "cam_b",
            &frame,
            &Creds::header("X-Auth-Token", "b-token".into())
        )
        .status,
        200
    );
    assert_eq!(
        push(&relay, "cam_b", &frame, &Creds::bearer("a-token")).status,
        401
    );
    assert_eq!(push(&relay, "cam_c", &frame, &Creds::none()).status, 401);
}

#[test]
fn device_tokens_file_problems_name_the_file_and_the_line() {
    let missing = std::env::temp_dir().join("streampump-access-no-such-file");
    let missing = missing.to_str().unwrap();
    let output = run_streampump(&["--check", "--device-tokens-file", missing], &[]);
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("--device-tokens-file") && message.contains(missing),
        "{message}"
    );

    let file = TempFile::new("tokens-bad", "# comment\ncam_a=a-token\ncam_b=hunter two\n");
    let output = run_streampump(&["--check", "--device-tokens-file", file.path()], &[]);
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("line 3"), "{message}");
    assert!(
        !message.contains("hunter"),
        "the secret was echoed: {message}"
    );
    assert!(
        !message.contains("a-token"),
        "a secret was echoed: {message}"
    );
}

// --- CORS -------------------------------------------------------------------------------------

const HA: &str = "http://ha.lan:8123";

fn preflight(relay: &Relay, target: &str, origin: &str) -> Response {
    send(
        relay,
        "OPTIONS",
        target,
        &Creds::none()
            .with("Origin", origin)
            .with("Access-Control-Request-Method", "POST")
            .with(
                "Access-Control-Request-Headers",
                "content-type, authorization",
            ),
    )
}

fn cors_headers(response: &Response) -> Vec<&(String, String)> {
    response
        .headers
        .iter()
        .filter(|(name, _)| name.to_ascii_lowercase().starts_with("access-control-"))
        .collect()
}

#[test]
fn without_allow_origin_no_cors_headers_are_sent() {
    let relay = Relay::start(&[]);
    let devices = get(&relay, "/api/devices", &Creds::none().with("Origin", HA));
    assert_eq!(devices.status, 200);
    assert!(cors_headers(&devices).is_empty(), "{:?}", devices.headers);
    let answer = preflight(&relay, "/pump_push/cam", HA);
    assert_eq!(answer.status, 204);
    assert!(cors_headers(&answer).is_empty(), "{:?}", answer.headers);
}

#[test]
fn a_listed_origin_may_read_and_push_with_credentials() {
    let relay = Relay::start(&[
        "--allow-origin",
        "http://ha.lan:8123,http://other.lan",
        "--push-token",
        "push-secret",
        "--view-token",
        "view-secret",
    ]);
    let from_ha = |creds: Creds| creds.with("Origin", HA);

    let devices = get(
        &relay,
        "/api/devices",
        &from_ha(Creds::bearer("view-secret")),
    );
    assert_eq!(devices.status, 200);
    assert_eq!(devices.header("Access-Control-Allow-Origin"), Some(HA));
    assert_eq!(
        devices.header("Access-Control-Allow-Credentials"),
        Some("true")
    );

    let elsewhere = get(
        &relay,
        "/api/devices",
        &Creds::bearer("view-secret").with("Origin", "http://evil.lan"),
    );
    assert_eq!(elsewhere.status, 200);
    assert!(
        cors_headers(&elsewhere).is_empty(),
        "{:?}",
        elsewhere.headers
    );

    let answer = preflight(&relay, "/pump_push/cam", HA);
    assert_eq!(answer.status, 204);
    assert_eq!(answer.header("Access-Control-Allow-Origin"), Some(HA));
    let methods = answer
        .header("Access-Control-Allow-Methods")
        .unwrap_or_default();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = answer
        .header("Access-Control-Allow-Headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert!(
        answer.header("Access-Control-Max-Age").is_some(),
        "{:?}",
        answer.headers
    );
    let foreign = preflight(&relay, "/pump_push/cam", "http://evil.lan");
    assert!(cors_headers(&foreign).is_empty(), "{:?}", foreign.headers);

    // A refusal is readable by the page, so it can say what went wrong.
    let frame = jpeg(8, 8, 1, 500);
    let refused = push(&relay, "cam", &frame, &from_ha(Creds::none()));
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("Access-Control-Allow-Origin"), Some(HA));
    let pushed = push(
        &relay,
        "cam",
        &frame,
        &from_ha(Creds::bearer("push-secret")),
    );
    assert_eq!(pushed.status, 200);
    assert_eq!(pushed.header("Access-Control-Allow-Origin"), Some(HA));

    let mut viewer = stream(
        &relay,
        "/live.mjpeg?device_id=cam",
        &from_ha(Creds::query("view-secret")),
    );
    assert_eq!(viewer.head.status, 200);
    assert_eq!(viewer.head.header("Access-Control-Allow-Origin"), Some(HA));
    assert_eq!(viewer.next_part().body, frame);
}

#[test]
fn any_origin_gets_a_star_without_credentials() {
    let relay = Relay::start(&["--allow-origin", "*"]);
    let devices = get(&relay, "/api/devices", &Creds::none().with("Origin", HA));
    assert_eq!(devices.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(devices.header("Access-Control-Allow-Credentials"), None);
    let answer = preflight(&relay, "/pump_push/cam", "http://anywhere.example");
    assert_eq!(answer.status, 204);
    assert_eq!(answer.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(answer.header("Access-Control-Allow-Credentials"), None);
    assert!(answer
        .header("Access-Control-Allow-Methods")
        .is_some_and(|methods| methods.contains("POST")));
    // No Origin, no CORS headers: the request did not come from a page.
    assert!(cors_headers(&relay.get("/api/devices")).is_empty());
}

#[test]
fn a_viewer_that_answers_the_challenge_on_the_same_connection_gets_its_stream() {
    // VLC and ffmpeg send a stream request without credentials, get the 401 and send it again
    // with the login on the same kept-alive connection.
    let relay = Relay::start(&["--view-user", "ha", "--view-password", "view:pass"]);
    relay.push_ok("cam", &jpeg(32, 24, 7, 2_000));
    let connection = relay.connect();
    let mut writer = connection.try_clone().expect("clone the connection");
    let mut reader = BufReader::new(connection);
    write!(
        writer,
        "GET /live.mjpeg?device_id=cam HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    .expect("send the first request");
    let challenged = read_response(&mut reader, true);
    assert_eq!(challenged.status, 401);
    write!(
        writer,
        "GET /live.mjpeg?device_id=cam HTTP/1.1\r\nHost: t\r\nAuthorization: {}\r\n\r\n",
        basic("ha", "view:pass")
    )
    .expect("send the request again with the login");
    let head = read_response(&mut reader, false);
    assert_eq!(head.status, 200, "{:?}", head.text());
    let mut stream = MjpegStream { head, reader };
    assert_eq!(tag_of(&stream.next_part().body), 7);
}

/// One real JPEG (a 320×240 test pattern) made by Debian's ffmpeg.
fn ffmpeg_jpeg() -> Vec<u8> {
    let output = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i"])
        .args(["testsrc=size=320x240:rate=1", "-frames:v", "1"])
        .args(["-c:v", "mjpeg", "-f", "image2pipe", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(output.status.success(), "ffmpeg could not make a JPEG");
    output.stdout
}

#[test]
fn ffmpeg_views_with_the_login_in_its_url_and_pushes_with_a_query_token() {
    support::require_tool("ffmpeg", "-version", "ffmpeg");
    let relay = Relay::start(&[
        "--view-user",
        "ha",
        "--view-password",
        "view-pass",
        "--push-token",
        "push-s3cret",
    ]);
    // ffmpeg pushes a second of test pattern, presenting the token in the URL.
    let push_url = format!("http://{}/pump_push/ffcam?token=push-s3cret", relay.addr);
    let pushed = Command::new("timeout")
        .args([
            "30", "ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
        ])
        .args(["testsrc=size=320x240:rate=10", "-t", "1", "-c:v", "mjpeg"])
        .args(["-f", "mpjpeg", "-method", "POST", &push_url])
        .output()
        .expect("run ffmpeg");
    assert!(
        pushed.status.success(),
        "ffmpeg's push failed: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let status = get(&relay, "/api/devices", &Creds::basic("ha", "view-pass"));
    assert!(status.text().contains("\"ffcam\""), "{}", status.text());
    assert!(push(&relay, "ffcam", &ffmpeg_jpeg(), &Creds::none()).status == 401);

    // ffmpeg asks without credentials, gets the Basic challenge and answers it with the
    // login from its URL, as it does for any camera.
    let view = |password: &str| {
        let url = format!(
            "http://ha:{password}@{}/live.mjpeg?device_id=ffcam",
            relay.addr
        );
        Command::new("timeout")
            .args([
                "30",
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-rw_timeout",
                "10000000",
            ])
            .args([
                "-i",
                &url,
                "-frames:v",
                "2",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "gray",
                "-",
            ])
            .output()
            .expect("run ffmpeg")
    };
    let watched = view("view-pass");
    assert!(
        watched.status.success(),
        "ffmpeg could not view: {}",
        String::from_utf8_lossy(&watched.stderr)
    );
    assert_eq!(watched.stdout.len(), 2 * 320 * 240);
    let refused = view("wrong-pass");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
