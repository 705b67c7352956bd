//! Cross-origin access (CORS): which other web origins may push to and read from the relay.
//!
//! Off by default: a page on another origin can still show a stream in an `<img>` (that needs
//! no permission), but cannot `fetch` a snapshot, read `/api/devices` or POST a frame. With
//! `--allow-origin` the listed origins can. A push of `image/jpeg` with a token header is not
//! a "simple" request, so browsers first send a preflight `OPTIONS`; it is answered with the
//! methods of the path, the request headers the relay reads, and how long to cache that.
//!
//! A listed origin may send credentials (the browser's Basic login); `*` may not, because that
//! would let any site a viewer visits use the login their browser remembers. Tokens in a
//! header or `?token=` work with both.

use crate::http::Headers;
use crate::text::quoted::Quoted;

/// Request headers a cross-origin page may send.
const ALLOWED_REQUEST_HEADERS: &str = "Authorization, Content-Type, X-Auth-Token";
/// Response headers such a page may read besides the basic ones.
const EXPOSED_HEADERS: &str =
    "X-Frame-Age-Ms, Retry-After, WWW-Authenticate, X-View-User, X-Push-Auth";
/// How long browsers may reuse a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "600";

/// The `--allow-origin` setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AllowedOrigins {
    #[default]
    None,
    Any,
    Listed(Vec<String>),
}

impl AllowedOrigins {
    /// `*`, or origins separated by commas: `https://ha.example.com,http://192.168.1.5:8123`.
    pub fn parse(text: &str) -> Result<AllowedOrigins, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(AllowedOrigins::None);
        }
        if text == "*" {
            return Ok(AllowedOrigins::Any);
        }
        let mut origins = Vec::new();
        for origin in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let origin = origin.to_ascii_lowercase();
            let host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            let well_formed = host.is_some_and(|host| {
                !host.is_empty()
                    && host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
            });
            if !well_formed {
                return Err(format!(
                    "{} is not an origin like http://ha.lan:8123 (or *)",
                    Quoted(&origin)
                ));
            }
            origins.push(origin);
        }
        Ok(AllowedOrigins::Listed(origins))
    }

    /// The headers to add to an answer for a request carrying `origin` (its `Origin` header).
    /// For a preflight, `preflight_methods` is the path's `Allow` list.
    pub fn headers(&self, origin: Option<&str>, preflight_methods: Option<&str>) -> Headers {
        let mut headers = Headers::default();
        let Some(origin) = origin else {
            return headers;
        };
        match self {
            AllowedOrigins::None => return headers,
            AllowedOrigins::Any => headers.add("Access-Control-Allow-Origin", "*"),
            AllowedOrigins::Listed(origins) => {
                if !origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                    // The answer depends on the origin, so caches must know.
                    headers.add("Vary", "Origin");
                    return headers;
                }
                headers.add("Access-Control-Allow-Origin", origin);
                headers.add("Access-Control-Allow-Credentials", "true");
                headers.add("Vary", "Origin");
            }
        }
        match preflight_methods {
            Some(methods) => {
                headers.add("Access-Control-Allow-Methods", methods);
                headers.add("Access-Control-Allow-Headers", ALLOWED_REQUEST_HEADERS);
                headers.add("Access-Control-Max-Age", PREFLIGHT_MAX_AGE);
            }
            None => headers.add("Access-Control-Expose-Headers", EXPOSED_HEADERS),
        }
        headers
    }

    /// For `--check`.
    pub fn as_flag_value(&self) -> String {
        match self {
            AllowedOrigins::None => String::new(),
            AllowedOrigins::Any => "*".to_string(),
            AllowedOrigins::Listed(origins) => origins.join(","),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_and_values(headers: &Headers) -> Vec<(String, String)> {
        headers
            .as_str()
            .lines()
            .filter_map(|line| line.split_once(": "))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn origins_are_checked_when_configured() {
        assert_eq!(AllowedOrigins::parse(""), Ok(AllowedOrigins::None));
        assert_eq!(AllowedOrigins::parse("*"), Ok(AllowedOrigins::Any));
        assert_eq!(
            AllowedOrigins::parse("http://a:8123, HTTPS://B.example"),
            Ok(AllowedOrigins::Listed(vec![
                "http://a:8123".into(),
                "https://b.example".into()
            ]))
        );
        for bad in [
            "a.example",
            "http://",
            "https://x/path",
            "ftp://x",
            "http://x y",
        ] {
            assert!(AllowedOrigins::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listed_origins_get_their_own_name_back_with_credentials() {
        let allowed = AllowedOrigins::parse("http://ha.lan:8123").unwrap();
        let headers = names_and_values(&allowed.headers(Some("http://ha.lan:8123"), None));
        assert!(headers.contains(&(
            "Access-Control-Allow-Origin".into(),
            "http://ha.lan:8123".into()
        )));
        assert!(headers.contains(&("Access-Control-Allow-Credentials".into(), "true".into())));
        assert_eq!(
            names_and_values(&allowed.headers(Some("http://evil.lan"), None)),
            vec![("Vary".into(), "Origin".into())]
        );
        assert!(allowed.headers(None, None).is_empty());
        assert!(AllowedOrigins::None
            .headers(Some("http://ha.lan:8123"), None)
            .is_empty());
    }

    #[test]
    fn any_origin_gets_a_star_without_credentials_and_preflights_are_complete() {
        let headers = names_and_values(
            &AllowedOrigins::Any.headers(Some("http://x"), Some("POST, PUT, OPTIONS")),
        );
        assert_eq!(
            headers,
            vec![
                ("Access-Control-Allow-Origin".into(), "*".into()),
                (
                    "Access-Control-Allow-Methods".into(),
                    "POST, PUT, OPTIONS".into()
                ),
                (
                    "Access-Control-Allow-Headers".into(),
                    ALLOWED_REQUEST_HEADERS.into()
                ),
                ("Access-Control-Max-Age".into(), "600".into()),
            ]
        );
    }
}
