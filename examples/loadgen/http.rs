//! The little HTTP/1.1 client loadgen needs: where to connect, how to open a socket that can
//! never hang, the two requests it sends, and reading a response head. Over `https://` the
//! same bytes go through rustls (a dev-dependency: nothing of it is in the relay), trusting
//! only the CA file given with `--ca-file`, so that the cost of the relay's HTTPS port can be
//! measured side by side with its plain port.
//!
//! Hand-written rather than taken from a client crate because the measurements depend on
//! knowing exactly which bytes go out when: a push is one head and one body on a kept-alive
//! connection, timed from the first byte written to the last byte of the answer read. Every
//! socket gets `TCP_NODELAY` (otherwise Nagle's algorithm holds the body behind the small head
//! until the head is acknowledged, up to 40 ms on Linux loopback) and read and write timeouts,
//! so a server that stops answering costs a counted timeout, never a hung thread.

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

#[path = "../../tests/support/base64.rs"]
mod base64;

/// How long to wait for a TCP connection to be accepted.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one read or write may block. Both servers send a stream part at least once a
/// second (streampump repeats the latest frame after 1 s of silence, the reference every
/// 50 ms), so three seconds of silence on a stream means it is stuck.
pub const IO_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest status or header line accepted; real servers send well under 200 bytes.
pub const MAX_LINE: usize = 8 * 1024;
/// Most header lines accepted in one response head.
const MAX_HEADERS: usize = 64;
/// Longest short answer (a push reply or an error message) read into memory.
const MAX_SHORT_BODY: u64 = 64 * 1024;

/// TLS towards the server: rustls's client configuration and the name to verify.
#[derive(Debug, Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl PartialEq for Tls {
    fn eq(&self, other: &Tls) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.name == other.name
    }
}

impl Eq for Tls {}

/// The server under test: a resolved address plus the text it was given as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    /// Whether the URL was `https://`; then `tls` is set by [`Target::with_ca_file`].
    pub secure: bool,
    pub tls: Option<Tls>,
    /// `host:port` as written in `--url`, sent as the `Host` header.
    pub authority: String,
    /// Header lines (each ending in CRLF) added to every push: the push token.
    pub push_headers: String,
    /// Header lines added to every stream request: the viewers' login.
    pub view_headers: String,
}

impl Target {
    /// Parses `http://HOST[:PORT][/]` or `https://HOST[:PORT][/]`. Anything else (a path,
    /// credentials) is refused with a message saying what is accepted.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (rest, secure) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (None, Some(rest)) => (rest, true),
            (None, None) => {
                return Err(
                    "expected a URL of the form http://HOST:PORT or https://HOST:PORT".into(),
                )
            }
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err("expected only http://HOST:PORT, without a path, query or user".into());
        }
        let has_port = match authority.strip_prefix('[') {
            Some(bracketed) => bracketed.contains("]:"),
            None => authority.contains(':'),
        };
        let with_port = if has_port {
            authority.to_string()
        } else if secure {
            format!("{authority}:443")
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|error| format!("cannot resolve {with_port}: {error}"))?
            .next()
            .ok_or_else(|| format!("{with_port} resolves to no address"))?;
        Ok(Target {
            addr,
            secure,
            tls: None,
            authority: authority.to_string(),
            push_headers: String::new(),
            view_headers: String::new(),
        })
    }

    /// Trusts the certificates in the PEM file `path` (the relay's own `ca.crt`) for an
    /// `https://` target, verifying the host of the URL against the server's certificate.
    pub fn with_ca_file(mut self, path: &str) -> Result<Target, String> {
        let mut roots = RootCertStore::empty();
        let certificates = CertificateDer::pem_file_iter(path)
            .and_then(|all| all.collect::<Result<Vec<_>, _>>())
            .map_err(|error| format!("cannot read {path}: {error}"))?;
        let (added, _) = roots.add_parsable_certificates(certificates);
        if added == 0 {
            return Err(format!("no certificate in {path}"));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let host = match self.authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => self.authority.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name =
            ServerName::try_from(host.to_string()).map_err(|error| format!("{host}: {error}"))?;
        self.tls = Some(Tls {
            config: Arc::new(config),
            name,
        });
        Ok(self)
    }

    /// Sends `token` with every push, as `Authorization: Bearer`.
    pub fn with_push_token(mut self, token: &str) -> Target {
        self.push_headers = format!("Authorization: Bearer {token}\r\n");
        self
    }

    /// Sends `user:password` with every stream request, as Basic auth (what go2rtc and
    /// ffmpeg send for a login in the URL).
    pub fn with_view_login(mut self, login: &str) -> Target {
        self.view_headers = format!(
            "Authorization: Basic {}\r\n",
            base64::encode(login.as_bytes())
        );
        self
    }

    /// The URL of `path` on this server, for messages.
    pub fn url(&self, path: &str) -> String {
        format!("{self}{path}")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.authority)
    }
}

