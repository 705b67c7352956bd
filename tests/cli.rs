//! The command line: help, version, and refusing bad settings before starting.

mod support;

use support::run_streampump;

#[test]
fn help_lists_every_option_with_its_default_and_variable() {
    let output = run_streampump(&["--help"], &[]);
    assert!(output.status.success());
    // argh wraps long descriptions; compare with whitespace collapsed.
    let help = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for (flag, default) in [
        ("--listen", "0.0.0.0:19999"),
        ("--max-frame-bytes", "4194304"),
        ("--max-devices", "64"),
        ("--max-viewers", "32"),
        ("--max-connections", "256"),
        ("--offline-after", "10s"),
        ("--evict-after", "10m"),
        ("--write-timeout", "10s"),
        ("--memory-budget", "an eighth of the machine's memory"),
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
        assert!(
            help.contains(&format!("default {default}")),
            "{flag} default missing:\n{help}"
        );
        let variable = format!("STREAMPUMP_{}", flag[2..].replace('-', "_").to_uppercase());
        assert!(
            help.contains(&variable),
            "{variable} missing from --help:\n{help}"
        );
    }
}

#[test]
fn version_prints_the_package_version() {
    let output = run_streampump(&["--version"], &[]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("streampump {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_settings_stop_the_start_with_a_message() {
    let output = run_streampump(&["--max-viewers", "lots"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("--max-viewers") && message.contains("whole number"),
        "{message}"
    );

    let output = run_streampump(&[], &[("STREAMPUMP_OFFLINE_AFTER", "soon")]);
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("STREAMPUMP_OFFLINE_AFTER"), "{message}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = run_streampump(&["--listen", &address], &[]);
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains(&format!("cannot listen on {address}")),
        "{message}"
    );
}

#[test]
fn check_prints_the_settings_as_flags_without_starting() {
    // An address that is taken: --check must not try to listen.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = run_streampump(
        &["--check", "--listen", &address, "--offline-after", "2.5"],
        &[
            ("STREAMPUMP_MAX_DEVICES", "8"),
            ("STREAMPUMP_EVICT_AFTER", "1h"),
            ("STREAMPUMP_STATE_DIR", "/var/lib/cams"),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);
    for line in [
        format!("--listen {address}"),
        "--max-devices 8".to_string(),
        "--offline-after 2.5s".to_string(),
        "--evict-after 3600s".to_string(),
        "--max-viewers 32".to_string(),
        "--push-timeout 60s".to_string(),
        "--state-dir /var/lib/cams".to_string(),
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "{line:?} in:\n{printed}"
        );
    }

    // What it prints is a command line that gives the same settings.
    let again: Vec<&str> = printed.split_whitespace().collect();
    let mut args = vec!["--check"];
    args.extend(again);
    let output = run_streampump(&args, &[]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), printed);
}

#[test]
fn check_names_an_invalid_setting_and_exits_2() {
    for (args, env, named) in [
        (
            vec!["--check", "--max-frame-bytes", "100"],
            vec![],
            "--max-frame-bytes",
        ),
        (
            vec!["--check", "--listen", "0.0.0.0:-1"],
            vec![],
            "--listen",
        ),
        (
            vec!["--check"],
            vec![("STREAMPUMP_MAX_DEVICES", "0x10")],
            "STREAMPUMP_MAX_DEVICES",
        ),
        (
            vec!["--check", "--request-timeout", "500ms"],
            vec![],
            "--request-timeout",
        ),
    ] {
        let output = run_streampump(&args, &env);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains(named), "{args:?}: {message}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}
