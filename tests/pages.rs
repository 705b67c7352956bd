//! The web pages: served compressed to browsers, byte for byte the files in `assets/` as the build
//! minifies them, and explained to clients that cannot take them. (Their behaviour in a browser is
//! `make e2e`.)

mod support;

use std::io::Read;

use support::Relay;

fn get_with(relay: &Relay, target: &str, headers: &str) -> support::Response {
    relay.raw(
        format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}\r\n")
            .as_bytes(),
    )
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut html = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut html)
        .expect("a valid gzip stream");
    html
}

#[path = "../build_support/minify.rs"]
mod minify;

/// What the relay must serve for `assets/{name}`: the file, minified by the build.
fn asset(name: &str) -> Vec<u8> {
    let html = std::fs::read_to_string(format!("{}/assets/{name}", env!("CARGO_MANIFEST_DIR")))
        .expect("read asset");
    minify::minify(&html).into_bytes()
}

#[test]
fn browsers_get_the_push_page_and_the_dashboard_compressed() {
    let relay = Relay::start(&[]);
    for (target, accept, file, vary) in [
        (
            "/push.html?device_id=cam_kitchen",
            "*/*",
            "push.html",
            "Accept-Encoding",
        ),
        (
            "/",
            "text/html,application/xhtml+xml,*/*;q=0.8",
            "index.html",
            "Accept, Accept-Encoding",
        ),
    ] {
        let page = get_with(
            &relay,
            target,
            &format!("Accept: {accept}\r\nAccept-Encoding: gzip, deflate, br\r\n"),
        );
        assert_eq!(page.status, 200, "{target}: {}", page.text());
        assert_eq!(page.header("Content-Encoding"), Some("gzip"));
        assert_eq!(
            page.header("Content-Type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(page.header("Vary"), Some(vary), "{target}");
        assert_eq!(gunzip(&page.body), asset(file), "{target}");
    }
}

#[test]
fn clients_without_gzip_get_the_text_index_or_a_way_to_ask() {
    let relay = Relay::start(&[]);
    let index = get_with(&relay, "/", "Accept: */*\r\n");
    assert_eq!(index.status, 200);
    assert!(index.text().starts_with("streampump "), "{}", index.text());
    assert_eq!(index.header("Vary"), Some("Accept, Accept-Encoding"));

    for headers in [
        "",
        "Accept-Encoding: identity\r\n",
        "Accept-Encoding: gzip;q=0\r\n",
    ] {
        let refused = get_with(&relay, "/push.html", headers);
        assert_eq!(refused.status, 406, "{headers:?}");
        assert!(
            refused.text().contains("--compressed"),
            "{}",
            refused.text()
        );
    }
    let dashboard = get_with(&relay, "/", "Accept: text/html\r\n");
    assert_eq!(dashboard.status, 406);

    // The pages are not writable.
    let posted = relay.raw(
        b"POST /push.html HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(posted.status, 405);
}
