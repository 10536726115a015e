//! PSLD and the complete recipe (Pandey & Mandt 2023, arXiv:2303.01748, Sec. 3; Ma, Chen & Fox
//! 2015, arXiv:1506.04696, Theorem 1): for any PSD dissipation D and skew rotation Q, the
//! phase-space SDE `dz = -beta (D + Q) grad H dt + sqrt(2 beta D) dW`, `H = x^2/2 + v^2/(2M)`,
//! leaves `N(0, diag(1, M))` invariant. Metric: the largest deviation from stationarity over
//! random (D, Q, M) and PSLD's CIFAR-10 setting: the Lyapunov residual `F S + S F^T + 2D` at
//! `S = diag(1, M)` and the covariance reached from a far-off start; checks: Euler-Maruyama Monte
//! Carlo of PSLD started at the stationary law stays there, CLD is the special case D = diag(0,
//! Gamma), and a drift that ignores the mass is not stationary.

use anyhow::Result;
use clap::Parser;
use diffusion::core::process::{AffineBeta, Cld, MultivariateSde, Psld};
use diffusion::core::HostNoise;
use diffusion_examples::{dmat, max_abs, moments_z_score, Report};
use nalgebra::{DVector, Matrix2};

#[derive(Parser)]
struct Args {
    /// Random recipes to check.
    #[arg(long, default_value_t = 20)]
    recipes: usize,
    /// Monte-Carlo paths.
    #[arg(long, default_value_t = 20000)]
    paths: usize,
    /// Euler-Maruyama steps on t in [0, 1].
    #[arg(long, default_value_t = 1000)]
    steps: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// A random recipe: PD dissipation (smallest eigenvalue >= 0.1), rotation in [-2, 2], mass in
/// [0.1, 3].
fn random_recipe(noise: &mut HostNoise) -> Result<Psld> {
    let g = noise.normals(4);
    let g = Matrix2::new(g[0], g[1], g[2], g[3]);
    let d = g * g.transpose() * 0.5 + Matrix2::identity() * 0.1;
    let q = 4.0 * noise.uniform() - 2.0;
    let mass = 0.1 + 2.9 * noise.uniform();
    Ok(Psld::recipe(d, q, mass, 0.3, AffineBeta::new(1.0, 2.0)?)?)
}

/// Max of the Lyapunov residual at diag(1, M) and of the distance to diag(1, M) of the
/// covariance reached at t from a far-off start.
fn stationarity_error(p: &Psld, t: f64) -> Result<f64> {
    let s = dmat(&p.stationary_cov());
    let res = max_abs(&p.sde().lyapunov_residual(&s));
    let start = Matrix2::new(5.0, -0.5, -0.5, 0.2);
    let k = p.transition(t)?;
    let cov = k.phi() * start * k.phi().transpose() + k.cov();
    Ok(res.max(max_abs(&dmat(&(cov - p.stationary_cov())))))
}

fn main() -> Result<()> {
    let a = Args::parse();
    let mut noise = HostNoise::new(a.seed);
    let mut err = stationarity_error(&Psld::default(), 10.0)?;
    for _ in 0..a.recipes {
        err = err.max(stationarity_error(&random_recipe(&mut noise)?, 30.0)?);
    }
    // Monte Carlo: PSLD (beta = 8) started at N(0, diag(1, M)) for t in [0, 1] stays there.
    let p = Psld::default();
    let s = dmat(&p.stationary_cov());
    let mc = p.sde().euler_maruyama(
        &DVector::zeros(2),
        &s,
        1.0,
        a.steps,
        a.paths,
        &mut HostNoise::new(a.seed + 1),
    )?;
    let z = moments_z_score(&mc, &DVector::zeros(2), &s)?;
    // CLD as the special case.
    let cld = Cld::default();
    let as_recipe = Psld::from_cld(&cld);
    let cld_err = [0.01, 0.2, 0.7]
        .iter()
        .map(|&t| {
            let (u, v) = (cld.mean_cov(t)?, as_recipe.mean_cov(t)?);
            Ok(max_abs(&dmat(&(u.phi() - v.phi()))).max(max_abs(&dmat(&(u.cov() - v.cov())))))
        })
        .collect::<Result<Vec<f64>>>()?
        .into_iter()
        .fold(0.0, f64::max);
    // Power: -(D + Q) without the mass is not stationary at diag(1, M) (M = 0.25 here).
    let skew = Matrix2::new(0.0, -p.rotation(), p.rotation(), 0.0);
    let wrong = MultivariateSde::from_noise_covariance(
        dmat(&(-(p.dissipation() + skew))),
        dmat(&(p.dissipation() * 2.0)),
        AffineBeta::constant(1.0)?,
    )?;
    let wrong_res = max_abs(&wrong.lyapunov_residual(&s));
    let mut r = Report::new("psld", "stationary_err", err, 0, 1e-9);
    r.info("recipes", a.recipes as f64 + 1.0)
        .info("mass", p.mass())
        .check_max("mc_max_z", z, 5.0)
        .check_max("cld_special_case", cld_err, 1e-12)
        .check_min("massless_drift_residual", wrong_res, 0.1);
    r.finish()
}
