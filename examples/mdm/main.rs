//! Multivariate diffusion by matrix exponential (MDM; Singhal, Goldstein & Ranganath 2023,
//! arXiv:2302.07261, Sec. 3): a linear SDE `dz = beta(t) F z dt + sqrt(beta(t)) G dW` on data plus
//! two auxiliary variables (noise only on the auxiliaries, non-normal stable drift) has the exact
//! Gaussian transition `N(exp(F tau) z_s, Sigma(tau))`, `tau = B(t) - B(s)`, with Sigma from Van
//! Loan's block exponential. Metric: the largest z-score of Euler-Maruyama Monte-Carlo moments at
//! t = 1 against that transition; checks: Chapman-Kolmogorov (semigroup) composition, the
//! Lyapunov ODE `dSigma/dt = beta (F Sigma + Sigma F^T + G G^T)` by finite differences, and a
//! transition with one coupling's sign flipped is rejected by the same Monte Carlo.

use anyhow::Result;
use clap::Parser;
use diffusion::core::process::{AffineBeta, MultivariateSde};
use diffusion::core::HostNoise;
use diffusion_examples::{max_abs, moments_z_score, Report};
use nalgebra::{DMatrix, DVector};

#[derive(Parser)]
struct Args {
    /// Monte-Carlo paths.
    #[arg(long, default_value_t = 20000)]
    paths: usize,
    /// Euler-Maruyama steps on t in [0, 1].
    #[arg(long, default_value_t = 800)]
    steps: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let f = DMatrix::from_row_slice(3, 3, &[-0.2, 1.0, 0.0, -1.0, -0.5, 0.8, 0.0, -0.8, -1.5]);
    let g = DMatrix::from_row_slice(3, 2, &[0.0, 0.0, 0.9, 0.0, 0.3, 1.2]);
    let sde = MultivariateSde::new(f.clone(), g.clone(), AffineBeta::new(0.5, 1.0)?)?;
    let mean0 = DVector::from_vec(vec![1.0, -0.5, 0.25]);
    let cov0 = DMatrix::from_diagonal(&DVector::from_vec(vec![0.04, 0.0, 0.09]));
    let t = 1.0;
    let (mean, cov) = sde.marginal(t, &mean0, &cov0)?;
    let mc = sde.euler_maruyama(
        &mean0,
        &cov0,
        t,
        a.steps,
        a.paths,
        &mut HostNoise::new(a.seed),
    )?;
    let z = moments_z_score(&mc, &mean, &cov)?;
    // Semigroup: (0 -> 0.3) then (0.3 -> 0.9) equals (0 -> 0.9).
    let (p1, s1) = sde.transition(0.0, 0.3)?;
    let (p2, s2) = sde.transition(0.3, 0.9)?;
    let (p, sig) = sde.transition(0.0, 0.9)?;
    let semigroup =
        max_abs(&(&p2 * &p1 - &p)).max(max_abs(&(&p2 * &s1 * p2.transpose() + &s2 - &sig)));
    // Lyapunov ODE by a central difference in t at t = 0.9.
    let h = 1e-5;
    let (_, sp) = sde.transition(0.0, 0.9 + h)?;
    let (_, sm) = sde.transition(0.0, 0.9 - h)?;
    let rhs = (sde.drift_matrix() * &sig
        + &sig * sde.drift_matrix().transpose()
        + sde.noise_covariance())
        * sde.time_change().beta(0.9);
    let lyapunov = max_abs(&((sp - sm) / (2.0 * h) - rhs));
    // Power: the same Monte Carlo against a transition with F[0, 1] flipped.
    let mut wrong_f = f;
    wrong_f[(0, 1)] = -wrong_f[(0, 1)];
    let wrong = MultivariateSde::new(wrong_f, g, sde.time_change())?;
    let (wm, wc) = wrong.marginal(t, &mean0, &cov0)?;
    let z_wrong = moments_z_score(&mc, &wm, &wc)?;
    let mut r = Report::new("mdm", "mc_max_z", z, 0, 5.0);
    r.info("paths", a.paths as f64)
        .check_max("semigroup_err", semigroup, 1e-12)
        .check_max("lyapunov_ode_err", lyapunov, 1e-6)
        .check_min("z_flipped_coupling", z_wrong, 20.0);
    r.finish()
}
