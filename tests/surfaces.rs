//! The command line's everyday surfaces: sweeps that stream and never lose work (interrupt,
//! `--resume`, thread counts), documents that lead with their verdict, specs from standard
//! input, `--at LO:HI:N`, grid values as the user wrote them, any field of a spec swept.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_clean_failure, lossnav, lossnav_json, temp_dir};

const FIG1: &str = "problems/specs/figure1-double-well.json";
/// A grid that takes several seconds on two cores (10,000 solves of Figure 1, 5.5 s on two
/// quiet cores).
const LONG: [&str; 4] = ["--set", "gamma=0:2:5000", "--set", "k=1,2"];

fn sweep_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["sweep", FIG1];
    args.extend(LONG);
    args.extend_from_slice(extra);
    args
}

/// Starts the binary, waits `after`, sends SIGINT and returns its output.
fn interrupted(args: &[&str], after: Duration) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_lossnav"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait_with_output().unwrap()
}

#[test]
fn an_interrupted_sweep_keeps_every_finished_point_and_resume_completes_it() {
    let dir = temp_dir("sweep-resume");
    std::fs::create_dir_all(&dir).unwrap();
    let whole = dir.join("whole.jsonl");
    let out = lossnav(&sweep_args(&["--jobs", "2", "-o", whole.to_str().unwrap()]));
    assert!(out.status.success(), "{out:?}");
    let reference = std::fs::read_to_string(&whole).unwrap();
    assert_eq!(reference.lines().count(), 10_000);
    // One thread gives the same bytes as two (on a part of the grid).
    let part = ["sweep", FIG1, "--set", "gamma=0:2:1000", "--set", "k=1,2"];
    let one = lossnav(&[&part[..], &["--jobs", "1"]].concat());
    let two = lossnav(&[&part[..], &["--jobs", "2"]].concat());
    assert!(one.status.success() && two.status.success());
    assert_eq!(one.stdout, two.stdout);

    // Interrupted after 3 s: nothing at the target, every finished point in the journal.
    let target = dir.join("sweep.jsonl");
    let journal = dir.join("sweep.jsonl.partial");
    let out = interrupted(
        &sweep_args(&["--jobs", "2", "-o", target.to_str().unwrap()]),
        Duration::from_secs(2),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(!target.exists(), "no half result at the target");
    let kept = std::fs::read_to_string(&journal).unwrap();
    let rows: Vec<&str> = kept.lines().skip(1).collect();
    assert!(
        !rows.is_empty() && rows.len() < 10_000,
        "{} rows",
        rows.len()
    );
    // Each kept row is the uninterrupted run's row for that point, byte for byte.
    let reference_rows: Vec<&str> = reference.lines().collect();
    for row in &rows {
        let v: serde_json::Value = serde_json::from_str(row).unwrap();
        let i = v["index"].as_u64().unwrap() as usize;
        assert_eq!(*row, reference_rows[i]);
    }
    // Without --resume the journal is not overwritten.
    let out = lossnav(&sweep_args(&["-o", target.to_str().unwrap()]));
    assert_clean_failure(&out, &["--resume"]);
    // A different sweep cannot continue it.
    let mut other = vec!["sweep", FIG1, "--set", "gamma=0:2:5000", "--set", "k=1,3"];
    other.extend(["--resume", "-o", target.to_str().unwrap()]);
    assert_clean_failure(&lossnav(&other), &["another sweep", "axes"]);
    // Interrupted again while resuming (unless what was left took under a second on this
    // machine), then resumed to the end with one thread.
    let out = interrupted(
        &sweep_args(&["--jobs", "2", "--resume", "-o", target.to_str().unwrap()]),
        Duration::from_millis(700),
    );
    match out.status.code() {
        Some(130) => {
            let again = std::fs::read_to_string(&journal).unwrap().lines().count() - 1;
            assert!(again >= rows.len(), "the journal only grows");
            let out = lossnav(&sweep_args(&[
                "--jobs",
                "1",
                "--resume",
                "-o",
                target.to_str().unwrap(),
            ]));
            assert!(out.status.success(), "{out:?}");
        }
        Some(0) => {}
        other => panic!("exit status {other:?}: {out:?}"),
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), reference);
    assert!(!journal.exists(), "a finished sweep leaves no journal");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_interrupted_sweep_to_standard_output_has_printed_every_finished_point_in_order() {
    let reference = lossnav(&sweep_args(&["--jobs", "2"]));
    assert!(reference.status.success());
    let out = interrupted(&sweep_args(&["--jobs", "2"]), Duration::from_secs(2));
    assert_eq!(out.status.code(), Some(130));
    let printed = String::from_utf8(out.stdout).unwrap();
    let n = printed.lines().count();
    assert!(n > 0 && n < 10_000, "{n} lines");
    // A prefix of the whole sweep: in grid order, nothing finished left out.
    assert!(reference.stdout.starts_with(printed.as_bytes()));
}

#[test]
fn a_sweep_streams_its_rows_as_they_finish() {
    // The first rows arrive long before the sweep ends.
    let mut child = Command::new(env!("CARGO_BIN_EXE_lossnav"))
        .args(sweep_args(&["--jobs", "2"]))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(
        child.try_wait().unwrap().is_none(),
        "the sweep still runs when its first row is out"
    );
    let _ = child.kill();
    let _ = child.wait();
    let row: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(row["index"], 0);
}

#[test]
fn grid_values_are_the_decimals_the_user_meant_and_any_field_can_be_swept() {
    let out = lossnav(&[
        "sweep",
        "problems/specs/figure2-anisotropic-2d.json",
        "--set",
        "gamma=0.05:0.85:17",
        "--set",
        "loss.quadratic.curvatures[1]=2,4",
        "--at",
        "0:1:3",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\"gamma\":0.45,"), "{text}");
    assert!(!text.contains("0.44999999999"), "{text}");
    let rows: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 34);
    // The swept curvature changes the solution; each row samples it at 0, 0.5, 1.
    assert_ne!(rows[0]["cost"], rows[1]["cost"]);
    assert_eq!(rows[0]["at"]["t"], serde_json::json!([0.0, 0.5, 1.0]));
    assert_eq!(rows[0]["at"]["theta"].as_array().unwrap().len(), 3);
    // Each row leads with its point and verdict.
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(keys[..4], ["index", "params", "solved", "status"]);
    // A path that is not a number of the spec is refused before any solve.
    let out = lossnav(&[
        "sweep",
        "problems/specs/figure3-anisotropic-metric.json",
        "--set",
        "metric.diag=1,2",
    ]);
    assert_clean_failure(&out, &["metric.diag", "a list"]);
}

