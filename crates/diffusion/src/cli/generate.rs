//! `diffusion generate`: sample a trained network again without training it: a `diffusion train`
//! run folder (`--run`: its `config.toml` and the EMA weights its `[sample]` names) or any
//! PyTorch `state_dict` of the configured network (`--config` and `--weights`, e.g. weights a
//! PyTorch script saved), with the configured solver or another one (`--set sample.solver=...`).
//! With `--run` and no `--seed`/`--n` it draws the very samples `diffusion train` drew at the
//! end of that run. `--init` replays given initial states (another implementation's noise).
//! Writes `samples.npy`, `samples.png` (and `labels.npy`) into `--out` and prints the metric line
//! of `diffusion train` (`super::report`).

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A `diffusion train` output folder: its config.toml, and its ema_<decay>.safetensors for
    /// the decay `sample.ema` names (or the first tracked one; model.safetensors without EMA).
    #[arg(long, required_unless_present_all = ["config", "weights"])]
    pub run: Option<PathBuf>,
    /// Training configuration (TOML) of the network (instead of the run's config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Weights to sample: a PyTorch state_dict (safetensors) of the configured network
    /// (instead of the run's EMA weights).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Output folder for samples.npy, samples.png (and labels.npy).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of samples (default: the configuration's sample.n).
    #[arg(long)]
    pub n: Option<usize>,
    /// Seed of the initial noise (the Brownian path of stochastic solvers uses seed + 1);
    /// default: the one `diffusion train` samples with (the config's seed XOR 0x5a3b1e00).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Initial states x_T as an .npy array shaped [n, item...] at the scale of the grid's first
    /// time (e.g. sigma_max times standard normals for EDM), instead of seeded noise.
    #[arg(long, conflicts_with = "n")]
    pub init: Option<PathBuf>,
    /// Override the configuration's device (cpu, cuda, cuda:N, auto).
    #[arg(long)]
    pub device: Option<String>,
    /// Override any configuration value by its dotted key, as TOML (`--set sample.solver="euler"
    /// --set sample.steps=18`; repeatable, applied in order).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[cfg(not(feature = "tch"))]
pub fn run(_a: GenerateArgs) -> Result<()> {
    anyhow::bail!(
        "this `diffusion` was built without the `tch` feature, so it cannot sample networks; \
         build it with `cargo xtask run -- build -p diffusion` (the feature is on by default)"
    )
}

#[cfg(feature = "tch")]
pub fn run(a: GenerateArgs) -> Result<()> {
    use super::report;
    use anyhow::{bail, Context};
    use diffusion::io::read_npy_finite;
    use diffusion::models::tch::Tensor;
    use diffusion::models::train::{load_weights, TrainConfig, Trainer};
    use std::time::Instant;

    let config = match (&a.config, &a.run) {
        (Some(c), _) => c.clone(),
        (None, Some(r)) => r.join(diffusion::models::train::RUN_CONFIG),
        (None, None) => bail!("give --run, or --config with --weights"),
    };
    // Sampling reads the network, never the teacher run of a distilled one.
    let mut cfg = TrainConfig::load(&config)
        .with_context(|| format!("the configuration {}", config.display()))?
        .without_teacher();
    if let Some(d) = a.device {
        cfg.device = d;
    }
    cfg.set_all(&a.set)?;
    if let Some(n) = a.n {
        cfg.sample.n = n;
    }
    cfg.validate()?;
    super::heap::cpu_heap_settings(diffusion::models::parse_device(&cfg.device)?, "generate");
    let weights = match (&a.weights, &a.run) {
        (Some(w), _) => w.clone(),
        (None, Some(r)) => r.join(diffusion::models::train::weights_file(cfg.sample_decay())),
        (None, None) => bail!("give --weights with --config (or a --run folder)"),
    };
    let mut trainer = Trainer::new(cfg.clone())?;
    trainer.set_sampling_progress(true);
    trainer
        .load_state_dict(&load_weights(&weights)?)
        .with_context(|| format!("the weights {}", weights.display()))?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("creating --out {}", a.out.display()))?;
    let seed = a.seed.unwrap_or(cfg.sample_seed());
    let t0 = Instant::now();
    let (x, labels) = match &a.init {
        Some(path) => {
            let init = read_npy_finite(path).context("--init")?;
            let shape: Vec<i64> = init.shape().iter().map(|&d| d as i64).collect();
            let values: Vec<f64> = init.iter().copied().collect();
            let x_t = Tensor::from_slice(&values).reshape(&shape);
            trainer
                .sample_from(trainer.net(), &x_t, seed)
                .with_context(|| format!("--init {}", path.display()))?
        }
        None => trainer.sample_with(trainer.net(), cfg.sample.n, seed)?,
    };
    let sampled = report::Sampled {
        x,
        labels,
        secs: t0.elapsed().as_secs_f64(),
        source: weights.display().to_string(),
    };
    report::write_and_report(&trainer, &a.out, &sampled, None)
}
