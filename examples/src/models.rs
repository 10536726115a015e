//! Shared pieces of the `models_*` examples (networks trained on 2-D toys with libtorch): train
//! from TOML text through the [`Trainer`], move batches between ndarray and tch, sample a network
//! with any registry solver, and the sliced-W2 distance to fresh data.

use crate::Report;
use anyhow::{ensure, Result};
use diffusion::core::metrics::sliced_w2;
use diffusion::core::{HostNoise, IndependentIncrements, NoiseSchedule, TimeGrid, Toy2d};
use diffusion::models::tch::{self, nn, Device, Kind, Tensor};
use diffusion::models::train::{AdamW, AdamWConfig, RunOptions, TrainConfig, Trainer};
use diffusion::models::{Mlp, MlpConfig, Parameterization, TchDenoiser, TimeNet};
use diffusion::solvers::{registry, sample, NoObserver};
use ndarray::Array2;

/// Parses `toml`, trains for `train.steps` updates and returns the trainer (one libtorch thread
/// unless the text says otherwise).
pub fn train(toml: &str) -> Result<Trainer> {
    let mut t = Trainer::new(TrainConfig::from_toml_str(toml)?)?;
    t.run(&mut RunOptions::default())?;
    Ok(t)
}

/// A `[n, d]` batch as a `Float` tensor.
pub fn to_tensor(x: &Array2<f64>) -> Tensor {
    let (n, d) = x.dim();
    Tensor::from_slice(x.as_standard_layout().as_slice().expect("contiguous"))
        .reshape([n as i64, d as i64])
        .to_kind(Kind::Float)
}

/// A `[n, d]` tensor as a host array.
pub fn to_array(x: &Tensor) -> Result<Array2<f64>> {
    let size = x.size();
    ensure!(size.len() == 2, "expected a [n, d] tensor, got {size:?}");
    let v: Vec<f64> = Vec::try_from(x.to_kind(Kind::Double).reshape([-1]))?;
    Ok(Array2::from_shape_vec(
        (size[0] as usize, size[1] as usize),
        v,
    )?)
}

/// `n` fresh samples of a toy.
pub fn toy_samples(toy: Toy2d, n: usize, seed: u64) -> Array2<f64> {
    toy.sample(n, &mut HostNoise::new(seed))
}

/// Sliced W2 with 128 projections.
pub fn swd(a: &Array2<f64>, b: &Array2<f64>) -> Result<f64> {
    Ok(sliced_w2(&a.view(), &b.view(), 128, 7)?)
}

/// Samples `net` read through `param` under `schedule` with a registry solver on `grid`, from
/// `x_T = sigma(T) z` (`z ~ N(0, I)` from `HostNoise::new(seed)`), optionally class-conditioned.
#[allow(clippy::too_many_arguments)]
pub fn sample_net(
    net: &dyn TimeNet,
    param: Parameterization,
    schedule: &dyn NoiseSchedule,
    solver: &str,
    grid: &TimeGrid,
    n: usize,
    seed: u64,
    class: Option<Tensor>,
) -> Result<Array2<f64>> {
    let den = TchDenoiser::new(net, param, schedule);
    let den = match class {
        Some(c) => den.with_class(c),
        None => den,
    };
    let t0 = grid.times()[0];
    let z = HostNoise::new(seed).normals(2 * n);
    let x = Tensor::from_slice(&z)
        .reshape([n as i64, 2])
        .to_kind(Kind::Float)
        * schedule.sigma(t0);
    let s = registry::build::<Tensor>(solver)?;
    let mut path = IndependentIncrements::seeded(seed ^ 0x5eed);
    let out = sample(
        s.as_ref(),
        &den,
        schedule,
        grid,
        x,
        &mut path,
        &mut NoObserver,
    )?;
    to_array(&out)
}

/// Trains from `toml` and samples the EMA network (the configured `sample.ema`, else the first
/// decay) with `solver` on `grid`: `(trainer, samples)`.
pub fn train_and_sample(
    toml: &str,
    solver: &str,
    grid: &TimeGrid,
    n: usize,
    seed: u64,
) -> Result<(Trainer, Array2<f64>)> {
    let t = train(toml)?;
    let decay = t
        .config()
        .sample
        .ema
        .or_else(|| t.config().train.ema_decays.first().copied());
    let obj = t.objective();
    let x = match decay {
        Some(d) => {
            let (_vs, net) = t.ema_model(d)?;
            sample_net(
                &net,
                obj.parameterization(),
                obj.schedule(),
                solver,
                grid,
                n,
                seed,
                None,
            )?
        }
        None => sample_net(
            t.net(),
            obj.parameterization(),
            obj.schedule(),
            solver,
            grid,
            n,
            seed,
            None,
        )?,
    };
    Ok((t, x))
}

