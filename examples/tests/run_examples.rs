//! Runs every example binary: each must exit 0 (its metric and checks within their bounds) and
//! print exactly one parseable metric line. Most run with their defaults; a few slow ones run
//! with smaller (still meaningful) sizes given on the command line, noted next to them.

use std::process::Command;
use std::time::Instant;

fn run(exe: &str, name: &str, args: &[&str]) {
    let start = Instant::now();
    let out = Command::new(exe).args(args).output().expect("example runs");
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
    for (k, v) in &fields[2..] {
        if k.ends_with('<') || k.ends_with('>') || *k == "nfe" {
            v.parse::<f64>()
                .unwrap_or_else(|_| panic!("{name}: `{k}={v}` is not a number"));
        }
    }
    eprintln!("{name}: {:.2} s", start.elapsed().as_secs_f64());
}

macro_rules! example {
    ($name:literal $(, $arg:literal)*) => {
        run(env!(concat!("CARGO_BIN_EXE_", $name)), $name, &[$($arg),*])
    };
}

#[test]
fn every_example_meets_its_expected_metric() {
    example!("ddim");
    example!("edm");
    example!("dpm_solver_pp");
    example!("score_sde");
    example!("dpm_solver");
    example!("dpm_solver_adaptive");
    example!("unipc");
    example!("deis");
    example!("ipndm");
    example!("plms");
    example!("dpm2");
    example!("lms");
    example!("euler_ancestral");
    example!("dpmpp_sde");
    example!("dpmpp_2m_sde");
    example!("dpmpp_3m_sde");
    example!("thresholding");
    example!("cld");
    example!("psld");
    example!("pfgmpp");
    example!("ir_sde");
    example!("grad_tts");
    example!("mdm");
    example!("cosine_schedule");
    example!("zero_snr");
    example!("empirical_denoiser");
    example!("brownian_tree");
    example!("dpmpp_2s");
    example!("dpmpp_3m");
    example!("dpmpp_2s_ancestral");
    example!("sub_vp");
    example!("ve");
    example!("rectified_flow");
    example!("trigflow");
    example!("ddpm");
    example!("score_sde_pc");
    example!("edm_sde");
    example!("sa_solver");
    example!("er_sde");
    example!("restart");
    example!("gotta_go_fast");
    example!("reversible_heun");
    example!("inversion");
    example!("rk45");
    example!("res_multistep");
    example!("ab_cache");
    example!("dpm_solver_v3");
    example!("iia");
    example!("mrs");
    example!("ays");
    example!("gits");
    example!("fdm");
    example!("score_calibration");
    example!("sscs");
    example!("splitting_integrators");
    example!("stochastic_splitting");
    example!("models_ddpm");
    example!("models_iddpm");
    example!("models_edm");
    example!("models_vpred");
    example!("models_progressive_distillation");
    example!("models_flow_matching");
    example!("models_rectified_flow");
    example!("models_scm");
    example!("models_cfg");
    example!("models_score_calibration");
    example!("models_smd");
    example!("models_etsdm");
}
