//! Command-line flags and their environment variables, validated into a typed [`Config`].
//!
//! Every flag can also come from `STREAMPUMP_<FLAG>` (upper case, `-` → `_`), because procd and
//! systemd pass settings most comfortably through the environment. A flag on the command line
//! wins over the environment, which wins over the default. Everything is checked here, before
//! any socket is opened or thread started, so a typo fails at start-up with a message naming the
//! flag instead of surfacing later as odd behaviour.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

use crate::access::cors::AllowedOrigins;
use crate::access::{Policy, Secret};
use crate::machine::{self, BudgetOrigin};
use crate::relay::device_id::DeviceId;
use crate::state::StateDir;
use crate::text::decimal::{self, Seconds};
use crate::text::quoted::Quoted;

/// Defaults, kept together so `--help` and the code cannot disagree.
pub mod defaults {
    pub const LISTEN: &str = "0.0.0.0:19999";
    pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;
    pub const MAX_DEVICES: usize = 64;
    pub const MAX_VIEWERS: usize = 32;
    pub const MAX_CONNECTIONS: usize = 256;
    pub const OFFLINE_AFTER: &str = "10s";
    pub const EVICT_AFTER: &str = "10m";
    pub const WRITE_TIMEOUT: &str = "10s";
    pub const REQUEST_TIMEOUT: &str = "10s";
    pub const PUSH_TIMEOUT: &str = "60s";
    pub const BATTERY_LOW: u8 = 20;
    pub const EVENT_TIMEOUT: &str = "10s";
    /// HTTPS is on by default where it is built in.
    #[cfg(feature = "tls")]
    pub const TLS_LISTEN: &str = "0.0.0.0:19443";
    #[cfg(not(feature = "tls"))]
    pub const TLS_LISTEN: &str = "off";
}

/// The memory budget must hold at least this many of the largest frames: one kept and one
/// being received.
const FRAMES_PER_BUDGET: usize = 2;
/// With the frame cap left at its default, it is at most this share of the budget.
const DEFAULT_FRAME_SHARE: usize = 4;
/// Smallest memory budget accepted.
const MEMORY_BUDGET_FLOOR: usize = 64 * 1024;

/// Largest frame cap accepted: far above any phone JPEG, and small enough that one frame per
/// device cannot exhaust a router.
const MAX_FRAME_BYTES_CEILING: usize = 64 * 1024 * 1024;
const COUNT_CEILING: usize = 100_000;

/// streampump: relays JPEG frames pushed by phones to MJPEG viewers (go2rtc, Home Assistant,
/// browsers, ffmpeg). Every option can also be set through the environment variable named in
/// brackets; a flag given on the command line wins.
#[derive(FromArgs, Debug, Default)]
pub struct Args {
    /// address and port to listen on [STREAMPUMP_LISTEN] (default 0.0.0.0:19999)
    #[argh(option)]
    pub listen: Option<String>,

    /// memory for every frame kept, being received or still being written, in bytes or with
    /// k, M or G; a push that finds no room gets 503 [STREAMPUMP_MEMORY_BUDGET] (default an
    /// eighth of the machine's memory, 8M to 256M)
    #[argh(option)]
    pub memory_budget: Option<String>,

    /// largest accepted JPEG in bytes; bigger pushes get 413 [STREAMPUMP_MAX_FRAME_BYTES]
    /// (default 4194304, or a quarter of the memory budget if that is less)
    #[argh(option)]
    pub max_frame_bytes: Option<String>,

    /// no longer used (uploads count against the memory budget); accepted so that older
    /// configurations still start [STREAMPUMP_MAX_UPLOAD_BYTES]
    #[argh(option)]
    pub max_upload_bytes: Option<String>,

    /// most devices kept at once; a push for one more gets 503 [STREAMPUMP_MAX_DEVICES]
    /// (default 64)
    #[argh(option)]
    pub max_devices: Option<String>,

    /// most viewers of one device; one more gets 503 [STREAMPUMP_MAX_VIEWERS] (default 32)
    #[argh(option)]
    pub max_viewers: Option<String>,

    /// most connections open at once (streams, pushes, idle keep-alives); more get 503
    /// [STREAMPUMP_MAX_CONNECTIONS] (default 256)
    #[argh(option)]
    pub max_connections: Option<String>,

    /// no push for this long: offline, viewers get the no-signal picture (durations: seconds,
    /// or 500ms, 10s, 2m, 1h) [STREAMPUMP_OFFLINE_AFTER] (default 10s)
    #[argh(option)]
    pub offline_after: Option<String>,

