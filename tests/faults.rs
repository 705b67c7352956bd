//! The limits that keep misbehaving clients from holding the relay's threads: the request
//! timeout (slowloris, silent connections, idle keep-alive), the cap on idle connections, the
//! push timeout, pipelining behind a stream, and recovery after running out of descriptors.
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
    assert!(closed_within(&mut silent, Duration::from_secs(5)).is_empty());
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
fn idle_connections_over_the_cap_are_closed_at_once() {
    let relay = Relay::start(&["--max-connections", "4", "--request-timeout", "60s"]);
    let idle: Vec<TcpStream> = (0..20).map(|_| relay.connect()).collect();
    // Well before the 60 s request timeout, all but 4 are closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut open = idle.len();
    while open > 4 {
        assert!(
            Instant::now() < deadline,
            "{open} idle connections still open"
        );
        thread::sleep(Duration::from_millis(200));
        open = idle.iter().filter(|c| !has_answer(c)).count();
    }
    assert_serves_normally(&relay);
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
fn a_request_pipelined_behind_a_stream_closes_that_connection() {
    let relay = Relay::start(&[]);
    relay.push_ok("cam", &jpeg(8, 8, 1, 2_000));
    let mut connection = relay.connect();
    let mut pipelined = Vec::new();
    pipelined.extend_from_slice(b"GET /live.mjpeg?device_id=cam HTTP/1.1\r\nHost: t\r\n\r\n");
    for _ in 0..50 {
        pipelined.extend_from_slice(b"GET /live.mjpeg?device_id=cam HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    connection.write_all(&pipelined).unwrap();
    let received = closed_within(&mut connection, Duration::from_secs(10));
    assert!(received.starts_with(b"HTTP/1.1 200"));
    relay.wait_for_log(
        "while its stream is open on the same connection",
        IO_TIMEOUT,
    );
    assert_serves_normally(&relay);
    eventually(Duration::from_secs(20), "handler threads released", || {
        relay.threads() <= THREADS_AT_REST
    });
}

#[test]
fn the_relay_accepts_again_by_itself_after_running_out_of_descriptors() {
    // 48 descriptors: a few for the process itself, two per connection.
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
    // tiny_http's accept thread dies: either accept() fails (logged as "stopped accepting")
    // or duplicating an accepted socket panics. The open stream keeps going meanwhile.
    eventually(Duration::from_secs(10), "the accept thread to fail", || {
        relay.logged("stopped accepting") || relay.logged("Too many open files")
    });
    viewer.next_part();
    drop(flood);
    // The idle connections are closed by the request timeout, and the supervisor starts a
    // new server on the same socket.
    relay.wait_for_log("starting a new HTTP server", Duration::from_secs(60));
    let mut recovered = false;
    for _ in 0..60 {
        if let Ok(mut connection) = TcpStream::connect(relay.addr) {
            connection.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            let _ = connection.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
            let mut answer = Vec::new();
            let _ = connection.read_to_end(&mut answer);
            if answer.starts_with(b"HTTP/1.0 200") || answer.starts_with(b"HTTP/1.1 200") {
                recovered = true;
                break;
            }
        }
        thread::sleep(Duration::from_millis(500));
    }
    assert!(recovered, "the relay never answered again");
    viewer.next_part();
    assert_serves_normally(&relay);
}

#[test]
fn http2_request_lines_cost_a_stuck_thread_each_and_too_many_restart_the_relay() {
    // tiny_http deadlocks the connection thread of a request line above HTTP/1.1; the relay
    // cannot free it (see src/connection_watch.rs), so past 64 of them it exits for a restart.
    let mut relay = Relay::start(&["--request-timeout", "1s"]);
    let stuck: Vec<TcpStream> = (0..66)
        .map(|_| {
            let mut connection = relay.connect();
            connection
                .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
                .unwrap();
            connection
        })
        .collect();
    // Still serving meanwhile: each costs one thread, not the relay.
    assert_serves_normally(&relay);
    drop(stuck);
    relay.wait_for_log(
        "connections stay open after being closed",
        Duration::from_secs(60),
    );
    eventually(Duration::from_secs(10), "the relay to exit", || {
        !relay.is_running()
    });
    assert_eq!(relay.exit_code(), Some(1));
}

#[test]
fn a_trickled_body_is_cut_off_whatever_the_route() {
    // tiny_http reads an unread body to its end after any answer, so a 404 with a trickled
    // body would hold its handler as long as a push would.
    let relay = Relay::start(&["--push-timeout", "1s", "--request-timeout", "30s"]);
    for target in ["/nowhere", "/pump_push/bad!id"] {
        let mut client = relay.connect();
        write!(
            client,
            "POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nxx"
        )
        .unwrap();
        let started = Instant::now();
        closed_within(&mut client, Duration::from_secs(10));
        assert!(started.elapsed() >= Duration::from_millis(900), "{target}");
    }
    assert_serves_normally(&relay);
}
