//! Test harness: runs the real `streampump` binary on `127.0.0.1:0` and talks raw HTTP to it.
//!
//! Every socket has a read timeout, so a relay that fails to send something makes a test fail
//! with a clear message instead of hanging. Nothing sleeps to wait for an event that can be
//! awaited; where only polling is possible (thread counts in /proc, eviction), it polls with a
//! deadline.

#![allow(dead_code)]

pub mod zbar;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Threads of a relay with no connection open: main (the accept loop) and housekeeping. Each
/// open connection adds one.
pub const THREADS_AT_REST: usize = 2;
/// The same with HTTPS on: its accept loop is one more thread.
pub const THREADS_AT_REST_TLS: usize = THREADS_AT_REST + 1;

/// The placeholder picture the relay streams while a device has no live frame.
pub const NO_SIGNAL: &[u8] = include_bytes!("../../assets/no_signal.jpg");

/// Runs the binary to completion with `args` and extra environment variables (for `--help`,
/// `--check` and refused settings).
pub fn run_streampump(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_streampump"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run streampump")
}

/// The relay to start: the binary cargo built for these tests, or, with
/// `STREAMPUMP_TEST_BIN` (and `STREAMPUMP_TEST_RUNNER`, e.g. `qemu-mipsel`), another build
/// of it, such as a cross build run under qemu-user (`make flood-mipsel`). The process the
/// tests measure is then the runner's, which holds the relay's memory and threads.
pub fn relay_command() -> Command {
    let binary = std::env::var("STREAMPUMP_TEST_BIN")
        .ok()
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_streampump").to_string());
    match std::env::var("STREAMPUMP_TEST_RUNNER") {
        Ok(runner) if !runner.is_empty() => {
            let mut command = Command::new(runner);
            command.arg(binary);
            command
        }
        _ => Command::new(binary),
    }
}

/// A running relay, killed when dropped.
pub struct Relay {
    child: Child,
    pub addr: SocketAddr,
    /// The HTTPS port's address, when the test asked for one (`--tls-listen 127.0.0.1:0`).
    /// Every other relay runs with `--tls-listen off`, so that none takes the fixed default
    /// port 19443 and collides with another.
    pub tls_addr: Option<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
    /// The relay's `--state-dir`: a fresh directory of its own unless the test named one, so
    /// that no test sees another's certificate authority or settings. Removed on drop when
    /// the harness made it.
    pub state_dir: PathBuf,
    made_state_dir: bool,
}

/// A new, empty directory under the system's temporary directory.
pub fn scratch_dir(purpose: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "streampump-{purpose}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).expect("create a scratch directory");
    path
}

impl Relay {
    pub fn start(extra_args: &[&str]) -> Relay {
        Relay::start_logging("info", extra_args)
    }

    /// Starts the relay with `RUST_LOG` set to `filter`.
    pub fn start_logging(filter: &str, extra_args: &[&str]) -> Relay {
        Relay::start_configured(filter, extra_args, |_| {})
    }

