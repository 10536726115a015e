//! Helpers shared by the command-line tests: a tiny training configuration, a finished
//! program's outcome, and reading a value from a metric line.

#![allow(dead_code)] // each test file uses its own subset

/// A tiny EDM run of an MLP on the eight Gaussians (400 updates, a second or two).
pub const TINY: &str = r#"
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

/// [`TINY`] with its `[loss]` and `[sample]` sections replaced by `loss` and `sample` (each a
/// whole section, header included).
pub fn tiny_with(loss: &str, sample: &str) -> String {
    let head = &TINY[..TINY.find("[loss]").unwrap()];
    let train = &TINY[TINY.find("[train]").unwrap()..TINY.find("[sample]").unwrap()];
    format!("{head}{loss}\n{train}{sample}\n")
}

/// A finished program's success and what it printed (standard output, then standard error).
pub fn outcome(o: std::process::Output) -> (bool, String) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

/// The value of `key=` in a metric line of `text` (panics, showing `text`, when absent).
pub fn metric(text: &str, key: &str) -> f64 {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in:\n{text}"))
        .parse()
        .unwrap()
}
