//! Log lines to standard error, filtered by `RUST_LOG`.
//!
//! Why not env_logger: on the MIPS routers the relay is built for, env_logger and its filter
//! parser cost about 10 KB of a 600 KB flash budget, for features the relay does not use
//! (regex filters, styles, timestamps: procd's logread and the systemd journal stamp each line
//! themselves). This keeps its line format, `[INFO  streampump::registry] cam_01: online …`,
//! and the part of its `RUST_LOG` syntax people type: a default level and `module=level`
//! directives, comma-separated (`info,streampump::registry=debug`), the longest matching
//! module prefix winning, the last of two directives for one module winning. A directive it
//! cannot read is reported once and ignored.
//!
//! One difference on purpose: where no directive sets a default level, it stays `info`.
//! env_logger turns everything else off when `RUST_LOG` names only modules, and logs only
//! errors when `RUST_LOG` is set but empty; a relay that goes quiet because a debug filter was
//! added for one module is a trap.

use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};

/// Where the filter comes from, and what applies when it is not set.
pub const FILTER_VARIABLE: &str = "RUST_LOG";
pub const DEFAULT_LEVEL: LevelFilter = LevelFilter::Info;

/// The parsed `RUST_LOG`: a default level and per-module levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    default: LevelFilter,
    /// `(module prefix, level)`; the longest matching prefix applies.
    modules: Vec<(String, LevelFilter)>,
}

impl Filter {
    /// Reads a `RUST_LOG` value; the directives it could not read come back for a warning.
    pub fn parse(spec: &str) -> (Filter, Vec<String>) {
        let mut filter = Filter {
            default: DEFAULT_LEVEL,
            modules: Vec::new(),
        };
        let mut unreadable = Vec::new();
        for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match directive.split_once('=') {
                None => match directive.parse::<LevelFilter>() {
                    Ok(level) => filter.default = level,
                    // A bare module name means "everything from it", as in env_logger.
                    Err(_) if is_module_path(directive) => {
                        filter.set_module(directive, LevelFilter::Trace)
                    }
                    Err(_) => unreadable.push(directive.to_string()),
                },
                // `module=` with no level means everything from it, as in env_logger.
                Some((module, "")) if is_module_path(module.trim()) => {
                    filter.set_module(module.trim(), LevelFilter::Trace)
                }
                Some((module, level)) => match level.trim().parse::<LevelFilter>() {
                    Ok(level) if is_module_path(module.trim()) => {
                        filter.set_module(module.trim(), level)
                    }
                    _ => unreadable.push(directive.to_string()),
                },
            }
        }
        (filter, unreadable)
    }

    fn set_module(&mut self, module: &str, level: LevelFilter) {
        self.modules.retain(|(known, _)| known != module);
        self.modules.push((module.to_string(), level));
    }

    /// The level that applies to log lines from `target` (a module path).
    pub fn level_for(&self, target: &str) -> LevelFilter {
        // A scan rather than a sorted list: there are a handful of directives, and a sort
        // would cost the MIPS build half a kilobyte.
        self.modules
            .iter()
            .filter(|(module, _)| {
                target == module
                    || target
                        .strip_prefix(module.as_str())
                        .is_some_and(|rest| rest.starts_with("::"))
            })
            .fold(
                None,
                |best: Option<&(String, LevelFilter)>, candidate| match best {
                    Some(best) if best.0.len() >= candidate.0.len() => Some(best),
                    _ => Some(candidate),
                },
            )
            .map_or(self.default, |(_, level)| *level)
    }

    /// The most verbose level anything may log at, for `log`'s fast check.
    pub fn max_level(&self) -> LevelFilter {
        self.modules
            .iter()
            .map(|(_, level)| *level)
            .fold(self.default, std::cmp::max)
    }
}

