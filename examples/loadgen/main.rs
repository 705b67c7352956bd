//! loadgen: a load generator for MJPEG relays, run as
//! `cargo run --release --example loadgen -- --help`.
//!
//! Synthetic phones push stamped JPEG frames to `POST /pump_push/{id}`; synthetic viewers read
//! `GET /live.mjpeg?device_id={id}` and time each frame from push to arrival. It measures
//! streampump and the reference Go server alike (`make bench` runs both side by side), and it
//! is meant for users' own routers too, so it talks HTTP/1.1 (plain, or over TLS with the CA
//! file it is given) to the URL it is given, bounds every wait and stops by itself.
//!
//! Modules: `args` (flags → `Config`), `frames` (stamped synthetic JPEGs), `http` (the client
//! side of HTTP/1.1), `chunked` and `multipart` (stream decoding), `pusher` and `viewer` (the
//! client threads), `readiness`, `clock` (epoch, window, stop signal), `proc_stats` (the
//! server's CPU and memory), `stats` and `report` (the results), `run` (the phases in order).

mod args;
mod chunked;
mod clock;
mod error;
mod frames;
mod http;
mod multipart;
mod proc_stats;
mod pusher;
mod readiness;
mod report;
mod run;
mod stats;
mod viewer;

use std::process::ExitCode;

use args::{Args, Config};

/// Stack for every thread loadgen starts: a viewer or pusher needs a few kilobytes, and a run
/// may start thousands of them.
pub const THREAD_STACK_BYTES: usize = 256 * 1024;

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    let config = match Config::from_args(&args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("loadgen: {error}");
            return ExitCode::from(2);
        }
    };
    match run::run(&config) {
        Ok(report) => {
            if config.json {
                eprint!("{}", report.table());
                print!("{}", report.json());
            } else {
                print!("{}", report.table());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}
