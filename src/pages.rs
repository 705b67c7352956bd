//! The two web pages the relay serves: the phone's push page (`/push.html`) and the dashboard
//! (`/` for browsers).
//!
//! Both are plain HTML files in `assets/`, with their script and style inline, so that a phone
//! on a LAN without internet loads everything from the relay. `build.rs` gzips them into the
//! binary: about 8 KB instead of 20 KB of a router's flash, and fewer bytes over a weak Wi-Fi.
//! Every browser accepts gzip; a client that does not (curl without `--compressed`) is told how
//! to ask, since decompressing here would cost more binary than the pages themselves.

use tiny_http::{Header, Request, Response};

use crate::responses::{self, TextResponse};

/// A page as it is stored: gzip-compressed HTML.
pub struct Page {
    pub name: &'static str,
    pub gzip: &'static [u8],
}

pub const PUSH: Page = Page {
    name: "push.html",
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/push.html.gz")),
};

pub const DASHBOARD: Page = Page {
    name: "index.html",
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/index.html.gz")),
};

/// Whether an `Accept-Encoding` value admits gzip (`gzip`, `x-gzip` or `*`, without `q=0`).
pub fn accepts_gzip(accept_encoding: &str) -> bool {
    accept_encoding.split(',').any(|entry| {
        let mut parts = entry.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        // `q=0` (or `0.0`, `0.000`) means "not this one".
        let refused = parts.any(|parameter| {
            let parameter = parameter.trim().to_ascii_lowercase();
            parameter
                .strip_prefix("q=")
                .is_some_and(|q| q.starts_with('0') && q.chars().all(|c| c == '0' || c == '.'))
        });
        !refused
            && (coding.eq_ignore_ascii_case("gzip")
                || coding.eq_ignore_ascii_case("x-gzip")
                || coding == "*")
    })
}

/// Whether an `Accept` value names HTML: browsers do, curl and scripts do not.
pub fn prefers_html(accept: &str) -> bool {
    accept
        .split(',')
        .any(|entry| entry.split(';').next().unwrap_or_default().trim() == "text/html")
}

/// The value of the request header `name`, if present.
pub fn header_value<'a>(request: &'a Request, name: &'static str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|header| header.field.equiv(name))
        .map(|header| header.value.as_str())
}

/// Serves `page` compressed, or explains how to ask for it.
pub fn serve(request: Request, page: &Page) -> std::io::Result<()> {
    if !header_value(&request, "Accept-Encoding").is_some_and(accepts_gzip) {
        let message = format!(
            "{} is stored gzip-compressed: open it in a browser, or with curl add --compressed",
            page.name
        );
        return request.respond(responses::reason(406, &message));
    }
    request.respond(compressed(page))
}

fn compressed(page: &Page) -> TextResponse {
    // A copy of a few kilobytes per page view; a response type of its own would cost more in
    // the binary (tiny_http's writer is generic over the body) than it saves.
    let mut response = Response::from_data(page.gzip.to_vec());
    for (name, value) in [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Encoding", "gzip"),
        ("Vary", "Accept-Encoding"),
        // Revalidate each time, so that a relay upgrade shows its new page at once.
        ("Cache-Control", "no-cache"),
        ("X-Content-Type-Options", "nosniff"),
    ] {
        if let Ok(header) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_accepted_unless_refused() {
        assert!(accepts_gzip("gzip, deflate, br"));
        assert!(accepts_gzip("br;q=1.0, gzip;q=0.8"));
        assert!(accepts_gzip("*"));
        assert!(accepts_gzip("x-gzip"));
        assert!(!accepts_gzip(""));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip("deflate, br"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("gzip;q=0.000"));
        assert!(!accepts_gzip("gzipped"));
    }

    #[test]
    fn html_is_what_browsers_ask_for() {
        assert!(prefers_html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!prefers_html("*/*"));
        assert!(!prefers_html(""));
        assert!(!prefers_html("application/json"));
    }

    #[test]
    fn the_pages_are_gzip_streams() {
        for page in [PUSH, DASHBOARD] {
            assert_eq!(&page.gzip[..3], &[0x1f, 0x8b, 0x08], "{}", page.name);
            assert!(page.gzip.len() < 8 * 1024, "{} grew", page.name);
        }
    }
}