/// A connection to the server: the socket, or TLS over it.
pub enum Connection {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Connection {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(stream) => stream.read(out),
            Connection::Tls(stream) => stream.read(out),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(stream) => stream.write(bytes),
            Connection::Tls(stream) => stream.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Plain(stream) => stream.flush(),
            Connection::Tls(stream) => stream.flush(),
        }
    }
}

/// Opens a TCP connection with `TCP_NODELAY` and both timeouts set (the abuse suite speaks
/// raw bytes over it).
pub fn connect_tcp(target: &Target) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&target.addr, CONNECT_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

impl Connection {
    /// The TCP socket under the connection, for its timeouts and blocking mode (the abuse
    /// suite watches held connections without blocking).
    #[allow(dead_code)]
    pub fn socket(&self) -> &TcpStream {
        match self {
            Connection::Plain(stream) => stream,
            Connection::Tls(stream) => stream.get_ref(),
        }
    }
}

/// Opens a connection as [`connect_tcp`] does; over TLS the handshake is done before this
/// returns, so that a push's round trip never includes it.
pub fn connect(target: &Target) -> io::Result<Connection> {
    secure(target, connect_tcp(target)?)
}

/// Runs the target's TLS handshake over `stream`, a socket already connected to it (the
/// abuse suite opens some with a small receive buffer first), blocking until it is done within
/// the socket's timeouts; for a plain target the socket is the connection as it is.
pub fn secure(target: &Target, stream: TcpStream) -> io::Result<Connection> {
    let Some(tls) = &target.tls else {
        return Ok(Connection::Plain(stream));
    };
    let session = ClientConnection::new(Arc::clone(&tls.config), tls.name.clone())
        .map_err(io::Error::other)?;
    let mut secured = StreamOwned::new(session, stream);
    while secured.conn.is_handshaking() {
        secured.conn.complete_io(&mut secured.sock)?;
    }
    Ok(Connection::Tls(Box::new(secured)))
}

/// `POST /pump_push/{device}` head for a JPEG body of `length` bytes, on a kept-alive
/// connection.
pub fn push_request_head(target: &Target, device: &str, length: usize) -> Vec<u8> {
    format!(
        "POST /pump_push/{device} HTTP/1.1\r\nHost: {}\r\nContent-Type: image/jpeg\r\n\
         Content-Length: {length}\r\nUser-Agent: streampump-loadgen\r\n{}\r\n",
        target.authority, target.push_headers
    )
    .into_bytes()
}

/// `GET /live.mjpeg?device_id={device}`, as go2rtc (Go's HTTP client) and browsers send it:
/// HTTP/1.1 without `Connection: close`. That matters to the measurement: a server may keep
/// a thread reading such a connection for a next request while another writes the stream
/// (tiny_http does), and that thread is part of what a real viewer costs.
pub fn stream_request(target: &Target, device: &str) -> Vec<u8> {
    format!(
        "GET /live.mjpeg?device_id={device} HTTP/1.1\r\nHost: {}\r\nAccept: */*\r\n\
         User-Agent: streampump-loadgen\r\n{}\r\n",
        target.authority, target.view_headers
    )
    .into_bytes()
}

/// What loadgen needs from a response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked`, which Go's net/http adds to any streamed answer.
    pub chunked: bool,
    /// The server will close the connection after this answer.
    pub close: bool,
}

