//! Is the relay still doing its job? A fresh viewer must get a live (stamped) frame and
//! `GET /api/devices` must answer 200. Also the small request helpers the attacks share:
//! a short GET, and reading whatever a connection answers as one word for the report.

use std::io::{self, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::frames::Stamp;
use crate::http::{self, Target};
use crate::multipart::PartReader;

/// Parts a probe viewer reads before giving up on seeing a live frame (the no-signal picture
/// comes once a second, live frames 15 times a second).
const PARTS_TO_SEE_A_LIVE_FRAME: usize = 45;

/// The devices `/api/devices` lists, as JSON objects; `None` if it did not answer 200 with
/// an array.
pub fn devices(target: &Target) -> Option<Vec<serde_json::Value>> {
    let (status, body) = get(target, "/api/devices").ok()?;
    if status != 200 {
        return None;
    }
    match serde_json::from_slice(&body).ok()? {
        serde_json::Value::Array(devices) => Some(devices),
        _ => None,
    }
}

/// `GET path` on a new connection (over TLS for an HTTPS target); the status and the body.
pub fn get(target: &Target, path: &str) -> io::Result<(u16, Vec<u8>)> {
    let mut stream = http::connect(target)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.authority
    )?;
    let mut reader = BufReader::new(stream);
    let mut head = http::read_response_head(&mut reader)?;
    let body = http::read_short_body(&mut reader, &mut head)?;
    Ok((head.status, body))
}

/// One check: `/api/devices` answers 200 and a new viewer of `device` gets a live frame.
pub fn serving(target: &Target, device: u32, device_id: &str) -> Result<(), String> {
    match get(target, "/api/devices") {
        Ok((200, _)) => {}
        Ok((status, body)) => {
            return Err(format!(
                "/api/devices answered {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ))
        }
        Err(error) => return Err(format!("/api/devices: {error}")),
    }
    let fail = |error: io::Error| format!("viewer of {device_id}: {error}");
    let mut stream = http::connect(target).map_err(fail)?;
    stream
        .write_all(&http::stream_request(target, device_id))
        .map_err(fail)?;
    let mut reader = BufReader::new(stream);
    let head = http::read_response_head(&mut reader).map_err(fail)?;
    if head.status != 200 {
        return Err(format!("viewer of {device_id} answered {}", head.status));
    }
    let mut parts = PartReader::new(reader);
    for _ in 0..PARTS_TO_SEE_A_LIVE_FRAME {
        let part = parts.next_part().map_err(fail)?;
        if Stamp::decode(&part.head).is_some_and(|stamp| stamp.device == device) {
            return Ok(());
        }
    }
    Err(format!(
        "viewer of {device_id}: no live frame among {PARTS_TO_SEE_A_LIVE_FRAME} parts"
    ))
}

/// Reads the first line of whatever the relay answers on `stream`, giving up at `deadline`:
/// the status code, `closed` (end of stream without an answer), `reset`, `no answer`, or
/// `not HTTP: …`.
pub fn answer_by(stream: TcpStream, deadline: Instant) -> String {
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(10));
    if stream.set_read_timeout(Some(wait)).is_err() {
        return "closed".to_string();
    }
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    match http::read_line(&mut reader, &mut line, http::MAX_LINE) {
        Ok(false) => "closed".to_string(),
        Ok(true) => {
            let text = String::from_utf8_lossy(&line);
            let mut words = text.split_whitespace();
            match (words.next(), words.next()) {
                (Some(version), Some(code)) if version.starts_with("HTTP/") => code.to_string(),
                _ => format!("not HTTP: {:?}", text.chars().take(40).collect::<String>()),
            }
        }
        Err(error) => match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "no answer".to_string(),
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                "reset".to_string()
            }
            io::ErrorKind::UnexpectedEof => "closed".to_string(),
            _ => format!("error: {error}"),
        },
    }
}
