//! The cosine schedule of improved DDPM (Nichol & Dhariwal 2021, arXiv:2102.09672, Eq. 17),
//! `alpha_bar(t) = f(t) / f(0)`, `f(t) = cos^2((t + s) / (1 + s) pi/2)`, `s = 0.008`, as the discrete
//! table of diffusers' `squaredcos_cap_v2` (betas `1 - alpha_bar((i + 1)/T) / alpha_bar(i/T)` capped at
//! 0.999) and as the continuous VP schedule of DPM-Solver. Metric: the largest relative
//! difference between the discrete table's `alpha_bar_i` and the continuous `alpha(t)^2` at
//! `t = (i + 1)/T` (two independent implementations of Eq. 17; equal wherever no beta is capped)
//! and between each beta and Eq. 17's formula. Checks: no beta is zero (the integer division
//! `i / T` of several Rust ports zeroes all but the last), and diffusers' first betas and
//! k-diffusion's sigma range.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::{betas_for_alpha_bar, BetaSchedule, DdpmDiscrete, VpCosine};
use diffusion::core::NoiseSchedule;
use diffusion_examples::Report;
use std::f64::consts::FRAC_PI_2;

#[derive(Parser)]
struct Args {
    /// Table length T.
    #[arg(long, default_value_t = 1000)]
    n: usize,
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

fn main() -> Result<()> {
    let a = Args::parse();
    let n = a.n;
    let table = DdpmDiscrete::new(BetaSchedule::SquaredCosCapV2 { max_beta: 0.999 }, n, false)?;
    let cont = VpCosine::new(0.008, 0.9946)?;
    let abar = |t: f64| ((t + 0.008) / 1.008 * FRAC_PI_2).cos().powi(2);
    let betas = betas_for_alpha_bar(n, 0.999);
    let mut err: f64 = 0.0;
    for i in 0..n - 1 {
        let t = (i + 1) as f64 / n as f64;
        err = err.max(rel(table.alphas_cumprod()[i], cont.alpha(t).powi(2)));
        err = err.max(rel(betas[i], 1.0 - abar(t) / abar(i as f64 / n as f64)));
    }
    let zero_betas = betas.iter().filter(|&&b| b == 0.0).count();
    let mut r = Report::new("cosine_schedule", "max_rel_err", err, 0, 1e-9);
    r.info("n", n as f64)
        .info("last_beta", betas[n - 1])
        .check_max("zero_betas", zero_betas as f64, 0.0);
    if n == 1000 {
        // diffusers (f64): beta_0 = 4.1284e-05, beta_998 = 0.749999; k-diffusion sigmas 0.006425 .. 20291.
        let sig = table.sigmas();
        r.check_max(
            "diffusers_beta0_rel",
            rel(betas[0], 4.128_422_482_196_914e-5),
            1e-9,
        )
        .check_max(
            "diffusers_beta998_rel",
            rel(betas[998], 0.749_999_392_901_116_6),
            1e-9,
        )
        .check_max(
            "kdiff_sigma_min_rel",
            rel(sig[0], 0.006_425_412_771_142_061),
            1e-9,
        )
        .check_max(
            "kdiff_sigma_max_rel",
            rel(sig[999], 20_291.169_610_019_886),
            1e-8,
        );
    }
    r.finish()
}
