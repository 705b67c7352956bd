//! Streaming pushes: ffmpeg's `mpjpeg` over a chunked POST, curl with a file of concatenated
//! JPEGs, streams cut mid-frame, bad frames inside a stream, and a stream that outlives
//! `--push-timeout` because it keeps delivering frames.

mod support;

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{jpeg, read_response, require_tool, Relay};

/// Starts a chunked streaming push on a new connection.
fn open_stream(relay: &Relay, device: &str, content_type: &str) -> TcpStream {
    let mut stream = relay.connect();
    write!(
        stream,
        "POST /pump_push/{device} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    stream
}

fn send_chunk(stream: &mut TcpStream, bytes: &[u8]) {
    write!(stream, "{:x}\r\n", bytes.len()).unwrap();
    stream.write_all(bytes).unwrap();
    stream.write_all(b"\r\n").unwrap();
}

fn number(relay: &Relay, device: &str, field: &str) -> u64 {
    relay
        .device(device)
        .and_then(|d| d[field].as_u64())
        .unwrap_or(0)
}

#[test]
fn ffmpeg_pushes_a_live_mpjpeg_stream() {
    require_tool("ffmpeg", "-version", "ffmpeg");
    let relay = Relay::start(&[]);
    let url = format!("http://{}/pump_push/ff_cam", relay.addr);
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i"])
        .arg("testsrc=size=640x480:rate=15")
        .args(["-t", "30", "-c:v", "mjpeg", "-q:v", "5", "-f", "mpjpeg"])
        .args(["-method", "POST", &url])
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ffmpeg");

    relay.eventually(Duration::from_secs(10), "ffmpeg's frames to arrive", || {
        number(&relay, "ff_cam", "frames_received") >= 10
    });
    let status = relay.device("ff_cam").expect("the device");
    assert_eq!(status["push_mode"], "stream", "{status}");
    assert_eq!(
        (status["width"].as_u64(), status["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert!(status["pusher"]
        .as_str()
        .unwrap_or_default()
        .starts_with("127.0.0.1:"));

    // A viewer gets the frames as they come: at 15 fps, 20 distinct frames in under 3 s on an
    // idle machine; 10 s allows for a loaded one.
    let mut viewer = relay.stream("/live.mjpeg?device_id=ff_cam");
    let started = Instant::now();
    let mut distinct = std::collections::HashSet::new();
    while distinct.len() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "only {} distinct frames",
            distinct.len()
        );
        distinct.insert(viewer.next_part().body);
    }
    // The rate over the last 3 s; ffmpeg sends 15 fps (-re), a loaded machine a little less.
    relay.eventually(
        Duration::from_secs(10),
        "an input rate of 8 fps or more",
        || {
            relay
                .device("ff_cam")
                .and_then(|d| d["input_fps"].as_f64())
                .is_some_and(|rate| rate >= 8.0)
        },
    );
    viewer.close();
    assert_eq!(number(&relay, "ff_cam", "bad_frames"), 0);
    assert!(ffmpeg.try_wait().unwrap().is_none(), "ffmpeg ended early");
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
}

#[test]
fn curl_uploads_a_file_of_concatenated_jpegs() {
    require_tool("ffmpeg", "-version", "ffmpeg");
    require_tool("curl", "--version", "curl");
    let dir = std::env::temp_dir().join(format!("streampump-ingest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("frames.mjpeg");
    let made = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=size=320x240:rate=10")
        .args(["-frames:v", "7", "-c:v", "mjpeg", "-f", "mjpeg"])
        .arg(&file)
        .status()
        .expect("run ffmpeg");
    assert!(made.success());

    let relay = Relay::start(&[]);
    let answer = Command::new("curl")
        .args(["-sS", "-H", "Content-Type: video/x-motion-jpeg", "-T", "-"])
        .arg(format!("http://{}/pump_push/file_cam", relay.addr))
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("run curl");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(answer.status.success(), "{answer:?}");
    assert_eq!(String::from_utf8_lossy(&answer.stdout), "OK");
    assert_eq!(number(&relay, "file_cam", "frames_received"), 7);
    assert_eq!(number(&relay, "file_cam", "bad_frames"), 0);
    assert_eq!(number(&relay, "file_cam", "width"), 320);
}

#[test]
fn a_stream_cut_mid_frame_loses_only_that_frame() {
    let relay = Relay::start(&[]);
    let mut stream = open_stream(&relay, "cut_cam", "video/x-motion-jpeg");
    let (a, b, c) = (
        jpeg(32, 24, 1, 3000),
        jpeg(32, 24, 2, 3000),
        jpeg(32, 24, 3, 3000),
    );
    send_chunk(&mut stream, &[a.clone(), b.clone()].concat());
    send_chunk(&mut stream, &c[..c.len() / 2]);
    relay.eventually(Duration::from_secs(5), "two frames", || {
        number(&relay, "cut_cam", "frames_received") == 2
    });
    drop(stream);
    relay.eventually(Duration::from_secs(5), "the cut frame counted", || {
        number(&relay, "cut_cam", "bad_frames") == 1
    });
    assert_eq!(number(&relay, "cut_cam", "frames_received"), 2);
    assert_eq!(relay.get("/snapshot.jpg?device_id=cut_cam").body, b);
    relay.push_ok("cut_cam", &c);
}

#[test]
fn bad_frames_are_skipped_and_the_stream_goes_on() {
    let relay = Relay::start(&["--max-frame-bytes", "8192"]);
    let mut stream = open_stream(
        &relay,
        "mixed_cam",
        "multipart/x-mixed-replace; boundary=frame",
    );
    let good = jpeg(32, 24, 1, 2000);
    let oversized = jpeg(32, 24, 2, 20_000);
    // SOI, a segment, then EOI before any frame header: not a complete JPEG.
    let broken = [0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x04, 0x41, 0x42, 0xFF, 0xD9];
    let last = jpeg(32, 24, 3, 2000);
    for part in [&good[..], &oversized, &broken, &last] {
        send_chunk(&mut stream, b"--frame\r\ncontent-type: image/jpeg\r\n\r\n");
        send_chunk(&mut stream, part);
        send_chunk(&mut stream, b"\r\n");
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let answer = read_response(&mut BufReader::new(stream), true);
    assert_eq!((answer.status, answer.text().as_str()), (200, "OK"));
    assert_eq!(number(&relay, "mixed_cam", "frames_received"), 2);
    assert_eq!(number(&relay, "mixed_cam", "bad_frames"), 2);
    assert_eq!(relay.get("/snapshot.jpg?device_id=mixed_cam").body, last);

    // A stream with no good frame at all says why.
    let mut stream = open_stream(&relay, "junk_cam", "application/octet-stream");
    send_chunk(&mut stream, b"no jpeg in here");
    stream.write_all(b"0\r\n\r\n").unwrap();
    let answer = read_response(&mut BufReader::new(stream), true);
    assert_eq!(answer.status, 415, "{}", answer.text());
}

#[test]
fn bad_frames_do_not_keep_a_stream_alive() {
    let relay = Relay::start(&["--push-timeout", "1s"]);
    let mut stream = open_stream(&relay, "junk_cam", "video/x-motion-jpeg");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    // A broken frame (a start of image followed by no marker) every 200 ms, for up to 4 s.
    while started.elapsed() < Duration::from_secs(4) {
        if stream.write_all(b"5\r\n\xff\xd8\x00\x00\x00\r\n").is_err() {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "a stream of bad frames lived {:?}",
        started.elapsed()
    );
    assert_eq!(number(&relay, "junk_cam", "frames_received"), 0);
}

#[test]
fn a_single_push_with_a_length_stays_one_frame() {
    let relay = Relay::start(&[]);
    // Data after the image's end (as in photos carrying a gain map) is part of the one frame.
    let mut body = jpeg(32, 24, 1, 2000);
    body.extend_from_slice(&jpeg(16, 12, 2, 500));
    let head = format!(
        "POST /pump_push/photo HTTP/1.1\r\nHost: t\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let answer = relay.raw(&[head.as_bytes(), &body].concat());
    assert_eq!(answer.status, 200, "{}", answer.text());
    let status = relay.device("photo").unwrap();
    assert_eq!(status["frames_received"], 1);
    assert_eq!(status["push_mode"], "single");
    assert_eq!(status["width"], 32);
}

#[test]
fn a_stream_lives_past_the_push_timeout_while_frames_keep_coming() {
    let relay = Relay::start(&["--push-timeout", "1s", "--offline-after", "500ms"]);
    let mut stream = open_stream(&relay, "live_cam", "image/jpeg");
    let started = Instant::now();
    let mut tag = 0u8;
    while started.elapsed() < Duration::from_millis(3000) {
        tag = tag.wrapping_add(1);
        send_chunk(&mut stream, &jpeg(32, 24, tag, 1500));
        thread::sleep(Duration::from_millis(100));
    }
    let received = number(&relay, "live_cam", "frames_received");
    assert!(received >= 20, "only {received} frames in 3 s");
    // The connected stream keeps the device online between frames.
    thread::sleep(Duration::from_millis(700));
    assert_eq!(relay.device("live_cam").unwrap()["online"], true);
    // Once frames stop, the stream is cut off within about a push timeout.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let cut = Instant::now();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut rest);
    assert!(
        cut.elapsed() < Duration::from_secs(5),
        "still open after {:?}",
        cut.elapsed()
    );
    relay.eventually(Duration::from_secs(5), "the device to go offline", || {
        relay
            .device("live_cam")
            .is_some_and(|d| d["online"] == false)
    });
}