    /// a device offline this long with no viewers is forgotten and its frame freed
    /// [STREAMPUMP_EVICT_AFTER] (default 10m)
    #[argh(option)]
    pub evict_after: Option<String>,

    /// a viewer that accepts no data for this long is dropped
    /// [STREAMPUMP_WRITE_TIMEOUT] (default 10s)
    #[argh(option)]
    pub write_timeout: Option<String>,

    /// idle connections and request headers are cut off after this long
    /// [STREAMPUMP_REQUEST_TIMEOUT] (default 10s)
    #[argh(option)]
    pub request_timeout: Option<String>,

    /// a request body not fully arrived this long after its headers is cut off
    /// [STREAMPUMP_PUSH_TIMEOUT] (default 60s)
    #[argh(option)]
    pub push_timeout: Option<String>,

    /// token required to push [STREAMPUMP_PUSH_TOKEN]
    #[argh(option)]
    pub push_token: Option<String>,

    /// a device's own push token, ID=TOKEN, repeatable [STREAMPUMP_DEVICE_TOKEN, space-separated]
    #[argh(option)]
    pub device_token: Vec<String>,

    /// file of ID=TOKEN lines (# comments) [STREAMPUMP_DEVICE_TOKENS_FILE]
    #[argh(option)]
    pub device_tokens_file: Option<String>,

    /// user name required to view (Basic auth) [STREAMPUMP_VIEW_USER]
    #[argh(option)]
    pub view_user: Option<String>,

    /// password for --view-user [STREAMPUMP_VIEW_PASSWORD]
    #[argh(option)]
    pub view_password: Option<String>,

    /// token that views instead of the login [STREAMPUMP_VIEW_TOKEN]
    #[argh(option)]
    pub view_token: Option<String>,

    /// token for DELETE /api/devices/ID; also pushes and views [STREAMPUMP_ADMIN_TOKEN]
    #[argh(option)]
    pub admin_token: Option<String>,

    /// origins allowed by CORS: * or a comma-separated list [STREAMPUMP_ALLOW_ORIGIN]
    #[argh(option)]
    pub allow_origin: Option<String>,

    /// directory for what survives a restart: the certificate authority, phone settings
    /// [STREAMPUMP_STATE_DIR] (default $STATE_DIRECTORY, else $XDG_STATE_HOME/streampump, else
    /// ~/.local/state/streampump)
    #[argh(option)]
    pub state_dir: Option<String>,

    /// command run through /bin/sh when a device comes online, goes offline, its battery runs
    /// low or it stops charging; STREAMPUMP_EVENT, STREAMPUMP_DEVICE, STREAMPUMP_BATTERY and
    /// STREAMPUMP_CHARGING say what happened [STREAMPUMP_ON_EVENT]
    #[argh(option)]
    pub on_event: Option<String>,

    /// battery percentage below which a phone's battery counts as low (event battery_low)
    /// [STREAMPUMP_BATTERY_LOW] (default 20)
    #[argh(option)]
    pub battery_low: Option<String>,

    /// an event command (see on-event) still running after this long is killed
    /// [STREAMPUMP_EVENT_TIMEOUT] (default 10s)
    #[argh(option)]
    pub event_timeout: Option<String>,
    #[cfg_attr(
        feature = "tls",
        doc = "address and port for HTTPS, or off [STREAMPUMP_TLS_LISTEN] (default 0.0.0.0:19443)"
    )]
    #[cfg_attr(
        not(feature = "tls"),
        doc = "HTTPS: only off, in a build without TLS [STREAMPUMP_TLS_LISTEN] (default off)"
    )]
    #[argh(option)]
    pub tls_listen: Option<String>,

    /// PEM certificate chain for HTTPS instead of the relay's own authority; re-read when it
    /// changes [STREAMPUMP_TLS_CERT]
    #[cfg(feature = "tls")]
    #[argh(option)]
    pub tls_cert: Option<String>,

    /// PEM private key for --tls-cert [STREAMPUMP_TLS_KEY]
    #[cfg(feature = "tls")]
    #[argh(option)]
    pub tls_key: Option<String>,

    /// extra names for the own certificate: comma-separated DNS names or IP addresses
    /// [STREAMPUMP_TLS_NAMES]
    #[cfg(feature = "tls")]
    #[argh(option)]
    pub tls_names: Option<String>,

    /// file of extra names for the own certificate, one per line; re-read when it changes
    /// [STREAMPUMP_TLS_NAMES_FILE]
    #[cfg(feature = "tls")]
    #[argh(option)]
    pub tls_names_file: Option<String>,

    /// check the settings, print them and exit (status 2 with the reason if one is invalid)
    #[argh(switch)]
    pub check: bool,

    /// print the version and exit
    #[argh(switch)]
    pub version: bool,
}

