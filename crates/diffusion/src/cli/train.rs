//! `diffusion train`: train a network (MLP, U-Net, DiT) on a 2-D toy or Fashion-MNIST from a
//! TOML configuration, then sample it with a registry solver through `TchDenoiser` and print its
//! sliced W2 to held-out data next to the noise floor (the distance between two data sets of the
//! same size): exact samples of the toy, or the Fashion-MNIST test images (as 784-D vectors).
//!
//! Writes into `--out`: `checkpoint.safetensors` (exact resume with `--resume`),
//! `metrics.csv` or `metrics.jsonl`, `model.safetensors` and `ema_<decay>.safetensors` (plain
//! PyTorch `state_dict`s), `config.toml` (the configuration used), `samples.npy` (`[n, ...]`,
//! float32 for images; `labels.npy` for class-conditional networks), `samples.png` (a grid of
//! the first `sample.grid_n` samples, or a density picture of 2-D points) and, with
//! `train.sample_every`, `samples/step_<k>.png` during training.

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
    use anyhow::{bail, Context};
    use diffusion::core::metrics::{mean_nll, sliced_w2};
    use diffusion::core::HostNoise;
    use diffusion::io::write_npy;
    use diffusion::models::data::fmnist::{FashionMnist, Split};
    use diffusion::models::tch::{Kind, Tensor};
    use diffusion::models::train::{save_weights, MetricsLog, RunOptions, TrainConfig, Trainer};
    use ndarray::{Array2, ArrayD, IxDyn};
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
    cfg.validate()?;
    if diffusion::models::parse_device(&cfg.device)? == diffusion::models::tch::Device::Cpu {
        cpu_heap_settings();
    }
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
            "train: {} updates in {secs:.1} s ({:.1} it/s); mean loss of the last {k}: {tail:.4}; checkpoint {}",
            stats.len(),
            stats.len() as f64 / secs.max(1e-9),
            ck.display()
        );
    } else {
        println!("train: already at update {start}; nothing to train");
    }

    // Sample the EMA (or raw) network with a registry solver, on the training device.
    let n = cfg.sample.n;
    let t1 = Instant::now();
    let (out, labels) = trainer.sample(n, cfg.seed ^ 0x5a3b_1e00)?;
    let sample_secs = t1.elapsed().as_secs_f64();
    let shape: Vec<usize> = out.size().iter().map(|&d| d as usize).collect();
    let values: Vec<f64> = Vec::try_from(out.to_kind(Kind::Double).flatten(0, -1))?;
    let host = ArrayD::from_shape_vec(IxDyn(&shape), values)?;
    let images = shape.len() == 4;
    let npy = a.out.join("samples.npy");
    write_npy(&npy, &host, images)?;
    if let Some(l) = &labels {
        let l: Vec<f64> = Vec::try_from(l.to_kind(Kind::Double))?;
        write_npy(
            &a.out.join("labels.npy"),
            &ArrayD::from_shape_vec(IxDyn(&[l.len()]), l)?,
            false,
        )?;
    }
    let png = a.out.join("samples.png");
    trainer.save_sample_picture(&png)?;
    let decay = cfg.sample.ema.or(cfg.train.ema_decays.first().copied());
    println!(
        "sample: {} with {} steps{} ({}{}), n = {n}, {:.1} s; samples {}, picture {}",
        cfg.sample.solver,
        cfg.sample.steps,
        // A registry solver runs on the configured grid; an objective's own sampler
        // (`iddpm-ancestral`) on its own chain.
        if diffusion_solvers::registry::build::<ndarray::ArrayD<f64>>(&cfg.sample.solver).is_ok() {
            format!(" on `{}`", cfg.sample.grid)
        } else {
            String::new()
        },
        decay.map_or("raw weights".to_string(), |d| format!("EMA {d}")),
        if labels.is_some() {
            format!(", guidance {}", cfg.sample.guidance)
        } else {
            String::new()
        },
        sample_secs,
        npy.display(),
        png.display()
    );
    let flat = |a: &ArrayD<f64>| -> Result<Array2<f64>> {
        let rows = a.shape()[0];
        Ok(a.to_shape((rows, a.len() / rows.max(1)))?.to_owned())
    };
    if let Some(toy) = trainer.toy() {
        let host = flat(&host)?;
        let exact = toy.sample(n, &mut HostNoise::new(cfg.seed ^ 0xe4ac_7000));
        let exact2 = toy.sample(n, &mut HostNoise::new(cfg.seed ^ 0xf100_2000));
        let sw = sliced_w2(&host.view(), &exact.view(), 256, cfg.seed)?;
        let floor = sliced_w2(&exact2.view(), &exact.view(), 256, cfg.seed)?;
        // Where the toy has an exact density: the samples' mean NLL under it (the cross-entropy
        // H(model, toy) = H(model) + KL(model || toy)) next to the NLL of exact samples (the
        // toy's entropy). Close to it is good; well below it means over-concentrated samples.
        let nll = match toy.as_mixture() {
            Some(gmm) => format!(
                " nll={:.4} nll_exact={:.4}",
                mean_nll(&gmm, &host.view())?,
                mean_nll(&gmm, &exact.view())?
            ),
            None => String::new(),
        };
        println!("sliced_w2={sw:.4} sliced_w2_floor={floor:.4}{nll} train_s={secs:.1}");
    } else if let Some(f) = &cfg.data.fmnist {
        // Held-out reference: test images against the samples, and against training images
        // (the floor), all as flat vectors in [-1, 1] (unpadded 28x28 for both sides).
        let dir = f.resolved_dir();
        let test = FashionMnist::load(&dir, Split::Test)?;
        let train = FashionMnist::load(&dir, Split::Train)?;
        let m = n.min(test.len()).min(train.len());
        let as_rows = |set: &FashionMnist| -> Array2<f64> {
            Array2::from_shape_fn((m, 784), |(i, j)| set.image(i)[j] as f64 / 127.5 - 1.0)
        };
        let mut host = flat(&host)?;
        if f.pad32 {
            // Crop the 32x32 samples back to the 28x28 centre.
            host = Array2::from_shape_fn((host.nrows(), 784), |(i, j)| {
                host[[i, (j / 28 + 2) * 32 + j % 28 + 2]]
            });
        }
        let host = Array2::from_shape_fn((m, 784), |(i, j)| host[[i, j]]);
        let (te, tr) = (as_rows(&test), as_rows(&train));
        let sw = sliced_w2(&host.view(), &te.view(), 256, cfg.seed)?;
        let floor = sliced_w2(&tr.view(), &te.view(), 256, cfg.seed)?;
        println!("sliced_w2_test={sw:.4} sliced_w2_floor={floor:.4} n={m} train_s={secs:.1}");
    }
    Ok(())
}

