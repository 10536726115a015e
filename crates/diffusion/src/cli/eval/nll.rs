//! `diffusion eval --nll RUN_DIR`: the negative log-likelihood of data under a trained run
//! (`diffusion train --out RUN_DIR`) through the probability-flow ODE
//! (`diffusion_models::eval::nll`), in nats per sample and bits per dimension.

use super::EvalArgs;
use anyhow::{bail, Context, Result};
use diffusion::core::metrics::mean_nll;
use diffusion::core::HostNoise;
use diffusion::io::read_npy_2d;
use diffusion::models::eval::nll::{
    log_likelihood, Divergence, NllOptions, OdeMethod, Prior, Probe,
};
use diffusion::models::tch::{Kind, Tensor};
use diffusion::models::train::{TrainConfig, Trainer};
use diffusion::models::{TchDenoiser, TimeNet};

pub fn run(a: &EvalArgs) -> Result<()> {
    let dir = a.nll.as_ref().expect("--nll given");
    let cfg_path = dir.join("config.toml");
    let ck = dir.join("checkpoint.safetensors");
    let cfg = TrainConfig::load(&cfg_path)
        .with_context(|| format!("--nll {}: reading the run's configuration", dir.display()))?;
    if !ck.exists() {
        bail!(
            "--nll {}: there is no {} (train first with `diffusion train --out {}`)",
            dir.display(),
            ck.display(),
            dir.display()
        );
    }
    let trainer = Trainer::resume(cfg.clone(), &ck)?;
    let divergence = match a.divergence.as_str() {
        "exact" => Divergence::Exact,
        "hutchinson" => Divergence::Hutchinson {
            probe: Probe::Rademacher,
            seed: a.seed,
        },
        "hutchinson-gaussian" => Divergence::Hutchinson {
            probe: Probe::Gaussian,
            seed: a.seed,
        },
        other => {
            bail!("--divergence {other}: expected `exact`, `hutchinson` or `hutchinson-gaussian`")
        }
    };
    anyhow::ensure!(
        a.tol.is_finite() && a.tol > 0.0,
        "--tol must be finite and positive, got {}",
        a.tol
    );
    let toy = trainer.toy();
    let x = match &a.data {
        Some(p) => read_npy_2d(p)?,
        None => {
            anyhow::ensure!(a.n >= 1, "--n must be at least 1");
            toy.sample(a.n, &mut HostNoise::new(a.seed ^ 0xda7a_5eed))
        }
    };
    anyhow::ensure!(
        x.ncols() == cfg.model.data_dim,
        "--data has {} columns but the run's model has data_dim = {}",
        x.ncols(),
        cfg.model.data_dim
    );
    anyhow::ensure!(
        x.iter().all(|v| v.is_finite()),
        "--data contains NaN or infinite values"
    );
    let decay = if a.raw_weights {
        None
    } else {
        a.ema
            .or(cfg.sample.ema)
            .or(cfg.train.ema_decays.first().copied())
    };
    let ema = decay.map(|d| trainer.ema_model(d)).transpose()?;
    let net: &dyn TimeNet = match &ema {
        Some((_, n)) => n,
        None => trainer.net(),
    };
    let schedule = trainer.objective().schedule();
    let den = TchDenoiser::new(net, trainer.objective().parameterization(), schedule);
    let (lo, hi) = schedule.t_range();
    let t_start = a
        .t_start
        .unwrap_or_else(|| schedule.t_of_noise_ratio(1e-3).max(lo));
    let opts = NllOptions {
        t_start,
        t_end: Some(hi),
        divergence,
        method: OdeMethod::Rk45 {
            rtol: a.tol,
            atol: a.tol,
        },
        max_attempts: 10_000,
    };
    let xt = Tensor::from_slice(x.as_slice().context("contiguous data")?)
        .reshape([x.nrows() as i64, x.ncols() as i64])
        .to_kind(Kind::Double);
    let prior = Prior::for_schedule(schedule, hi);
    let res = log_likelihood(&den, &xt, &opts, &prior)?;
    let exact = match toy.as_mixture() {
        Some(gmm) => format!(" nll_data_density={:.4}", mean_nll(&gmm, &x.view())?),
        None => String::new(),
    };
    println!(
        "nll_nats={:.4} bits_per_dim={:.4} n={} dim={} nfe={} steps={} t_start={t_start:.3e} divergence={} weights={}{exact}",
        res.mean_nll(),
        res.mean_bits_per_dim(None),
        x.nrows(),
        res.dim,
        res.nfe,
        res.steps,
        a.divergence,
        decay.map_or("raw".to_string(), |d| format!("ema_{d}")),
    );
    Ok(())
}
