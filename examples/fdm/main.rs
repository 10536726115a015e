//! The momentum forward process of the Fast Diffusion Model (Wu et al. 2023, arXiv:2306.06991,
//! Sec. 4), as a critically damped oscillator `dx = beta v dt`, `dv = -beta (x + 2 v) dt +
//! 2 sqrt(beta) dW` started at rest, with FDM's rate `beta(t) = 0.1 + 19.9 t`. Metric: the largest
//! z-score of Euler-Maruyama Monte-Carlo moments of `(x_t, v_t)` against the closed-form kernel
//! (matrix exponential); checks: the data coefficient is FDM's input scaling
//! `s(t) = (1 + B) e^{-B}` (sail-sg/FDM), the position variance is `1 - e^{-2B}(1 + 2B + 2B^2)`,
//! the process is CLD with `M = 1` and the velocity at rest, `Fdm::perturb` draws have the
//! kernel's moments, and the same Monte Carlo rejects the kernel with its x-v covariance sign
//! flipped.

use anyhow::Result;
use clap::Parser;
use diffusion::core::process::{Cld, Fdm};
use diffusion::core::HostNoise;
use diffusion_examples::{dmat, max_abs, moments_z_score, sample_moments, Report};
use nalgebra::{DMatrix, DVector};
use ndarray::{Array1, Array2};

#[derive(Parser)]
struct Args {
    /// Time of the marginal.
    #[arg(long, default_value_t = 0.2)]
    t: f64,
    /// Monte-Carlo paths.
    #[arg(long, default_value_t = 20000)]
    paths: usize,
    /// Euler-Maruyama steps.
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let fdm = Fdm::default();
    let x0 = -1.1;
    let kernel = fdm.transition(a.t)?;
    let m = kernel.phi() * nalgebra::Vector2::new(x0, 0.0);
    let mean = DVector::from_vec(vec![m[0], m[1]]);
    let cov = dmat(&kernel.cov());
    let mc = fdm.sde().euler_maruyama(
        &DVector::from_vec(vec![x0, 0.0]),
        &DMatrix::zeros(2, 2),
        a.t,
        a.steps,
        a.paths,
        &mut HostNoise::new(a.seed),
    )?;
    let z = moments_z_score(&mc, &mean, &cov)?;
    let mut flipped = cov.clone();
    flipped[(0, 1)] = -flipped[(0, 1)];
    flipped[(1, 0)] = -flipped[(1, 0)];
    let z_flipped = moments_z_score(&mc, &mean, &flipped)?;
    // The reference code's input scaling and the closed-form position variance, written out.
    let formula_err = (1..=20)
        .map(|i| {
            let t = i as f64 / 20.0;
            let b = 0.1 * t + 0.5 * 19.9 * t * t;
            let k = fdm.transition(t)?;
            let s = (-b).exp() * (1.0 + b);
            let var = 1.0 - (-2.0 * b).exp() * (1.0 + 2.0 * b + 2.0 * b * b);
            Ok((k.phi()[(0, 0)] - s)
                .abs()
                .max((fdm.mean_scale(t) - s).abs())
                .max((k.cov()[(0, 0)] - var).abs()))
        })
        .collect::<Result<Vec<f64>>>()?
        .into_iter()
        .fold(0.0, f64::max);
    // CLD with M = 1 (Gamma = 2), velocity started at rest.
    let cld = Cld::new(1.0, 0.0, fdm.time_change())?;
    let (u, v) = (cld.transition(a.t)?, fdm.transition(a.t)?);
    let cld_err = max_abs(&dmat(&(u.phi() - v.phi()))).max(max_abs(&dmat(&(u.cov() - v.cov()))));
    // Fdm::perturb draws (one coordinate per path) against the kernel.
    let draws = fdm.perturb(
        &Array1::from_elem(a.paths, x0),
        a.t,
        &mut HostNoise::new(a.seed + 1),
    )?;
    let mut pairs = Array2::zeros((a.paths, 2));
    pairs.column_mut(0).assign(&draws.x);
    pairs.column_mut(1).assign(&draws.v);
    let z_perturb = moments_z_score(&sample_moments(&pairs), &mean, &cov)?;
    let mut r = Report::new("fdm", "mc_max_z", z, 0, 5.0);
    r.info("t", a.t)
        .info("paths", a.paths as f64)
        .check_max("reference_formula_err", formula_err, 1e-12)
        .check_max("cld_special_case", cld_err, 1e-12)
        .check_max("perturb_max_z", z_perturb, 5.0)
        .check_min("z_flipped_xv_cov", z_flipped, 10.0);
    r.finish()
}