/// The validated settings the relay runs with. Nothing downstream parses strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub memory_budget: usize,
    pub memory_budget_origin: BudgetOrigin,
    pub max_frame_bytes: usize,
    /// `--max-upload-bytes` was given: said once at start, since it no longer does anything.
    pub ignored_max_upload_bytes: bool,
    pub max_devices: NonZeroUsize,
    pub max_viewers: NonZeroUsize,
    pub max_connections: NonZeroUsize,
    pub offline_after: Duration,
    pub evict_after: Duration,
    pub write_timeout: Duration,
    pub request_timeout: Duration,
    pub push_timeout: Duration,
    pub access: Policy,
    pub allowed_origins: AllowedOrigins,
    pub state_dir: StateDir,
    pub on_event: Option<String>,
    pub battery_low: u8,
    pub event_timeout: Duration,
    pub tls: TlsSettings,
}

/// HTTPS: where it listens and where its certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsSettings {
    /// `None`: `--tls-listen off`.
    pub listen: Option<SocketAddr>,
    /// `--tls-cert` and `--tls-key`; `None`: the relay's own authority issues it.
    pub given: Option<(PathBuf, PathBuf)>,
    /// `--tls-names`, for the own certificate.
    pub names: Vec<String>,
    pub names_file: Option<PathBuf>,
}

/// The settings as flags, one per line: what `--check` prints, and a command line that gives
/// the same configuration.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "--listen {}", self.listen)?;
        writeln!(f, "--memory-budget {}", self.memory_budget)?;
        writeln!(f, "--max-frame-bytes {}", self.max_frame_bytes)?;
        writeln!(f, "--max-devices {}", self.max_devices)?;
        writeln!(f, "--max-viewers {}", self.max_viewers)?;
        writeln!(f, "--max-connections {}", self.max_connections)?;
        for (flag, duration) in [
            ("offline-after", self.offline_after),
            ("evict-after", self.evict_after),
            ("write-timeout", self.write_timeout),
            ("request-timeout", self.request_timeout),
            ("push-timeout", self.push_timeout),
        ] {
            writeln!(f, "--{flag} {}", Seconds(duration))?;
        }
        // Secrets are shown as *** so that the output can be logged or pasted.
        let access = &self.access;
        let secret_flags = [
            ("push-token", access.push_token.is_some()),
            ("view-token", access.view_token.is_some()),
            ("admin-token", access.admin_token.is_some()),
        ];
        for (flag, set) in secret_flags {
            if set {
                writeln!(f, "--{flag} ***")?;
            }
        }
        for (device, _) in &access.device_tokens {
            writeln!(f, "--device-token {device}=***")?;
        }
        if let Some((user, _)) = &access.view_login {
            writeln!(f, "--view-user {user}\n--view-password ***")?;
        }
        if self.allowed_origins != AllowedOrigins::None {
            writeln!(f, "--allow-origin {}", self.allowed_origins.as_flag_value())?;
        }
        writeln!(f, "--state-dir {}", self.state_dir)?;
        // Shown as *** like the secrets: a webhook's address is one.
        if self.on_event.is_some() {
            writeln!(f, "--on-event ***")?;
        }
        writeln!(f, "--battery-low {}", self.battery_low)?;
        writeln!(f, "--event-timeout {}", Seconds(self.event_timeout))?;
        let tls = &self.tls;
        match tls.listen {
            None => writeln!(f, "--tls-listen off")?,
            Some(address) => writeln!(f, "--tls-listen {address}")?,
        }
        #[cfg(feature = "tls")]
        if let Some((cert, key)) = &tls.given {
            // Paths only: the key's content never leaves its file.
            writeln!(
                f,
                "--tls-cert {}\n--tls-key {}",
                cert.display(),
                key.display()
            )?;
        }
        #[cfg(feature = "tls")]
        if !tls.names.is_empty() {
            writeln!(f, "--tls-names {}", tls.names.join(","))?;
        }
        #[cfg(feature = "tls")]
        if let Some(file) = &tls.names_file {
            writeln!(f, "--tls-names-file {}", file.display())?;
        }
        Ok(())
    }
}

