//! The QR encoder and the phone-link builder against arbitrary input: any bytes up to the
//! largest version encode (longer ones are refused, never cut), both renderers draw a square
//! of the right size, and a `Host` header of any shape gives a link only of the characters a
//! URL's host may hold.

#![no_main]

use libfuzzer_sys::fuzz_target;
use streampump::config::Config;
use streampump::qr::{self, version::MAX_BYTES, QrCode};
use streampump::relay::device_id::DeviceId;
use streampump::web::phone_links::{PhoneLinks, PushToken};

fuzz_target!(|input: (&[u8], &str)| {
    let (text, host) = input;
    match QrCode::encode(text) {
        Ok(code) => {
            assert!(text.len() <= MAX_BYTES);
            assert!((21..=57).contains(&code.size()));
            let terminal = qr::terminal::render(&code);
            assert_eq!(terminal.lines().count(), code.framed_size().div_ceil(2));
            assert!(qr::svg::render(&code).ends_with("</svg>\n"));
        }
        Err(too_long) => assert!(too_long.bytes > MAX_BYTES && text.len() == too_long.bytes),
    }
    let device = DeviceId::parse("cam_1").unwrap_or_else(|_| unreachable!("a valid id"));
    let config = Config {
        listen: "0.0.0.0:19999".parse().unwrap_or_else(|_| unreachable!("an address")),
        ..Config::default()
    };
    let links = PhoneLinks::for_dashboard(Some(host), &config, &device, PushToken::NotNeeded, || {
        vec!["192.168.1.2".parse().unwrap_or_else(|_| unreachable!("an address"))]
    });
    if let PhoneLinks::Links { push, .. } = links {
        let authority = push
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("odd link {push:?}"));
        assert!(
            authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)),
            "odd host in {push:?} from {host:?}"
        );
    }
});
