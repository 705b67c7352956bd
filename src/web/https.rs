//! The HTTPS set-up answers: the authority's certificate at `/ca.crt` and the facts the
//! pages need at `/api/https`.
//!
//! `/ca.crt` is DER with `application/x-x509-ca-cert`: the type Android's certificate
//! installer registers for, and the encoding its help names for CA certificates ("DER-encoded
//! X.509 certificates in files with a .crt or .cer extension"). Since Android 11 a download
//! is no longer installed by opening it; the set-up page walks the user through Settings,
//! where the saved `.crt` file is picked. Desktop browsers offer the same file to their
//! certificate managers.

use std::fmt::Write;

use crate::http::{Payload, Response};
use crate::https::Https;
use crate::refusal::{Reason, Refusal};

/// `GET /ca.crt`, or why there is none.
pub fn authority_certificate(https: Option<&Https>) -> Result<Response, Refusal> {
    let Some(https) = https else {
        return Err(Refusal::new(
            Reason::NotFound,
            "HTTPS is off (--tls-listen off): there is no certificate authority",
        ));
    };
    let Some(authority) = &https.authority else {
        return Err(Refusal::new(
            Reason::NotFound,
            "HTTPS uses the certificate given with --tls-cert; there is no certificate \
             authority to install",
        ));
    };
    Ok(Response::new(200, Payload::Owned(authority.der.clone()))
        .with_header("Content-Type", "application/x-x509-ca-cert")
        .with_header(
            "Content-Disposition",
            "attachment; filename=\"streampump-ca.crt\"",
        )
        .with_header("Cache-Control", "no-cache"))
}

/// `/ca.crt`, `/https.html` and `/api/https` in a build without HTTPS.
#[cfg(not(feature = "tls"))]
pub fn not_built_in() -> Refusal {
    Refusal::new(
        Reason::NotFound,
        "this build has no HTTPS (built without the tls feature)",
    )
}

/// `GET /api/https`: `{"port":19443,"authority":true,"fingerprint":"AB:…"}`, with `null`
/// and `false` where there is no HTTPS or no own authority.
pub fn facts_json(https: Option<&Https>) -> String {
    let mut out = String::with_capacity(160);
    match https {
        None => out.push_str("{\"port\":null,\"authority\":false,\"fingerprint\":null}"),
        Some(https) => {
            let _ = write!(out, "{{\"port\":{},", https.port);
            match &https.authority {
                // Upper-case hex and colons: nothing in it needs escaping.
                Some(authority) => {
                    let _ = write!(
                        out,
                        "\"authority\":true,\"fingerprint\":\"{}\"}}",
                        authority.fingerprint
                    );
                }
                None => out.push_str("\"authority\":false,\"fingerprint\":null}"),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::https::{Authority, HandshakeTally};
    use std::sync::Arc;

    #[test]
    fn facts_for_the_pages() {
        assert_eq!(
            facts_json(None),
            r#"{"port":null,"authority":false,"fingerprint":null}"#
        );
        let https = Https {
            port: 19443,
            authority: Some(Authority {
                der: vec![1, 2],
                fingerprint: "0A:0B".into(),
            }),
            handshakes: Arc::new(HandshakeTally::default()),
        };
        let some = Some(&https);
        assert_eq!(
            facts_json(some),
            r#"{"port":19443,"authority":true,"fingerprint":"0A:0B"}"#
        );
        let response = authority_certificate(some).unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(authority_certificate(None).unwrap_err().status(), 404);
    }
}
