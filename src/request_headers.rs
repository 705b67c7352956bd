//! Reading a request's headers by name.
//!
//! tiny_http keeps headers as a list and compares names without regard to case (`equiv`);
//! the relay looks at a handful of them (`Accept`, `Accept-Encoding`, `Content-Type`,
//! `Transfer-Encoding`) in several places, all through this one lookup.

use tiny_http::Request;

/// The value of the first header called `name` (any case), if the request has one.
pub fn value<'a>(request: &'a Request, name: &'static str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|header| header.field.equiv(name))
        .map(|header| header.value.as_str())
}
