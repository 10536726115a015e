//! `diffusion train` end to end on a tiny configuration: train, checkpoint, sample, report the
//! sliced W2; then resume with more updates; refuse to overwrite a run without `--resume`.

#![cfg(feature = "tch")]

use std::path::Path;
use std::process::Command;

const TINY: &str = r#"
seed = 1
[data]
toy = "8gaussians"
[model]
hidden = 48
depth = 2
embedding = { kind = "fourier", dim = 16, scale = 4.0 }
[loss]
kind = "edm"
sigma_data = 2.0
p_mean = 0.0
p_std = 1.4
[train]
steps = 400
batch_size = 128
lr = 3e-3
warmup_steps = 20
ema_decays = [0.95]
log_every = 10
checkpoint_every = 100
[sample]
solver = "heun"
grid = "karras:sigma_max=40"
steps = 12
n = 1000
"#;

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
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn metric(text: &str, key: &str) -> f64 {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in:\n{text}"))
        .parse()
        .unwrap()
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
