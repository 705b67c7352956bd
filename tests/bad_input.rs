//! Bad input and limits: each gets a clear status and a one-line reason, and none of it
//! disturbs other devices or viewers.

mod support;

use std::io::{BufReader, Write};
use std::time::Duration;

use support::{has_answer, jpeg, read_response, Relay};

fn push_raw(relay: &Relay, device_path: &str, body: &[u8]) -> support::Response {
    let mut request = format!(
        "POST {device_path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    relay.raw(&request)
}

#[test]
fn bad_ids_and_bodies_are_refused_with_reasons() {
    let relay = Relay::start(&[]);
    let frame = jpeg(8, 8, 1, 1_000);
    // Noise between a start and an end of image, a scan cut short, an absurd picture size.
    let mut noise: Vec<u8> = (0..5_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    noise[..2].copy_from_slice(&[0xFF, 0xD8]);
    noise[4_998..].copy_from_slice(&[0xFF, 0xD9]);
    // SOI and SOF0 (15 bytes), SOS (10): the image data would start here.
    let header_end = 25;
    let cut_scan = [&frame[..header_end], &[0xFF, 0xD9][..]].concat();
    let huge = jpeg(65_000, 65_000, 1, 1_000);
    let cases: [(&str, &[u8], u16, &str); 12] = [
        ("/pump_push/bad%20id", &frame, 400, "device id must be"),
        ("/pump_push/..%2F..%2Fetc", &frame, 400, "device id must be"),
        ("/pump_push/a%00", &frame, 400, "device id must be"),
        ("/pump_push/", &frame, 400, "missing device id"),
        ("/pump_push/cam", b"", 400, "empty body"),
        (
            "/pump_push/cam",
            b"GIF89a not a jpeg",
            415,
            "must start with FF D8",
        ),
        (
            "/pump_push/cam",
            &frame[..frame.len() - 1],
            415,
            "must end with FF D9",
        ),
        ("/pump_push/cam", &[0xFF, 0xD8, 0xFF], 415, "not a JPEG"),
        ("/pump_push/cam", &noise, 415, "not a JPEG"),
        ("/pump_push/cam", &cut_scan, 415, "no image data"),
        ("/pump_push/cam", &huge, 415, "65000x65000"),
        (
            &format!("/pump_push/{}", "x".repeat(65)),
            &frame,
            400,
            "longer than 64",
        ),
    ];
    for (path, body, status, reason) in cases {
        let response = push_raw(&relay, path, body);
        assert_eq!(response.status, status, "{path}: {}", response.text());
        assert!(
            response.text().contains(reason),
            "{path}: {:?}",
            response.text()
        );
        assert_eq!(
            response.header("Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(response.text().ends_with('\n') && response.text().lines().count() == 1);
    }
    for (target, status) in [
        ("/live.mjpeg", 400),
        ("/live.mjpeg?device_id=", 400),
        ("/live.mjpeg?device_id=a%2Fb", 400),
        ("/live.mjpeg?device_id=cam&fps=0", 400),
        ("/snapshot.jpg", 400),
        ("/nope", 404),
        ("/pump_push/cam", 405),
    ] {
        let response = relay.get(target);
        assert_eq!(response.status, status, "{target}: {}", response.text());
        assert!(
            !response.text().trim().is_empty(),
            "{target} needs a reason"
        );
    }
    let wrong_method = relay
        .raw(b"DELETE /live.mjpeg?device_id=cam HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("Allow"), Some("GET, HEAD, OPTIONS"));
    // Nothing was created by any of that.
    assert_eq!(relay.devices(), serde_json::json!([]));
}

#[test]
fn frames_over_the_limit_get_413_without_being_buffered() {
    let relay = Relay::start(&["--max-frame-bytes", "10000"]);
    let response = push_raw(&relay, "/pump_push/cam", &jpeg(8, 8, 1, 10_001));
    assert_eq!(response.status, 413, "{}", response.text());
    assert!(response.text().contains("--max-frame-bytes"));
    assert_eq!(
        push_raw(&relay, "/pump_push/cam", &jpeg(8, 8, 1, 10_000)).status,
        200
    );

    // Chunked bodies have no declared size: counted while read.
    let big = jpeg(8, 8, 2, 20_000);
    let mut request =
        b"POST /pump_push/cam HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    request.extend_from_slice(format!("{:x}\r\n", big.len()).as_bytes());
    request.extend_from_slice(&big);
    request.extend_from_slice(b"\r\n0\r\n\r\n");
    // A good push follows on the same connection: the refused body was discarded, not read
    // as a request.
    let good = jpeg(8, 8, 3, 5_000);
    request.extend_from_slice(
        format!(
            "POST /pump_push/cam HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            good.len()
        )
        .as_bytes(),
    );
    request.extend_from_slice(&good);
    let mut stream = relay.connect();
    stream.write_all(&request).unwrap();
    let mut reader = BufReader::new(stream);
    assert_eq!(read_response(&mut reader, true).status, 413);
    assert_eq!(read_response(&mut reader, true).status, 200);
    assert_eq!(relay.get("/snapshot.jpg?device_id=cam").body, good);
}

#[test]
fn an_absurd_declared_length_is_refused_and_the_relay_survives() {
    let relay = Relay::start_logging("streampump=debug", &[]);
    relay.push_ok("other", &jpeg(8, 8, 1, 1_000));
    let mut viewer = relay.stream("/live.mjpeg?device_id=other");
    viewer.next_part();

    let mut stream = relay.connect();
    stream
        .write_all(b"POST /pump_push/cam HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000000\r\n\r\nsome bytes")
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let answer = read_response(&mut reader, true);
    assert_eq!(answer.status, 413, "{}", answer.text());
    // Hang up mid-body: a server that discards the rest of a declared body into a buffer of
    // that size allocates 100 GB here and aborts.
    drop(reader);
    drop(stream);
    relay.wait_for_log("cam: push refused: 413", Duration::from_secs(5));

    assert_eq!(relay.get("/healthz").status, 200);

    // Lengths no address space can map, on any route: a push is refused for its size, the
    // others are answered as if there were no body, and every connection is then closed,
    // since the rest of its body would follow.
    for (method, target, status) in [
        ("POST", "/pump_push/cam", 413),
        ("GET", "/healthz", 200),
        ("GET", "/nowhere", 404),
    ] {
        for length in ["1000000000000000", "9000000000000000000"] {
            let mut stream = relay.connect();
            write!(
                stream,
                "{method} {target} HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n\r\nabc"
            )
            .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let answer = read_response(&mut reader, true);
            assert_eq!(answer.status, status, "{target} {length}");
            assert_eq!(
                answer
                    .header("connection")
                    .map(str::to_ascii_lowercase)
                    .as_deref(),
                Some("close"),
                "{target} {length}"
            );
        }
    }
    assert_eq!(relay.get("/healthz").status, 200);
    let frame = jpeg(8, 8, 2, 1_000);
    relay.push_ok("other", &frame);
    assert_eq!(
        viewer.part_where(5, |body| body == frame.as_slice()).body,
        frame
    );
}

#[test]
fn device_limit_gives_503() {
    let relay = Relay::start(&["--max-devices", "2"]);
    relay.push_ok("a", &jpeg(8, 8, 1, 500));
    relay.push_ok("b", &jpeg(8, 8, 1, 500));
    let refused = relay.push("c", &jpeg(8, 8, 1, 500));
    assert_eq!(refused.status, 503);
    assert!(
        refused.text().contains("--max-devices"),
        "{}",
        refused.text()
    );
    assert_eq!(refused.header("Retry-After"), Some("5"));
    let viewer = relay.get("/snapshot.jpg?device_id=c");
    assert_eq!(viewer.status, 404);
    // Existing devices carry on.
    relay.push_ok("a", &jpeg(8, 8, 2, 500));
}

#[test]
fn viewer_limit_gives_503_with_retry_after() {
    let relay = Relay::start(&["--max-viewers", "2"]);
    relay.push_ok("cam", &jpeg(8, 8, 1, 500));
    let mut first = relay.stream("/live.mjpeg?device_id=cam");
    let _second = relay.stream("/live.mjpeg?device_id=cam");
    first.next_part();
    let third = relay.get("/live.mjpeg?device_id=cam");
    assert_eq!(third.status, 503);
    assert_eq!(third.header("Retry-After"), Some("5"));
    assert!(third.text().contains("--max-viewers"), "{}", third.text());
    // Another device is not affected, and a freed place can be taken again.
    relay.push_ok("other", &jpeg(8, 8, 1, 500));
    assert_eq!(relay.stream("/live.mjpeg?device_id=other").head.status, 200);
    first.close();
    support::eventually(Duration::from_secs(5), "a free viewer place", || {
        relay.device("cam").unwrap()["viewers"] == 1
    });
    assert_eq!(relay.stream("/live.mjpeg?device_id=cam").head.status, 200);
}

#[test]
fn connection_limit_gives_503_with_retry_after() {
    let relay = Relay::start(&["--max-connections", "3"]);
    relay.push_ok("cam", &jpeg(8, 8, 1, 500));
    let viewers: Vec<_> = (0..3)
        .map(|_| {
            let mut viewer = relay.stream("/live.mjpeg?device_id=cam");
            viewer.next_part();
            viewer
        })
        .collect();
    let refused = relay.get("/healthz");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.header("Retry-After"), Some("5"));
    assert!(
        refused.text().contains("--max-connections"),
        "{}",
        refused.text()
    );
    drop(viewers);
    support::eventually(Duration::from_secs(5), "handlers to free up", || {
        relay.get("/healthz").status == 200
    });
}

#[test]
fn simultaneous_kept_alive_connections_are_all_answered() {
    // Ten clients connect at the same moment and keep their connections open, as viewers and
    // pushers do; every one must be answered (see src/pool_nudge.rs for the race this covers).
    let relay = Relay::start(&[]);
    for round in 0..3 {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(10));
        let clients: Vec<_> = (0..10)
            .map(|_| {
                let barrier = std::sync::Arc::clone(&barrier);
                let addr = relay.addr;
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut stream = std::net::TcpStream::connect(addr).unwrap();
                    stream.set_read_timeout(Some(support::IO_TIMEOUT)).unwrap();
                    stream
                        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                        .unwrap();
                    let mut reader = BufReader::new(stream);
                    let answer = read_response(&mut reader, true);
                    (answer.status, reader)
                })
            })
            .collect();
        let held: Vec<_> = clients
            .into_iter()
            .map(|client| {
                client
                    .join()
                    .expect("every client answered within the timeout")
            })
            .collect();
        assert!(
            held.iter().all(|(status, _)| *status == 200),
            "round {round}"
        );
    }
}

#[test]
fn uploads_for_new_devices_take_at_most_half_the_memory_budget() {
    let relay = Relay::start_logging(
        "streampump=debug",
        &["--max-frame-bytes", "100000", "--memory-budget", "400000"],
    );
    let frame = jpeg(8, 8, 1, 100_000);
    // A push that has sent its headers but not yet its body holds its 100000 bytes (and the
    // part headers) of the budget, as an upload for a device the relay does not keep yet.
    let start_slow_push = || {
        let mut slow = relay.connect();
        write!(
            slow,
            "POST /pump_push/cam HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            frame.len()
        )
        .unwrap();
        slow.write_all(&frame[..10]).unwrap();
        slow
    };
    let mut slow = start_slow_push();
    // Each probe is a new device too (a device that has a frame is no newcomer any more).
    let mut probes = 0;
    relay.eventually(Duration::from_secs(5), "the budget to be taken", || {
        // If a probing push took the budget first, the slow one was refused: start it again.
        if has_answer(&slow) {
            slow = start_slow_push();
        }
        probes += 1;
        relay.push(&format!("probe_{probes}"), &frame).status == 503
    });
    let refused = relay.push("other", &frame);
    assert!(
        refused.text().contains("half the memory budget")
            && refused.text().contains("--memory-budget"),
        "{}",
        refused.text()
    );
    assert_eq!(refused.header("Retry-After"), Some("5"));
    // Small frames still fit beside it.
    relay.push_ok("small", &jpeg(8, 8, 2, 40_000));
    // Once the slow upload completes, its budget is back.
    slow.write_all(&frame[10..]).unwrap();
    let answer = read_response(&mut BufReader::new(slow), true);
    assert_eq!(answer.status, 200);
    relay.push_ok("other", &frame);
    let metrics = relay.get("/metrics").text();
    assert!(
        metrics.contains("streampump_requests_rejected_total{reason=\"memory_budget\"} ")
            && !metrics
                .contains("streampump_requests_rejected_total{reason=\"memory_budget\"} 0\n"),
        "{metrics}"
    );
}
