//! The command line: help, version, and refusing bad settings before starting.

use std::process::Command;

fn streampump(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_streampump"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run streampump")
}

#[test]
fn help_lists_every_option_with_its_default_and_variable() {
    let output = streampump(&["--help"], &[]);
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
        ("--max-upload-bytes", "16777216"),
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
    let output = streampump(&["--version"], &[]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("streampump {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_settings_stop_the_start_with_a_message() {
    let output = streampump(&["--max-viewers", "lots"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("--max-viewers") && message.contains("whole number"),
        "{message}"
    );

    let output = streampump(&[], &[("STREAMPUMP_OFFLINE_AFTER", "soon")]);
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("STREAMPUMP_OFFLINE_AFTER"), "{message}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = streampump(&["--listen", &address], &[]);
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains(&format!("cannot listen on {address}")),
        "{message}"
    );
}
