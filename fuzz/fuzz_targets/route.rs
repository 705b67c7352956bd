//! Fuzzes `route`, which turns every request's method and target into what the relay will do.
//!
//! The method and the target both come from the client, and a route that carries a device id
//! hands it on to the registry, logs and JSON, which rely on the id rule. The first input byte
//! picks the method (the ones clients really send, a lower-case one, an empty one and a made-up
//! one, since HTTP methods are case-sensitive); the rest is the target. Checked:
//! - no panic;
//! - every id in an accepted route passes `DeviceId::parse` and reads back unchanged;
//! - the method decides the route: OPTIONS only ever gives `Options`, a push needs POST, the
//!   other endpoints GET or HEAD, and `head_only` is set exactly for HEAD;
//! - `?fps=` only yields intervals inside the documented 0.2–1000 fps range;
//! - refusals are 400, 404 or 405, and a 405 always names the allowed methods.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use streampump::refusal::Extra;
use streampump::relay::device_id::DeviceId;
use streampump::web::routes::{route, Route};

const METHODS: [&str; 9] = [
    "GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "get", "", "BREW",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, target)) = data.split_first() else {
        return;
    };
    // The connection layer only hands over targets that are ASCII.
    let Ok(target) = std::str::from_utf8(target) else {
        return;
    };
    let method = METHODS[usize::from(selector) % METHODS.len()];

    match route(method, target) {
        Ok(accepted) => check_route(method, target, &accepted),
        Err(refusal) => {
            let status = refusal.status();
            assert!(
                matches!(status, 400 | 404 | 405),
                "{method} {target:?}: status {status}"
            );
            assert_eq!(
                matches!(refusal.extra, Some(Extra::Allow(_))),
                status == 405,
                "{method} {target:?}: Allow header and 405 go together"
            );
            assert!(!refusal.message.is_empty());
        }
    }
});

fn check_route(method: &str, target: &str, accepted: &Route) {
    let get_or_head = method == "GET" || method == "HEAD";
    match accepted {
        Route::Push(device) => {
            assert!(method == "POST" || method == "PUT", "{method} {target:?}");
            check_id(device);
        }
        Route::Stream {
            device,
            options,
            head_only,
        } => {
            assert!(get_or_head, "{method} {target:?} became a stream");
            assert_eq!(*head_only, method == "HEAD");
            check_id(device);
            if let Some(interval) = options.min_interval {
                // 1/1000 s to 1/0.2 s, allowing for the float round trip.
                assert!(
                    interval >= Duration::from_micros(999) && interval <= Duration::from_secs(5),
                    "{target:?} gave interval {interval:?}"
                );
            }
        }
        Route::Snapshot(device) => {
            assert!(get_or_head, "{method} {target:?} became a snapshot");
            check_id(device);
        }
        Route::Devices | Route::Health | Route::Index | Route::PushPage | Route::Metrics => {
            assert!(get_or_head, "{method} {target:?} became {accepted:?}");
        }
        Route::Forget(device) => {
            assert_eq!(method, "DELETE", "{target:?} became a deletion");
            check_id(device);
        }
        Route::Options { allow } => {
            assert_eq!(method, "OPTIONS", "{target:?}");
            assert!(allow.contains("OPTIONS"));
        }
    }
}

fn check_id(device: &DeviceId) {
    let text = device.as_str();
    assert_eq!(DeviceId::parse(text).as_ref(), Ok(device), "{text:?}");
    assert_eq!(device.to_string(), text);
}
