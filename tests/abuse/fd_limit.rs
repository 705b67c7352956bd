//! Attack 7: running the relay out of file descriptors.
//!
//! A relay started with `RLIMIT_NOFILE` lowered to a few hundred gets more idle connections
//! than it can hold. `accept()` then fails with `EMFILE`, which ends tiny_http's accept loop
//! for good unless the relay notices; so once the connections are gone the relay must accept
//! and serve again by itself within a bounded time, without anybody restarting it. The limit
//! needs a process of its own (set between `fork` and `exec`), so this attack starts the
//! binary itself rather than through the shared harness.

use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::held::Held;
use crate::load::Shape;
use crate::probe;
use crate::scale::Scale;
use crate::trial::{self, Outcome, Row, Subject};
use crate::THREAD_STACK_BYTES;

/// A connect that is not accepted this fast means the relay's backlog is full.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Connect failures in a row after which no more connections are tried.
const GIVE_UP_AFTER: usize = 10;
/// Log lines kept for the report when the relay misbehaves.
const LOG_TAIL: usize = 5;

/// The relay in a process with a lowered descriptor limit, killed when dropped.
struct LimitedRelay {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl LimitedRelay {
    fn start(limit: u64, args: &[String]) -> LimitedRelay {
        let mut command = Command::new(env!("CARGO_BIN_EXE_streampump"));
        command
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: the closure runs in the child between fork and exec, where only
        // async-signal-safe calls are allowed; it makes one setrlimit call on a value on its
        // stack and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                let rlimit = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
        let mut child = command.spawn().expect("start the streampump binary");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let lines = Arc::clone(&log);
        thread::Builder::new()
            .name("abuse-relay-log".into())
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let address = line
                        .split("listening on ")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .and_then(|text| text.parse::<SocketAddr>().ok());
                    if let Some(address) = address {
                        let _ = address_tx.send(address);
                    }
                    lines.lock().unwrap().push(line);
                }
            })
            .expect("start the log reader");
        match address_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(addr) => LimitedRelay { child, addr, log },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the relay did not start: {:?}", log.lock().unwrap());
            }
        }
    }

    /// `exited with …` if the process has ended.
    fn exit(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("the relay exited: {status}")),
            _ => None,
        }
    }

    fn log_tail(&self) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(LOG_TAIL)..].to_vec()
    }
}

impl Drop for LimitedRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn descriptor_exhaustion(scale: &Scale) -> Row {
    let mut relay = LimitedRelay::start(scale.fd_limit, &scale.relay_args());
    let subject = Subject::new(relay.child.id(), relay.addr);
    let what = format!(
        "relay limited to {} descriptors, normal load of 1 device × 2 viewers; {} idle \
         connections opened, held {} s, then all closed; must serve again within {} s",
        scale.fd_limit,
        scale.fd_connections,
        scale.fd_hold.as_secs(),
        scale.fd_recover.as_secs()
    );
    let mut exhaustion = scale.clone();
    exhaustion.recovery = scale.fd_recover;
    let shape = Shape {
        devices: 1,
        viewers: 2,
        ..Shape::NORMAL
    };
    let mut row = trial::run(
        7,
        "descriptor exhaustion",
        what,
        &subject,
        shape,
        &exhaustion,
        |context| {
            let target = context.target();
            let mut held = Held::open(
                target,
                scale.fd_connections,
                CONNECT_TIMEOUT,
                GIVE_UP_AFTER,
                |_| Vec::new(),
            );
            let started = Instant::now();
            held.hold(scale.fd_hold, None);
            let at_end = match probe::get(target, "/healthz") {
                Ok((status, _)) => format!("answered {status}"),
                Err(error) => format!("failed ({})", crate::http::failure_kind(&error)),
            };
            held.sweep();
            let summary = held.summary();
            drop(held);
            Outcome {
                notes: format!(
                    "{summary}; /healthz at the end of the hold ({:.1} s): {at_end}",
                    started.elapsed().as_secs_f64()
                ),
                starves_pushers: true,
                ..Outcome::default()
            }
        },
    );
    if let Some(exit) = relay.exit() {
        let tail = relay.log_tail();
        row.failures
            .push(format!("{exit}; last log lines: {tail:?}"));
        row.outcome.notes += &format!("; {exit}");
    }
    row
}
