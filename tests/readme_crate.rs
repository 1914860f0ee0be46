//! The README's Rust example, built as a user builds it: a crate of its own whose
//! `Cargo.toml` holds only the dependency line the README shows (the path pointed at this
//! checkout), and whose `main` is the README's code block. The doc test of the same block runs
//! inside lossnav, where its dependencies are lossnav's own; this one fails when the example
//! needs something a user's crate does not have (a macro from a crate the user has not added,
//! a name that is not exported).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The first fenced block with `lang` after the heading `heading`.
fn block(readme: &str, heading: &str, lang: &str) -> String {
    let section = &readme[readme
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"))..];
    let open = format!("```{lang}\n");
    let start = section.find(&open).expect("a code block") + open.len();
    let end = start + section[start..].find("```").expect("a closed code block");
    section[start..end].to_string()
}

#[test]
fn readme_example_builds_and_runs_as_an_external_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    // What the README tells the user to write in Cargo.toml, pointed at this checkout.
    let deps = block(&readme, "## Depending on lossnav", "toml");
    assert!(deps.contains("path = \"../lossnav\""), "{deps}");
    let deps = deps.replace("../lossnav", &root.display().to_string());
    // The README's code, as `main` (hidden `# ` lines are the doc test's scaffolding).
    let code: String = block(&readme, "## A custom landscape in Rust", "rust")
        .lines()
        .filter(|l| !l.starts_with("# "))
        .map(|l| format!("    {l}\n"))
        .collect();
    let dir = std::env::temp_dir().join(format!("lossnav-readme-crate-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src")).unwrap();
    // `[workspace]` keeps the crate out of any enclosing workspace; the release profile is
    // lossnav's own so that the build reuses what the test build compiled (a user's crate
    // without it simply compiles its dependencies once).
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"readme-user\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             {deps}\n[workspace]\n\n[profile.release]\ndebug = \"line-tables-only\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        format!("fn main() -> Result<(), Box<dyn std::error::Error>> {{\n{code}    Ok(())\n}}\n"),
    )
    .unwrap();
    // The versions this checkout was tested with, and no registry access.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let target: PathBuf = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .args([
            "run",
            "--release",
            "--offline",
            "--quiet",
            "--manifest-path",
        ])
        .arg(dir.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(root)
        .output()
        .expect("cargo runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the README example does not build or run as an external crate:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the example prints: the certificate, the local solve and the spec's problem.
    assert!(stdout.contains("strict local minimum"), "{stdout}");
    assert!(stdout.contains("local solve: J = "), "{stdout}");
    assert!(stdout.contains("figure-1 double well"), "{stdout}");
}
