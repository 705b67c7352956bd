//! Command-line flags, validated into a typed [`Config`] before any socket is opened.
//!
//! Ranges are checked here so that a typo fails at once with a message naming the flag,
//! rather than as a run that measures something other than what was asked.

use std::time::Duration;

use argh::FromArgs;

use crate::error::LoadError;
use crate::frames::MIN_FRAME_BYTES;
use crate::http::Target;

pub const DEFAULT_URL: &str = "http://127.0.0.1:19999";

/// Largest frame accepted, far above any phone JPEG.
const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;
/// Most client threads one run may start (pushers plus every kind of viewer).
const MAX_THREADS: u64 = 20_000;
const MAX_SECONDS: f64 = 24.0 * 3600.0;

/// Load generator for MJPEG relays such as streampump and the reference Go "stream pump":
/// synthetic phones push stamped JPEG frames and synthetic viewers read the MJPEG streams.
/// Reports push round-trip time, relay latency (push to viewer), delivered frame rates, errors
/// and, with --pid, the server's CPU time, memory and threads. It talks HTTP/1.1, plain or over TLS, to
/// POST /pump_push/ID and GET /live.mjpeg?device_id=ID, and stops by itself after
/// warm-up plus duration.
#[derive(FromArgs, Debug)]
pub struct Args {
    /// base URL of the server, http:// or https:// (default http://127.0.0.1:19999)
    #[argh(option, default = "String::from(DEFAULT_URL)")]
    pub url: String,

    /// PEM file of the certificate authority to trust for an https URL (the relay's ca.crt)
    #[argh(option)]
    pub ca_file: Option<String>,

    /// devices (phones) pushing frames, one connection each (default 1)
    #[argh(option, default = "1")]
    pub devices: u32,

    /// normal viewers per device, each reading its stream as fast as it arrives (default 1)
    #[argh(option, default = "1")]
    pub viewers: u32,

    /// frames pushed per second by each device (default 20)
    #[argh(option, default = "20.0")]
    pub fps: f64,

    /// size of every pushed JPEG in bytes (default 61440)
    #[argh(option, default = "61440")]
    pub frame_bytes: usize,

    /// seconds measured (default 15)
    #[argh(option, default = "15.0")]
    pub duration: f64,

    /// seconds after the viewers start that are not measured (default 2)
    #[argh(option, default = "2.0")]
    pub warmup: f64,

    /// extra viewers per device that read slowly, about one frame's worth of bytes per
    /// second (default 0)
    #[argh(option, default = "0")]
    pub slow: u32,

    /// extra viewers per device that send the request and never read (default 0)
    #[argh(option, default = "0")]
    pub stalled: u32,

    /// process id of the server, whose CPU time, memory and threads are sampled from /proc
    #[argh(option)]
    pub pid: Option<u32>,

    /// name of this run in the report (default: the URL)
    #[argh(option)]
    pub label: Option<String>,

    /// device ids are this prefix followed by 0, 1, 2, ... (default lg)
    #[argh(option, default = "String::from(\"lg\")")]
    pub device_prefix: String,

    /// print the report as one JSON object on standard output; the table then goes to
    /// standard error
    #[argh(switch)]
    pub json: bool,

    /// push token sent with every push (Authorization: Bearer), for a relay with --push-token
    #[argh(option)]
    pub push_token: Option<String>,

    /// USER:PASSWORD sent with every stream request (Basic auth), for a relay with
    /// --view-user and --view-password
    #[argh(option)]
    pub view_login: Option<String>,
}

/// The validated settings of one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub devices: u32,
    pub viewers: u32,
    pub slow: u32,
    pub stalled: u32,
    pub fps: f64,
    pub frame_bytes: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub pid: Option<u32>,
    pub label: String,
    pub device_prefix: String,
    pub json: bool,
}

