//! `diffusion train` end to end on a tiny configuration: train, checkpoint, sample, report the
//! sliced W2; then resume with more updates; refuse to overwrite a run without `--resume`.

#![cfg(feature = "tch")]

mod common;

use common::{metric, outcome, TINY};
use std::path::Path;
use std::process::Command;

fn train(config: &Path, out: &Path, extra: &[&str]) -> (bool, String) {
    train_env(config, out, extra, &[])
}

/// `diffusion train` with `env` added (and `GLIBC_TUNABLES` removed, so the heap settings are
/// the program's own choice).
fn train_env(config: &Path, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_diffusion"))
        .env_remove("GLIBC_TUNABLES")
        .envs(env.iter().copied())
        .arg("train")
        .arg("--config")
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    outcome(o)
}

#[test]
fn train_sample_resume() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, TINY).unwrap();
    let out = dir.path().join("run");
    let (ok, text) = train(&config, &out, &[]);
    assert!(ok, "{text}");
    // On the CPU it re-executed itself with the heap thresholds raised (on glibc).
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        assert!(
            text.contains(&format!(
                "GLIBC_TUNABLES={}",
                diffusion::models::host_malloc::MALLOC_TUNABLES
            )),
            "{text}"
        );
    }
    let sw = metric(&text, "sliced_w2");
    let floor = metric(&text, "sliced_w2_floor");
    // An untrained network (D = c_skip x) collapses every sample to the origin: sliced W2 about
    // 2; the trained one is within a few noise floors of the toy.
    assert!(sw < 0.5, "sliced_w2 {sw} (floor {floor})\n{text}");
    for f in [
        "checkpoint.safetensors",
        "metrics.csv",
        "model.safetensors",
        "ema_0.95.safetensors",
        "config.toml",
        "samples.npy",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let weights = diffusion::models::train::load_weights(&out.join("model.safetensors")).unwrap();
    assert!(weights.iter().any(|(n, _)| n == "blocks.1.weight"));
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.csv"))
            .unwrap()
            .lines()
            .count(),
        1 + 40
    );

    // Without --resume an existing run is not overwritten.
    let (ok, text) = train(&config, &out, &[]);
    assert!(!ok && text.contains("--resume"), "{text}");
    // With --resume it continues from update 400.
    let (ok, text) = train(&config, &out, &["--resume", "--steps", "450"]);
    assert!(ok, "{text}");
    assert!(text.contains("updates 400 -> 450"), "{text}");
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.csv"))
            .unwrap()
            .lines()
            .count(),
        1 + 45
    );
    // A damaged checkpoint is a clear error.
    let ck = out.join("checkpoint.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(&ck, &bytes[..bytes.len() / 2]).unwrap();
    // (With glibc's defaults asked for: no re-exec, and it says so.)
    let (ok, text) = train_env(
        &config,
        &out,
        &["--resume"],
        &[("DIFFUSION_GLIBC_DEFAULTS", "1")],
    );
    assert!(!ok && text.contains("truncated"), "{text}");
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        assert!(
            text.contains("train: glibc's default heap thresholds")
                && !text.contains("train: glibc heap settings"),
            "{text}"
        );
    }
}

/// The `diffusion` program with `args`: success and what it printed.
fn diffusion(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_diffusion"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap();
    outcome(o)
}

