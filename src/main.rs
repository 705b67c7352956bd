//! The `streampump` binary: parse flags, start logging, run the relay, report a failure once.

use std::process::ExitCode;

use streampump::config::{Args, Config};
use streampump::oversize_alloc::OversizeAlloc;
use streampump::server::{self, THREAD_STACK_BYTES};

#[global_allocator]
static ALLOCATOR: OversizeAlloc = OversizeAlloc;

fn main() -> ExitCode {
    // tiny_http starts its threads with std's default 2 MiB stack and has no setting for it;
    // std reads RUST_MIN_STACK once, at the first spawn, and nothing has spawned yet.
    if std::env::var_os("RUST_MIN_STACK").is_none() {
        std::env::set_var("RUST_MIN_STACK", THREAD_STACK_BYTES.to_string());
    }
    limit_malloc_arenas();
    let args: Args = argh::from_env();
    if args.version {
        println!("streampump {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("streampump: {error}");
            return ExitCode::from(2);
        }
    };
    match server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that contends for the heap an arena of its own, up to eight per
/// core, and frames freed in one arena are not reused by another: with a thread per viewer
/// that costs a couple of megabytes of fragmented heap. The relay allocates little per frame,
/// so one arena is plenty. (musl, used for the static release builds, has no arenas.)
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called before any other thread exists; mallopt only sets an allocator tunable.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
