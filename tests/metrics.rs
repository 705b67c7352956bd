//! `GET /metrics`, read by the parser of Prometheus's Python client (`prometheus_client` from
//! PyPI, through `tests/prometheus_parse.py`): the format parses, names and types are what
//! Prometheus expects, and the values move with what the relay does.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::{jpeg, Relay};

/// Every sample of the relay's `/metrics`, parsed by prometheus_client.
fn scrape(relay: &Relay) -> Vec<Value> {
    let answer = relay.get("/metrics");
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let mut parser = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/prometheus_parse.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for this test");
    parser
        .stdin
        .take()
        .expect("stdin")
        .write_all(&answer.body)
        .expect("feed the parser");
    let output = parser.wait_with_output().expect("run the parser");
    assert!(
        output.status.success(),
        "prometheus_client refused the output ({}); install it with \
         `python3 -m pip install prometheus_client` or run `make test`:\n{}\n---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        answer.text()
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON sample"))
        .collect()
}

/// The value of the sample `name` whose labels include `labels`.
fn value(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|s| {
            s["name"] == name
                && labels
                    .iter()
                    .all(|(key, wanted)| s["labels"][key].as_str() == Some(wanted))
        })
        .and_then(|s| s["value"].as_f64())
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
}

#[test]
fn metrics_parse_and_follow_what_happens() {
    let relay = Relay::start(&["--max-frame-bytes", "4096"]);
    let before = scrape(&relay);
    assert_eq!(
        value(
            &before,
            "streampump_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(value(&before, "streampump_devices", &[]), 0.0);
    assert_eq!(
        value(
            &before,
            "streampump_requests_rejected_total",
            &[("reason", "not_found")]
        ),
        0.0
    );
    // Only the scrape itself is in progress.
    assert_eq!(value(&before, "streampump_requests_in_progress", &[]), 1.0);

    for tag in 1..=3 {
        relay.push_ok("cam", &jpeg(64, 48, tag, 1000));
    }
    assert_eq!(relay.push("cam", b"not a jpeg").status, 415);
    assert_eq!(relay.push("cam", &jpeg(64, 48, 9, 8000)).status, 413);
    assert_eq!(relay.push("stranger", b"not a jpeg").status, 415);
    assert_eq!(relay.get("/nope").status, 404);
    assert_eq!(relay.get("/snapshot.jpg?device_id=ghost").status, 404);
    let mut viewer = relay.stream("/live.mjpeg?device_id=cam");
    viewer.next_part();

    let after = scrape(&relay);
    let cam = [("device", "cam")];
    assert_eq!(value(&after, "streampump_devices", &[]), 1.0);
    assert_eq!(value(&after, "streampump_device_online", &cam), 1.0);
    assert_eq!(
        value(&after, "streampump_device_frames_received_total", &cam),
        3.0
    );
    assert_eq!(
        value(&after, "streampump_device_received_bytes_total", &cam),
        3000.0
    );
    // The bad push and the oversized one; the stranger's garbage made no device.
    assert_eq!(
        value(&after, "streampump_device_bad_frames_total", &cam),
        2.0
    );
    assert_eq!(value(&after, "streampump_device_viewers", &cam), 1.0);
    assert!(value(&after, "streampump_device_last_frame_age_seconds", &cam) < 60.0);
    for (reason, count) in [("not_jpeg", 2.0), ("too_large", 1.0), ("not_found", 2.0)] {
        assert_eq!(
            value(
                &after,
                "streampump_requests_rejected_total",
                &[("reason", reason)]
            ),
            count,
            "{reason}"
        );
    }
    // The scrape and the open stream.
    assert!(value(&after, "streampump_connections", &[]) >= 2.0);
    assert!(value(&after, "streampump_requests_in_progress", &[]) >= 2.0);

    // Every family parsed with the type it declares: a sample whose name did not match its
    // TYPE line would have come out as a family of its own, typed "unknown".
    let mut families: Vec<(String, String)> = after
        .iter()
        .map(|s| {
            (
                s["family"].as_str().unwrap_or_default().to_string(),
                s["type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    families.sort();
    families.dedup();
    let expected = [
        ("streampump_build_info", "gauge"),
        ("streampump_connections", "gauge"),
        ("streampump_device_bad_frames", "counter"),
        ("streampump_device_frames_received", "counter"),
        ("streampump_device_frames_sent", "counter"),
        ("streampump_device_frames_skipped", "counter"),
        ("streampump_device_last_frame_age_seconds", "gauge"),
        ("streampump_device_online", "gauge"),
        ("streampump_device_received_bytes", "counter"),
        ("streampump_device_viewers", "gauge"),
        ("streampump_devices", "gauge"),
        ("streampump_memory_budget_bytes", "gauge"),
        ("streampump_memory_evictions", "counter"),
        ("streampump_memory_refused", "counter"),
        ("streampump_memory_used_bytes", "gauge"),
        ("streampump_requests_in_progress", "gauge"),
        ("streampump_requests_rejected", "counter"),
        ("streampump_uptime_seconds", "gauge"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(name, kind)| (name.to_string(), kind.to_string()))
        .collect();
    assert_eq!(families, expected);
    assert!(
        value(&after, "streampump_uptime_seconds", &[])
            >= value(&before, "streampump_uptime_seconds", &[])
    );

    // Frames delivered to the viewer are counted; frames it never got are counted as skipped.
    relay.push_ok("cam", &jpeg(64, 48, 4, 1000));
    viewer.next_part();
    for tag in 5..=20 {
        relay.push_ok("cam", &jpeg(64, 48, tag, 1000));
    }
    viewer.part_where(40, |frame| support::tag_of(frame) == 20);
    viewer.close();
    relay.eventually(
        std::time::Duration::from_secs(15),
        "the viewer's frames to be counted",
        || {
            let samples = scrape(&relay);
            let sent = value(&samples, "streampump_device_frames_sent_total", &cam);
            let skipped = value(&samples, "streampump_device_frames_skipped_total", &cam);
            // 20 frames published; the viewer got the first it saw (3), 4, and 20 at least.
            value(&samples, "streampump_device_viewers", &cam) == 0.0
                && sent >= 3.0
                && sent + skipped >= 18.0
        },
    );
}

#[test]
fn battery_and_charging_gauges_follow_the_phones_health_reports() {
    let relay = Relay::start(&[]);
    let push = |device: &str, health: &str| {
        let body = jpeg(64, 48, 1, 500);
        let mut request = format!(
            "POST /pump_push/{device} HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n\
             X-Streampump-Health: {health}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        assert_eq!(relay.raw(&request).status, 200);
    };
    push("hall", "battery=14;charging=0;visible=1");
    push("yard", "battery=100;charging=1");
    // A browser without navigator.getBattery reports neither.
    push("old", "visible=1");
    let samples = scrape(&relay);
    let gauge = |name: &str, device: &str| value(&samples, name, &[("device", device)]);
    assert_eq!(gauge("streampump_device_battery_ratio", "hall"), 0.14);
    assert_eq!(gauge("streampump_device_charging", "hall"), 0.0);
    assert_eq!(gauge("streampump_device_battery_ratio", "yard"), 1.0);
    assert_eq!(gauge("streampump_device_charging", "yard"), 1.0);
    let types: Vec<&Value> = samples
        .iter()
        .filter(|s| s["family"] == "streampump_device_battery_ratio")
        .map(|s| &s["type"])
        .collect();
    assert_eq!(types, [&Value::from("gauge"), &Value::from("gauge")]);
    assert!(!samples.iter().any(|s| s["labels"]["device"] == "old"
        && (s["name"] == "streampump_device_battery_ratio"
            || s["name"] == "streampump_device_charging")));
}

/// The HTTPS port's handshakes: one completed (curl trusting the relay's authority), one
/// refused by the client (curl without it: `unknown_ca`), one that was not TLS at all.
#[cfg(feature = "tls")]
#[test]
fn tls_handshakes_are_counted_by_reason() {
    support::require_tool("curl", "--version", "curl");
    let relay = Relay::start(&["--tls-listen", "127.0.0.1:0"]);
    let tls = relay.tls_addr.expect("an HTTPS address");
    let failures = |samples: &[Value], reason: &str| {
        value(
            samples,
            "streampump_tls_handshake_failures_total",
            &[("reason", reason)],
        )
    };
    let before = scrape(&relay);
    assert_eq!(value(&before, "streampump_tls_handshakes_total", &[]), 0.0);
    for reason in [
        "not_tls",
        "timeout",
        "eof",
        "unknown_ca",
        "alert",
        "protocol",
    ] {
        assert_eq!(failures(&before, reason), 0.0, "{reason}");
    }
    let url = format!("https://127.0.0.1:{}/healthz", tls.port());
    let trusted = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10", "--cacert"])
        .arg(relay.state_dir.join("ca.crt"))
        .arg(&url)
        .output()
        .expect("run curl");
    assert!(trusted.status.success(), "{trusted:?}");
    let untrusted = Command::new("curl")
        .args(["-sS", "--max-time", "10", &url])
        .output()
        .expect("run curl");
    assert!(!untrusted.status.success());
    let mut plain = std::net::TcpStream::connect(tls).unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut plain, &mut rest);

    relay.eventually(
        std::time::Duration::from_secs(10),
        "the handshakes counted",
        || {
            let now = scrape(&relay);
            failures(&now, "not_tls") == 1.0 && failures(&now, "unknown_ca") == 1.0
        },
    );
    let after = scrape(&relay);
    assert_eq!(value(&after, "streampump_tls_handshakes_total", &[]), 1.0);
    assert_eq!(failures(&after, "timeout"), 0.0);
}
