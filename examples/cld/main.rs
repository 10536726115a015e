//! Critically-damped Langevin diffusion (Dockhorn, Vahdat & Kreis 2022, arXiv:2112.07068, Eq. 5
//! and App. B): data x coupled to a velocity v, `M = 0.25`, `Gamma = 2 sqrt(M)`, `beta = 4`,
//! initial velocity `N(0, gamma M)`. Metric: the largest z-score of Euler-Maruyama Monte-Carlo
//! moments of `(x_t, v_t)` against the closed-form perturbation kernel; checks: the closed form
//! equals the matrix exponential (Van Loan) of the same SDE, draws of `Cld::perturb` have the
//! kernel's moments, the law reaches the stationary `N(0, diag(1, M))`, and a kernel with the
//! sign of its x-v covariance flipped is rejected by the same Monte Carlo.

use anyhow::Result;
use clap::Parser;
use diffusion::core::process::Cld;
use diffusion::core::HostNoise;
use diffusion_examples::{dmat, max_abs, moments_z_score, sample_moments, Report};
use nalgebra::{DMatrix, DVector, Vector2};
use ndarray::{Array1, Array2};

#[derive(Parser)]
struct Args {
    /// Time of the marginal.
    #[arg(long, default_value_t = 0.25)]
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
    let cld = Cld::default();
    let x0 = 1.3;
    let kernel = cld.mean_cov(a.t)?;
    let m = kernel.phi() * Vector2::new(x0, 0.0);
    let mean = DVector::from_vec(vec![m[0], m[1]]);
    let cov = dmat(&kernel.cov());
    // Euler-Maruyama of the SDE itself from (x0, v0 ~ N(0, gamma M)).
    let cov0 = DMatrix::from_row_slice(2, 2, &[0.0, 0.0, 0.0, cld.initial_velocity_variance()]);
    let mc = cld.sde().euler_maruyama(
        &DVector::from_vec(vec![x0, 0.0]),
        &cov0,
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
    // The closed form against the generic matrix-exponential transition.
    let vl = cld.sde().phase_kernel(0.0, a.t)?;
    let closed = cld.transition(a.t)?;
    let expm_err =
        max_abs(&dmat(&(closed.phi() - vl.phi()))).max(max_abs(&dmat(&(closed.cov() - vl.cov()))));
    // Cld::perturb draws (one coordinate per path) against the kernel.
    let draws = cld.perturb(
        &Array1::from_elem(a.paths, x0),
        None,
        a.t,
        &mut HostNoise::new(a.seed + 1),
    )?;
    let mut pairs = Array2::zeros((a.paths, 2));
    pairs.column_mut(0).assign(&draws.x);
    pairs.column_mut(1).assign(&draws.v);
    let z_perturb = moments_z_score(&sample_moments(&pairs), &mean, &cov)?;
    // Far out the kernel forgets the start: N(0, diag(1, M)).
    let far = cld.mean_cov(20.0)?;
    let stationary_err =
        max_abs(&dmat(&far.phi())).max(max_abs(&dmat(&(far.cov() - cld.stationary_cov()))));
    let mut r = Report::new("cld", "mc_max_z", z, 0, 5.0);
    r.info("t", a.t)
        .info("paths", a.paths as f64)
        .check_max("closed_vs_expm", expm_err, 1e-10)
        .check_max("perturb_max_z", z_perturb, 5.0)
        .check_max("stationary_err", stationary_err, 1e-10)
        .check_min("z_flipped_xv_cov", z_flipped, 10.0);
    r.finish()
}
