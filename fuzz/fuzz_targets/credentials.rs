//! Credentials and the log masking against arbitrary input: reading any `Authorization`,
//! `X-Auth-Token` or query token never panics, only the configured secret matches, and after
//! masking no `?token=`/`&token=` in a log line is followed by anything but `***`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use streampump::access::credentials::Presented;
use streampump::access::Secret;
use streampump::logging::mask_tokens;

fuzz_target!(|input: (&str, &str, &str)| {
    let (authorization, x_auth_token, line) = input;
    let secret = Secret::new("fuzz-secret").unwrap_or_else(|_| unreachable!("a valid token"));
    let presented = Presented::from_parts(Some(authorization), Some(x_auth_token), None);
    if presented.has(&secret) {
        // Only a way of writing the secret itself can match it.
        let bearer = authorization
            .trim()
            .split_once(' ')
            .map(|(_, rest)| rest.trim());
        assert!(
            x_auth_token.trim() == "fuzz-secret"
                || bearer == Some("fuzz-secret")
                || authorization
                    .trim()
                    .to_ascii_lowercase()
                    .starts_with("basic "),
            "matched {authorization:?} / {x_auth_token:?}"
        );
    }
    let masked = mask_tokens(line.to_string());
    for marker in ["?token=", "&token="] {
        for (index, _) in masked.match_indices(marker) {
            let rest = &masked[index + marker.len()..];
            assert!(
                rest.is_empty()
                    || rest.starts_with("***")
                    || rest.starts_with(['&', '#'])
                    || rest.starts_with(char::is_whitespace),
                "unmasked token in {masked:?} (from {line:?})"
            );
        }
    }
});
