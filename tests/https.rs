//! HTTPS on its own port, with real clients: curl and ffmpeg verify the relay's certificate
//! against its own authority (never `-k`), pushes, snapshots and streams go over TLS, the
//! certificate follows new names without a restart, given files are re-read, and the
//! connection limits of the plain port hold on the TLS port too.

mod support;

use support::Relay;

/// Without HTTPS (`--tls-listen off`, or a build without TLS) the set-up routes still answer,
/// saying there is nothing to install.
#[test]
fn without_https_the_set_up_routes_say_so() {
    let relay = Relay::start(&[]);
    let certificate = relay.get("/ca.crt");
    assert_eq!(certificate.status, 404);
    if cfg!(feature = "tls") {
        assert!(
            certificate.text().contains("HTTPS is off"),
            "{}",
            certificate.text()
        );
        let facts = relay.get("/api/https");
        assert_eq!(facts.status, 200);
        assert_eq!(
            facts.text(),
            r#"{"port":null,"authority":false,"fingerprint":null}"#
        );
        assert_eq!(relay.get("/https.html").status, 406, "served, gzip only");
    } else {
        for path in ["/ca.crt", "/https.html", "/api/https"] {
            let answer = relay.get(path);
            assert_eq!(answer.status, 404, "{path}");
            assert!(answer.text().contains("this build has no HTTPS"), "{path}");
        }
    }
    assert!(!relay.get("/metrics").text().contains("streampump_tls_"));
}

