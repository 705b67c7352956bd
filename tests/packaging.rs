//! The service files and the options reference offer every option the relay has, with the
//! relay's own defaults.
//!
//! The systemd defaults file (`init/streampump.default`), the OpenWrt UCI file and its init
//! script, and the table in `docs/options.md` are written by hand; these tests read the options
//! and defaults from the binary's `--help` and fail when a new flag is not carried into them, or
//! a default drifts.

use std::process::Command;

/// Flags the relay only still accepts so that old configurations start: not offered.
const NO_LONGER_USED: [&str; 1] = ["max-upload-bytes"];

/// `(flag, default)` for every option in `--help`, e.g. `("max-devices", "64")`, with `""`
/// for the options that have no default.
fn options_from_help() -> Vec<(String, String)> {
    let output = Command::new(env!("CARGO_BIN_EXE_streampump"))
        .arg("--help")
        .output()
        .expect("run streampump --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let options_part = help
        .split_once("Options:")
        .map(|(_, rest)| rest)
        .expect("an Options: section in --help");
    let mut options = Vec::new();
    let mut rest = options_part;
    while let Some(start) = rest.find(" --").map(|i| i + 3) {
        let after = &rest[start..];
        let flag = after.split_whitespace().next().unwrap_or_default();
        let next = after.find(" --").unwrap_or(after.len());
        let description = &after[..next];
        // Switches (--check, --version, --help) are not settings. An option without a
        // default (the credentials) is listed with an empty value.
        let flag = flag.trim_end_matches(',');
        // The service files describe the default build, with HTTPS; a build without it has
        // only `--tls-listen off`, which they need not offer.
        let tls_only = cfg!(not(feature = "tls")) && flag.starts_with("tls-");
        if !["check", "version", "help"].contains(&flag) && !tls_only {
            let default = description
                .split_once("(default ")
                .and_then(|(_, tail)| tail.split_once(')'))
                .map_or("", |(default, _)| default);
            if !NO_LONGER_USED.contains(&flag) {
                options.push((flag.to_string(), default.to_string()));
            }
        }
        rest = &after[next..];
    }
    let flags: Vec<&str> = options.iter().map(|(flag, _)| flag.as_str()).collect();
    for expected in [
        "listen",
        "max-devices",
        "offline-after",
        "push-timeout",
        "push-token",
        "device-token",
        "allow-origin",
    ] {
        assert!(
            flags.contains(&expected),
            "{expected} not read from --help: {flags:?}"
        );
    }
    options
}

/// Defaults the service files choose on purpose instead of the relay's own, as
/// `(flag, systemd defaults file, OpenWrt UCI file)`: the state directory belongs where each
/// system keeps a service's state, not under a home directory.
const SERVICE_DEFAULTS: &[(&str, &str, &str)] =
    &[("state-dir", "/var/lib/streampump", "/etc/streampump")];

/// The default a service file should show for `flag`.
fn service_default(flag: &str, relay_default: &str, openwrt: bool) -> String {
    SERVICE_DEFAULTS
        .iter()
        .find(|(name, _, _)| *name == flag)
        .map_or(
            relay_default,
            |(_, systemd, uci)| if openwrt { uci } else { systemd },
        )
        .to_string()
}

fn read(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {full}: {e}"))
}

#[test]
fn the_systemd_defaults_file_lists_every_option_with_its_default() {
    let file = read("init/streampump.default");
    for (flag, default) in options_from_help() {
        let default = if flag == "memory-budget" {
            String::new()
        } else {
            default.split(',').next().unwrap_or_default().to_string()
        };
        let line = format!(
            "#STREAMPUMP_{}={}",
            flag.replace('-', "_").to_ascii_uppercase(),
            service_default(&flag, &default, false)
        );
        assert!(
            file.lines().any(|l| l == line),
            "init/streampump.default lacks the line {line:?}"
        );
    }
}

#[test]
fn the_openwrt_config_and_init_script_carry_every_option() {
    let config = read("openwrt/streampump/files/streampump.config");
    let init = read("openwrt/streampump/files/streampump.init");
    for (flag, default) in options_from_help() {
        let expected_options: Vec<(String, String)> = if flag == "listen" {
            let (address, port) = default.rsplit_once(':').expect("IP:PORT default");
            vec![
                ("listen_ip".to_string(), address.to_string()),
                ("port".to_string(), port.to_string()),
            ]
        } else if flag == "tls-listen" {
            // HTTPS listens on listen_ip too: a switch and a port.
            let (_, port) = default.rsplit_once(':').expect("IP:PORT default");
            vec![
                ("tls".to_string(), "1".to_string()),
                ("tls_port".to_string(), port.to_string()),
            ]
        } else {
            vec![(
                flag.replace('-', "_"),
                service_default(&flag, &default, true),
            )]
        };
        for (option, value) in expected_options {
            // The memory budget, and the frame cap that is a quarter of it when that is less,
            // depend on the machine: the UCI file leaves them unset, so that the relay sizes
            // them for the router it runs on.
            let line = match flag.as_str() {
                "memory-budget" => format!("\toption {option} ''"),
                "max-frame-bytes" => format!("\t#option {option} '1048576'"),
                _ => format!("\toption {option} '{value}'"),
            };
            assert!(
                config.lines().any(|l| l == line),
                "the UCI file lacks {line:?}"
            );
            assert!(
                init.contains(&format!("'{option}:")),
                "the init script does not validate {option}"
            );
        }
        if flag != "listen" {
            let option = if flag == "tls-listen" {
                "tls_port".to_string()
            } else {
                flag.replace('-', "_")
            };
            // The options become flags between `set -- --listen` and the `--check` that
            // vets the command line procd will run.
            let passed = init
                .split_once("set -- --listen")
                .and_then(|(_, rest)| rest.split_once("--check"))
                .is_some_and(|(building, _)| building.contains(&option));
            assert!(passed, "the init script does not pass {option} as --{flag}");
        }
    }
}

#[test]
fn the_options_reference_lists_every_option_with_its_variable_and_default() {
    let doc = read("docs/options.md");
    // Table rows: | `--flag` (or `--flag ARG`, or several flags) | `VARIABLE` | default | meaning |
    let rows: Vec<Vec<&str>> = doc
        .lines()
        .filter(|line| line.starts_with("| `--"))
        .map(|line| line.split('|').map(str::trim).collect())
        .collect();
    for (flag, default) in options_from_help() {
        let named = |cell: &str| {
            cell.contains(&format!("`--{flag}`")) || cell.contains(&format!("`--{flag} "))
        };
        let row = rows
            .iter()
            .find(|row| row.len() > 4 && named(row[1]))
            .unwrap_or_else(|| panic!("docs/options.md has no row for --{flag}"));
        let variable = format!(
            "`STREAMPUMP_{}`",
            flag.replace('-', "_").to_ascii_uppercase()
        );
        assert!(
            row[2].contains(&variable),
            "docs/options.md names {:?} for --{flag}, not {variable}",
            row[2]
        );
        // The default as --help gives it, with the table's code quotes taken out.
        let expected = if default.is_empty() {
            "unset"
        } else {
            &default
        };
        assert_eq!(
            row[3].replace('`', ""),
            expected,
            "the default of --{flag} in docs/options.md"
        );
    }
}

#[test]
fn options_no_longer_used_are_not_offered() {
    let config = read("openwrt/streampump/files/streampump.config");
    let defaults = read("init/streampump.default");
    for flag in NO_LONGER_USED {
        let option = flag.replace('-', "_");
        assert!(
            !config.contains(&format!("option {option}")),
            "{option} in the UCI file"
        );
        let variable = format!("STREAMPUMP_{}=", option.to_ascii_uppercase());
        assert!(
            !defaults.contains(&variable),
            "{variable} in the defaults file"
        );
    }
}
