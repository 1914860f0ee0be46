//! Running the `lossnav` binary from the integration tests: one copy of the boilerplate.
//! Each test crate uses a subset of these helpers, so unused ones are not warned about.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the binary with `args` from the repository root (where the shipped specs are).
pub fn lossnav(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lossnav"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

/// Runs the binary, requires success, and parses its standard output as JSON.
pub fn lossnav_json(args: &[&str]) -> serde_json::Value {
    let out = lossnav(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).expect("standard output is JSON")
}

/// The failure every bad input must produce: exit status 2, no panic, a one-line cause that
/// starts with `error: ` and mentions each of `fragments`.
pub fn assert_clean_failure(out: &Output, fragments: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit status; stderr: {stderr}");
    assert!(
        !stderr.contains("panicked"),
        "the binary panicked: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one-line cause expected, got {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for f in fragments {
        assert!(stderr.contains(f), "{stderr:?} does not mention {f:?}");
    }
}

/// The shipped specs (`problems/specs/*.json`), sorted.
pub fn shipped_specs() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("problems/specs");
    let mut specs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    specs.sort();
    specs
}

/// A fresh (removed if present) directory under the system's temporary directory, named for
/// the test and this process.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lossnav-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}