/// Training on the CPU: re-executes with glibc's heap thresholds raised (see
/// `diffusion_models::host_malloc`; measured in docs/results.md, "Training throughput") and says
/// which settings the run uses.
#[cfg(feature = "tch")]
fn cpu_heap_settings() {
    use diffusion::models::host_malloc::{
        reexec_with_malloc_tunables, MallocTuning, KEEP_DEFAULTS_VAR, MALLOC_TUNABLES,
    };
    match reexec_with_malloc_tunables() {
        MallocTuning::AlreadySet => eprintln!(
            "train: glibc heap settings GLIBC_TUNABLES={} ({KEEP_DEFAULTS_VAR}=1 keeps glibc's \
             defaults)",
            std::env::var("GLIBC_TUNABLES").unwrap_or_default()
        ),
        MallocTuning::KeptDefaults => eprintln!(
            "train: glibc's default heap thresholds ({KEEP_DEFAULTS_VAR}=1); large tensors \
             page-fault on every update (GLIBC_TUNABLES={MALLOC_TUNABLES} trained a small U-Net \
             10-25% faster here, docs/results.md)"
        ),
        MallocTuning::NotGlibc => {}
        MallocTuning::Failed(why) => {
            eprintln!("train: kept glibc's default heap thresholds: {why}")
        }
    }
}