#[cfg(feature = "tls")]
mod tls {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};
    use std::time::Duration;

    use super::support;
    use support::{jpeg, require_tool, scratch_dir, Relay, IO_TIMEOUT, THREADS_AT_REST_TLS};

    /// A relay with HTTPS on a free port, a short request timeout, and `extra` flags.
    fn https_relay(extra: &[&str]) -> Relay {
        let mut args = vec![
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-names",
            "cams.test",
            "--request-timeout",
            "1s",
        ];
        args.extend_from_slice(extra);
        Relay::start(&args)
    }

    fn tls_addr(relay: &Relay) -> SocketAddr {
        relay.tls_addr.expect("the relay reports its HTTPS address")
    }

    fn authority(relay: &Relay) -> PathBuf {
        relay.state_dir.join("ca.crt")
    }

    /// curl over HTTPS to `name` (resolved to the relay), trusting `ca` only.
    fn curl(relay: &Relay, ca: &Path, name: &str, path: &str, extra: &[&str]) -> Output {
        require_tool("curl", "--version", "curl");
        let port = tls_addr(relay).port();
        Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "10", "--cacert"])
            .arg(ca)
            .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
            .args(extra)
            .arg(format!("https://{name}:{port}{path}"))
            .output()
            .expect("run curl")
    }

    fn assert_ok(output: &Output) {
        assert!(
            output.status.success(),
            "curl failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    #[test]
    fn curl_verifies_the_relays_own_certificate_by_address_name_and_tls_names() {
        let relay = https_relay(&[]);
        let ca = authority(&relay);
        for name in ["127.0.0.1", "localhost", "cams.test"] {
            let answer = curl(&relay, &ca, name, "/healthz", &[]);
            assert_ok(&answer);
            assert_eq!(answer.stdout, b"ok");
        }
        // A name the certificate does not carry fails verification.
        let wrong = curl(&relay, &ca, "elsewhere.test", "/healthz", &[]);
        assert!(!wrong.status.success());
        // The authority served at /ca.crt is the one in the state directory.
        let served = relay.get("/ca.crt");
        assert_eq!(served.status, 200);
        assert_eq!(
            served.header("Content-Type"),
            Some("application/x-x509-ca-cert")
        );
        let pem = std::fs::read_to_string(&ca).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let facts = relay.get("/api/https").text();
        assert!(
            facts.starts_with(&format!(
                "{{\"port\":{},\"authority\":true,\"fingerprint\":\"",
                tls_addr(&relay).port()
            )),
            "{facts}"
        );
        // The key is the relay's alone.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(relay.state_dir.join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn check_reports_the_https_set_up_without_secrets() {
        let own = support::run_streampump(
            &[
                "--check",
                "--tls-names",
                "cams.lan",
                "--state-dir",
                "/var/lib/cams",
            ],
            &[],
        );
        assert!(own.status.success());
        let said = String::from_utf8_lossy(&own.stderr);
        assert!(said.contains("HTTPS: on 0.0.0.0:19443"), "{said}");
        assert!(
            said.contains("own authority /var/lib/cams/ca.crt"),
            "{said}"
        );
        assert!(said.contains("cams.lan"), "{said}");
        let printed = String::from_utf8_lossy(&own.stdout);
        assert!(printed
            .lines()
            .any(|line| line == "--tls-listen 0.0.0.0:19443"));
        assert!(printed.lines().any(|line| line == "--tls-names cams.lan"));

        let dir = scratch_dir("https-check");
        let key = dir.join("key.pem");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let given = support::run_streampump(
            &[
                "--check",
                "--tls-cert",
                "/etc/ssl/cams.pem",
                "--tls-key",
                key.to_str().unwrap(),
            ],
            &[],
        );
        assert!(given.status.success());
        let said = String::from_utf8_lossy(&given.stderr);
        assert!(
            said.contains("the given certificate /etc/ssl/cams.pem"),
            "{said}"
        );
        let everything = format!("{said}{}", String::from_utf8_lossy(&given.stdout));
        assert!(
            !everything.contains("c2VjcmV0"),
            "the key's content never shows"
        );
        let off = support::run_streampump(&["--check", "--tls-listen", "off"], &[]);
        assert_eq!(String::from_utf8_lossy(&off.stderr).trim(), "HTTPS: off");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn push_snapshot_and_stream_over_https() {
        let relay = https_relay(&[]);
        let ca = authority(&relay);
        let frame = jpeg(640, 480, 7, 60_000);
        let file = scratch_dir("https-frame").join("frame.jpg");
        std::fs::write(&file, &frame).unwrap();
        let pushed = curl(
            &relay,
            &ca,
            "cams.test",
            "/pump_push/tlscam",
            &[
                "-H",
                "Content-Type: image/jpeg",
                "--data-binary",
                &format!("@{}", file.display()),
            ],
        );
        assert_ok(&pushed);
        let snapshot = curl(
            &relay,
            &ca,
            "cams.test",
            "/snapshot.jpg?device_id=tlscam",
            &[],
        );
        assert_ok(&snapshot);
        assert_eq!(snapshot.stdout, frame);
        // The stream never ends by itself: curl reads until --max-time, which is fine here.
        let stream = curl(
            &relay,
            &ca,
            "cams.test",
            "/live.mjpeg?device_id=tlscam",
            &["--max-time", "2", "-i"],
        );
        let bytes = stream.stdout;
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains("multipart/x-mixed-replace; boundary=frame_boundary"),
            "{text:.300}"
        );
        assert!(
            bytes.windows(frame.len()).any(|window| window == frame),
            "the pushed frame came through the stream"
        );
        let _ = std::fs::remove_dir_all(file.parent().unwrap());
    }

    #[test]
    fn ffmpeg_reads_the_stream_over_https_with_the_authority_as_ca_file() {
        require_tool("ffmpeg", "-version", "ffmpeg");
        let relay = std::sync::Arc::new(https_relay(&[]));
        // Real JPEGs, so ffmpeg decodes them.
        let dir = scratch_dir("https-ffmpeg");
        let made = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=320x240:rate=10",
            ])
            .args(["-frames:v", "5", "-q:v", "5"])
            .arg(dir.join("%03d.jpg"))
            .status()
            .expect("run ffmpeg");
        assert!(made.success());
        let frames: Vec<Vec<u8>> = (1..=5)
            .map(|n| std::fs::read(dir.join(format!("{n:03}.jpg"))).unwrap())
            .collect();
        relay.push_ok("fftls", &frames[0]);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let pusher = {
            let (relay, stop) = (relay.clone(), stop.clone());
            std::thread::spawn(move || {
                for frame in frames.iter().cycle() {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    relay.push_ok("fftls", frame);
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        let url = format!(
            "https://127.0.0.1:{}/live.mjpeg?device_id=fftls",
            tls_addr(&relay).port()
        );
        let output = Command::new("timeout")
            .args([
                "30",
                "ffmpeg",
                "-v",
                "error",
                "-tls_verify",
                "1",
                "-ca_file",
            ])
            .arg(authority(&relay))
            .args([
                "-f",
                "mjpeg",
                "-i",
                &url,
                "-frames:v",
                "10",
                "-f",
                "null",
                "-",
            ])
            .output()
            .expect("run ffmpeg");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        pusher.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let errors = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "ffmpeg failed: {errors}");
        assert!(
            errors.trim().is_empty(),
            "ffmpeg reported problems: {errors}"
        );
    }

    #[test]
    fn a_new_name_gets_a_new_certificate_without_a_restart() {
        let dir = scratch_dir("https-names");
        let names = dir.join("names");
        std::fs::write(&names, "# extra names\nfirst.test\n").unwrap();
        // A state directory of the test's own, kept across the restart below.
        let state = scratch_dir("https-names-state");
        let relay = https_relay(&[
            "--tls-names-file",
            names.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ]);
        let ca = authority(&relay);
        let pid = relay.pid();
        assert_ok(&curl(&relay, &ca, "first.test", "/healthz", &[]));
        assert!(!curl(&relay, &ca, "second.test", "/healthz", &[])
            .status
            .success());
        // What a new address from DHCP does, through the names file (re-read when it
        // changes): a new certificate, taken by the next connection.
        let staged = dir.join("names.new");
        std::fs::write(&staged, "second.test\n").unwrap();
        std::fs::rename(&staged, &names).unwrap();
        relay.eventually(
            Duration::from_secs(10),
            "a certificate for second.test",
            || {
                curl(&relay, &ca, "second.test", "/healthz", &[])
                    .status
                    .success()
            },
        );
        assert_eq!(relay.pid(), pid);
        assert!(relay.logged("issued an HTTPS certificate for"));
        // It is kept: a restart on the same state directory reuses it instead of issuing.
        let stored = std::fs::read(state.join("server.crt")).unwrap();
        drop(relay);
        let again = Relay::start(&[
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-names",
            "cams.test",
            "--tls-names-file",
            names.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ]);
        assert_ok(&curl(&again, &ca, "second.test", "/healthz", &[]));
        assert_eq!(std::fs::read(state.join("server.crt")).unwrap(), stored);
        assert!(!again.logged("issued an HTTPS certificate"));
        assert!(!again.logged("made a certificate authority"));
        drop(again);
        let _ = std::fs::remove_dir_all(&state);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A certificate authority of the test's own, standing in for a public one.
    struct Given {
        issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
        ca_pem: String,
    }

    impl Given {
        fn new() -> Given {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "a public-looking authority");
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca = params.self_signed(&key).unwrap();
            Given {
                ca_pem: ca.pem(),
                issuer: rcgen::Issuer::new(params, key),
            }
        }

        /// Writes a certificate for `name` and its key, each through a rename (whole files).
        fn write(&self, name: &str, cert: &Path, key: &Path) {
            let leaf_key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let leaf = params.signed_by(&leaf_key, &self.issuer).unwrap();
            for (path, text) in [(key, leaf_key.serialize_pem()), (cert, leaf.pem())] {
                let staged = path.with_extension("new");
                std::fs::write(&staged, text).unwrap();
                std::fs::rename(&staged, path).unwrap();
            }
        }
    }

    #[test]
    fn given_certificate_files_are_used_and_re_read_when_they_change() {
        let dir = scratch_dir("https-given");
        let given = Given::new();
        let (cert, key, ca) = (
            dir.join("cert.pem"),
            dir.join("key.pem"),
            dir.join("ca.pem"),
        );
        std::fs::write(&ca, &given.ca_pem).unwrap();
        given.write("one.test", &cert, &key);
        let relay = https_relay(&[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ]);
        assert_ok(&curl(&relay, &ca, "one.test", "/healthz", &[]));
        // No own authority with given files.
        assert_eq!(relay.get("/ca.crt").status, 404);
        assert!(!relay.state_dir.join("ca.key").exists());
        given.write("two.test", &cert, &key);
        relay.eventually(Duration::from_secs(10), "the renewed certificate", || {
            curl(&relay, &ca, "two.test", "/healthz", &[])
                .status
                .success()
        });
        assert!(!curl(&relay, &ca, "one.test", "/healthz", &[])
            .status
            .success());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Reads until the relay closes the connection; fails if it is still open after
    /// `IO_TIMEOUT` (the relay's request timeout in these tests is 1 s).
    fn assert_closed_by_relay(mut connection: TcpStream) {
        connection.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut scratch = [0u8; 4096];
        loop {
            match connection.read(&mut scratch) {
                Ok(0) => return,
                Ok(_) => continue,
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("the relay kept a stalled TLS connection open")
                }
                Err(_) => return,
            }
        }
    }

    /// A ClientHello from a real TLS client, written to `connection`; the handshake then
    /// goes no further.
    fn send_client_hello(connection: &mut TcpStream) {
        let roots = rustls::RootCertStore::empty();
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("cams.test").unwrap();
        let mut client = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
        let mut hello = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut hello).unwrap();
        }
        connection.write_all(&hello).unwrap();
    }

    fn metric(relay: &Relay, line_start: &str) -> u64 {
        let text = relay.get("/metrics").text();
        text.lines()
            .find_map(|line| line.strip_prefix(line_start))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in /metrics:\n{text}"))
    }

    #[test]
    fn stalled_and_garbage_handshakes_are_cut_off_and_counted_quietly() {
        let relay = https_relay(&[]);
        let addr = tls_addr(&relay);
        relay.eventually(Duration::from_secs(10), "threads at rest", || {
            relay.threads() == THREADS_AT_REST_TLS
        });
        let descriptors = relay.descriptors();
        let log_lines = relay.log_len();

        // Plain HTTP on the TLS port.
        let mut garbage = TcpStream::connect(addr).unwrap();
        garbage
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        assert_closed_by_relay(garbage);

        // Silence: nothing ever sent.
        let silent = TcpStream::connect(addr).unwrap();

        // A ClientHello trickled a byte at a time, slower than any real client.
        let trickler = std::thread::spawn(move || {
            let mut connection = TcpStream::connect(addr).unwrap();
            let mut hello = Vec::new();
            // A ClientHello's record and handshake headers, then its body, 4 bytes a second.
            hello.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0xf0, 0x01, 0x00, 0x00, 0xec]);
            hello.extend(std::iter::repeat_n(0x03, 40));
            for byte in hello {
                if connection.write_all(&[byte]).is_err() {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(250));
                if support::has_answer(&connection) {
                    return true;
                }
            }
            false
        });

        // A handshake that starts and never finishes: the client never answers the
        // server's flight.
        let mut half = TcpStream::connect(addr).unwrap();
        send_client_hello(&mut half);

        assert_closed_by_relay(silent);
        assert_closed_by_relay(half);
        assert!(
            trickler.join().unwrap(),
            "a trickled handshake outlived the request timeout"
        );

        relay.eventually(Duration::from_secs(10), "threads back at rest", || {
            relay.threads() == THREADS_AT_REST_TLS
        });
        relay.eventually(Duration::from_secs(10), "descriptors back", || {
            relay.descriptors() <= descriptors
        });
        assert!(
            metric(
                &relay,
                "streampump_tls_handshake_failures_total{reason=\"not_tls\"}"
            ) >= 1
        );
        assert!(
            metric(
                &relay,
                "streampump_tls_handshake_failures_total{reason=\"timeout\"}"
            ) >= 3
        );
        // Scanners are counted, not logged at info level.
        assert_eq!(relay.log_len(), log_lines, "{:?}", relay.log_tail(10));
    }

    #[test]
    fn both_ports_share_the_connection_limit() {
        let relay = https_relay(&["--max-connections", "2"]);
        let ca = authority(&relay);
        // Two streams on the plain port: serving, so never reclaimed for a newcomer.
        relay.push_ok("limit", &jpeg(64, 48, 1, 1000));
        // The push's connection has closed: only the scrape's own is open.
        relay.eventually(Duration::from_secs(5), "the push connection closed", || {
            metric(&relay, "streampump_connections ") == 1
        });
        let mut stream = relay.stream("/live.mjpeg?device_id=limit");
        let mut second = relay.stream("/live.mjpeg?device_id=limit");
        // Both are serving: each has its first part.
        assert_eq!(stream.head.status, 200);
        assert_eq!(second.head.status, 200);
        stream.next_part();
        second.next_part();
        // The TLS port has no room either.
        let refused = curl(&relay, &ca, "cams.test", "/healthz", &[]);
        assert!(!refused.status.success());
        stream.close();
        second.close();
        relay.eventually(Duration::from_secs(10), "room again", || {
            curl(&relay, &ca, "cams.test", "/healthz", &[])
                .status
                .success()
        });
    }
}