/// A setting that could not be used, naming the flag and its environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    flag: &'static str,
    /// `None` for secrets, which are never echoed.
    value: Option<String>,
    reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid --{} (or {})", self.flag, env_name(self.flag))?;
        if let Some(value) = &self.value {
            write!(f, " {}", Quoted(value))?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ConfigError {}

impl Default for Config {
    fn default() -> Self {
        Config::from_sources(&Args::default(), |_| None).unwrap_or_else(|e| {
            unreachable!("built-in defaults must be valid: {e}");
        })
    }
}

impl Config {
    /// Builds the configuration from parsed flags, falling back to the process environment.
    pub fn from_args(args: &Args) -> Result<Config, ConfigError> {
        Config::from_sources(args, |name| std::env::var(name).ok())
    }

    /// Builds the configuration from flags and an environment lookup (injected for tests),
    /// for this machine's memory.
    pub fn from_sources(
        args: &Args,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Config::for_machine(args, env, machine::mem_total())
    }

    /// Builds the configuration for a machine with `mem_total` bytes of memory (`None`:
    /// unknown), which sets the default memory budget.
    pub fn for_machine(
        args: &Args,
        env: impl Fn(&str) -> Option<String>,
        mem_total: Option<u64>,
    ) -> Result<Config, ConfigError> {
        let env: &dyn Fn(&str) -> Option<String> = &env;
        let setting = |flag: &'static str, given: &Option<String>, default: &str| Setting {
            flag,
            raw: given
                .clone()
                .or_else(|| env(&env_name(flag)))
                .unwrap_or_else(|| default.to_string()),
        };
        let offline_after = setting(
            "offline-after",
            &args.offline_after,
            defaults::OFFLINE_AFTER,
        )
        .duration(Duration::from_millis(100), Duration::from_secs(24 * 3600))?;
        let evict_after = setting("evict-after", &args.evict_after, defaults::EVICT_AFTER)
            .duration(Duration::from_secs(1), Duration::from_secs(365 * 24 * 3600))?;
        let write_timeout = setting(
            "write-timeout",
            &args.write_timeout,
            defaults::WRITE_TIMEOUT,
        )
        .duration(Duration::from_millis(100), Duration::from_secs(3600))?;
        // Under a second a phone on a weak Wi-Fi could not get a head or a frame through.
        let request_timeout = setting(
            "request-timeout",
            &args.request_timeout,
            defaults::REQUEST_TIMEOUT,
        )
        .duration(Duration::from_secs(1), Duration::from_secs(3600))?;
        let push_timeout = setting("push-timeout", &args.push_timeout, defaults::PUSH_TIMEOUT)
            .duration(Duration::from_secs(1), Duration::from_secs(3600))?;
        let (derived_budget, derived_origin) = machine::default_budget(mem_total);
        let budget = setting("memory-budget", &args.memory_budget, "");
        let (memory_budget, memory_budget_origin) = if budget.raw.trim().is_empty() {
            (derived_budget, derived_origin)
        } else {
            (budget.byte_size(MEMORY_BUDGET_FLOOR)?, BudgetOrigin::Given)
        };
        let default_frame = defaults::MAX_FRAME_BYTES.min(memory_budget / DEFAULT_FRAME_SHARE);
        let frame = setting(
            "max-frame-bytes",
            &args.max_frame_bytes,
            &default_frame.to_string(),
        );
        let max_frame_bytes = frame.count(1024, MAX_FRAME_BYTES_CEILING)?;
        if max_frame_bytes.saturating_mul(FRAMES_PER_BUDGET) > memory_budget {
            let wanted = max_frame_bytes.saturating_mul(FRAMES_PER_BUDGET);
            return Err(frame.error(format!(
                "the memory budget ({memory_budget} bytes, {memory_budget_origin}) must hold \
                 two such frames, one kept and one being received: lower --max-frame-bytes or \
                 set --memory-budget to at least {wanted}"
            )));
        }
        let ignored_max_upload_bytes = args.max_upload_bytes.is_some()
            || env(&env_name("max-upload-bytes")).is_some_and(|v| !v.trim().is_empty());
        Ok(Config {
            listen: setting("listen", &args.listen, defaults::LISTEN).socket_addr()?,
            memory_budget,
            memory_budget_origin,
            max_frame_bytes,
            ignored_max_upload_bytes,
            max_devices: setting(
                "max-devices",
                &args.max_devices,
                &defaults::MAX_DEVICES.to_string(),
            )
            .nonzero_count()?,
            max_viewers: setting(
                "max-viewers",
                &args.max_viewers,
                &defaults::MAX_VIEWERS.to_string(),
            )
            .nonzero_count()?,
            max_connections: setting(
                "max-connections",
                &args.max_connections,
                &defaults::MAX_CONNECTIONS.to_string(),
            )
            .nonzero_count()?,
            offline_after,
            evict_after,
            write_timeout,
            request_timeout,
            push_timeout,
            access: access_policy(args, env)?,
            allowed_origins: {
                let origins = setting("allow-origin", &args.allow_origin, "");
                AllowedOrigins::parse(&origins.raw).map_err(|reason| origins.error(reason))?
            },
            on_event: args
                .on_event
                .clone()
                .or_else(|| env(&env_name("on-event")))
                .filter(|command| !command.trim().is_empty()),
            battery_low: setting(
                "battery-low",
                &args.battery_low,
                &defaults::BATTERY_LOW.to_string(),
            )
            .count(0, 100)? as u8,
            event_timeout: setting(
                "event-timeout",
                &args.event_timeout,
                defaults::EVENT_TIMEOUT,
            )
            .duration(Duration::from_millis(100), Duration::from_secs(3600))?,
            state_dir: match args
                .state_dir
                .clone()
                .or_else(|| env(&env_name("state-dir")))
                .filter(|path| !path.trim().is_empty())
            {
                Some(path) => StateDir::new(path.trim()),
                None => StateDir::default_from(env),
            },
            tls: tls_settings(args, env)?,
        })
    }

    /// How HTTPS is set up, in words, for `--check`.
    #[cfg(not(feature = "tls"))]
    pub fn tls_summary(&self) -> String {
        "HTTPS: not in this build (built without the tls feature)".to_string()
    }

    /// How HTTPS is set up, in words, for `--check` (no secret: paths and names only).
    #[cfg(feature = "tls")]
    pub fn tls_summary(&self) -> String {
        let Some(address) = self.tls.listen else {
            return "HTTPS: off".to_string();
        };
        let certificate = match &self.tls.given {
            Some((cert, key)) => format!(
                "the given certificate {} and key {}, re-read when they change",
                cert.display(),
                key.display()
            ),
            None => {
                let mut extra = self.tls.names.join(", ");
                if let Some(file) = &self.tls.names_file {
                    if !extra.is_empty() {
                        extra.push_str(", ");
                    }
                    extra.push_str(&format!("the names in {}", file.display()));
                }
                format!(
                    "the relay's own authority {}, naming this host's addresses, its name, \
                     NAME.local and localhost{}{}",
                    self.state_dir.file("ca.crt").display(),
                    if extra.is_empty() { "" } else { ", " },
                    extra
                )
            }
        };
        format!("HTTPS: on {address}, certificate from {certificate}")
    }
}

