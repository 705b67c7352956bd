//! The limits that keep misbehaving clients from holding the relay's threads: the request
//! timeout (slowloris, silent connections, idle keep-alive), the connection cap, the push
//! timeout, pipelining behind a stream, HTTP/2 request lines, and recovery after running out
//! of descriptors.
//! Each test runs the real binary with short limits and checks both that the offending
//! connection is closed and that normal clients are still served.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// Reads until the relay closes the connection; fails if it has not within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(within)).unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return received,
            Ok(count) => received.extend_from_slice(&buffer[..count]),
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return received,
            Err(error) => panic!(
                "connection still open after {:?} ({error}); received {} bytes",
                started.elapsed(),
                received.len()
            ),
        }
        assert!(started.elapsed() < within, "connection kept streaming");
    }
}

fn assert_serves_normally(relay: &Relay) {
    relay.push_ok("cam", &jpeg(8, 8, 7, 2_000));
    let mut viewer = relay.stream("/live.mjpeg?device_id=cam");
    assert_eq!(viewer.head.status, 200);
    viewer.part_where(5, |body| tag_of(body) == 7);
    viewer.close();
    assert_eq!(relay.get("/healthz").status, 200);
}

#[test]
fn trickled_and_silent_request_heads_are_cut_off_after_the_request_timeout() {
    let relay = Relay::start(&["--request-timeout", "1s"]);
    let mut silent = relay.connect();
    silent
        .write_all(b"GET /live.mjpeg?device_id=cam HTTP/1.1\r\n")
        .unwrap();
    let mut trickler = relay.connect();
    let started = Instant::now();
    let trickle = thread::spawn(move || {
        // One byte every 300 ms: always recently active, never a complete head.
        for byte in b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if trickler.write_all(&[*byte]).is_err() {
                return started.elapsed();
            }
            thread::sleep(Duration::from_millis(300));
            assert!(started.elapsed() < Duration::from_secs(20), "never cut off");
        }
        unreachable!()
    });
    let answer = closed_within(&mut silent, Duration::from_secs(5));
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{text}"
    );
    let cut_after = trickle.join().unwrap();
    assert!(
        cut_after < Duration::from_secs(10),
        "a trickled head was cut off only after {cut_after:?}"
    );
    assert_serves_normally(&relay);
    eventually(Duration::from_secs(15), "threads back to rest", || {
        relay.threads() <= THREADS_AT_REST
    });
}

