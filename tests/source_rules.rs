//! Rules about the relay's source that the compiler cannot check.
//!
//! The MIPS builds pass `-Z fmt-debug=none`, which turns every `{:?}` into nothing (see
//! `src/text/quoted.rs`): a `{:?}` in a log line or an answer would print fine in every test on
//! this machine and leave a blank on a router. So no `{:?}` may appear outside the tests.

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, in every folder.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).expect("list a source folder") {
        let path = entry.expect("list a source folder").path();
        if path.is_dir() {
            found.extend(rust_files(&path));
        } else if path.extension().and_then(|e| e.to_str()) == Some("rs") {
            found.push(path);
        }
    }
    found
}

/// The code of `text` before its unit tests (`#[cfg(test)]` at the start of a line; every
/// module keeps its tests at the end).
fn without_tests(text: &str) -> &str {
    text.find("\n#[cfg(test)]").map_or(text, |end| &text[..end])
}

/// Every line of code (comments left out) under `src/` for which `offends` holds, as
/// `file:line: code`; `outside_tests` looks only at the code before each file's unit tests.
fn offending_lines(outside_tests: bool, offends: impl Fn(&Path, &str) -> bool) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = rust_files(&src);
    assert!(files.len() > 30, "only {} source files found", files.len());
    let mut found = Vec::new();
    for path in files {
        let text = fs::read_to_string(&path).expect("read a source file");
        let checked = if outside_tests {
            without_tests(&text)
        } else {
            &text
        };
        for (number, line) in checked.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if offends(&path, code) {
                found.push(format!(
                    "{}:{}: {}",
                    path.display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    found
}

#[test]
fn nothing_outside_the_tests_is_formatted_with_debug() {
    let offenders = offending_lines(true, |_, code| {
        code.contains(":?}") || code.contains(":#?}")
    });
    assert!(
        offenders.is_empty(),
        "{{:?}} prints nothing in the MIPS builds (-Z fmt-debug=none); use Display, \
         decimal::Seconds or quoted::Quoted:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn every_unsafe_block_lives_in_sys() {
    let outside = offending_lines(false, |path, code| {
        code.contains("unsafe") && !path.ends_with("sys.rs")
    });
    assert!(
        outside.is_empty(),
        "unsafe code belongs in src/sys.rs, behind a safe function with a SAFETY comment:\n{}",
        outside.join("\n")
    );
}

#[test]
fn only_main_ends_the_process() {
    let outside = offending_lines(false, |path, code| {
        code.contains("process::exit") && !path.ends_with("main.rs")
    });
    assert!(
        outside.is_empty(),
        "only main may end the process; a request must never do it:\n{}",
        outside.join("\n")
    );
}

#[test]
fn the_rule_sees_debug_formatting_where_it_is() {
    let sample = "fn f() { log::info!(\"{x:?}\"); }\n#[cfg(test)]\nmod tests { \"{y:?}\" }\n";
    let code = without_tests(sample);
    assert!(code.contains(":?}"));
    assert!(!code.contains("{y:?}"));
}
