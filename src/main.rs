//! The `streampump` binary: parse flags, start logging, run the relay, report a failure once.

use std::process::ExitCode;

use streampump::config::{Args, Config};
use streampump::logging;
use streampump::server;
use streampump::sys;

fn main() -> ExitCode {
    sys::tune_heap();
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
        // The flags on stdout (a command line that gives the same settings), the HTTPS set-up
        // in words on stderr.
        print!("{config}");
        eprintln!("{}", config.tls_summary());
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
