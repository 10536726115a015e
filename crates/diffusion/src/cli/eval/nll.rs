//! `diffusion eval --nll RUN_DIR`: the negative log-likelihood of data under a trained run
//! (`diffusion train --out RUN_DIR`) through the probability-flow ODE
//! (`diffusion_models::eval::nll`), in nats per sample and bits per dimension.

use super::EvalArgs;
use anyhow::{bail, Context, Result};
use diffusion::core::metrics::mean_nll;
use diffusion::core::HostNoise;
use diffusion::io::read_npy_finite;
use diffusion::models::data::fmnist::{FashionMnist, Split};
use diffusion::models::data::{ImageData, ImageOptions};
use diffusion::models::eval::nll::{
    log_likelihood, Dequantization, Divergence, NllOptions, OdeMethod, Prior, Probe,
};
use diffusion::models::tch::{Kind, Tensor};
use diffusion::models::train::{TrainConfig, Trainer};
use diffusion::models::{TchDenoiser, TimeNet};

pub fn run(a: &EvalArgs) -> Result<()> {
    let dir = a.nll.as_ref().expect("--nll given");
    let cfg_path = dir.join(diffusion::models::train::RUN_CONFIG);
    let ck = dir.join("checkpoint.safetensors");
    let cfg = TrainConfig::load(&cfg_path)
        .with_context(|| format!("--nll {}: reading the run's configuration", dir.display()))?
        .without_teacher();
    if !ck.exists() {
        bail!(
            "--nll {}: there is no {} (train first with `diffusion train --out {}`)",
            dir.display(),
            ck.display(),
            dir.display()
        );
    }
    super::super::heap::cpu_heap_settings(diffusion::models::parse_device(&cfg.device)?, "eval");
    let trainer = Trainer::resume(cfg.clone(), &ck)?;
    anyhow::ensure!(
        a.tol.is_finite() && a.tol > 0.0,
        "--tol must be finite and positive, got {}",
        a.tol
    );
    let item = cfg.model.item_shape();
    let per: i64 = item.iter().product();
    // The data: --data, else fresh toy samples, else the first --n Fashion-MNIST test images
    // (served as in training, without flips). Image data is 8-bit: it is dequantized and
    // bits/dim carry the +7 offset of [-1, 1] data (see diffusion_models::eval::nll).
    let fmnist = cfg.data.fmnist.clone();
    let mut host_rows: Option<ndarray::Array2<f64>> = None;
    let x = match (&a.data, trainer.toy(), &fmnist) {
        (Some(p), _, _) => {
            let d = read_npy_finite(p).context("--data")?;
            let n = d.shape().first().copied().unwrap_or(0);
            let got: usize = d.shape().iter().skip(1).product();
            anyhow::ensure!(
                n >= 1 && got as i64 == per,
                "--data {} has shape {:?}; the run's model takes items of shape {item:?} \
                 (the same number of columns per row is accepted)",
                p.display(),
                d.shape()
            );
            if item.len() == 1 {
                host_rows = Some(d.clone().into_shape_with_order((n, got))?);
            }
            let mut shape = vec![n as i64];
            shape.extend(&item);
            Tensor::from_slice(d.as_slice().context("contiguous data")?).reshape(shape)
        }
        (None, Some(toy), _) => {
            anyhow::ensure!(a.n >= 1, "--n must be at least 1");
            let rows = toy.sample(a.n, &mut HostNoise::new(a.seed ^ 0xda7a_5eed));
            let t = Tensor::from_slice(rows.as_slice().context("contiguous data")?)
                .reshape([rows.nrows() as i64, rows.ncols() as i64]);
            host_rows = Some(rows);
            t
        }
        (None, None, Some(f)) => {
            anyhow::ensure!(a.n >= 1, "--n must be at least 1");
            let set = FashionMnist::load(&f.resolved_dir(), Split::Test)?;
            let n = a.n.min(set.len());
            let opts = ImageOptions {
                flip: false,
                ..f.options()
            };
            let data = ImageData::new(set, opts, a.seed)?;
            let idx: Vec<usize> = (0..n).collect();
            data.gather(&idx, &[])
        }
        (None, None, None) => bail!("the run has neither a toy nor Fashion-MNIST as data"),
    };
    let dequant = fmnist
        .as_ref()
        .map(|_| Dequantization::eight_bit_symmetric());
    let x = match &dequant {
        Some(d) => d.dequantize(&x, &mut HostNoise::with_stream(a.seed, 0xde9))?,
        None => x,
    }
    .to_kind(Kind::Double);
    let divergence = match a.divergence.as_str() {
        "auto" if per <= 16 => Divergence::Exact,
        "exact" => Divergence::Exact,
        "auto" | "hutchinson" => Divergence::Hutchinson {
            probe: Probe::Rademacher,
            seed: a.seed,
        },
        "hutchinson-gaussian" => Divergence::Hutchinson {
            probe: Probe::Gaussian,
            seed: a.seed,
        },
        other => bail!(
            "--divergence {other}: expected `auto`, `exact`, `hutchinson` or `hutchinson-gaussian`"
        ),
    };
    let decay = if a.raw_weights {
        None
    } else {
        a.ema.or(cfg.sample_decay())
    };
    let ema = decay.map(|d| trainer.ema_model(d)).transpose()?;
    let net: &dyn TimeNet = match &ema {
        Some((_, n)) => n.as_ref(),
        None => trainer.net(),
    };
    let schedule = trainer.objective().schedule();
    let mut den = TchDenoiser::new(net, trainer.objective().parameterization(), schedule);
    if let Some(null) = net.null_class() {
        // A class-conditional run: the unconditional model p(x) (its null label).
        let b = x.size()[0];
        den = den.with_class(Tensor::full([b], null, (Kind::Int64, tch::Device::Cpu)));
    }
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
    let prior = Prior::for_schedule(schedule, hi);
    let res = log_likelihood(&den, &x.to_device(trainer.device()), &opts, &prior)?;
    let exact = match (trainer.toy().and_then(|t| t.as_mixture()), &host_rows) {
        (Some(gmm), Some(rows)) => {
            format!(" nll_data_density={:.4}", mean_nll(&gmm, &rows.view())?)
        }
        _ => String::new(),
    };
    println!(
        "nll_nats={:.4} bits_per_dim={:.4} n={} dim={} nfe={} steps={} t_start={t_start:.3e} divergence={} dequantized={} weights={}{exact}",
        res.mean_nll(),
        res.mean_bits_per_dim(dequant.as_ref()),
        res.log_p.len(),
        res.dim,
        res.nfe,
        res.steps,
        match divergence {
            Divergence::Exact => "exact",
            _ => "hutchinson",
        },
        dequant.is_some(),
        decay.map_or("raw".to_string(), |d| format!("ema_{d}")),
    );
    Ok(())
}
