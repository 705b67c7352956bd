//! The relay says where it is: the start-up log names the dashboard and phone URL for each LAN
//! address, the URLs answer, and on a terminal the phone URL also comes as a QR code that a
//! real decoder (`zbarimg`) reads back. The terminal is a real pseudo-terminal from
//! `script` (util-linux), so the relay's own terminal check decides.

mod support;

use std::io::{BufReader, Read, Write};
use std::net::{IpAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use streampump::host_addresses::lan_addresses;
use streampump::qr::terminal::{COLOURS, RESET};
use support::zbar::{write_pgm, zbar_decode};
use support::{read_response, require_tool, scratch_dir, Relay, IO_TIMEOUT};

const WITHIN: Duration = Duration::from_secs(10);

/// The IPv4 LAN addresses a relay on `0.0.0.0` announces. A machine with none cannot run
/// these tests: it has no address a phone could use.
fn lan_v4() -> Vec<IpAddr> {
    let addresses: Vec<IpAddr> = lan_addresses()
        .into_iter()
        .filter(IpAddr::is_ipv4)
        .collect();
    assert!(
        !addresses.is_empty(),
        "this machine has no IPv4 address besides loopback; the start-up URLs need one"
    );
    addresses
}

/// `GET url` (an `http://` URL of the relay) with a read timeout: status and body.
fn fetch(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut stream = TcpStream::connect(authority).expect("connect to the announced address");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: text/html\r\n\
         Accept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let response = read_response(&mut BufReader::new(stream), true);
    (
        response.status,
        String::from_utf8_lossy(&response.body).into_owned(),
    )
}

#[test]
fn the_log_lists_working_urls_for_each_lan_address_and_no_code_without_a_terminal() {
    let expected = lan_v4();
    let relay = Relay::start(&["--listen", "0.0.0.0:0"]);
    let port = relay.addr.port();
    for address in &expected {
        let dashboard = format!("http://{address}:{port}/");
        let phone = format!("http://{address}:{port}/push.html");
        let line = relay.wait_for_log(&format!("dashboard: {dashboard} "), WITHIN);
        assert!(line.ends_with(&format!("phone: {phone}")), "{line}");
        let (status, _) = fetch(&dashboard);
        assert_eq!(status, 200, "{dashboard}");
        let (status, _) = fetch(&phone);
        assert_eq!(status, 200, "{phone}");
    }
    // Standard error is a pipe here, as under procd or systemd: no code.
    relay.wait_for_log("listening on", WITHIN);
    assert!(!relay.logged("Scan with"));
    assert!(!relay.logged(COLOURS));
}

#[test]
fn with_push_tokens_the_log_says_how_phones_get_one() {
    let relay = Relay::start(&["--listen", "0.0.0.0:0", "--push-token", "secret-push"]);
    let line = relay.wait_for_log("pushing needs a token", WITHIN);
    assert!(
        line.ends_with("for a phone link and code that carry it"),
        "{line}"
    );
    assert!(!line.contains("***"), "{line}");
    assert!(!relay.logged("secret-push"));
}

#[test]
fn a_loopback_relay_says_that_phones_cannot_reach_it() {
    let relay = Relay::start(&[]);
    let line = relay.wait_for_log("which phones cannot reach", WITHIN);
    assert!(line.contains("listens on 127.0.0.1 only"), "{line}");
    assert!(line.contains("start it with --listen 0.0.0.0:"), "{line}");
    assert!(!relay.logged("phone: http"));
}

/// The relay run by `script` in a pseudo-terminal; its whole terminal output arrives on the
/// channel line by line. Ended (relay first, then `script`) when dropped.
struct OnTerminal {
    script: Child,
    lines: mpsc::Receiver<String>,
}

impl OnTerminal {
    fn start() -> OnTerminal {
        require_tool("script", "--version", "bsdutils");
        let state = scratch_dir("announce");
        let command = format!(
            "exec {} --listen 0.0.0.0:0 {} --state-dir {}",
            env!("CARGO_BIN_EXE_streampump"),
            // HTTPS on a port of its own (when built in), so the links are the HTTPS ones.
            if cfg!(feature = "tls") {
                "--tls-listen 0.0.0.0:0"
            } else {
                "--tls-listen off"
            },
            state.display()
        );
        let mut script = Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run script");
        let mut output = script.stdout.take().expect("stdout is piped");
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(read) = output.read(&mut chunk) {
                if read == 0 {
                    break;
                }
                bytes.extend_from_slice(&chunk[..read]);
                while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = bytes.drain(..=end).collect();
                    let text = String::from_utf8_lossy(&line);
                    let _ = sender.send(text.trim_end_matches(['\r', '\n']).to_string());
                }
            }
        });
        OnTerminal { script, lines }
    }

    fn next_line(&self, deadline: Instant) -> String {
        let left = deadline.saturating_duration_since(Instant::now());
        self.lines
            .recv_timeout(left)
            .expect("the relay's terminal output ended or stalled")
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        // The relay is `script`'s only child (the shell exec'd it).
        let pid = self.script.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
        for child in children.unwrap_or_default().split_whitespace() {
            if let Ok(child) = child.parse::<i32>() {
                // SAFETY: a plain kill(2) of a process this test started.
                unsafe { libc::kill(child, libc::SIGTERM) };
            }
        }
        let _ = self.script.kill();
        let _ = self.script.wait();
    }
}