#[test]
fn documents_lead_with_their_verdict() {
    let out = lossnav(&["solve", FIG1, "--summary"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let second = text.lines().nth(1).unwrap();
    assert!(second.trim_start().starts_with("\"status\": "), "{text}");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys[..3], ["status", "cost", "optimality"]);
    for args in [
        vec!["solve", FIG1, "--local"],
        vec!["simulate", FIG1, "--rule", "gradient-flow"],
        vec!["rule", "problems/specs/figure3-rotation.json"],
    ] {
        let doc = lossnav_json(&args);
        let first = doc.as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(first, "status", "{args:?}");
    }
    // simulate --summary: a screenful, without the per-step arrays.
    let out = lossnav(&[
        "simulate",
        FIG1,
        "--rule",
        "gradient-flow",
        "--summary",
        "--at",
        "0:2:3",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() < 30, "{text}");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(doc.get("theta").is_none() && doc.get("theta_end").is_some());
    assert_eq!(doc["at"]["t"], serde_json::json!([0.0, 1.0, 2.0]));
}

#[test]
fn a_spec_is_read_from_standard_input_and_at_takes_ranges() {
    let spec = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIG1)).unwrap();
    let run = |args: &[&str], input: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lossnav"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let piped = run(&["solve", "-", "--local", "--at", "0:4:5"], &spec);
    assert!(piped.status.success(), "{piped:?}");
    let from_file = lossnav(&["solve", FIG1, "--local", "--at", "0,1,2,3,4"]);
    assert_eq!(piped.stdout, from_file.stdout);
    for command in [
        vec!["validate", "-"],
        vec!["rule", "-"],
        vec!["simulate", "-", "--rule", "gradient-flow", "--summary"],
        vec!["sweep", "-", "--set", "gamma=0.1,0.2"],
    ] {
        let out = run(&command, &spec);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // `rule` refuses this spec (not linear–quadratic), naming standard input.
        if command[0] == "rule" {
            assert!(stderr.contains("standard input"), "{stderr}");
        } else {
            assert!(out.status.success(), "{command:?}: {stderr}");
        }
    }
    let out = run(&["solve", "-"], b"");
    assert_clean_failure(&out, &["standard input", "empty"]);
    let out = run(&["solve", "-"], b"{\"loss\": ");
    assert_clean_failure(&out, &["standard input"]);
    // `fit -` reads the observations from standard input: the CSV `solve -o F.csv` writes
    // gives the same fit as the file; the spec and the observations cannot both be `-`.
    let dir = temp_dir("fit-stdin");
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("obs.csv");
    let out = lossnav(&["solve", FIG1, "--local", "-o", csv.to_str().unwrap()]);
    assert!(out.status.success());
    let fit_args = ["--spec", FIG1, "--free", "gamma", "--starts", "1"];
    let piped = run(
        &[&["fit", "-"][..], &fit_args[..]].concat(),
        &std::fs::read(&csv).unwrap(),
    );
    assert!(piped.status.success(), "{piped:?}");
    let from_file = lossnav(&[&["fit", csv.to_str().unwrap()][..], &fit_args[..]].concat());
    assert_eq!(piped.stdout, from_file.stdout);
    // Refused before reading: nothing is written to its input.
    let out = run(&["fit", "-", "--spec", "-", "--free", "gamma"], b"");
    assert_clean_failure(&out, &["both", "standard input"]);
    let out = run(&[&["fit", "-"][..], &fit_args[..]].concat(), b"");
    assert_clean_failure(&out, &["observations", "standard input", "empty"]);
    std::fs::remove_dir_all(&dir).unwrap();
    // A malformed range is a usage error (clap's, with its hint line).
    let out = lossnav(&["solve", FIG1, "--at", "0:4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LO:HI:N"));
}

