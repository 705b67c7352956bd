//! How streams behave over time: the idle repeat, the no-signal picture, per-viewer options,
//! slow and stalled viewers, and threads released when viewers leave.

mod support;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::{eventually, jpeg, tag_of, Relay, IO_TIMEOUT, NO_SIGNAL, THREADS_AT_REST};

#[test]
fn with_nothing_new_the_latest_frame_is_sent_again() {
    let relay = Relay::start(&[]);
    let frame = jpeg(8, 8, 1, 5_000);
    relay.push_ok("cam", &frame);
    let mut viewer = relay.stream("/live.mjpeg?device_id=cam");
    assert_eq!(viewer.next_part().body, frame);
    // No push: within the 5 s read timeout the same frame must come again (about 1 s).
    let started = Instant::now();
    assert_eq!(viewer.next_part().body, frame);
    assert_eq!(viewer.next_part().body, frame);
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "repeats are paced, not a flood"
    );
}

#[test]
fn a_viewer_waiting_for_a_phone_gets_no_signal_then_real_frames() {
    let relay = Relay::start(&[]);
    let mut viewer = relay.stream("/live.mjpeg?device_id=later");
    assert_eq!(viewer.head.status, 200);
    assert_eq!(viewer.next_part().body, NO_SIGNAL);
    assert_eq!(
        viewer.next_part().body,
        NO_SIGNAL,
        "repeated about once a second"
    );
    let status = relay.device("later").expect("a watched device is listed");
    assert_eq!(
        (status["online"].as_bool(), status["viewers"].as_u64()),
        (Some(false), Some(1))
    );

    let frame = jpeg(8, 8, 2, 5_000);
    relay.push_ok("later", &frame);
    assert_eq!(viewer.part_where(3, |body| body != NO_SIGNAL).body, frame);
}

#[test]
fn a_phone_that_went_away_turns_into_no_signal() {
    let relay = Relay::start(&["--offline-after", "500ms"]);
    let frame = jpeg(8, 8, 3, 5_000);
    relay.push_ok("gone", &frame);
    let mut viewer = relay.stream("/live.mjpeg?device_id=gone");
    assert_eq!(viewer.next_part().body, frame);
    viewer.part_where(5, |body| body == NO_SIGNAL);
    assert_eq!(relay.device("gone").unwrap()["online"], false);
    // A snapshot still gives the last real picture.
    assert_eq!(relay.get("/snapshot.jpg?device_id=gone").body, frame);
}

#[test]
fn idle_devices_without_viewers_are_forgotten() {
    let relay = Relay::start(&["--offline-after", "200ms", "--evict-after", "1s"]);
    relay.push_ok("brief", &jpeg(8, 8, 1, 500));
    assert!(relay.device("brief").is_some());
    eventually(
        Duration::from_secs(10),
        "the idle device to be forgotten",
        || relay.device("brief").is_none(),
    );
    assert_eq!(relay.get("/snapshot.jpg?device_id=brief").status, 404);
}

/// Pushes frames tagged 1, 2, 3… every `interval` until `stop` is set.
fn push_steadily(
    relay: &Arc<Relay>,
    device: &'static str,
    interval: Duration,
    stop: &Arc<AtomicBool>,
) -> thread::JoinHandle<u8> {
    let relay = Arc::clone(relay);
    let stop = Arc::clone(stop);
    thread::spawn(move || {
        let mut tag = 0u8;
        while !stop.load(Ordering::Relaxed) {
            tag = tag.wrapping_add(1).max(1);
            relay.push_ok(device, &jpeg(8, 8, tag, 2_000));
            thread::sleep(interval);
        }
        tag
    })
}

#[test]
fn fps_caps_one_viewer_without_slowing_another() {
    let relay = Arc::new(Relay::start(&[]));
    relay.push_ok("cam", &jpeg(8, 8, 0, 2_000));
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = push_steadily(&relay, "cam", Duration::from_millis(20), &stop);
    let mut capped = relay.stream("/live.mjpeg?device_id=cam&fps=2");
    let mut uncapped = relay.stream("/live.mjpeg?device_id=cam");

    let window = Duration::from_secs(2);
    let count_parts = move |stream: &mut support::MjpegStream| {
        let started = Instant::now();
        let mut parts = 0;
        while started.elapsed() < window {
            stream.next_part();
            parts += 1;
        }
        parts
    };
    let capped_counter = thread::spawn(move || count_parts(&mut capped));
    let uncapped_parts = count_parts(&mut uncapped);
    let capped_parts = capped_counter.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    pusher.join().unwrap();
    // Up to 50 pushes arrive in the window (fewer on a loaded machine). At 2 fps the capped
    // viewer gets about 4-5 of them (plus the first at once); the uncapped one gets each push.
    assert!(capped_parts <= 7, "capped viewer got {capped_parts} parts");
    assert!(
        uncapped_parts >= 2 * capped_parts,
        "uncapped viewer got only {uncapped_parts} parts against {capped_parts} capped"
    );
}

