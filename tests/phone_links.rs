//! "Add a phone" on the dashboard: `GET /api/phone` gives the push link for a device, and
//! `GET /qr.svg` the same link as a QR code, which Debian's `zbarimg` reads back. The link
//! carries the dashboard's token only when that token may push; the code is made only of
//! links the relay builds, within the encoder's size.

mod support;

use std::io::{BufReader, Write};
use std::net::{IpAddr, TcpStream};

use streampump::host_addresses::lan_addresses;
use support::zbar::{svg_modules, write_pgm, zbar_decode};
use support::{read_response, require_tool, scratch_dir, Relay, Response, IO_TIMEOUT};

/// A relay on every IPv4 address, and the LAN address the tests reach it by, as a phone
/// would.
fn relay_on_lan(extra: &[&str]) -> (Relay, String) {
    let address = lan_addresses()
        .into_iter()
        .find(IpAddr::is_ipv4)
        .expect("this machine needs an IPv4 address besides loopback for these tests");
    let mut args = vec!["--listen", "0.0.0.0:0"];
    args.extend_from_slice(extra);
    let relay = Relay::start(&args);
    let authority = format!("{address}:{}", relay.addr.port());
    (relay, authority)
}

/// `GET target` sent to `authority` with that `Host`, as a browser that typed it would.
fn get_via(authority: &str, target: &str) -> Response {
    let mut stream = TcpStream::connect(authority).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: {authority}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    read_response(&mut BufReader::new(stream), true)
}

fn push_link(authority: &str, query: &str) -> serde_json::Value {
    let response = get_via(authority, &format!("/api/phone?{query}"));
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_slice(&response.body).expect("JSON")
}

/// What `zbarimg` reads from the code at `/qr.svg?{query}`, drawn from the SVG's modules.
fn code_text(authority: &str, query: &str) -> String {
    require_tool("zbarimg", "--version", "zbar-tools");
    let response = get_via(authority, &format!("/qr.svg?{query}"));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("Content-Type"), Some("image/svg+xml"));
    let (side, dark) = svg_modules(&response.text());
    let dir = scratch_dir("qr-svg");
    let path = dir.join("code.pgm");
    write_pgm(&path, side, |row, column| dark[row * side + column]);
    let text = zbar_decode(&path).expect("zbarimg reads the SVG");
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(text).unwrap().trim_end().to_string()
}

#[test]
fn an_open_relay_gives_the_link_and_its_code() {
    let (_relay, authority) = relay_on_lan(&[]);
    let answer = push_link(&authority, "device_id=cam_kitchen");
    let expected = format!("http://{authority}/push.html?device_id=cam_kitchen");
    assert_eq!(answer["reachable"], true);
    assert_eq!(answer["push"], expected.as_str());
    assert_eq!(answer["push_token"], "none");
    // No HTTPS yet: no certificate set-up page to point to.
    assert_eq!(answer["setup"], serde_json::Value::Null);
    assert_eq!(code_text(&authority, "device_id=cam_kitchen"), expected);
    // The page the link names is there.
    let page = get_via(&authority, "/push.html?device_id=cam_kitchen");
    assert_eq!(page.status, 200);
}

#[test]
fn the_link_carries_the_dashboards_token_only_when_it_may_push() {
    let (_relay, authority) = relay_on_lan(&[
        "--push-token",
        "push-secret",
        "--view-token",
        "view-secret",
        "--admin-token",
        "admin-secret",
    ]);
    // The push token goes into the link and its code (on a relay whose viewing is open, so
    // that a dashboard opened with the push token may ask for it).
    {
        let (_open, authority) = relay_on_lan(&["--push-token", "push-secret"]);
        let answer = push_link(&authority, "device_id=cam_1&token=push-secret");
        let carried = format!("http://{authority}/push.html?device_id=cam_1&token=push-secret");
        assert_eq!(answer["push"], carried.as_str());
        assert_eq!(answer["push_token"], "carried");
        assert_eq!(
            code_text(&authority, "device_id=cam_1&token=push-secret"),
            carried
        );
    }
    // The admin token pushes too, but a phone keeps its link in its history, and the admin
    // token also forgets devices: a placeholder instead.
    let answer = push_link(&authority, "device_id=cam_1&token=admin-secret");
    assert_eq!(answer["push_token"], "needed");
    assert!(!answer["push"].as_str().unwrap().contains("admin-secret"));
    // A view token cannot push: a placeholder, never the view token.
    let answer = push_link(&authority, "device_id=cam_1&token=view-secret");
    assert_eq!(
        answer["push"],
        format!("http://{authority}/push.html?device_id=cam_1&token=PUSH_TOKEN").as_str()
    );
    assert_eq!(answer["push_token"], "needed");
    // Both need what the dashboard needs.
    assert_eq!(
        get_via(&authority, "/api/phone?device_id=cam_1").status,
        401
    );
    assert_eq!(get_via(&authority, "/qr.svg?device_id=cam_1").status, 401);
}

#[test]
fn a_link_too_long_for_a_code_is_refused_not_cut() {
    let token = "t".repeat(200);
    let (_relay, authority) = relay_on_lan(&["--push-token", &token]);
    let response = get_via(
        &authority,
        &format!("/qr.svg?device_id=cam_1&token={token}"),
    );
    assert_eq!(response.status, 404);
    assert!(
        response.text().contains("do not fit in a QR code"),
        "{}",
        response.text()
    );
    // The text link is still given.
    let answer = push_link(&authority, &format!("device_id=cam_1&token={token}"));
    assert_eq!(answer["push_token"], "carried");
}

#[test]
fn a_loopback_relay_gives_the_reason_instead_of_links() {
    let relay = Relay::start(&[]);
    let answer: serde_json::Value =
        serde_json::from_slice(&relay.get("/api/phone?device_id=cam_1").body).unwrap();
    assert_eq!(answer["reachable"], false);
    let why = answer["why"].as_str().unwrap();
    assert!(why.contains("listens on 127.0.0.1 only"), "{why}");
    let code = relay.get("/qr.svg?device_id=cam_1");
    assert_eq!(code.status, 404);
    assert!(
        code.text().contains("phones cannot reach"),
        "{}",
        code.text()
    );
}
