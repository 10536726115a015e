//! The Gaussian-data setup shared by the augmented-space (CLD / PSLD) sampler examples: data
//! `N(MU, STD^2 I)` in two dimensions, exact samples of the augmented marginal `(x_t, v_t)` at any
//! time, the exact `x` marginal at the end of sampling, and the exact augmented score.

use anyhow::Result;
use diffusion::core::process::Psld;
use diffusion::core::{Gaussian, HostNoise, Phase};
use nalgebra::Matrix2;
use ndarray::Array2;

/// The data mean.
pub const MU: [f64; 2] = [1.5, -0.5];
/// The data standard deviation (per coordinate).
pub const STD: f64 = 0.5;
/// Where sampling starts.
pub const T: f64 = 1.0;
/// Where sampling stops.
pub const T_END: f64 = 1e-3;

/// An augmented state of `n` two-dimensional samples.
pub type Z = Phase<Array2<f64>>;

/// Mean-map factor and covariance of `(x_t, v_t)` per coordinate for the Gaussian data.
pub fn marginal(p: &Psld, t: f64) -> Result<(Matrix2<f64>, Matrix2<f64>)> {
    let cov0 = Matrix2::new(STD * STD, 0.0, 0.0, p.initial_velocity_variance());
    let k = p.transition(t)?;
    Ok((k.phi(), k.with_initial_cov(&cov0)?.cov()))
}

/// `n` exact samples of the augmented marginal at `t` (normals from `HostNoise::new(seed)`).
pub fn exact_samples(p: &Psld, t: f64, n: usize, seed: u64) -> Result<Z> {
    let (phi, cov) = marginal(p, t)?;
    let l = cov
        .cholesky()
        .ok_or_else(|| {
            anyhow::anyhow!("the marginal covariance at t = {t} is not positive definite")
        })?
        .l();
    let mut noise = HostNoise::new(seed);
    let ex = Array2::from_shape_vec((n, 2), noise.normals(2 * n))?;
    let ev = Array2::from_shape_vec((n, 2), noise.normals(2 * n))?;
    let mean = |c: f64| Array2::from_shape_fn((n, 2), |(_, j)| c * MU[j]);
    Ok(Phase::new(
        mean(phi[(0, 0)]) + ex.mapv(|e| e * l[(0, 0)]),
        mean(phi[(1, 0)]) + ex.mapv(|e| e * l[(1, 0)]) + ev.mapv(|e| e * l[(1, 1)]),
    ))
}

/// The exact `x` marginal at `t` (a Gaussian).
pub fn x_marginal(p: &Psld, t: f64) -> Result<Gaussian> {
    let (phi, cov) = marginal(p, t)?;
    Ok(Gaussian::new(
        MU.iter().map(|m| phi[(0, 0)] * m).collect(),
        vec![vec![cov[(0, 0)], 0.0], vec![0.0, cov[(0, 0)]]],
    )?)
}

/// The data mean repeated over `n` rows (the exact score's argument).
pub fn mean_rows(n: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, 2), |(_, j)| MU[j])
}
