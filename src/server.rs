//! Wiring: the listener, the relay's service, the housekeeping thread, and the accept loop.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::announce;
use crate::config::Config;
use crate::http::accept::{self, Settings};
use crate::http::connection::{Load, Timeouts};
use crate::sys;
use crate::web::app::App;

/// Stack for every thread the relay starts. A connection's thread touches a few kilobytes of
/// it (its head buffer and frames live on the heap); 128 KiB leaves a wide margin and costs a
/// sixteenth of std's 2 MiB default in address space, which matters with a thread per
/// connection on a 32-bit router.
pub const THREAD_STACK_BYTES: usize = 128 * 1024;

/// How often devices are checked for going offline and for eviction.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(1);
/// Free heap pages are returned every this many housekeeping rounds (see `sys::tune_heap`).
const HEAP_TRIM_ROUNDS: u32 = 10;
/// Descriptors needed beyond one per connection: the listener, the log, a spare.
const BASE_DESCRIPTORS: u64 = 32;

/// Why the relay could not start.
#[derive(Debug)]
pub enum RunError {
    Bind(SocketAddr, io::Error),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Bind(address, error) => write!(f, "cannot listen on {address}: {error}"),
        }
    }
}

impl std::error::Error for RunError {}

/// Serves for ever; returns only if the relay cannot start.
pub fn run(mut config: Config) -> Result<(), RunError> {
    check_descriptor_limit(config.max_connections.get());
    let listener =
        TcpListener::bind(config.listen).map_err(|error| RunError::Bind(config.listen, error))?;
    let local = listener
        .local_addr()
        .map_err(|error| RunError::Bind(config.listen, error))?;
    log::info!(
        "listening on {local} (max {} devices, {} viewers each, {} connections, frames up to {} bytes)",
        config.max_devices,
        config.max_viewers,
        config.max_connections,
        config.max_frame_bytes
    );
    // From here on the address actually bound: its port when `--listen` asked for port 0.
    config.listen = local;
    announce::announce(&config);
    let settings = Settings {
        max_connections: config.max_connections.get(),
        write_timeout: config.write_timeout,
        timeouts: Timeouts {
            request: config.request_timeout,
            body: config.push_timeout,
        },
        stack_bytes: THREAD_STACK_BYTES,
    };
    let load = Arc::new(Load::default());
    let app = Arc::new(App::new(config, Arc::clone(&load)));
    start_housekeeping(Arc::clone(&app));
    accept::serve(listener, settings, app, load);
    Ok(())
}

/// Raises the descriptor limit, and says so if it could still run short of what
/// `--max-connections` needs (one descriptor per connection).
fn check_descriptor_limit(max_connections: usize) {
    let needed = max_connections as u64 + BASE_DESCRIPTORS;
    match sys::raise_descriptor_limit() {
        Ok(limit) if limit < needed => log::warn!(
            "the file descriptor limit ({limit}) is below the {needed} that --max-connections \
             {max_connections} may need; raise it (ulimit -n, LimitNOFILE=) or lower \
             --max-connections"
        ),
        Ok(_) => {}
        Err(error) => log::warn!("cannot read the file descriptor limit: {error}"),
    }
}

fn start_housekeeping(app: Arc<App>) {
    let started = thread::Builder::new()
        .name("sp-housekeeping".into())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            let mut round: u32 = 0;
            loop {
                round = round.wrapping_add(1);
                thread::sleep(HOUSEKEEPING_PERIOD);
                app.registry.sweep();
                if round % HEAP_TRIM_ROUNDS == 0 {
                    sys::give_back_heap();
                }
            }
        });
    if let Err(error) = started {
        // Without it devices are never shown offline nor forgotten, but streams still work.
        log::error!("cannot start the housekeeping thread: {error}");
    }
}