/// `--tls-listen`, and with the `tls` feature `--tls-cert`, `--tls-key`, `--tls-names`,
/// `--tls-names-file`.
fn tls_settings(
    args: &Args,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TlsSettings, ConfigError> {
    let given = |flag: &'static str, value: &Option<String>| {
        value
            .clone()
            .or_else(|| env(&env_name(flag)))
            .map(|text| text.trim().to_string())
            .filter(|text| !text.is_empty())
    };
    let listen_setting = Setting {
        flag: "tls-listen",
        raw: given("tls-listen", &args.tls_listen)
            .unwrap_or_else(|| defaults::TLS_LISTEN.to_string()),
    };
    if listen_setting.raw.eq_ignore_ascii_case("off") {
        return Ok(TlsSettings::default());
    }
    if cfg!(not(feature = "tls")) {
        return Err(listen_setting.error(
            "this build has no HTTPS (built without the tls feature); use off, or the \
             streampump-tls binary",
        ));
    }
    #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
    let mut settings = TlsSettings {
        listen: Some(listen_setting.socket_addr()?),
        ..TlsSettings::default()
    };
    #[cfg(feature = "tls")]
    {
        settings.given = match (
            given("tls-cert", &args.tls_cert),
            given("tls-key", &args.tls_key),
        ) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
            (Some(cert), None) => {
                return Err(ConfigError {
                    flag: "tls-key",
                    value: None,
                    reason: format!("--tls-cert {cert} needs its key"),
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError {
                    flag: "tls-cert",
                    value: None,
                    reason: "--tls-key needs its certificate".into(),
                })
            }
        };
        if let Some(raw) = given("tls-names", &args.tls_names) {
            for name in raw
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
            {
                if !crate::text::host_name::is_certificate_name(name) {
                    return Err(ConfigError {
                        flag: "tls-names",
                        value: Some(raw.clone()),
                        reason: format!("{} is not a DNS name or an IP address", Quoted(name)),
                    });
                }
                if !settings.names.iter().any(|known| known == name) {
                    settings.names.push(name.to_string());
                }
            }
        }
        settings.names_file = given("tls-names-file", &args.tls_names_file).map(PathBuf::from);
    }
    Ok(settings)
}

