//! The reference API and its companions, against the real binary: push, stream, snapshot,
//! status, health, aliases, HEAD, HTTP/1.0 and logging.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use support::{jpeg, tag_of, Relay, NO_SIGNAL};

#[test]
fn a_pushed_frame_reaches_a_viewer_byte_for_byte() {
    let relay = Relay::start(&[]);
    let first = jpeg(640, 480, 1, 60_000);
    let push = relay.push("cam_living", &first);
    assert_eq!((push.status, push.text().as_str()), (200, "OK"));

    let mut viewer = relay.stream("/live.mjpeg?device_id=cam_living");
    assert_eq!(viewer.head.status, 200);
    assert_eq!(
        viewer.head.header("Content-Type"),
        Some("multipart/x-mixed-replace; boundary=frame_boundary")
    );
    assert_eq!(viewer.head.header("Transfer-Encoding"), None);
    assert!(viewer
        .head
        .header("Cache-Control")
        .unwrap()
        .contains("no-cache"));
    assert_eq!(viewer.head.header("Pragma"), Some("no-cache"));

    // The current frame comes at once, with exactly the part headers clients need.
    let part = viewer.next_part();
    assert_eq!(part.body, first);
    let names: Vec<&str> = part.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["Content-Type", "Content-Length"]);
    assert_eq!(part.headers[0].1, "image/jpeg");

    let second = jpeg(640, 480, 2, 61_234);
    relay.push_ok("cam_living", &second);
    assert_eq!(viewer.next_part().body, second);
}

#[test]
fn devices_are_isolated() {
    let relay = Relay::start(&[]);
    relay.push_ok("a", &jpeg(8, 8, 0xA1, 500));
    relay.push_ok("b", &jpeg(8, 8, 0xB1, 500));
    let mut viewer_a = relay.stream("/live.mjpeg?device_id=a");
    let mut viewer_b = relay.stream("/live.mjpeg?device_id=b");
    assert_eq!(tag_of(&viewer_a.next_part().body), 0xA1);
    assert_eq!(tag_of(&viewer_b.next_part().body), 0xB1);
    relay.push_ok("b", &jpeg(8, 8, 0xB2, 500));
    relay.push_ok("a", &jpeg(8, 8, 0xA2, 500));
    assert_eq!(tag_of(&viewer_a.next_part().body), 0xA2);
    assert_eq!(tag_of(&viewer_b.next_part().body), 0xB2);
}

#[test]
fn snapshot_serves_the_latest_frame_uncached() {
    let relay = Relay::start(&[]);
    let missing = relay.get("/snapshot.jpg?device_id=nobody");
    assert_eq!(missing.status, 404);
    assert!(
        missing.text().contains("nobody has no frame yet"),
        "{}",
        missing.text()
    );

    relay.push_ok("cam", &jpeg(320, 240, 1, 40_000));
    let latest = jpeg(320, 240, 2, 50_000);
    relay.push_ok("cam", &latest);
    let snapshot = relay.get("/snapshot.jpg?device_id=cam");
    assert_eq!(snapshot.status, 200);
    assert_eq!(snapshot.header("Content-Type"), Some("image/jpeg"));
    assert_eq!(snapshot.header("Content-Length"), Some("50000"));
    assert!(snapshot
        .header("Cache-Control")
        .unwrap()
        .contains("no-store"));
    assert_eq!(snapshot.header("Transfer-Encoding"), None);
    assert_eq!(snapshot.body, latest);

    // Range is ignored: the whole picture, 200 not 206.
    let ranged = relay.raw(
        b"GET /snapshot.jpg?device_id=cam HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9\r\nConnection: close\r\n\r\n",
    );
    assert_eq!((ranged.status, ranged.body.len()), (200, 50_000));
}

#[test]
fn aliases_serve_the_same_stream_and_snapshot() {
    let relay = Relay::start(&[]);
    let frame = jpeg(16, 16, 7, 2_000);
    relay.push_ok("cam", &frame);
    for target in [
        "/live.mjpeg?device_id=cam",
        "/stream?device_id=cam",
        "/?action=stream&device_id=cam",
    ] {
        let mut viewer = relay.stream(target);
        assert_eq!(viewer.head.status, 200, "{target}");
        assert_eq!(viewer.next_part().body, frame, "{target}");
    }
    for target in [
        "/snapshot.jpg?device_id=cam",
        "/snapshot?device_id=cam",
        "/?action=snapshot&device_id=cam",
    ] {
        let snapshot = relay.get(target);
        assert_eq!((snapshot.status, &snapshot.body), (200, &frame), "{target}");
    }
}