fn is_module_path(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Replaces the value of every `token=` query parameter in a log line with `***`, so that a
/// logged URL never carries a credential (see `access`). Done here, on every line, rather than
/// where URLs are logged, so that no log statement can forget it.
pub fn mask_tokens(line: String) -> String {
    const PARAMETERS: [&[u8]; 2] = [b"?token=", b"&token="];
    let bytes = line.as_bytes();
    let mut masked: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut index = 0;
    // Byte by byte rather than with `str::find`: the string searcher costs the routers'
    // flash more than this loop, and every byte that matters here is ASCII.
    while index < bytes.len() {
        let rest = &bytes[index..];
        if !PARAMETERS.iter().any(|name| rest.starts_with(name)) {
            index += 1;
            continue;
        }
        let value_start = index + PARAMETERS[0].len();
        let value_end = bytes[value_start..]
            .iter()
            .position(|&b| matches!(b, b'&' | b'#') || b.is_ascii_whitespace())
            .map_or(bytes.len(), |length| value_start + length);
        let out = masked.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
        out.extend_from_slice(&bytes[copied..value_start]);
        out.extend_from_slice(b"***");
        copied = value_end;
        index = value_end;
    }
    match masked {
        None => line,
        Some(mut out) => {
            out.extend_from_slice(&bytes[copied..]);
            // Only whole ASCII runs were replaced, so the rest is still UTF-8.
            String::from_utf8(out).unwrap_or_default()
        }
    }
}

struct StderrLogger {
    filter: Filter,
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.filter.level_for(metadata.target())
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "[{:<5} {}] {}\n",
            record.level(),
            record.target(),
            record.args()
        );
        let line = mask_tokens(line);
        // One write per line, so lines from many threads never interleave. A closed stderr
        // is no reason to stop relaying.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger, filtered by `RUST_LOG` (default `info`). Call once, early in `main`.
pub fn init() {
    let spec = std::env::var(FILTER_VARIABLE).unwrap_or_default();
    let (filter, unreadable) = Filter::parse(&spec);
    let max_level = filter.max_level();
    // Leaked once: the logger lives as long as the process, as `log` requires.
    let logger: &'static StderrLogger = Box::leak(Box::new(StderrLogger { filter }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(max_level);
    }
    // Straight to stderr: the filter being reported on must not be able to hide the report.
    for directive in unreadable {
        eprintln!(
            "[WARN  streampump::logging] ignoring {FILTER_VARIABLE} directive {}: \
             expected LEVEL or MODULE=LEVEL",
            crate::text::quoted::Quoted(&directive)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_parameters_are_masked_wherever_they_are() {
        let cases = [
            (
                "GET /live.mjpeg?token=abc&device_id=c",
                "GET /live.mjpeg?token=***&device_id=c",
            ),
            (
                "/x?device_id=c&token=s3cr%26t x",
                "/x?device_id=c&token=*** x",
            ),
            (
                "\"/a?token=\" and /b?token=zz",
                "\"/a?token=*** and /b?token=***",
            ),
            ("mytoken=visible, no URL", "mytoken=visible, no URL"),
            ("nothing here", "nothing here"),
        ];
        for (line, expected) in cases {
            assert_eq!(mask_tokens(line.to_string()), expected);
        }
    }

    #[test]
    fn a_bare_level_sets_the_default() {
        let (filter, unreadable) = Filter::parse("debug");
        assert!(unreadable.is_empty());
        assert_eq!(filter.level_for("streampump::server"), LevelFilter::Debug);
        assert_eq!(Filter::parse("").0.level_for("x"), DEFAULT_LEVEL);
        assert_eq!(Filter::parse("OFF").0.max_level(), LevelFilter::Off);
    }

    #[test]
    fn the_longest_module_prefix_wins() {
        let (filter, unreadable) =
            Filter::parse("warn, streampump=info ,streampump::registry=trace");
        assert!(unreadable.is_empty());
        assert_eq!(filter.level_for("streampump::registry"), LevelFilter::Trace);
        assert_eq!(
            filter.level_for("streampump::registry::inner"),
            LevelFilter::Trace
        );
        assert_eq!(filter.level_for("streampump::server"), LevelFilter::Info);
        assert_eq!(filter.level_for("streampumpx"), LevelFilter::Warn);
        assert_eq!(filter.level_for("httparse"), LevelFilter::Warn);
        assert_eq!(filter.max_level(), LevelFilter::Trace);
    }

    #[test]
    fn without_a_default_level_info_stays() {
        let (filter, _) = Filter::parse("streampump::registry=debug");
        assert_eq!(filter.level_for("streampump::server"), LevelFilter::Info);
        assert_eq!(filter.level_for("streampump::registry"), LevelFilter::Debug);
    }

    #[test]
    fn the_last_directive_for_a_module_wins() {
        let (filter, _) = Filter::parse("streampump=debug,streampump=warn,httparse=");
        assert_eq!(filter.level_for("streampump::push"), LevelFilter::Warn);
        assert_eq!(filter.level_for("httparse::client"), LevelFilter::Trace);
    }

    #[test]
    fn a_bare_module_means_everything_from_it() {
        let (filter, _) = Filter::parse("streampump");
        assert_eq!(filter.level_for("streampump::push"), LevelFilter::Trace);
        assert_eq!(filter.level_for("httparse"), DEFAULT_LEVEL);
    }

    #[test]
    fn unreadable_directives_are_reported_and_ignored() {
        let (filter, unreadable) = Filter::parse("info,streampump=loud,a b=debug,/regex/");
        assert_eq!(unreadable, ["streampump=loud", "a b=debug", "/regex/"]);
        assert_eq!(filter.level_for("streampump::server"), LevelFilter::Info);
    }
}