/// The credentials from flags, environment and the device tokens file.
fn access_policy(args: &Args, env: &dyn Fn(&str) -> Option<String>) -> Result<Policy, ConfigError> {
    let secret = |flag: &'static str, given: &Option<String>| -> Result<_, ConfigError> {
        // Empty counts as unset, as for every other setting's variable.
        match given
            .clone()
            .or_else(|| env(&env_name(flag)))
            .filter(|text| !text.trim().is_empty())
        {
            None => Ok(None),
            Some(text) => if flag == "view-password" {
                Secret::password(text.trim())
            } else {
                Secret::new(text.trim())
            }
            .map(Some)
            .map_err(|reason| secret_error(flag, reason)),
        }
    };
    let view_user = args
        .view_user
        .clone()
        .or_else(|| env("STREAMPUMP_VIEW_USER"))
        .filter(|user| !user.trim().is_empty());
    let view_password = secret("view-password", &args.view_password)?;
    let view_login = match (view_user, view_password) {
        (None, None) => None,
        (Some(user), Some(password)) => {
            let user = user.trim().to_string();
            if user.is_empty() || user.contains(':') || !user.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(ConfigError {
                    flag: "view-user",
                    value: Some(user),
                    reason: "must be visible ASCII characters without a colon".into(),
                });
            }
            Some((user, password))
        }
        (Some(_), None) => return Err(secret_error("view-password", "--view-user needs it")),
        (None, Some(_)) => return Err(secret_error("view-user", "--view-password needs it")),
    };
    Ok(Policy {
        push_token: secret("push-token", &args.push_token)?,
        device_tokens: device_tokens(args, env)?,
        view_login,
        view_token: secret("view-token", &args.view_token)?,
        admin_token: secret("admin-token", &args.admin_token)?,
    })
}

fn secret_error(flag: &'static str, reason: &str) -> ConfigError {
    ConfigError {
        flag,
        value: None,
        reason: reason.to_string(),
    }
}

/// `--device-token` pairs (or the variable's, separated by spaces) and the file's lines.
fn device_tokens(
    args: &Args,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(DeviceId, Secret)>, ConfigError> {
    let from_variable = env("STREAMPUMP_DEVICE_TOKEN").unwrap_or_default();
    let pairs: Vec<&str> = if args.device_token.is_empty() {
        from_variable.split_ascii_whitespace().collect()
    } else {
        args.device_token.iter().map(String::as_str).collect()
    };
    let mut tokens = Vec::new();
    for pair in pairs {
        tokens.push(device_token(pair).map_err(|reason| secret_error("device-token", &reason))?);
    }
    let file_flag = "device-tokens-file";
    if let Some(path) = args
        .device_tokens_file
        .clone()
        .or_else(|| env(&env_name(file_flag)))
        .filter(|path| !path.trim().is_empty())
    {
        let path = path.trim();
        let file_error = |reason: String| ConfigError {
            flag: file_flag,
            value: Some(path.to_string()),
            reason,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|error| file_error(format!("cannot read it: {error}")))?;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let token = device_token(line)
                .map_err(|reason| file_error(format!("line {}: {reason}", number + 1)))?;
            tokens.push(token);
        }
    }
    for (index, (device, _)) in tokens.iter().enumerate() {
        if tokens[..index].iter().any(|(earlier, _)| earlier == device) {
            return Err(secret_error(
                "device-token",
                &format!("device {device} is given two tokens"),
            ));
        }
    }
    Ok(tokens)
}

/// `cam_01=SECRET`. The reason for a refusal never repeats the secret.
fn device_token(pair: &str) -> Result<(DeviceId, Secret), String> {
    let (raw_id, token) = pair
        .split_once('=')
        .ok_or_else(|| "expected DEVICE_ID=TOKEN".to_string())?;
    let device = DeviceId::parse(raw_id.trim()).map_err(|error| error.to_string())?;
    let token =
        Secret::new(token.trim()).map_err(|reason| format!("the token for {device} {reason}"))?;
    Ok((device, token))
}

