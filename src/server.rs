//! Wiring: the listeners, the relay's service, the housekeeping thread, and the accept loops
//! (plain HTTP on the main thread, HTTPS on a thread of its own).

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
#[cfg(feature = "tls")]
use crate::https::Https;
use crate::sys;
#[cfg(feature = "tls")]
use crate::tls::Tls;
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
    #[cfg(feature = "tls")]
    Tls(crate::tls::TlsError),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Bind(address, error) => write!(f, "cannot listen on {address}: {error}"),
            #[cfg(feature = "tls")]
            RunError::Tls(error) => write!(
                f,
                "cannot set up HTTPS: {error} (--tls-listen off runs without it)"
            ),
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
    log::info!(
        "memory budget: {} bytes for frames and uploads ({})",
        config.memory_budget,
        config.memory_budget_origin
    );
    if config.ignored_max_upload_bytes {
        log::warn!(
            "--max-upload-bytes (STREAMPUMP_MAX_UPLOAD_BYTES) is no longer used: uploads count \
             against --memory-budget"
        );
    }
    // From here on the address actually bound: its port when `--listen` asked for port 0.
    config.listen = local;
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
    #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
    let mut app = App::new(config, Arc::clone(&load));
    #[cfg(feature = "tls")]
    let https = start_https(&mut app)?;
    let app = Arc::new(app);
    announce::announce(&app.config, app.https_port());
    #[cfg(feature = "tls")]
    let chores: Vec<Chore> = match https {
        Some((tls, listener)) => {
            serve_https(
                listener,
                settings,
                Arc::clone(&app),
                Arc::clone(&load),
                &tls,
            );
            vec![Box::new(move || tls.refresh())]
        }
        None => Vec::new(),
    };
    #[cfg(not(feature = "tls"))]
    let chores: Vec<Chore> = Vec::new();
    start_housekeeping(Arc::clone(&app), chores);
    accept::serve(listener, settings, app, load, Arc::new(accept::Plain));
    Ok(())
}

/// Work for the housekeeping thread besides the registry's sweep, run every round.
type Chore = Box<dyn Fn() + Send>;

/// Sets up HTTPS when `--tls-listen` asks for it: the certificate (made or loaded) and the
/// bound listener; the app learns its port and authority for the pages.
#[cfg(feature = "tls")]
fn start_https(app: &mut App) -> Result<Option<(Arc<Tls>, TcpListener)>, RunError> {
    let Some(address) = app.config.tls.listen else {
        return Ok(None);
    };
    let tls = Tls::new(&app.config.tls, &app.config.state_dir).map_err(RunError::Tls)?;
    let listener = TcpListener::bind(address).map_err(|error| RunError::Bind(address, error))?;
    let local = listener
        .local_addr()
        .map_err(|error| RunError::Bind(address, error))?;
    // Not "listening on": that phrase names the plain port, for scripts that read the log.
    log::info!("HTTPS on {local} ({})", tls.describe());
    app.https = Some(Https {
        port: local.port(),
        authority: tls.authority().cloned(),
        handshakes: Arc::clone(tls.tally()),
    });
    Ok(Some((Arc::new(tls), listener)))
}

/// The HTTPS accept loop, on a thread of its own; its connections count against the same
/// `--max-connections` as the plain port's.
#[cfg(feature = "tls")]
fn serve_https(
    listener: TcpListener,
    settings: Settings,
    app: Arc<App>,
    load: Arc<Load>,
    tls: &Arc<Tls>,
) {
    let transport: Arc<dyn accept::Transport> = Arc::clone(tls) as Arc<_>;
    let started = thread::Builder::new()
        .name("sp-accept-tls".into())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || accept::serve(listener, settings, app, load, transport));
    if let Err(error) = started {
        log::error!("cannot start the HTTPS accept loop: {error}");
    }
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

fn start_housekeeping(app: Arc<App>, chores: Vec<Chore>) {
    let started = thread::Builder::new()
        .name("sp-housekeeping".into())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || {
            let mut round: u32 = 0;
            loop {
                round = round.wrapping_add(1);
                thread::sleep(HOUSEKEEPING_PERIOD);
                app.registry.sweep();
                for chore in &chores {
                    chore();
                }
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