#[test]
fn idle_keep_alive_connections_are_closed_after_the_request_timeout() {
    let relay = Relay::start(&["--request-timeout", "1s"]);
    let mut connection = relay.connect();
    connection
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let answer = closed_within(&mut connection, Duration::from_secs(5));
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[test]
fn connections_over_the_cap_are_turned_away_at_once_when_all_are_busy() {
    let relay = Relay::start(&["--max-connections", "4", "--request-timeout", "60s"]);
    relay.push_ok("cam", &jpeg(8, 8, 7, 2_000));
    // The push's connection counts until its thread has seen the client close it; on a busy
    // machine that can be after the viewers connect, and the fourth would be the one refused.
    eventually(
        Duration::from_secs(10),
        "the push's connection ended",
        || relay.threads() <= THREADS_AT_REST,
    );
    let mut viewers: Vec<_> = (0..4)
        .map(|_| relay.stream("/live.mjpeg?device_id=cam"))
        .collect();
    for viewer in &mut viewers {
        assert_eq!(viewer.head.status, 200, "{}", viewer.head.text());
        viewer.next_part();
    }
    let mut fifth = relay.connect();
    let answer = closed_within(&mut fifth, Duration::from_secs(5));
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
    assert!(text.contains("\r\nRetry-After: 5\r\n"), "{text}");
    assert!(text.contains("--max-connections"), "{text}");
    // The streams were not touched.
    for viewer in &mut viewers {
        viewer.next_part();
    }
    drop(viewers);
    eventually(Duration::from_secs(10), "threads back to rest", || {
        relay.threads() <= THREADS_AT_REST
    });
    assert_serves_normally(&relay);
}

#[test]
fn at_the_cap_the_longest_waiting_connection_makes_room() {
    let relay = Relay::start(&["--max-connections", "4", "--request-timeout", "60s"]);
    let mut idle: Vec<TcpStream> = Vec::new();
    for _ in 0..4 {
        idle.push(relay.connect());
        // Each waits a little longer than the next, and all longer than the reclaim delay.
        thread::sleep(Duration::from_millis(400));
    }
    thread::sleep(Duration::from_millis(700));
    // Well before the 60 s request timeout, a newcomer is served...
    assert_eq!(relay.get("/healthz").status, 200);
    // ...in place of the connection that had waited longest, closed without a word.
    let oldest = closed_within(&mut idle[0], Duration::from_secs(5));
    assert!(oldest.is_empty());
    assert!(idle[1..].iter().all(|connection| !has_answer(connection)));
}

#[test]
fn a_push_that_never_finishes_its_body_is_cut_off_after_the_push_timeout() {
    let relay = Relay::start(&["--push-timeout", "1s", "--request-timeout", "30s"]);
    let mut pusher = relay.connect();
    pusher
        .write_all(
            b"POST /pump_push/cam HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n\
              Content-Length: 100000\r\n\r\n\xFF\xD8\xFF",
        )
        .unwrap();
    let started = Instant::now();
    closed_within(&mut pusher, Duration::from_secs(10));
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_serves_normally(&relay);
}

#[test]
fn requests_pipelined_behind_a_stream_are_never_read() {
    let relay = Relay::start(&[]);
    relay.push_ok("cam", &jpeg(8, 8, 1, 2_000));
    let mut connection = relay.connect();
    let mut pipelined = Vec::new();
    pipelined.extend_from_slice(b"GET /live.mjpeg?device_id=cam HTTP/1.1\r\nHost: t\r\n\r\n");
    for _ in 0..50 {
        pipelined.extend_from_slice(b"DELETE /api/devices/cam HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    connection.write_all(&pipelined).unwrap();
    // The stream goes on as if nothing followed it: one answer head, then parts.
    connection.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while received.len() < 3 * 2_000 {
        let count = connection.read(&mut buffer).expect("the stream goes on");
        assert!(count > 0, "the stream ended");
        received.extend_from_slice(&buffer[..count]);
    }
    assert!(received.starts_with(b"HTTP/1.1 200"));
    let heads = received.windows(9).filter(|w| w == b"HTTP/1.1 ").count();
    assert_eq!(heads, 1, "a pipelined request was answered");
    assert!(!relay.logged("forgotten on request"));
    drop(connection);
    assert_serves_normally(&relay);
    eventually(
        Duration::from_secs(20),
        "connection threads released",
        || relay.threads() <= THREADS_AT_REST,
    );
}

#[test]
fn the_relay_accepts_again_by_itself_after_running_out_of_descriptors() {
    // 48 descriptors: a few for the process itself, one per connection.
    let relay = Relay::start_with_descriptor_limit(48, &["--request-timeout", "2s"]);
    relay.wait_for_log("file descriptor limit (48)", IO_TIMEOUT);
    relay.push_ok("cam", &jpeg(8, 8, 1, 2_000));
    let mut viewer = relay.stream("/live.mjpeg?device_id=cam");
    viewer.next_part();
    // Far more connections than descriptors: the kernel completes the handshakes into the
    // backlog whether or not the relay can accept them.
    let flood: Vec<TcpStream> = (0..60)
        .filter_map(|_| TcpStream::connect(relay.addr).ok())
        .collect();
    assert!(flood.len() >= 40, "only {} connections opened", flood.len());
    relay.wait_for_log("cannot accept connections", Duration::from_secs(10));
    // The open stream keeps going meanwhile.
    viewer.next_part();
    drop(flood);
    relay.wait_for_log("accepting connections again", Duration::from_secs(30));
    assert_eq!(relay.get("/healthz").status, 200);
    viewer.next_part();
    assert_serves_normally(&relay);
}

#[test]
fn http2_request_lines_get_505_and_cost_nothing() {
    let mut relay = Relay::start(&["--request-timeout", "1s"]);
    for (index, line) in [
        &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
        b"GET / HTTP/2.0\r\n\r\n",
    ]
    .iter()
    .cycle()
    .take(200)
    .enumerate()
    {
        let mut connection = relay.connect();
        connection.write_all(line).unwrap();
        let answer = closed_within(&mut connection, Duration::from_secs(5));
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 505 HTTP Version Not Supported\r\n"),
            "{index}: {text}"
        );
    }
    assert!(relay.is_running());
    assert_serves_normally(&relay);
    eventually(Duration::from_secs(10), "threads back to rest", || {
        relay.threads() <= THREADS_AT_REST
    });
}

#[test]
fn an_unread_body_is_answered_and_its_connection_closed() {
    // Whatever the route, a body the relay does not read is never waited for: the answer goes
    // out at once, and the connection closes after a short linger instead of being read as a
    // next request.
    let relay = Relay::start(&["--push-timeout", "30s", "--request-timeout", "30s"]);
    for (target, status) in [("/nowhere", "404"), ("/pump_push/bad!id", "400")] {
        let mut client = relay.connect();
        write!(
            client,
            "POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nxx"
        )
        .unwrap();
        let received = closed_within(&mut client, Duration::from_secs(10));
        let text = String::from_utf8_lossy(&received);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{target}: {text}"
        );
        assert!(
            text.contains("\r\nConnection: close\r\n"),
            "{target}: {text}"
        );
    }
    assert_serves_normally(&relay);
}

#[test]
fn a_request_begun_after_a_quiet_spell_is_not_closed_for_a_newcomer() {
    let relay = Relay::start(&["--max-connections", "4", "--request-timeout", "60s"]);
    relay.push_ok("cam", &jpeg(8, 8, 7, 2_000));
    let mut viewers: Vec<_> = (0..3)
        .map(|_| relay.stream("/live.mjpeg?device_id=cam"))
        .collect();
    for viewer in &mut viewers {
        viewer.next_part();
    }
    // A kept-alive connection, quiet for longer than a waiting connection may be kept at the
    // cap, then starting its next request in two pieces.
    let mut kept = relay.connect();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    kept.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut first = [0u8; 512];
    let count = kept.read(&mut first).unwrap();
    assert!(first[..count].starts_with(b"HTTP/1.1 200"));
    thread::sleep(Duration::from_millis(1_500));
    kept.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    thread::sleep(Duration::from_millis(100));
    // A newcomer finds every connection busy or just begun: it is the one turned away.
    let mut newcomer = relay.connect();
    let answer = closed_within(&mut newcomer, Duration::from_secs(5));
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 503 "));
    kept.write_all(b"Host: t\r\n\r\n").unwrap();
    let count = kept.read(&mut first).unwrap();
    assert!(
        first[..count].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first[..count])
    );
}