#[test]
fn advance_headers_send_the_next_parts_headers_early() {
    let relay = Relay::start(&[]);
    let frame = jpeg(8, 8, 1, 300);
    relay.push_ok("cam", &frame);
    let mut connection = relay.connect();
    connection
        .write_all(b"GET /live.mjpeg?device_id=cam&advance_headers=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut wire = Vec::new();
    let mut buffer = [0u8; 4096];
    let expected_tail = b"\r\n--frame_boundary\r\nContent-Type: image/jpeg\r\n\r\n";
    // Read until the first frame and the advance headers after it have arrived.
    while !wire
        .windows(expected_tail.len())
        .any(|w| w == expected_tail)
    {
        let count = connection.read(&mut buffer).unwrap();
        assert!(count > 0, "stream ended");
        wire.extend_from_slice(&buffer[..count]);
    }
    let body_start = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut expected =
        b"--frame_boundary\r\nContent-Type: image/jpeg\r\nContent-Length: 300\r\n\r\n".to_vec();
    expected.extend_from_slice(&frame);
    expected.extend_from_slice(expected_tail);
    assert_eq!(&wire[body_start..], &expected[..]);
}

#[test]
fn stalled_and_slow_viewers_do_not_hold_up_the_pusher_or_others() {
    let relay = Arc::new(Relay::start(&[]));
    relay.push_ok("cam", &jpeg(8, 8, 0, 200_000));
    // A stalled viewer: asks for the stream and never reads.
    let mut stalled = relay.connect();
    stalled
        .write_all(b"GET /live.mjpeg?device_id=cam HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // A slow viewer: reads 4 KB every 100 ms (40 KB/s, far below the push rate).
    let mut slow = relay.connect();
    slow.write_all(b"GET /live.mjpeg?device_id=cam HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let slow_reader = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                let _ = slow.read(&mut buffer);
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let mut normal = relay.stream("/live.mjpeg?device_id=cam");
    normal.next_part();
    eventually(Duration::from_secs(5), "three viewers", || {
        relay.device("cam").unwrap()["viewers"] == 3
    });

    // 60 frames of 200 KB: 12 MB, far more than the socket buffers of the stalled viewer hold.
    // Every push must be answered and the normal viewer must keep up, each within the
    // harness's 5 s I/O timeout.
    for tag in 1..=60u8 {
        relay.push_ok("cam", &jpeg(8, 8, tag, 200_000));
        let part = normal.part_where(10, |body| tag_of(body) == tag);
        assert_eq!(tag_of(&part.body), tag);
    }
    stop.store(true, Ordering::Relaxed);
    slow_reader.join().unwrap();
    drop(stalled);
}

#[test]
fn departed_viewers_release_their_threads() {
    let relay = Relay::start(&[]);
    relay.push_ok("cam", &jpeg(8, 8, 1, 1_000));
    relay.get("/healthz");
    eventually(Duration::from_secs(15), "a settled thread count", || {
        relay.threads() <= THREADS_AT_REST
    });
    let baseline = relay.threads();

    let mut viewers: Vec<_> = (0..8)
        .map(|_| relay.stream("/live.mjpeg?device_id=cam"))
        .collect();
    for viewer in &mut viewers {
        viewer.next_part();
    }
    let watching = relay.threads();
    assert!(
        watching >= baseline + 8,
        "8 viewers should hold threads: {baseline} → {watching}"
    );
    assert_eq!(
        watching,
        baseline + 8,
        "one thread per viewer: {baseline} → {watching}"
    );
    for viewer in viewers {
        viewer.close();
    }
    // A viewer's thread ends at its next write, within about a second.
    eventually(Duration::from_secs(15), "threads back to baseline", || {
        relay.threads() <= baseline
    });
    assert_eq!(relay.device("cam").unwrap()["viewers"], 0);
}

#[test]
fn a_viewer_that_stops_reading_is_dropped_after_the_write_timeout() {
    let relay = Relay::start(&["--write-timeout", "1s"]);
    relay.push_ok("cam", &jpeg(8, 8, 0, 1_000));
    let mut stalled = relay.connect();
    stalled
        .write_all(b"GET /live.mjpeg?device_id=cam HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    eventually(Duration::from_secs(5), "the stalled viewer to join", || {
        relay.device("cam").unwrap()["viewers"] == 1
    });
    // Push until the socket buffers between relay and stalled viewer are full and a write has
    // waited for the timeout; bounded so a relay that never gives up fails the test.
    let big = jpeg(8, 8, 1, 500_000);
    let deadline = Instant::now() + Duration::from_secs(60);
    while relay.device("cam").unwrap()["viewers"] != 0 {
        assert!(
            Instant::now() < deadline,
            "the stalled viewer was never dropped"
        );
        relay.push_ok("cam", &big);
        thread::sleep(Duration::from_millis(50));
    }
    relay.wait_for_log(
        "dropped a viewer that stopped reading",
        Duration::from_secs(5),
    );
    drop(stalled);
}

#[test]
fn the_stream_is_byte_for_byte_what_go2rtc_configs_were_written_against() {
    let relay = Relay::start(&[]);
    let frame = jpeg(8, 8, 3, 1_500);
    relay.push_ok("cam", &frame);
    let mut connection = relay.connect();
    connection
        .write_all(b"GET /live.mjpeg?device_id=cam HTTP/1.1\r\nHost: relay\r\n\r\n")
        .unwrap();
    let mut expected = format!(
        "HTTP/1.1 200 OK\r\n\
         Content-Type: multipart/x-mixed-replace; boundary=frame_boundary\r\n\
         Cache-Control: no-cache, no-store, must-revalidate, private\r\n\
         Pragma: no-cache\r\n\
         Expires: 0\r\n\
         Connection: close\r\n\
         Server: streampump/{}\r\n\
         \r\n\
         --frame_boundary\r\n\
         Content-Type: image/jpeg\r\n\
         Content-Length: {}\r\n\
         \r\n",
        env!("CARGO_PKG_VERSION"),
        frame.len()
    )
    .into_bytes();
    expected.extend_from_slice(&frame);
    expected.extend_from_slice(b"\r\n--frame_boundary\r\n");
    let mut received = vec![0u8; expected.len()];
    connection.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    connection.read_exact(&mut received).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&received),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(received, expected);
}
