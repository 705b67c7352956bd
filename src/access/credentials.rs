//! What a request presents as credentials, gathered from every place clients put them.
//!
//! Clients differ in what they can send: go2rtc, ffmpeg, VLC and Home Assistant speak Basic
//! auth (from `user:password@` in a URL, or their settings); scripts send
//! `Authorization: Bearer` or `X-Auth-Token`; an `<img>` tag, `push.html` and a pasted URL can
//! only carry `?token=`. All of them are read here, and a Basic password also counts as a
//! token, so a client that only speaks Basic can present a token with any user name.

use crate::access::Secret;
use crate::http::head::Head;
use crate::http::target::percent_decode;

/// The credentials one request carries. Empty for a request with none.
#[derive(Debug, Default)]
pub struct Presented {
    /// Bearer, `X-Auth-Token`, `?token=` and any Basic password.
    tokens: Vec<Vec<u8>>,
    /// A Basic login: user name and password.
    login: Option<(Vec<u8>, Vec<u8>)>,
}

impl Presented {
    pub fn from_head(head: &Head) -> Presented {
        let query_token = query_token(head.target());
        Presented::from_parts(
            head.header("Authorization"),
            head.header("X-Auth-Token"),
            query_token.as_deref(),
        )
    }

    /// From the raw `Authorization` and `X-Auth-Token` values and the decoded `token` query
    /// parameter. An `Authorization` value that cannot be read counts as no credential.
    pub fn from_parts(
        authorization: Option<&str>,
        x_auth_token: Option<&str>,
        query_token: Option<&str>,
    ) -> Presented {
        let mut presented = Presented::default();
        if let Some((scheme, rest)) = authorization.and_then(|v| v.trim().split_once(' ')) {
            let rest = rest.trim();
            if scheme.eq_ignore_ascii_case("Bearer") {
                presented.tokens.push(rest.as_bytes().to_vec());
            } else if scheme.eq_ignore_ascii_case("Basic") {
                if let Some(decoded) = decode_base64(rest) {
                    // The user name ends at the first colon; the password may hold colons.
                    if let Some(colon) = decoded.iter().position(|&b| b == b':') {
                        let password = decoded[colon + 1..].to_vec();
                        presented.tokens.push(password.clone());
                        presented.login = Some((decoded[..colon].to_vec(), password));
                    }
                }
            }
        }
        for token in [x_auth_token.map(str::trim), query_token]
            .into_iter()
            .flatten()
        {
            presented.tokens.push(token.as_bytes().to_vec());
        }
        presented
    }

    /// Whether any presented token is `secret`. Compares against every one.
    pub fn has(&self, secret: &Secret) -> bool {
        self.tokens
            .iter()
            .fold(false, |found, token| found | secret.matches(token))
    }

    /// Whether the Basic login is this user and password.
    pub fn has_login(&self, user: &str, password: &Secret) -> bool {
        self.login
            .as_ref()
            .is_some_and(|(given_user, given_password)| {
                (given_user.as_slice() == user.as_bytes()) & password.matches(given_password)
            })
    }
}

/// The value of the first `token=` query parameter, percent-decoded. Only a name sent as
/// these very characters counts, not a percent-encoded one: the log masks the literal
/// `token=` (see `logging::mask_tokens`), so an encoded name would carry a credential past it.
pub fn query_token(url: &str) -> Option<String> {
    let query = url.split('#').next()?.split_once('?')?.1;
    let raw = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))?;
    percent_decode(raw, true).ok()
}

/// Standard base64 (RFC 4648, `+` and `/`), padding optional. `None` for anything else.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let digits = text.trim_end_matches('=').as_bytes();
    if digits.len() % 4 == 1 || text.len() - digits.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    for &digit in digits {
        let value = match digit {
            b'A'..=b'Z' => digit - b'A',
            b'a'..=b'z' => digit - b'a' + 26,
            b'0'..=b'9' => digit - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        bit_count += 6;
        if bit_count >= 8 {
            bit_count -= 8;
            out.push((bits >> bit_count) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_refuses_junk() {
        // Encoded by Python's base64 module.
        for (text, encoded) in [
            ("", ""),
            ("a", "YQ=="),
            ("ab", "YWI="),
            ("abc", "YWJj"),
            ("user:pa:ss", "dXNlcjpwYTpzcw=="),
            ("\u{e9}t\u{e9}", "w6l0w6k="),
        ] {
            assert_eq!(decode_base64(encoded).as_deref(), Some(text.as_bytes()));
        }
        assert_eq!(
            decode_base64("dXNlcjpwYXNz").as_deref(),
            Some(&b"user:pass"[..])
        );
        assert_eq!(
            decode_base64("dXNlcjpwYQ").as_deref(),
            Some(&b"user:pa"[..])
        );
        assert_eq!(decode_base64("a"), None);
        assert_eq!(decode_base64("ab!c"), None);
        assert_eq!(decode_base64("ab==="), None);
    }

    #[test]
    fn every_place_a_token_can_be_is_read() {
        let token = Secret::new("tok").unwrap();
        for presented in [
            Presented::from_parts(Some("Bearer tok"), None, None),
            Presented::from_parts(Some("bearer  tok "), None, None),
            Presented::from_parts(None, Some("tok"), None),
            Presented::from_parts(None, None, Some("tok")),
            Presented::from_parts(Some("Basic eDp0b2s="), None, None),
            Presented::from_parts(Some("Bearer nope"), Some("nope"), Some("tok")),
        ] {
            assert!(presented.has(&token), "{presented:?}");
        }
        for presented in [
            Presented::default(),
            Presented::from_parts(Some("Bearer"), None, None),
            Presented::from_parts(Some("Token tok"), None, None),
            Presented::from_parts(Some("Basic !!!"), None, None),
            Presented::from_parts(Some("Basic dG9r"), None, None),
        ] {
            assert!(!presented.has(&token), "{presented:?}");
        }
    }

    #[test]
    fn only_a_literal_token_parameter_counts() {
        assert_eq!(
            query_token("/x?device_id=c&token=a%2Bb+c").as_deref(),
            Some("a+b c")
        );
        assert_eq!(query_token("http://h/x?token=t#frag").as_deref(), Some("t"));
        assert_eq!(query_token("/x?%74oken=t"), None);
        assert_eq!(query_token("/x?mytoken=t"), None);
        assert_eq!(query_token("/x?token=%ZZ"), None);
        assert_eq!(query_token("/x"), None);
    }

    #[test]
    fn a_basic_login_splits_at_the_first_colon() {
        let password = Secret::password("pa:ss").unwrap();
        let header = "Basic aGE6cGE6c3M="; // ha:pa:ss
        let presented = Presented::from_parts(Some(header), None, None);
        assert!(presented.has_login("ha", &password));
        assert!(!presented.has_login("h", &password));
        assert!(!Presented::default().has_login("ha", &password));
    }
}