/// The training text of the `models_*` examples: the eight-Gaussians toy, a residual MLP of
/// width 64 and depth 2, `steps` AdamW updates of 256 samples at learning rate 3e-3 (50 warmup
/// steps, cosine to 5%), EMA 0.99; `loss` is the body of the `[loss]` section.
pub fn toy_toml(loss: &str, steps: u64) -> String {
    format!(
        "seed = 0\ncpu_threads = 1\n[data]\ntoy = \"8gaussians\"\n\
         [model]\nhidden = 64\ndepth = 2\n\
         [loss]\n{loss}\n\
         [train]\nsteps = {steps}\nbatch_size = 256\nlr = 3e-3\nwarmup_steps = 50\n\
         min_lr_ratio = 0.05\nema_decays = [0.99]\nlog_every = 1000\ncheckpoint_every = 0\n"
    )
}

/// Sliced W2 between `data` and an isotropic Gaussian with its mean and average variance: what
/// a model that learned nothing but the first two moments would score.
pub fn gaussian_baseline(data: &Array2<f64>, seed: u64) -> Result<f64> {
    let (n, d) = data.dim();
    let mean = data.mean_axis(ndarray::Axis(0)).expect("rows");
    let var = data.var_axis(ndarray::Axis(0), 0.0).mean().expect("cols");
    let z = HostNoise::new(seed).normals(n * d);
    let g = Array2::from_shape_fn((n, d), |(i, j)| mean[j] + var.sqrt() * z[i * d + j]);
    swd(&g, data)
}

/// Standard arguments of the `models_*` examples.
#[derive(clap::Parser, Debug)]
pub struct ModelArgs {
    /// Training updates.
    #[arg(long, default_value_t = 1200)]
    pub steps: u64,
    /// Samples drawn for the metric.
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    /// Seed of the sampler's noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// A fresh [`Mlp`] with its variables: `(store, net)`.
pub fn mlp(config: &MlpConfig, seed: u64) -> Result<(nn::VarStore, Mlp)> {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Mlp::new(&vs.root(), config, seed)?;
    Ok((vs, net))
}

/// A plain training loop for the examples whose objective needs more than the [`Trainer`]
/// offers (a teacher, class labels, fixed couplings, a wrapped network): `steps` AdamW updates
/// of `params` (no weight decay) at learning rate `lr` with a cosine decay to 5%, the loss of
/// update `k` computed by `loss(k, noise)` with `noise = HostNoise::with_stream(seed, k)`.
pub fn fit(
    params: &[Tensor],
    steps: u64,
    lr: f64,
    seed: u64,
    mut loss: impl FnMut(u64, &mut HostNoise) -> Result<Tensor>,
) -> Result<()> {
    tch::set_num_threads(1);
    let mut opt = AdamW::new(
        params,
        AdamWConfig {
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
    )?;
    for k in 0..steps {
        for p in params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        let l = loss(k, &mut HostNoise::with_stream(seed, k))?;
        ensure!(
            l.double_value(&[]).is_finite(),
            "non-finite loss at update {k}"
        );
        l.backward();
        let c = 0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * k as f64 / steps as f64).cos());
        opt.step(params, lr * c)?;
    }
    Ok(())
}

/// The report of a network sampler on the eight-Gaussians toy: sliced W2 of `x` to fresh data
/// (the metric, bound `bound`), the two-sample floor (W2 between two fresh data sets of the same
/// size) and the moment-matched Gaussian baseline, with the check `W2 / baseline <= ratio`.
pub fn toy_law_report(
    example: &str,
    x: &Array2<f64>,
    nfe: usize,
    bound: f64,
    ratio: f64,
) -> Result<Report> {
    let n = x.nrows();
    let data = toy_samples(Toy2d::EightGaussians, n, 99);
    let w = swd(x, &data)?;
    let floor = swd(&toy_samples(Toy2d::EightGaussians, n, 98), &data)?;
    let base = gaussian_baseline(&data, 1)?;
    let mut r = Report::new(example, "sliced_w2", w, nfe, bound);
    r.info("floor", floor)
        .info("gaussian_baseline", base)
        .check_max("ratio_to_gaussian_baseline", w / base, ratio);
    Ok(r)
}