#[test]
fn status_reports_every_field() {
    let relay = Relay::start(&[]);
    assert_eq!(relay.devices(), serde_json::json!([]));
    for tag in 0..5 {
        relay.push_ok("cam", &jpeg(1280, 720, tag, 10_000));
    }
    let mut viewer = relay.stream("/live.mjpeg?device_id=cam");
    viewer.next_part();
    relay.push_ok("cam", &jpeg(1280, 720, 9, 12_000));
    viewer.next_part();

    let status = relay.device("cam").expect("cam in status");
    assert_eq!(status["online"], true);
    assert_eq!(status["frames_received"], 6);
    assert_eq!(status["bytes_received"], 62_000);
    assert_eq!(status["last_frame_bytes"], 12_000);
    assert_eq!(
        (status["width"].as_u64(), status["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(status["viewers"], 1);
    assert!(status["input_fps"].as_f64().unwrap() > 0.0, "{status}");
    assert!(status["last_frame_age_ms"].as_u64().unwrap() < 5_000);
    // A frame is counted when the viewer's thread comes back for the next one, just after
    // writing it.
    support::eventually(
        Duration::from_secs(5),
        "both frames counted as sent",
        || relay.device("cam").unwrap()["frames_sent"] == 2,
    );
    viewer.close();
    support::eventually(Duration::from_secs(5), "the viewer to leave", || {
        relay.device("cam").unwrap()["viewers"] == 0
    });
    // An idle repeat may have been written before the relay saw the viewer go.
    assert!(
        relay.device("cam").unwrap()["frames_sent"]
            .as_u64()
            .unwrap()
            >= 2
    );

    let health = relay.get("/healthz");
    assert_eq!((health.status, health.text().trim()), (200, "ok"));
}

#[test]
fn head_gets_stream_headers_and_no_body() {
    let relay = Relay::start(&[]);
    relay.push_ok("cam", &jpeg(8, 8, 1, 500));
    let response = relay
        .raw(b"HEAD /live.mjpeg?device_id=cam HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("Content-Type"),
        Some("multipart/x-mixed-replace; boundary=frame_boundary")
    );
    assert!(response.body.is_empty(), "HEAD must not send parts");
    let mut connection = relay.connect();
    connection
        .write_all(
            b"HEAD /snapshot.jpg?device_id=cam HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
    let mut reader = std::io::BufReader::new(connection);
    let snapshot = support::read_response(&mut reader, false);
    assert_eq!(snapshot.status, 200);
    assert_eq!(snapshot.header("Content-Length"), Some("500"));
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "HEAD must not send the picture");
}

#[test]
fn http_10_clients_get_an_http_10_stream() {
    let relay = Relay::start(&[]);
    let frame = jpeg(8, 8, 3, 3_000);
    let push = relay.raw(
        &[
            format!(
                "POST /pump_push/old HTTP/1.0\r\nContent-Length: {}\r\n\r\n",
                frame.len()
            )
            .as_bytes(),
            &frame,
        ]
        .concat(),
    );
    assert_eq!(
        (push.status, push.status_line.as_str()),
        (200, "HTTP/1.0 200 OK")
    );

    let mut viewer =
        support::MjpegStream::open(relay.connect(), "/live.mjpeg?device_id=old", "HTTP/1.0");
    assert!(
        viewer.head.status_line.starts_with("HTTP/1.0 200"),
        "{}",
        viewer.head.status_line
    );
    assert_eq!(viewer.head.header("Transfer-Encoding"), None);
    assert_eq!(viewer.next_part().body, frame);
}

#[test]
fn options_and_expect_continue_work() {
    let relay = Relay::start(&[]);
    let options =
        relay.raw(b"OPTIONS /pump_push/cam HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(
        (options.status, options.header("Allow")),
        (204, Some("POST, PUT, OPTIONS"))
    );

    // curl and ffmpeg send Expect: 100-continue on larger uploads.
    let frame = jpeg(8, 8, 4, 100_000);
    let mut stream = relay.connect();
    write!(
        stream,
        "POST /pump_push/cam HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        frame.len()
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let interim = support::read_response(&mut reader, false);
    assert_eq!(interim.status, 100);
    stream.write_all(&frame).unwrap();
    let answer = support::read_response(&mut reader, true);
    assert_eq!((answer.status, answer.text().as_str()), (200, "OK"));
    assert_eq!(relay.get("/snapshot.jpg?device_id=cam").body, frame);
}

#[test]
fn chunked_pushes_are_accepted() {
    let relay = Relay::start(&[]);
    let frame = jpeg(8, 8, 5, 5_000);
    let mut request = b"POST /pump_push/cam HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for chunk in frame.chunks(1_500) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(relay.raw(&request).status, 200);
    assert_eq!(relay.get("/snapshot.jpg?device_id=cam").body, frame);
}

#[test]
fn logs_say_who_and_how_many() {
    let relay = Relay::start(&["--offline-after", "300ms"]);
    relay.push_ok("cam_log", &jpeg(8, 8, 1, 500));
    relay.wait_for_log("cam_log: online from 127.0.0.1", Duration::from_secs(5));
    let viewer = relay.stream("/live.mjpeg?device_id=cam_log");
    relay.wait_for_log("cam_log: 127.0.0.1", Duration::from_secs(5));
    relay.wait_for_log("watching (1 viewers)", Duration::from_secs(5));
    relay.wait_for_log("cam_log: offline", Duration::from_secs(5));
    viewer.close();
    relay.wait_for_log("stopped watching (0 viewers)", Duration::from_secs(5));
}

#[test]
fn index_page_points_at_the_endpoints() {
    let relay = Relay::start(&[]);
    let index = relay.get("/");
    assert_eq!(index.status, 200);
    assert!(
        index.text().contains("/live.mjpeg?device_id="),
        "{}",
        index.text()
    );
    assert!(!NO_SIGNAL.is_empty());
}
