//! `diffusion train`: train a network (MLP, U-Net, DiT) on a 2-D toy or Fashion-MNIST from a
//! TOML configuration, then sample it with a registry solver through `TchDenoiser` and print its
//! sliced W2 to held-out data next to the noise floor (the distance between two data sets of the
//! same size): exact samples of the toy, or the Fashion-MNIST test images (as 784-D vectors).
//!
//! Writes into `--out`: `checkpoint.safetensors` (exact resume with `--resume`),
//! `metrics.csv` or `metrics.jsonl`, `model.safetensors` and `ema_<decay>.safetensors` (plain
//! PyTorch `state_dict`s), `config.toml` (the configuration used), the samples and their picture
//! (`super::report`) and, with `train.sample_every`, `samples/step_<k>.png` during training.
//! `diffusion generate` samples such a run again (or any `state_dict`) without training.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training configuration (TOML), e.g. configs/toy2d-edm.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Output folder (checkpoint, metrics, weights, samples).
    #[arg(long)]
    pub out: PathBuf,
    /// Continue from <out>/checkpoint.safetensors (exactly where it stopped).
    #[arg(long)]
    pub resume: bool,
    /// Start from these weights instead of the seeded initialisation: a PyTorch `state_dict`
    /// (safetensors) of the configured network, e.g. another run's `ema_<decay>.safetensors`;
    /// every EMA average starts at them (not with --resume).
    #[arg(long, conflicts_with = "resume")]
    pub init_weights: Option<PathBuf>,
    /// Override the configuration's device (cpu, cuda, cuda:N, auto).
    #[arg(long)]
    pub device: Option<String>,
    /// Override the configuration's total number of updates (train.steps).
    #[arg(long)]
    pub steps: Option<u64>,
    /// Override the batch size (train.batch_size).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Override any value by its dotted key, as TOML: `--set train.lr=1e-3 --set
    /// data.fmnist.limit=2000 --set model.channels=[16,32]` (repeatable; applied in order, after
    /// the other overrides).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[cfg(not(feature = "tch"))]
pub fn run(_a: TrainArgs) -> Result<()> {
    anyhow::bail!(
        "this `diffusion` was built without the `tch` feature, so it cannot train networks; \
         build it with `cargo xtask run -- build -p diffusion` (the feature is on by default)"
    )
}

#[cfg(feature = "tch")]
pub fn run(a: TrainArgs) -> Result<()> {
    use super::report;
    use anyhow::{bail, Context};
    use diffusion::models::train::{
        load_weights, save_run_weights, MetricsLog, RunOptions, TrainConfig, Trainer, RUN_CONFIG,
    };
    use std::time::Instant;

    let mut cfg = TrainConfig::load(&a.config)?;
    if let Some(d) = a.device {
        cfg.device = d;
    }
    if let Some(s) = a.steps {
        cfg.train.steps = s;
    }
    if let Some(b) = a.batch_size {
        cfg.train.batch_size = b;
    }
    cfg.set_all(&a.set)?;
    cfg.absolutize_teacher()?;
    cfg.validate()?;
    super::heap::cpu_heap_settings(diffusion::models::parse_device(&cfg.device)?, "train");
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("creating --out {}", a.out.display()))?;
    let ck = a.out.join("checkpoint.safetensors");
    let mut trainer = if a.resume {
        if !ck.exists() {
            bail!("--resume: there is no {} to continue", ck.display());
        }
        Trainer::resume(cfg.clone(), &ck)?
    } else {
        if ck.exists() {
            bail!(
                "{} exists: pass --resume to continue that run, or choose another --out",
                ck.display()
            );
        }
        let mut t = Trainer::new(cfg.clone())?;
        if let Some(w) = &a.init_weights {
            t.load_state_dict(&load_weights(w)?)
                .with_context(|| format!("--init-weights {}", w.display()))?;
        }
        t
    };
    std::fs::write(a.out.join(RUN_CONFIG), cfg.to_toml()?)?;
    let start = trainer.step();
    let format = cfg.train.log_format;
    let log_path = a.out.join(format!("metrics.{}", format.extension()));
    let mut log = MetricsLog::open(&log_path, format, a.resume.then_some(start))?;
    let n_params: i64 = trainer
        .named_variables()
        .iter()
        .map(|(_, t)| t.numel() as i64)
        .sum();
    println!(
        "train: {} on {} with a {} of {n_params} parameters on {:?} ({:?}); updates {start} -> {} at batch {}",
        trainer.objective().name(),
        trainer.data().name(),
        cfg.model.label(),
        trainer.device(),
        trainer.precision(),
        cfg.train.steps,
        cfg.train.batch_size
    );
    let t0 = Instant::now();
    trainer.set_samples_dir(Some(a.out.join("samples")));
    trainer.set_sampling_progress(true);
    let stats = trainer.run(&mut RunOptions {
        log: Some(&mut log),
        checkpoint: Some(ck.clone()),
        progress: true,
    })?;
    let secs = t0.elapsed().as_secs_f64();
    save_run_weights(&trainer, &a.out)?;
    let k = stats.len().min(100);
    if k > 0 {
        let tail = stats[stats.len() - k..].iter().map(|s| s.loss).sum::<f64>() / k as f64;
        println!(
            "train: {} updates in {secs:.1} s ({:.1} it/s); mean loss of the last {k}: {tail:.4}; checkpoint {}",
            stats.len(),
            stats.len() as f64 / secs.max(1e-9),
            ck.display()
        );
    } else {
        println!("train: already at update {start}; nothing to train");
    }

    // Sample the EMA (or raw) network with a registry solver, on the training device.
    let t1 = Instant::now();
    let (x, labels) = trainer.sample(cfg.sample.n, cfg.sample_seed())?;
    let decay = cfg.sample_decay();
    let source = decay.map_or("raw weights".to_string(), |d| format!("EMA {d}"));
    let sampled = report::Sampled {
        x,
        labels,
        secs: t1.elapsed().as_secs_f64(),
        source,
    };
    report::write_and_report(&trainer, &a.out, &sampled, Some(secs))
}