impl Config {
    pub fn from_args(args: &Args) -> Result<Config, LoadError> {
        let invalid = |flag: &'static str, value: &dyn ToString, reason: &str| LoadError::Invalid {
            flag,
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let mut target =
            Target::parse(&args.url).map_err(|reason| invalid("url", &args.url, &reason))?;
        match (&args.ca_file, target.secure) {
            (Some(path), true) => {
                target = target
                    .with_ca_file(path)
                    .map_err(|reason| invalid("ca-file", path, &reason))?
            }
            (None, true) => {
                return Err(invalid(
                    "url",
                    &args.url,
                    "an https URL needs --ca-file (the relay's ca.crt)",
                ))
            }
            (Some(path), false) => return Err(invalid("ca-file", path, "only for an https URL")),
            (None, false) => {}
        }
        if let Some(token) = &args.push_token {
            target = target.with_push_token(token);
        }
        if let Some(login) = &args.view_login {
            if !login.contains(':') {
                return Err(invalid("view-login", login, "expected USER:PASSWORD"));
            }
            target = target.with_view_login(login);
        }
        if !(1..=1000).contains(&args.devices) {
            return Err(invalid(
                "devices",
                &args.devices,
                "must be between 1 and 1000",
            ));
        }
        for (flag, value) in [
            ("viewers", args.viewers),
            ("slow", args.slow),
            ("stalled", args.stalled),
        ] {
            if value > 10_000 {
                return Err(invalid(flag, &value, "must be at most 10000"));
            }
        }
        let threads = u64::from(args.devices)
            * (1 + u64::from(args.viewers) + u64::from(args.slow) + u64::from(args.stalled));
        if threads > MAX_THREADS {
            return Err(invalid(
                "devices",
                &args.devices,
                &format!("devices × (1 + viewers + slow + stalled) = {threads} connections; at most {MAX_THREADS}"),
            ));
        }
        if !(args.fps.is_finite() && (0.1..=1000.0).contains(&args.fps)) {
            return Err(invalid("fps", &args.fps, "must be between 0.1 and 1000"));
        }
        if !(MIN_FRAME_BYTES..=MAX_FRAME_BYTES).contains(&args.frame_bytes) {
            return Err(invalid(
                "frame-bytes",
                &args.frame_bytes,
                &format!("must be between {MIN_FRAME_BYTES} and {MAX_FRAME_BYTES}"),
            ));
        }
        let seconds = |flag: &'static str, value: f64, min: f64| {
            if value.is_finite() && (min..=MAX_SECONDS).contains(&value) {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(invalid(
                    flag,
                    &value,
                    &format!("must be between {min} and {MAX_SECONDS} seconds"),
                ))
            }
        };
        let duration = seconds("duration", args.duration, 0.5)?;
        let warmup = seconds("warmup", args.warmup, 0.0)?;
        if args.pid == Some(0) {
            return Err(invalid("pid", &0, "must be a process id"));
        }
        let prefix = &args.device_prefix;
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 48
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !prefix_ok {
            return Err(invalid(
                "device-prefix",
                prefix,
                "must be 1 to 48 characters from A-Z a-z 0-9 _ . -",
            ));
        }
        Ok(Config {
            label: args.label.clone().unwrap_or_else(|| target.to_string()),
            target,
            devices: args.devices,
            viewers: args.viewers,
            slow: args.slow,
            stalled: args.stalled,
            fps: args.fps,
            frame_bytes: args.frame_bytes,
            duration,
            warmup,
            pid: args.pid,
            device_prefix: prefix.clone(),
            json: args.json,
        })
    }

    /// The id device `index` pushes under.
    pub fn device_id(&self, index: u32) -> String {
        format!("{}{index}", self.device_prefix)
    }

    /// Time between two scheduled pushes of one device.
    pub fn push_interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.fps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(flags: &[&str]) -> Result<Config, LoadError> {
        let args = Args::from_args(&["loadgen"], flags).map_err(|exit| LoadError::Invalid {
            flag: "?",
            value: String::new(),
            reason: exit.output,
        })?;
        Config::from_args(&args)
    }

    #[test]
    fn defaults_describe_one_device_and_one_viewer() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.target.addr, "127.0.0.1:19999".parse().unwrap());
        assert_eq!(
            (config.devices, config.viewers, config.slow, config.stalled),
            (1, 1, 0, 0)
        );
        assert_eq!(config.frame_bytes, 61_440);
        assert_eq!(config.duration, Duration::from_secs(15));
        assert_eq!(config.warmup, Duration::from_secs(2));
        assert_eq!(config.push_interval(), Duration::from_millis(50));
        assert_eq!(config.label, "http://127.0.0.1:19999");
        assert_eq!(config.device_id(3), "lg3");
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (flags, flag) in [
            (&["--devices", "0"][..], "--devices"),
            (&["--fps", "0"][..], "--fps"),
            (&["--frame-bytes", "10"][..], "--frame-bytes"),
            (&["--duration", "0"][..], "--duration"),
            (&["--warmup", "-1"][..], "--warmup"),
            (&["--url", "https://127.0.0.1:1"][..], "--url"),
            (&["--ca-file", "/nonexistent"][..], "--ca-file"),
            (&["--device-prefix", "a/b"][..], "--device-prefix"),
            (&["--devices", "1000", "--viewers", "100"][..], "--devices"),
        ] {
            let message = parse(flags).unwrap_err().to_string();
            assert!(message.contains(flag), "{flags:?}: {message}");
        }
    }
}
