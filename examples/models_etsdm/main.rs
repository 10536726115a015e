//! E-TSDM (Yang et al. 2023, arXiv:2306.11251, Sec. 4): the same eps MLP is trained twice on the
//! eight-Gaussians toy (VP linear, `L_simple`), once plainly and once wrapped in
//! `nets::SharedTime` (condition shared within `n = 5` sub-intervals of `[0, 0.1)`), and both are
//! sampled with 100 DDPM steps. The Lipschitz constant with respect to `t` near 0 is measured as
//! the finite-difference quotient `max_x ||eps(x, t_{j+1}) - eps(x, t_j)|| / dt` on 200 intervals
//! of `[1e-3, 0.1]` (256 states `x_t` of data). Metric: the median quotient of E-TSDM divided by
//! the plain network's (0: E-TSDM's conditioning is constant on all but 5 intervals); checks: the
//! plain network's median quotient is large, and sample quality (sliced W2) is the same within
//! 0.05 (600 updates each). Expected (seed 0, dev profile, 2 CPU cores): ratio 0 (bound 0.1;
//! plain median 8.4, E-TSDM median 0, E-TSDM max 500 at the 5 sub-interval jumps, plain max 21);
//! W2 0.182 plain vs 0.188 E-TSDM; about 3 s.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::VpLinear;
use diffusion::core::{HostNoise, NoiseSchedule, TimeGrid, Toy2d};
use diffusion::models::losses::{DsmLoss, Weighting};
use diffusion::models::tch::{self, Kind, Tensor};
use diffusion::models::{MlpConfig, Output, Parameterization, SharedTime, TimeNet};
use diffusion_examples::models::{fit, mlp, sample_net, swd, to_tensor, toy_samples, ModelArgs};
use diffusion_examples::Report;

/// Median and max over the grid of the finite-difference Lipschitz quotient in `t`.
fn lipschitz(net: &dyn TimeNet, sch: &VpLinear) -> Result<(f64, f64)> {
    let toy = Toy2d::EightGaussians;
    let x0 = to_tensor(&toy.sample(256, &mut HostNoise::new(21)));
    let z = Tensor::from_slice(&HostNoise::new(22).normals(512))
        .reshape([256, 2])
        .to_kind(Kind::Float);
    let x = x0 * sch.alpha(0.05) + z * sch.sigma(0.05);
    let m = 200;
    let dt = (0.1 - 1e-3) / m as f64;
    let eval = |t: f64| -> Result<Tensor> {
        Ok(tch::no_grad(|| {
            net.forward_t(
                &x,
                &Tensor::full([256], t, (Kind::Float, net.device())),
                None,
            )
        })?)
    };
    let mut qs = Vec::with_capacity(m);
    let mut prev = eval(1e-3)?;
    for j in 1..=m {
        let cur = eval(1e-3 + j as f64 * dt)?;
        let diff = (&cur - &prev)
            .square()
            .sum_dim_intlist(1, false, Kind::Float)
            .sqrt();
        qs.push(diff.max().double_value(&[]) / dt);
        prev = cur;
    }
    let max = qs.iter().copied().fold(0.0, f64::max);
    qs.sort_by(f64::total_cmp);
    Ok((qs[m / 2], max))
}

fn main() -> Result<()> {
    let a = ModelArgs::parse();
    let toy = Toy2d::EightGaussians;
    let sch = VpLinear::default();
    let dsm = DsmLoss::new(Box::new(sch), Output::Epsilon, Weighting::Simple, 1e-3, 1.0)?;
    let cfg = MlpConfig {
        hidden: 64,
        depth: 2,
        ..MlpConfig::default()
    };
    let (vs_plain, plain) = mlp(&cfg, 0)?;
    let (vs_shared, inner) = mlp(&cfg, 0)?;
    let shared = SharedTime::new(inner, 0.1, 5)?;
    let steps = a.steps.min(600);
    for (vs, net) in [
        (&vs_plain, &plain as &dyn TimeNet),
        (&vs_shared, &shared as &dyn TimeNet),
    ] {
        fit(&vs.trainable_variables(), steps, 3e-3, 6, |_, noise| {
            let x0 = to_tensor(&toy.sample(256, noise));
            Ok(dsm
                .per_sample(
                    net,
                    &x0,
                    &(0..256)
                        .map(|_| 1e-3 + (1.0 - 1e-3) * noise.uniform())
                        .collect::<Vec<_>>(),
                    &to_tensor(&ndarray::Array2::from_shape_vec(
                        (256, 2),
                        noise.normals(512),
                    )?),
                    None,
                )?
                .mean(Kind::Float))
        })?;
    }
    let (med_p, max_p) = lipschitz(&plain, &sch)?;
    let (med_s, max_s) = lipschitz(&shared, &sch)?;
    let grid = TimeGrid::uniform(1.0, 1e-3, 100)?;
    let p = Parameterization::Raw(Output::Epsilon);
    let data = toy_samples(toy, a.n, 99);
    let w_plain = swd(
        &sample_net(&plain, p, &sch, "ddpm", &grid, a.n, a.seed, None)?,
        &data,
    )?;
    let w_shared = swd(
        &sample_net(&shared, p, &sch, "ddpm", &grid, a.n, a.seed, None)?,
        &data,
    )?;
    let mut r = Report::new(
        "models_etsdm",
        "lipschitz_median_ratio",
        med_s / med_p,
        100,
        0.1,
    );
    r.info("plain_median", med_p)
        .info("plain_max", max_p)
        .info("etsdm_median", med_s)
        .info("etsdm_max", max_s)
        .check_min("plain_median_min", med_p, 1.0)
        .info("w2_plain", w_plain)
        .info("w2_etsdm", w_shared)
        .check_max("w2_difference", w_shared - w_plain, 0.05);
    r.finish()
}
