//! `diffusion train`: train a network on a 2-D toy from a TOML configuration, then sample it with
//! a registry solver through `TchDenoiser` and print its sliced W2 to exact samples of the toy,
//! next to the noise floor (the distance between two exact sample sets of the same size).
//!
//! Writes into `--out`: `checkpoint.safetensors` (exact resume with `--resume`),
//! `metrics.csv` or `metrics.jsonl`, `model.safetensors` and `ema_<decay>.safetensors` (plain
//! PyTorch `state_dict`s), `config.toml` (the configuration used) and `samples.npy`.

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
    /// Override the configuration's device (cpu, cuda, cuda:N, auto).
    #[arg(long)]
    pub device: Option<String>,
    /// Override the configuration's total number of updates (train.steps).
    #[arg(long)]
    pub steps: Option<u64>,
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
    use anyhow::{bail, Context};
    use diffusion::core::metrics::{mean_nll, sliced_w2};
    use diffusion::core::{BrownianTree, HostNoise, TimeGrid};
    use diffusion::io::write_npy;
    use diffusion::models::tch::{Kind, Tensor};
    use diffusion::models::train::{save_weights, MetricsLog, RunOptions, TrainConfig, Trainer};
    use diffusion::models::{TchDenoiser, TimeNet};
    use diffusion::solvers::{registry, sample, NoObserver};
    use ndarray::Array2;
    use std::time::Instant;

    let mut cfg = TrainConfig::load(&a.config)?;
    if let Some(d) = a.device {
        cfg.device = d;
    }
    if let Some(s) = a.steps {
        cfg.train.steps = s;
    }
    cfg.validate()?;
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
        Trainer::new(cfg.clone())?
    };
    std::fs::write(a.out.join("config.toml"), cfg.to_toml()?)?;
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
        "train: {} on {} with an MLP of {n_params} parameters on {:?}; updates {start} -> {}",
        trainer.objective().name(),
        trainer.toy(),
        trainer.device(),
        cfg.train.steps
    );
    let t0 = Instant::now();
    let stats = trainer.run(&mut RunOptions {
        log: Some(&mut log),
        checkpoint: Some(ck.clone()),
        progress: true,
    })?;
    let secs = t0.elapsed().as_secs_f64();
    save_weights(&a.out.join("model.safetensors"), &trainer.named_variables())?;
    for &d in &cfg.train.ema_decays {
        let (vs, _) = trainer.ema_model(d)?;
        let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        named.sort_by(|x, y| x.0.cmp(&y.0));
        save_weights(&a.out.join(format!("ema_{d}.safetensors")), &named)?;
    }
    let k = stats.len().min(100);
    if k > 0 {
        let tail = stats[stats.len() - k..].iter().map(|s| s.loss).sum::<f64>() / k as f64;
        println!(
            "train: {} updates in {secs:.1} s ({:.0} it/s); mean loss of the last {k}: {tail:.4}; checkpoint {}",
            stats.len(),
            stats.len() as f64 / secs.max(1e-9),
            ck.display()
        );
    } else {
        println!("train: already at update {start}; nothing to train");
    }

    // Sample the EMA (or raw) network with a registry solver, on the training device.
    let decay = cfg.sample.ema.or(cfg.train.ema_decays.first().copied());
    let ema = decay.map(|d| trainer.ema_model(d)).transpose()?;
    let net: &dyn TimeNet = match &ema {
        Some((_, n)) => n,
        None => trainer.net(),
    };
    let schedule = trainer.objective().schedule();
    let grid = TimeGrid::build(&cfg.sample.grid, schedule, cfg.sample.steps)?;
    let t_start = grid.times()[0];
    let scale = (schedule.alpha(t_start).powi(2) + schedule.sigma(t_start).powi(2)).sqrt();
    let n = cfg.sample.n;
    let z: Vec<f64> = HostNoise::new(cfg.seed ^ 0x5a3b_1e00)
        .normals(n * 2)
        .iter()
        .map(|v| v * scale)
        .collect();
    let x_t = Tensor::from_slice(&z)
        .reshape([n as i64, 2])
        .to_kind(Kind::Float)
        .to_device(trainer.device());
    let den = TchDenoiser::new(net, trainer.objective().parameterization(), schedule);
    let solver = registry::build::<Tensor>(&cfg.sample.solver)?;
    let (lo, hi) = schedule.t_range();
    let mut noise = BrownianTree::with_default_tol(cfg.seed.wrapping_add(1), lo, hi)?;
    let t1 = Instant::now();
    let out = sample(
        solver.as_ref(),
        &den,
        schedule,
        &grid,
        x_t,
        &mut noise,
        &mut NoObserver,
    )?;
    let sample_secs = t1.elapsed().as_secs_f64();
    let host = Array2::from_shape_vec((n, 2), diffusion::core::State::to_host(&out))?;
    write_npy(&a.out.join("samples.npy"), &host.clone().into_dyn(), false)?;
    let toy = trainer.toy();
    let exact = toy.sample(n, &mut HostNoise::new(cfg.seed ^ 0xe4ac_7000));
    let exact2 = toy.sample(n, &mut HostNoise::new(cfg.seed ^ 0xf100_2000));
    let sw = sliced_w2(&host.view(), &exact.view(), 256, cfg.seed)?;
    let floor = sliced_w2(&exact2.view(), &exact.view(), 256, cfg.seed)?;
    println!(
        "sample: {} with {} steps on `{}` ({}), n = {n}, {:.1} s; samples {}",
        solver.name(),
        grid.steps(),
        cfg.sample.grid,
        decay.map_or("raw weights".to_string(), |d| format!("EMA {d}")),
        sample_secs,
        a.out.join("samples.npy").display()
    );
    // Where the toy has an exact density: the samples' mean NLL under it (the cross-entropy
    // H(model, toy) = H(model) + KL(model || toy)) next to the NLL of exact samples (the toy's
    // entropy). Close to it is good; well below it means over-concentrated samples.
    let nll = match toy.as_mixture() {
        Some(gmm) => format!(
            " nll={:.4} nll_exact={:.4}",
            mean_nll(&gmm, &host.view())?,
            mean_nll(&gmm, &exact.view())?
        ),
        None => String::new(),
    };
    println!("sliced_w2={sw:.4} sliced_w2_floor={floor:.4}{nll} train_s={secs:.1}");
    Ok(())
}