/// `diffusion generate` samples a run again without training (the very samples `train` drew,
/// by default), with another solver, from any state_dict with a config, or from given initial
/// states; bad initial states and weights of another network are clear errors. `diffusion train
/// --init-weights` starts a run from a state_dict.
#[test]
fn generate_resamples_runs_and_state_dicts() {
    use diffusion::io::{read_npy_dyn, write_npy};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    std::fs::write(&config, TINY.replace("steps = 400", "steps = 200")).unwrap();
    let run = dir.path().join("run");
    let (ok, text) = train(&config, &run, &[]);
    assert!(ok, "{text}");
    let trained = metric(&text, "sliced_w2");

    let again = dir.path().join("again");
    let (ok, text) = diffusion(&[&"generate", &"--run", &run, &"--out", &again]);
    assert!(ok, "{text}");
    assert_eq!(metric(&text, "sliced_w2"), trained, "{text}");
    assert_eq!(
        std::fs::read(run.join("samples.npy")).unwrap(),
        std::fs::read(again.join("samples.npy")).unwrap()
    );
    assert!(again.join("samples.png").exists());

    let euler = dir.path().join("euler");
    let (ok, text) = diffusion(&[
        &"generate",
        &"--run",
        &run,
        &"--out",
        &euler,
        &"--n",
        &"300",
        &"--set",
        &"sample.solver=\"euler\"",
    ]);
    assert!(ok && text.contains("sample: euler with 12 steps"), "{text}");
    assert_eq!(
        read_npy_dyn(&euler.join("samples.npy")).unwrap().shape(),
        &[300, 2]
    );

    // Any state_dict with a config; initial states from a file.
    let init = dir.path().join("init.npy");
    let x_t = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[5, 2]), |i| {
        40.0 * (i[0] as f64 - 2.0) / 2.0 + i[1] as f64
    });
    write_npy(&init, &x_t, false).unwrap();
    let from = dir.path().join("from");
    let (ok, text) = diffusion(&[
        &"generate",
        &"--config",
        &config,
        &"--weights",
        &run.join("model.safetensors"),
        &"--init",
        &init,
        &"--out",
        &from,
    ]);
    assert!(ok, "{text}");
    let x = read_npy_dyn(&from.join("samples.npy")).unwrap();
    assert_eq!(x.shape(), &[5, 2]);
    assert!(x.iter().all(|v| v.is_finite() && v.abs() < 10.0), "{x:?}");

    // Initial states of another dimension, weights of another network.
    let bad = dir.path().join("bad.npy");
    write_npy(
        &bad,
        &ndarray::ArrayD::zeros(ndarray::IxDyn(&[4, 3])),
        false,
    )
    .unwrap();
    let (ok, text) = diffusion(&[
        &"generate",
        &"--run",
        &run,
        &"--init",
        &bad,
        &"--out",
        &from,
    ]);
    assert!(!ok && text.contains("initial states"), "{text}");
    let nan = dir.path().join("nan.npy");
    let mut x_nan = x_t.clone();
    x_nan[[1, 0]] = f64::NAN;
    write_npy(&nan, &x_nan, false).unwrap();
    let (ok, text) = diffusion(&[
        &"generate",
        &"--run",
        &run,
        &"--init",
        &nan,
        &"--out",
        &from,
    ]);
    assert!(!ok && text.contains("NaN or infinite"), "{text}");
    let (ok, text) = diffusion(&[
        &"generate",
        &"--run",
        &run,
        &"--set",
        &"model.hidden=32",
        &"--out",
        &from,
    ]);
    assert!(!ok && text.contains("ema_0.95.safetensors"), "{text}");

    // Training from a state_dict: at a learning rate of 1e-12 the weights stay where they
    // started, the EMA's file included.
    let tuned = dir.path().join("tuned");
    let start = run.join("ema_0.95.safetensors");
    let (ok, text) = train(
        &config,
        &tuned,
        &[
            "--init-weights",
            start.to_str().unwrap(),
            "--steps",
            "2",
            "--set",
            "train.lr=1e-12",
        ],
    );
    assert!(ok, "{text}");
    let load = diffusion::models::train::load_weights;
    let want = load(&start).unwrap();
    for file in ["model.safetensors", "ema_0.95.safetensors"] {
        let got = load(&tuned.join(file)).unwrap();
        assert_eq!(got.len(), want.len());
        for ((n, g), (m, w)) in got.iter().zip(&want) {
            assert_eq!(n, m);
            let d = (g - w).abs().max().double_value(&[]);
            assert!(d < 1e-9, "{file} {n}: moved by {d}");
        }
    }
    let (ok, text) = train(&config, &tuned, &["--resume", "--init-weights", "x"]);
    assert!(!ok && text.contains("--init-weights"), "{text}");
}
