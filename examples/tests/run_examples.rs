//! Runs every example binary with its defaults: each must exit 0 (its metric within its expected
//! bound) and print exactly one parseable metric line.

use std::process::Command;

fn run(exe: &str, name: &str) {
    let out = Command::new(exe).output().expect("example runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("example="))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{name} must print one metric line, printed: {stdout}"
    );
    let fields: Vec<(&str, &str)> = lines[0]
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    assert_eq!(fields[0], ("example", name));
    let value: f64 = fields[1].1.parse().expect("the metric is a number");
    assert!(value.is_finite());
}

#[test]
fn every_example_meets_its_expected_metric() {
    run(env!("CARGO_BIN_EXE_ddim"), "ddim");
    run(env!("CARGO_BIN_EXE_edm"), "edm");
    run(env!("CARGO_BIN_EXE_dpm_solver_pp"), "dpm_solver_pp");
    run(env!("CARGO_BIN_EXE_score_sde"), "score_sde");
}