/// `max-frame-bytes` → `STREAMPUMP_MAX_FRAME_BYTES`.
pub fn env_name(flag: &str) -> String {
    format!("STREAMPUMP_{}", flag.replace('-', "_").to_ascii_uppercase())
}

/// One raw setting on its way to a typed value.
struct Setting {
    flag: &'static str,
    raw: String,
}

impl Setting {
    fn error(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            flag: self.flag,
            value: Some(self.raw.clone()),
            reason: reason.into(),
        }
    }

    fn socket_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.raw
            .trim()
            .parse()
            .map_err(|_| self.error("expected IP:PORT, for example 0.0.0.0:19999 or [::]:19999"))
    }

    fn count(&self, min: usize, max: usize) -> Result<usize, ConfigError> {
        let value: usize = self
            .raw
            .trim()
            .parse()
            .map_err(|_| self.error("expected a whole number"))?;
        if value < min || value > max {
            return Err(self.error(format!("must be between {min} and {max}")));
        }
        Ok(value)
    }

    /// Bytes, or kibibytes, mebibytes or gibibytes with a `k`, `M` or `G` after the number.
    fn byte_size(&self, min: usize) -> Result<usize, ConfigError> {
        let text = self.raw.trim();
        let unit = match text.as_bytes().last() {
            Some(b'k' | b'K') => 1 << 10,
            Some(b'm' | b'M') => 1 << 20,
            Some(b'g' | b'G') => 1 << 30,
            _ => 1,
        };
        // The unit is one ASCII letter, so cutting it off leaves whole characters.
        let number = if unit == 1 {
            text
        } else {
            &text[..text.len() - 1]
        };
        let value = number
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .ok_or_else(|| self.error("expected bytes, or a size such as 512k, 16M or 1G"))?;
        if value < min {
            return Err(self.error(format!("must be at least {min} bytes")));
        }
        Ok(value)
    }

    fn nonzero_count(&self) -> Result<NonZeroUsize, ConfigError> {
        let value = self.count(1, COUNT_CEILING)?;
        NonZeroUsize::new(value).ok_or_else(|| self.error("must be at least 1"))
    }

    fn duration(&self, min: Duration, max: Duration) -> Result<Duration, ConfigError> {
        let value = parse_duration(self.raw.trim()).ok_or_else(|| {
            self.error("expected a duration such as 500ms, 10s, 2m, 1h (a bare number is seconds)")
        })?;
        if value < min || value > max {
            return Err(self.error(format!(
                "must be between {} and {}",
                Seconds(min),
                Seconds(max)
            )));
        }
        Ok(value)
    }
}

