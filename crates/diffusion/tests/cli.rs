//! The `diffusion` program as a black box: sampling an analytic target end to end, evaluating
//! the samples, and clear errors with a non-zero exit on bad input.

use std::path::Path;
use std::process::{Command, Output};

fn diffusion(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diffusion"))
        .args(args)
        .output()
        .expect("the program runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const GMM: &str = r#"{"weights": [0.4, 0.6], "means": [[-2.0, 0.0], [2.0, 1.0]],
  "covariances": [[[0.3, 0.1], [0.1, 0.2]], [[0.2, 0.0], [0.0, 0.4]]]}"#;

fn write_target(dir: &Path) -> String {
    let p = dir.join("gmm.json");
    std::fs::write(&p, GMM).unwrap();
    p.to_string_lossy().into_owned()
}

/// `diffusion eval` of the samples in `out`: within three noise floors of the target (plus
/// 0.05) in sliced W2.
fn assert_near_target(out: &Path, target: &str) {
    let e = diffusion(&[
        "eval",
        "--samples",
        out.to_str().unwrap(),
        "--target",
        target,
    ]);
    assert!(e.status.success(), "{}", text(&e));
    let line = String::from_utf8_lossy(&e.stdout).to_string();
    let get = |k: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        get("sliced_w2") < 3.0 * get("sliced_w2_floor") + 0.05,
        "{}: {line}",
        out.display()
    );
}

#[test]
fn sample_then_eval_reaches_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = write_target(dir.path());
    let out = dir.path().join("x0.npy");
    let traj = dir.path().join("traj.npy");
    let o = diffusion(&[
        "sample",
        "--target",
        &target,
        "--schedule",
        "vp-linear",
        "--solver",
        "dpmpp-2m",
        "--grid",
        "karras:rho=7",
        "--steps",
        "30",
        "--n",
        "3000",
        "--seed",
        "1",
        "--out",
        out.to_str().unwrap(),
        "--trajectory",
        traj.to_str().unwrap(),
        "--nfe-report",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("nfe=30"), "{}", text(&o));
    let x = diffusion::io::read_npy_2d(&out).unwrap();
    assert_eq!(x.dim(), (3000, 2));
    assert!(std::fs::metadata(&traj).unwrap().len() > 31 * 3000 * 2 * 8);
    // 30 DPM-Solver++(2M) steps land within a few noise floors of the truth; a broken sampler
    // (e.g. a sign error) is off by the distance between the modes (about 4).
    assert_near_target(&out, &target);
    // The same seed gives the same samples.
    let out2 = dir.path().join("x0b.npy");
    let o2 = diffusion(&[
        "sample",
        "--target",
        &target,
        "--solver",
        "dpmpp-2m",
        "--steps",
        "30",
        "--n",
        "3000",
        "--seed",
        "1",
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert!(o2.status.success());
    assert_eq!(diffusion::io::read_npy_2d(&out2).unwrap(), x);
}

#[test]
fn every_noise_kind_drives_an_sde_solver_to_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = write_target(dir.path());
    let mut outs = Vec::new();
    for noise in [
        "tree",
        "tree-fast",
        "tree-chacha",
        "independent",
        "independent-fast",
        "independent-chacha",
    ] {
        let out = dir.path().join(format!("{noise}.npy"));
        let o = diffusion(&[
            "sample",
            "--target",
            &target,
            "--solver",
            "dpmpp-2m-sde",
            "--steps",
            "40",
            "--n",
            "3000",
            "--seed",
            "3",
            "--noise",
            noise,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{noise}: {}", text(&o));
        assert_near_target(&out, &target);
        outs.push(diffusion::io::read_npy_2d(&out).unwrap());
    }
    // `tree-fast` / `independent-fast` are other names of the defaults: the same samples.
    assert_eq!(outs[0], outs[1]);
    assert_eq!(outs[3], outs[4]);
    // Four streams (fast and ChaCha trees, fast and ChaCha increments), four sample sets.
    let distinct = [&outs[0], &outs[2], &outs[3], &outs[5]];
    for i in 0..distinct.len() {
        for j in 0..i {
            assert_ne!(distinct[i], distinct[j]);
        }
    }
    let o = diffusion(&[
        "sample",
        "--target",
        &target,
        "--solver",
        "dpmpp-2m-sde",
        "--noise",
        "pink",
        "--out",
        dir.path().join("x.npy").to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("unknown --noise `pink`"),
        "{}",
        text(&o)
    );
}

#[test]
fn bad_input_is_a_clear_error_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let target = write_target(dir.path());
    let out = dir.path().join("x.npy");
    let out = out.to_str().unwrap();
    let bad_json = dir.path().join("bad.json");
    std::fs::write(&bad_json, "{\"weights\": [1.0]").unwrap();
    let init3 = dir.path().join("init3.npy");
    diffusion::io::write_npy(
        &init3,
        &ndarray::Array2::<f64>::zeros((4, 3)).into_dyn(),
        false,
    )
    .unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "sample", "--target", &target, "--solver", "rk99", "--out", out,
            ],
            "unknown solver `rk99`",
        ),
        (
            vec![
                "sample",
                "--target",
                bad_json.to_str().unwrap(),
                "--out",
                out,
            ],
            "Gaussian-mixture JSON",
        ),
        (
            vec![
                "sample",
                "--target",
                &target,
                "--init",
                init3.to_str().unwrap(),
                "--out",
                out,
            ],
            "3 columns",
        ),
        (
            vec!["sample", "--target", &target, "--steps", "0", "--out", out],
            "steps",
        ),
        (
            vec![
                "sample",
                "--target",
                &target,
                "--grid",
                "karras:rho=-1",
                "--out",
                out,
            ],
            "rho",
        ),
        (
            vec![
                "sample",
                "--target",
                &target,
                "--schedule",
                "vp-linear:beta_max=0.01",
                "--out",
                out,
            ],
            "beta_min",
        ),
        (
            vec![
                "sample",
                "--target",
                &target,
                "--solver",
                "ddim:eta=-1",
                "--out",
                out,
            ],
            "eta",
        ),
        (
            vec![
                "sample", "--target", &target, "--grid", "wiggly", "--out", out,
            ],
            "unknown grid",
        ),
        (
            vec!["eval", "--samples", "missing.npy", "--target", &target],
            "missing.npy",
        ),
    ];
    for (args, needle) in cases {
        let o = diffusion(&args);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(
            text(&o).contains(needle),
            "{args:?}: expected `{needle}` in: {}",
            text(&o)
        );
    }
    assert!(
        !Path::new(out).exists(),
        "a failed run leaves no output file"
    );
}

#[test]
fn listings_name_every_solver_and_method() {
    let o = diffusion(&["solvers"]);
    assert!(o.status.success());
    let t = text(&o);
    for name in [
        "euler",
        "heun",
        "dpmpp-2m",
        "unipc",
        "sa-solver",
        "karras",
        "vp-linear",
    ] {
        assert!(t.contains(name), "`diffusion solvers` lacks {name}");
    }
    let m = diffusion(&["methods"]);
    assert!(m.status.success() && text(&m).contains("| method | paper |"));
}