/// Reads one line into `line` without its `\r\n` or `\n`. Returns `false` at a clean end of
/// stream before any byte; a line longer than `limit` or cut off by the end of the stream is
/// an error, never silently accepted.
pub fn read_line<R: BufRead>(reader: &mut R, line: &mut Vec<u8>, limit: usize) -> io::Result<bool> {
    line.clear();
    let read = reader
        .by_ref()
        .take(limit as u64 + 1)
        .read_until(b'\n', line)?;
    if read == 0 {
        return Ok(false);
    }
    if line.last() != Some(&b'\n') {
        return Err(if read > limit {
            invalid(format!("line longer than {limit} bytes"))
        } else {
            io::Error::new(io::ErrorKind::UnexpectedEof, "stream ended inside a line")
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(true)
}

/// Reads the status line and headers, up to and including the blank line.
pub fn read_response_head<R: BufRead>(reader: &mut R) -> io::Result<ResponseHead> {
    let mut line = Vec::with_capacity(128);
    if !read_line(reader, &mut line, MAX_LINE)? {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before any response",
        ));
    }
    let status_line = String::from_utf8_lossy(&line).into_owned();
    let mut words = status_line.split_whitespace();
    let version = words.next().unwrap_or_default();
    let status: u16 = match (version.starts_with("HTTP/1."), words.next().map(str::parse)) {
        (true, Some(Ok(status))) => status,
        _ => {
            return Err(invalid(format!(
                "not an HTTP/1.x status line: {status_line:?}"
            )))
        }
    };
    let mut head = ResponseHead {
        status,
        content_length: None,
        chunked: false,
        close: version == "HTTP/1.0",
    };
    for _ in 0..MAX_HEADERS {
        if !read_line(reader, &mut line, MAX_LINE)? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside the response head",
            ));
        }
        if line.is_empty() {
            return Ok(head);
        }
        let text = String::from_utf8_lossy(&line);
        let Some((name, value)) = text.split_once(':') else {
            return Err(invalid(format!("malformed header line: {text:?}")));
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                let length = value
                    .parse()
                    .map_err(|_| invalid(format!("bad Content-Length: {value:?}")))?;
                head.content_length = Some(length);
            }
            "transfer-encoding" => head.chunked = value.to_ascii_lowercase().contains("chunked"),
            "connection" => match value.to_ascii_lowercase().as_str() {
                "close" => head.close = true,
                "keep-alive" => head.close = false,
                _ => {}
            },
            _ => {}
        }
    }
    Err(invalid(format!("more than {MAX_HEADERS} header lines")))
}

/// Reads the body of a short, complete answer (a push reply or a refusal). A body with
/// neither a length nor chunking runs to the end of the connection, which then cannot be
/// reused; the caller learns that from `head.close`, set here.
pub fn read_short_body<R: BufRead>(reader: &mut R, head: &mut ResponseHead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if head.chunked {
        let mut chunks = crate::chunked::ChunkedReader::new(reader.by_ref());
        chunks
            .by_ref()
            .take(MAX_SHORT_BODY)
            .read_to_end(&mut body)?;
        if chunks.read(&mut [0u8; 1])? != 0 {
            return Err(invalid(format!(
                "answer longer than {MAX_SHORT_BODY} bytes"
            )));
        }
    } else if let Some(length) = head.content_length {
        if length > MAX_SHORT_BODY {
            return Err(invalid(format!(
                "answer of {length} bytes is unexpectedly long"
            )));
        }
        reader.take(length).read_to_end(&mut body)?;
        if body.len() as u64 != length {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("answer ended after {} of {length} bytes", body.len()),
            ));
        }
    } else {
        head.close = true;
        reader.take(MAX_SHORT_BODY).read_to_end(&mut body)?;
    }
    Ok(body)
}

/// A short word for an I/O failure, used as the key when failures are counted.
pub fn failure_kind(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "refused",
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timeout",
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => "disconnected",
        io::ErrorKind::InvalidData => "protocol",
        _ => "io",
    }
}