#[test]
fn ill_posed_problems_end_with_their_cause_and_a_remedy() {
    let dir = temp_dir("ill-posed");
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "metric",
            r#"{"loss": {"expr": "(x1-2)^2"}, "metric": {"expr": [["1 - x1^2"]]},
                "theta0": [0.0], "horizon": 4, "end": "free", "gamma": 0.1}"#,
            ["the metric", "not positive definite", "1 + x^2 rather than"],
        ),
        (
            "log",
            r#"{"loss": {"expr": "ln(x1)"}, "theta0": [1.0], "horizon": 4, "end": "free",
                "gamma": 0.1}"#,
            ["the loss is not finite", "θ = (-", "reparametrise"],
        ),
        (
            "saddle",
            r#"{"loss": {"quadratic": {"curvatures": [1.0, -1.0], "minimum": [0.0, 0.0]}},
                "theta0": [1.0, 0.5], "horizon": "infinite", "end": "equilibrium",
                "gamma": 0.1}"#,
            ["falls without bound", "no minimum", "confining term"],
        ),
        (
            "unbounded",
            r#"{"loss": {"expr": "x1^2 - x2^2"}, "theta0": [1.0, 0.5], "horizon": "infinite",
                "end": "equilibrium", "gamma": 0.1}"#,
            ["falls without bound", "no minimum", "confining term"],
        ),
    ];
    for (name, spec, fragments) in cases {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, spec).unwrap();
        let path = path.to_str().unwrap();
        let out = lossnav(&["solve", path, "--max-seconds", "60"]);
        assert_clean_failure(&out, &fragments);
        // validate reads the spec as valid and warns with the same cause.
        let out = lossnav(&["validate", path]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("warning"), "{name}: {text}");
        assert!(text.contains(fragments[0]), "{name}: {text}");
    }
    // Well-posed problems draw no warning: a quadratic whose drift carries the flow uphill (it
    // solves to a certified minimum), a linear loss with a fixed end, and the shipped specs.
    for (name, spec) in [
        (
            "uphill-drift",
            r#"{"loss": {"quadratic": {"curvatures": [1], "minimum": [0]}},
                "drift": {"linear": [[2.0]], "offset": [0]}, "theta0": [1],
                "horizon": "infinite", "end": "equilibrium", "gamma": 0.5}"#,
        ),
        (
            "linear-fixed",
            r#"{"loss": {"expr": "x1"}, "theta0": [0], "horizon": 4, "end": {"fixed": [1]}}"#,
        ),
    ] {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, spec).unwrap();
        let out = lossnav(&["validate", path.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && !text.contains("warning"),
            "{name}: {text}"
        );
    }
    // The shipped specs draw no warning.
    for spec in common::shipped_specs() {
        let out = lossnav(&["validate", spec.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("warning"), "{}: {text}", spec.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rule_lists_every_reason_a_spec_is_not_linear_quadratic() {
    // Figure 1: a finite horizon and a double-well loss (two reasons); the Fisher spec adds a
    // θ-dependent metric and a nonlinear drift.
    let out = lossnav(&["rule", FIG1]);
    assert_clean_failure(&out, &["infinite-horizon", "not a quadratic"]);
    let out = lossnav(&["rule", "problems/specs/fisher-metric.json"]);
    assert_clean_failure(&out, &["not a quadratic", "depends on θ", "is not affine"]);
}

#[test]
fn a_sweep_to_a_device_or_pipe_writes_through_without_a_journal() {
    let out = lossnav(&["sweep", FIG1, "--set", "gamma=0:2:3", "-o", "/dev/stdout"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    let out = lossnav(&[
        "sweep",
        FIG1,
        "--set",
        "gamma=0:2:3",
        "-o",
        "/dev/stdout",
        "--resume",
    ]);
    assert_clean_failure(&out, &["--resume", "device or pipe"]);
    // A named pipe: the reader gets every row (checking it must not consume the reader).
    let dir = temp_dir("sweep-fifo");
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("rows");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = lossnav(&[
        "sweep",
        FIG1,
        "--set",
        "gamma=0:2:30",
        "-o",
        fifo.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(reader.join().unwrap().lines().count(), 30);
    let _ = std::fs::remove_dir_all(&dir);
}
