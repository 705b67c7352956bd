//! The `streampump` binary: parse flags, start logging, run the relay, report a failure once.

use std::process::ExitCode;

use streampump::config::{Args, Config};
use streampump::heap;
use streampump::logging;
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
    heap::tune();
    let args: Args = argh::from_env();
    if args.version {
        println!("streampump {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    logging::init();
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("streampump: {error}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        print!("{config}");
        return ExitCode::SUCCESS;
    }
    match server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{error}");
            ExitCode::FAILURE
        }
    }
}
