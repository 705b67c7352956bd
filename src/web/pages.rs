//! The two web pages the relay serves: the phone's push page (`/push.html`) and the dashboard
//! (`/` for browsers).
//!
//! Both are plain HTML files in `assets/`, with their script and style inline, so that a phone
//! on a LAN without internet loads everything from the relay. `build.rs` gzips them into the
//! binary: about 8 KB instead of 20 KB of a router's flash, and fewer bytes over a weak Wi-Fi.
//! Every browser accepts gzip; a client that does not (curl without `--compressed`) is told how
//! to ask, since decompressing here would cost more binary than the pages themselves. For the
//! same reason a request without `Accept-Encoding`, which RFC 9110 lets a server answer with
//! any coding, gets that explanation (406) rather than gzip bytes a terminal would show raw.

use crate::http::{Payload, Response};
use crate::refusal::{Reason, Refusal};

/// A page as it is stored: gzip-compressed HTML.
pub struct Page {
    pub name: &'static str,
    pub gzip: &'static [u8],
    /// The request headers the answer depends on, for caches.
    pub vary: &'static str,
}

pub const PUSH: Page = Page {
    name: "push.html",
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/push.html.gz")),
    vary: "Accept-Encoding",
};

/// `/https.html`: how to set a phone up for HTTPS (the certificate, its fingerprint). Only in
/// a build with HTTPS.
#[cfg(feature = "tls")]
pub const HTTPS: Page = Page {
    name: "https.html",
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/https.html.gz")),
    vary: "Accept-Encoding",
};

/// Served at `/` when the client asks for HTML; the plain-text index otherwise.
pub const DASHBOARD: Page = Page {
    name: "index.html",
    gzip: include_bytes!(concat!(env!("OUT_DIR"), "/index.html.gz")),
    vary: INDEX_VARY,
};

/// What the answer at `/` depends on, whichever variant is sent.
pub const INDEX_VARY: &str = "Accept, Accept-Encoding";

/// Whether a parameter list (`;q=0.5;level=1`) carries a weight of zero: "not this one".
fn weighs_zero<'a>(mut parameters: impl Iterator<Item = &'a str>) -> bool {
    parameters.any(|parameter| {
        let parameter = parameter.trim().to_ascii_lowercase();
        parameter
            .strip_prefix("q=")
            .is_some_and(|q| q.starts_with('0') && q.chars().all(|c| c == '0' || c == '.'))
    })
}

/// Whether an `Accept-Encoding` value admits gzip (RFC 9110 §12.5.3): `gzip` or `x-gzip`
/// with a weight above zero, or else `*` with a weight above zero. An absent header is
/// treated as "no gzip" (see the module docs).
pub fn accepts_gzip(accept_encoding: &str) -> bool {
    let mut gzip = None;
    let mut any = None;
    for entry in accept_encoding.split(',') {
        let mut parts = entry.split(';');
        let coding = parts.next().unwrap_or_default().trim();
        let wanted = !weighs_zero(parts);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(gzip.unwrap_or(false) || wanted);
        } else if coding == "*" {
            any = Some(wanted);
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Whether an `Accept` value names HTML with a weight above zero: browsers do, curl and
/// scripts do not.
pub fn prefers_html(accept: &str) -> bool {
    accept.split(',').any(|entry| {
        let mut parts = entry.split(';');
        let media_type = parts.next().unwrap_or_default().trim();
        media_type.eq_ignore_ascii_case("text/html") && !weighs_zero(parts)
    })
}

/// `page` compressed, or why it cannot be sent to a client that does not take gzip.
pub fn serve(
    accept_encoding: Option<&str>,
    page: &Page,
) -> Result<Response, (Refusal, &'static str)> {
    if !accept_encoding.is_some_and(accepts_gzip) {
        let message = format!(
            "{} is stored gzip-compressed: open it in a browser, or with curl add --compressed",
            page.name
        );
        return Err((Refusal::new(Reason::NotAcceptable, message), page.vary));
    }
    Ok(Response::new(200, Payload::Static(page.gzip))
        .with_header("Content-Type", "text/html; charset=utf-8")
        .with_header("Content-Encoding", "gzip")
        .with_header("Vary", page.vary)
        // Revalidate each time, so that a relay upgrade shows its new page at once.
        .with_header("Cache-Control", "no-cache")
        .with_header("X-Content-Type-Options", "nosniff"))
}

/// The plain-text index at `/`, marked as one variant of that URL.
pub fn text_index(body: &str) -> Response {
    Response::text(200, body).with_header("Vary", INDEX_VARY)
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
        // A listed coding's own weight wins over `*` (RFC 9110 §12.5.3).
        assert!(!accepts_gzip("gzip;q=0, *"));
        assert!(accepts_gzip("*;q=0, gzip"));
        assert!(!accepts_gzip("*;q=0"));
        assert!(accepts_gzip("GZIP;Q=0.5"));
    }

    #[test]
    fn html_is_what_browsers_ask_for() {
        assert!(prefers_html(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!prefers_html("*/*"));
        assert!(!prefers_html(""));
        assert!(!prefers_html("application/json"));
        assert!(!prefers_html("text/html;q=0, */*"));
        assert!(prefers_html("Text/HTML"));
    }

    #[test]
    fn the_pages_are_gzip_streams() {
        for page in [PUSH, DASHBOARD] {
            assert_eq!(&page.gzip[..3], &[0x1f, 0x8b, 0x08], "{}", page.name);
            assert!(page.gzip.len() < 8 * 1024, "{} grew", page.name);
        }
    }
}