/// Module rows from the terminal's half-block lines: each line is two rows.
fn modules_of(lines: &[String]) -> Vec<Vec<bool>> {
    let mut rows = Vec::new();
    for line in lines {
        let inner = line
            .strip_prefix(COLOURS)
            .and_then(|l| l.strip_suffix(RESET))
            .unwrap_or_else(|| panic!("not a line of the code: {line:?}"));
        let (mut upper, mut lower) = (Vec::new(), Vec::new());
        for c in inner.chars() {
            let (u, l) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                ' ' => (false, false),
                other => panic!("unexpected character {other:?} in the code"),
            };
            upper.push(u);
            lower.push(l);
        }
        rows.push(upper);
        rows.push(lower);
    }
    rows
}

#[test]
fn on_a_terminal_the_phone_url_comes_as_a_code_that_decodes_to_it() {
    require_tool("zbarimg", "--version", "zbar-tools");
    let first = lan_v4()[0];
    let relay = OnTerminal::start();
    let deadline = Instant::now() + WITHIN;
    let mut phone_url = None;
    let mut code_lines = Vec::new();
    let mut scan_line = None;
    loop {
        let line = relay.next_line(deadline);
        if phone_url.is_none() {
            if let Some((_, url)) = line.split_once("  phone: ") {
                // With HTTPS, the certificate's set-up page follows on the same line.
                let url = url.split("  certificate: ").next().unwrap_or(url);
                phone_url = Some(url.to_string());
            }
        }
        if line.starts_with("Scan with") {
            scan_line = Some(line.clone());
        } else if line.starts_with(COLOURS) {
            code_lines.push(line);
        } else if !code_lines.is_empty() {
            break;
        }
    }
    let phone_url = phone_url.expect("a phone URL before the code");
    let scheme = if cfg!(feature = "tls") {
        "https"
    } else {
        "http"
    };
    assert!(
        phone_url.starts_with(&format!("{scheme}://{first}:")),
        "{phone_url}"
    );
    assert!(phone_url.ends_with("/push.html"), "{phone_url}");
    assert_eq!(
        scan_line.as_deref(),
        Some(format!("Scan with the phone's camera to open {phone_url}").as_str())
    );
    let rows = modules_of(&code_lines);
    let side = rows[0].len();
    assert!(
        rows.len() == side || rows.len() == side + 1,
        "{} rows of {side}",
        rows.len()
    );
    let dir = scratch_dir("terminal-code");
    let image = dir.join("code.pgm");
    write_pgm(&image, side, |r, c| rows.get(r).is_some_and(|row| row[c]));
    let decoded = zbar_decode(&image).expect("zbarimg reads the terminal's code");
    assert_eq!(String::from_utf8_lossy(&decoded).trim_end(), phone_url);
    let _ = std::fs::remove_dir_all(&dir);
}