pub fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    #[test]
    fn urls_are_http_or_https_host_and_port() {
        let target = Target::parse("http://127.0.0.1:19999").unwrap();
        assert_eq!(target.addr, "127.0.0.1:19999".parse().unwrap());
        assert_eq!(target.authority, "127.0.0.1:19999");
        assert_eq!(
            target.url("/live.mjpeg"),
            "http://127.0.0.1:19999/live.mjpeg"
        );
        assert_eq!(
            Target::parse("http://127.0.0.1:8080/").unwrap().addr.port(),
            8080
        );
        assert_eq!(Target::parse("http://127.0.0.1").unwrap().addr.port(), 80);
        assert_eq!(
            Target::parse("http://[::1]:9").unwrap().addr,
            "[::1]:9".parse().unwrap()
        );
        let secure = Target::parse("https://127.0.0.1").unwrap();
        assert!(secure.secure);
        assert_eq!(secure.addr.port(), 443);
        assert_eq!(secure.url("/healthz"), "https://127.0.0.1/healthz");
        // Until a CA file is given there is nothing to trust.
        assert!(secure.tls.is_none());
        assert!(secure.with_ca_file("/nonexistent").is_err());
        assert!(Target::parse("127.0.0.1:1").is_err());
        assert!(Target::parse("http://127.0.0.1:1/live.mjpeg").is_err());
        assert!(Target::parse("http://").is_err());
        assert!(Target::parse("http://127.0.0.1:notaport").is_err());
    }

    #[test]
    fn credentials_ride_in_the_request_heads() {
        let target = Target::parse("http://127.0.0.1:19999")
            .unwrap()
            .with_push_token("t0k")
            .with_view_login("ha:pass");
        let push = String::from_utf8(push_request_head(&target, "cam", 10)).unwrap();
        assert!(
            push.contains("\r\nAuthorization: Bearer t0k\r\n\r\n"),
            "{push}"
        );
        let view = String::from_utf8(stream_request(&target, "cam")).unwrap();
        assert!(
            view.contains("\r\nAuthorization: Basic aGE6cGFzcw==\r\n\r\n"),
            "{view}"
        );
        assert_eq!(base64::encode(b"a"), "YQ==");
        assert_eq!(base64::encode(b"ab"), "YWI=");
    }

    #[test]
    fn reads_a_go_style_chunked_stream_head() {
        let wire = "HTTP/1.1 200 OK\r\nCache-Control: no-cache, private\r\n\
                    Content-Type: multipart/x-mixed-replace; boundary=frame_boundary\r\n\
                    Transfer-Encoding: chunked\r\n\r\nrest";
        let mut reader = BufReader::new(wire.as_bytes());
        let head = read_response_head(&mut reader).unwrap();
        assert_eq!(
            head,
            ResponseHead {
                status: 200,
                content_length: None,
                chunked: true,
                close: false
            }
        );
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "rest");
    }

    #[test]
    fn reads_a_short_answer_and_notices_close() {
        let wire = "HTTP/1.1 503 Service Unavailable\r\nconnection: Close\r\n\
                    content-length: 5\r\n\r\nbusy\nNEXT";
        let mut reader = BufReader::new(wire.as_bytes());
        let mut head = read_response_head(&mut reader).unwrap();
        assert_eq!((head.status, head.close), (503, true));
        assert_eq!(read_short_body(&mut reader, &mut head).unwrap(), b"busy\n");

        let wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n";
        let mut reader = BufReader::new(wire.as_bytes());
        let mut head = read_response_head(&mut reader).unwrap();
        assert_eq!(read_short_body(&mut reader, &mut head).unwrap(), b"OK");
        assert!(!head.close);
    }

    #[test]
    fn rejects_garbage_and_truncated_heads() {
        let mut reader = BufReader::new(&b"SSH-2.0-OpenSSH\r\n\r\n"[..]);
        assert_eq!(
            read_response_head(&mut reader).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let mut reader = BufReader::new(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
        assert_eq!(
            read_response_head(&mut reader).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        let mut reader = BufReader::new(&b""[..]);
        assert_eq!(
            read_response_head(&mut reader).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    fn long_lines_are_refused() {
        let long = [b'a'; 100];
        let mut reader = BufReader::new(&long[..]);
        let mut line = Vec::new();
        assert_eq!(
            read_line(&mut reader, &mut line, 10).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