    /// Starts the relay with a file descriptor limit (soft and hard) of `limit`.
    pub fn start_with_descriptor_limit(limit: u64, extra_args: &[&str]) -> Relay {
        use std::os::unix::process::CommandExt;
        Relay::start_configured("info", extra_args, move |command| {
            // SAFETY: runs in the forked child before exec; setrlimit is async-signal-safe and
            // touches only the local struct.
            unsafe {
                command.pre_exec(move || {
                    let wanted = libc::rlimit {
                        rlim_cur: limit as libc::rlim_t,
                        rlim_max: limit as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        })
    }

    /// Starts the relay, letting `configure` adjust the command first.
    pub fn start_configured(
        filter: &str,
        extra_args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Relay {
        let named_state_dir = extra_args
            .iter()
            .position(|arg| *arg == "--state-dir")
            .and_then(|at| extra_args.get(at + 1));
        let (state_dir, made_state_dir) = match named_state_dir {
            Some(path) => (PathBuf::from(path), false),
            None => (scratch_dir("state"), true),
        };
        let wants_tls = extra_args.contains(&"--tls-listen");
        let mut command = relay_command();
        // Loopback and a free port, unless the test listens elsewhere.
        if !extra_args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        if !wants_tls {
            command.args(["--tls-listen", "off"]);
        }
        command
            .args(extra_args)
            .env("RUST_LOG", filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if made_state_dir {
            command.arg("--state-dir").arg(&state_dir);
        }
        configure(&mut command);
        let mut child = command.spawn().expect("start the streampump binary");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let (tls_tx, tls_rx) = mpsc::channel();
        {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        let _ = addr_tx.send(addr.parse::<SocketAddr>().ok());
                    }
                    if let Some(rest) = line.split("HTTPS on ").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        let _ = tls_tx.send(addr.parse::<SocketAddr>().ok());
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "relay did not report its address: {:?}",
                    log.lock().unwrap()
                )
            });
        let tls_addr = if wants_tls {
            let tls_addr = tls_rx.recv_timeout(Duration::from_secs(20)).ok().flatten();
            if tls_addr.is_none() {
                let _ = child.kill();
                panic!(
                    "relay did not report its HTTPS address: {:?}",
                    log.lock().unwrap()
                );
            }
            tls_addr
        } else {
            None
        };
        Relay {
            child,
            addr,
            tls_addr,
            log,
            state_dir,
            made_state_dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Threads of the relay process, from /proc.
    pub fn threads(&self) -> usize {
        proc_status_field(self.pid(), "Threads:")
    }

    /// Open file descriptors of the relay process, from /proc.
    pub fn descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|entries| entries.count())
            .unwrap_or(0)
    }

    /// Whether the relay process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The exit code, once the relay has exited.
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child
            .try_wait()
            .ok()
            .flatten()
            .and_then(|status| status.code())
    }

    /// Polls `condition` until it holds or `within` passes; a timeout shows the relay's log.
    pub fn eventually(&self, within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        while !condition() {
            if Instant::now() >= deadline {
                let log = self.log.lock().unwrap();
                let tail = &log[log.len().saturating_sub(60)..];
                panic!("timed out waiting for {what}; relay log: {tail:#?}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many lines the relay has logged so far.
    pub fn log_len(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// The last `count` log lines.
    pub fn log_tail(&self, count: usize) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(count)..].to_vec()
    }

    /// Whether some log line so far contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(needle))
    }

    /// How many log lines so far contain `needle`.
    pub fn logged_count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Waits until a log line containing `needle` appears.
    pub fn wait_for_log(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line containing {needle:?} within {within:?}; log: {:#?}",
                self.log.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect to relay");
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream
    }

    /// Sends raw bytes on a new connection and reads the whole answer (until close).
    pub fn raw(&self, request: &[u8]) -> Response {
        let mut stream = self.connect();
        stream.write_all(request).expect("send request");
        let mut reader = BufReader::new(stream);
        read_response(&mut reader, true)
    }

    pub fn get(&self, target: &str) -> Response {
        self.raw(
            format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    }

    pub fn push(&self, device: &str, body: &[u8]) -> Response {
        let head = format!(
            "POST /pump_push/{device} HTTP/1.1\r\nHost: t\r\nContent-Type: image/jpeg\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.raw(&request)
    }

    /// Pushes and insists on 200.
    pub fn push_ok(&self, device: &str, body: &[u8]) {
        let response = self.push(device, body);
        assert_eq!(response.status, 200, "push failed: {}", response.text());
    }

    pub fn devices(&self) -> serde_json::Value {
        let response = self.get("/api/devices");
        assert_eq!(response.status, 200);
        serde_json::from_slice(&response.body).expect("status is JSON")
    }

    pub fn device(&self, id: &str) -> Option<serde_json::Value> {
        self.devices()
            .as_array()
            .expect("status is an array")
            .iter()
            .find(|d| d["id"] == id)
            .cloned()
    }

    /// Opens `/live.mjpeg` (or any stream target) and reads the response head.
    pub fn stream(&self, target: &str) -> MjpegStream {
        MjpegStream::open(self.connect(), target, "HTTP/1.1")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.made_state_dir {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
    }
}

pub fn proc_status_field(pid: u32, field: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Whether the relay has sent something on `connection`, or closed it, without reading it.
pub fn has_answer(connection: &TcpStream) -> bool {
    connection.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let answered = !matches!(
        connection.peek(&mut byte),
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock
    );
    connection.set_nonblocking(false).unwrap();
    answered
}

/// Polls `condition` until it holds or `within` passes.
pub fn eventually(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[derive(Debug)]
pub struct Response {
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn read_line(reader: &mut impl BufRead) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a header line");
    line.trim_end_matches(['\r', '\n']).to_string()
}

/// Reads a status line and headers; with `with_body`, reads the body per Content-Length or to
/// the end of the connection.
pub fn read_response(reader: &mut impl BufRead, with_body: bool) -> Response {
    let status_line = read_line(reader);
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader);
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header has a colon");
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut response = Response {
        status_line,
        status,
        headers,
        body: Vec::new(),
    };
    if with_body {
        match response
            .header("Content-Length")
            .map(|v| v.parse::<usize>().unwrap())
        {
            Some(length) => {
                response.body = vec![0; length];
                reader.read_exact(&mut response.body).expect("read body");
            }
            None => {
                reader
                    .read_to_end(&mut response.body)
                    .expect("read body to close");
            }
        }
    }
    response
}

/// One part of a multipart stream.
#[derive(Debug)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A client reading `multipart/x-mixed-replace` parts by their Content-Length.
pub struct MjpegStream {
    pub head: Response,
    pub reader: BufReader<TcpStream>,
}

impl MjpegStream {
    pub fn open(mut stream: TcpStream, target: &str, version: &str) -> MjpegStream {
        write!(stream, "GET {target} {version}\r\nHost: t\r\n\r\n").expect("send request");
        let mut reader = BufReader::new(stream);
        let head = read_response(&mut reader, false);
        MjpegStream { head, reader }
    }

    /// Reads the next part, skipping the delimiter lines before it.
    pub fn next_part(&mut self) -> Part {
        let mut line = read_line(&mut self.reader);
        while line.is_empty() || line == "--frame_boundary" {
            line = read_line(&mut self.reader);
        }
        let mut headers = Vec::new();
        while !line.is_empty() {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("bad part header {line:?}"));
            headers.push((name.trim().to_string(), value.trim().to_string()));
            line = read_line(&mut self.reader);
        }
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
            .map(|(_, v)| v.parse().expect("numeric Content-Length"))
            .expect("every part has Content-Length");
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("read part body");
        Part { headers, body }
    }

    /// Reads parts until one satisfies `wanted`, failing after `limit` parts.
    pub fn part_where(&mut self, limit: usize, wanted: impl Fn(&[u8]) -> bool) -> Part {
        for _ in 0..limit {
            let part = self.next_part();
            if wanted(&part.body) {
                return part;
            }
        }
        panic!("no wanted part among {limit}");
    }

    pub fn close(self) {
        let _ = self.reader.get_ref().shutdown(Shutdown::Both);
    }
}

/// A small JPEG: SOI, SOF0 with the given size, SOS, a tag byte repeated to fill `size` bytes
/// as its image data, EOI. Enough for the relay, which walks the structure but decodes nothing.
pub fn jpeg(width: u16, height: u16, tag: u8, size: usize) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0x08];
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
    out.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
    let filler = size.saturating_sub(out.len() + 2).max(1);
    out.extend(std::iter::repeat_n(tag, filler));
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// The tag byte of a buffer made by [`jpeg`].
pub fn tag_of(frame: &[u8]) -> u8 {
    frame[frame.len() - 3]
}

/// Fails the test with instructions when a real client it drives is missing; such tests are
/// never skipped (`make test` installs the tools when it can).
#[allow(dead_code)]
pub fn require_tool(tool: &str, version_flag: &str, package: &str) {
    let found = std::process::Command::new(tool)
        .arg(version_flag)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "{tool} is needed for this test: install Debian's {package} package \
         (apt-get install {package}), or run `make test`, which installs it when run as root"
    );
}