/// Parses `500ms`, `10s`, `2m`, `1h` or a bare number of seconds (fractions allowed: `0.5`),
/// up to 10⁹ s. Kept exact to the microsecond of the unit given, without floating point (see
/// `decimal`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    const MAX_NANOS: u64 = 1_000_000_000 * 1_000_000_000;
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let millionths = decimal::parse_millionths(number)?;
    let nanos_per_unit: u64 = match unit {
        "" | "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    };
    // Whole units and the fraction apart, so that nothing overflows u64 (128-bit arithmetic
    // costs 32-bit routers binary size; see `decimal::whole_millis`).
    let whole = (millionths / decimal::ONE).checked_mul(nanos_per_unit)?;
    let fraction = millionths % decimal::ONE * nanos_per_unit / decimal::ONE;
    let nanos = whole.checked_add(fraction)?;
    if nanos > MAX_NANOS {
        return None;
    }
    Some(Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    }

    #[test]
    fn defaults_match_the_reference_port_and_documented_limits() {
        let config = Config::for_machine(&Args::default(), |_| None, Some(4 << 30)).unwrap();
        assert_eq!(config.listen, "0.0.0.0:19999".parse().unwrap());
        assert_eq!(config.max_frame_bytes, 4 * 1024 * 1024);
        assert_eq!(config.memory_budget, 256 * 1024 * 1024);
        assert_eq!(config.max_devices.get(), 64);
        assert_eq!(config.max_viewers.get(), 32);
        assert_eq!(config.max_connections.get(), 256);
        assert_eq!(config.offline_after, Duration::from_secs(10));
        assert_eq!(config.evict_after, Duration::from_secs(600));
        assert_eq!(config.write_timeout, Duration::from_secs(10));
        assert_eq!(config.request_timeout, Duration::from_secs(10));
        assert_eq!(config.push_timeout, Duration::from_secs(60));
    }

    #[test]
    fn timeouts_below_the_watch_granularity_are_refused() {
        let args = Args {
            request_timeout: Some("200ms".into()),
            ..Args::default()
        };
        let message = Config::from_sources(&args, |_| None)
            .unwrap_err()
            .to_string();
        assert!(message.contains("--request-timeout"), "{message}");
        let env = env_of(&[("STREAMPUMP_PUSH_TIMEOUT", "2m")]);
        let config = Config::from_sources(&Args::default(), env).unwrap();
        assert_eq!(config.push_timeout, Duration::from_secs(120));
    }

    #[test]
    fn environment_fills_in_and_flags_win() {
        let env = env_of(&[
            ("STREAMPUMP_MAX_VIEWERS", "5"),
            ("STREAMPUMP_LISTEN", "127.0.0.1:1"),
        ]);
        let args = Args {
            listen: Some("127.0.0.1:2".into()),
            ..Args::default()
        };
        let config = Config::from_sources(&args, env).unwrap();
        assert_eq!(config.max_viewers.get(), 5);
        assert_eq!(config.listen.port(), 2);
    }

    #[test]
    fn bad_values_name_the_flag_and_the_variable() {
        let args = Args {
            max_devices: Some("0".into()),
            ..Args::default()
        };
        let message = Config::from_sources(&args, |_| None)
            .unwrap_err()
            .to_string();
        assert!(message.contains("--max-devices"), "{message}");
        assert!(message.contains("STREAMPUMP_MAX_DEVICES"), "{message}");

        let args = Args {
            listen: Some("19999".into()),
            ..Args::default()
        };
        assert!(Config::from_sources(&args, |_| None).is_err());

        let args = Args {
            max_frame_bytes: Some("10".into()),
            ..Args::default()
        };
        assert!(Config::from_sources(&args, |_| None).is_err());

        let args = Args {
            max_frame_bytes: Some("2000000".into()),
            memory_budget: Some("3000000".into()),
            ..Args::default()
        };
        let message = Config::from_sources(&args, |_| None)
            .unwrap_err()
            .to_string();
        assert!(message.contains("--max-frame-bytes"), "{message}");
        assert!(message.contains("--memory-budget"), "{message}");
    }

    #[test]
    fn the_memory_budget_fits_the_machine_unless_given() {
        let router = Config::for_machine(&Args::default(), |_| None, Some(57 << 20)).unwrap();
        assert_eq!(router.memory_budget, 8 << 20);
        assert_eq!(
            router.memory_budget_origin,
            BudgetOrigin::MemTotal(57 << 20)
        );
        // A quarter of a small budget is the frame cap, unless one is given.
        assert_eq!(router.max_frame_bytes, 2 << 20);
        let env = env_of(&[("STREAMPUMP_MEMORY_BUDGET", "48M")]);
        let given = Config::for_machine(&Args::default(), env, Some(57 << 20)).unwrap();
        assert_eq!(given.memory_budget, 48 << 20);
        assert_eq!(given.memory_budget_origin, BudgetOrigin::Given);
        assert_eq!(given.max_frame_bytes, 4 << 20);
        assert!(given.to_string().contains("--memory-budget 50331648\n"));
        for (text, bytes) in [("65536", 65536), ("512k", 512 << 10), ("1G", 1 << 30)] {
            let args = Args {
                memory_budget: Some(text.into()),
                max_frame_bytes: Some("1024".into()),
                ..Args::default()
            };
            let config = Config::from_sources(&args, |_| None).unwrap();
            assert_eq!(config.memory_budget, bytes, "{text}");
        }
        for bad in ["lots", "1T", "-1M", "1000", ""] {
            let args = Args {
                memory_budget: Some(bad.into()),
                ..Args::default()
            };
            let outcome = Config::for_machine(&args, |_| None, None);
            // An empty value means the default, as for every other setting.
            assert_eq!(outcome.is_err(), !bad.is_empty(), "{bad}");
        }
        let old = env_of(&[("STREAMPUMP_MAX_UPLOAD_BYTES", "16777216")]);
        assert!(
            Config::from_sources(&Args::default(), old)
                .unwrap()
                .ignored_max_upload_bytes
        );
    }

    #[test]
    fn durations_accept_units_and_reject_nonsense() {
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("10 s"), None);
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration("1e400"), None);
        assert_eq!(parse_duration("3days"), None);
    }
}
