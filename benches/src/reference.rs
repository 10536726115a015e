//! The exact PF-ODE solution of a mixture (a fine RK4 solve), and the error metrics.
//!
//! In EDM coordinates (`alpha = 1`, time = noise level `sigma`) the probability-flow ODE is
//! `dx/dsigma = (x - D(x, sigma)) / sigma` (Karras et al. 2022, arXiv:2206.00364, Eq. 4). In
//! `u = ln sigma` it reads `dx/du = x - D(x, e^u)`, whose Jacobian `I - Cov[x0 | x] / sigma^2`
//! has eigenvalues in `[0, 1]`: not stiff, so classical RK4 with a fixed step in `u` converges
//! at fourth order over the whole range. [`reference_flow`] integrates from `sigma_start` down
//! to `sigma_min` (recording the state there), on to `SIGMA_TAIL = 1e-6`, and closes with
//! `x(0) = (x + D(x, SIGMA_TAIL)) / 2`, exact up to `O(SIGMA_TAIL^4)` (near 0,
//! `x - D = -sigma^2 grad log p` and the flow moves `x` by `sigma^2 / 2 grad log p`). It runs at
//! step `h` and `2h` and returns the Richardson combination `x_h + (x_h - x_2h) / 15` with the
//! largest `|x_h - x_2h|` as a (generous) bound on its own error.

use crate::gmm::FastGmm;
use diffusion::core::metrics::w2_1d;
use diffusion::core::HostNoise;
use ndarray::{Array2, ArrayView2};

/// Where the reference solve stops integrating before its closed-form last step.
pub const SIGMA_TAIL: f64 = 1e-6;

/// The exact flow from `sigma_start` to `sigma_min` and to 0.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The state at noise level `sigma_min`.
    pub at_sigma_min: Array2<f64>,
    /// The state at noise level 0 (the data end).
    pub at_zero: Array2<f64>,
    /// `max |x_h - x_2h|` over both ends: a bound on the reference's own error.
    pub error_bound: f64,
    /// Denoiser evaluations spent.
    pub evals: usize,
}

fn rk4(gmm: &FastGmm, x: Array2<f64>, u0: f64, u1: f64, h: f64, evals: &mut usize) -> Array2<f64> {
    let m = ((u1 - u0).abs() / h).ceil().max(1.0) as usize;
    let hh = (u1 - u0) / m as f64;
    let f = |x: &Array2<f64>, u: f64, evals: &mut usize| -> Array2<f64> {
        *evals += 1;
        x - &gmm.denoise(&x.view(), u.exp())
    };
    let mut x = x;
    for i in 0..m {
        let u = u0 + hh * i as f64;
        let k1 = f(&x, u, evals);
        let k2 = f(&(&x + &(&k1 * (0.5 * hh))), u + 0.5 * hh, evals);
        let k3 = f(&(&x + &(&k2 * (0.5 * hh))), u + 0.5 * hh, evals);
        let k4 = f(&(&x + &(&k3 * hh)), u + hh, evals);
        x = x + (k1 + (k2 + k3) * 2.0 + k4) * (hh / 6.0);
    }
    x
}

fn solve(
    gmm: &FastGmm,
    x: &ArrayView2<'_, f64>,
    s0: f64,
    s_min: f64,
    h: f64,
) -> (Array2<f64>, Array2<f64>, usize) {
    let mut evals = 0;
    let at_min = rk4(gmm, x.to_owned(), s0.ln(), s_min.ln(), h, &mut evals);
    let tail = rk4(
        gmm,
        at_min.clone(),
        s_min.ln(),
        SIGMA_TAIL.ln(),
        h,
        &mut evals,
    );
    let d = gmm.denoise(&tail.view(), SIGMA_TAIL);
    evals += 1;
    let at_zero = (tail + d) * 0.5;
    (at_min, at_zero, evals)
}

/// The exact PF-ODE flow of the rows of `x` (EDM coordinates at noise level `sigma_start`), by
/// RK4 in `ln sigma` with step `h` and Richardson extrapolation against step `2h`.
pub fn reference_flow(
    gmm: &FastGmm,
    x: &ArrayView2<'_, f64>,
    sigma_start: f64,
    sigma_min: f64,
    h: f64,
) -> Flow {
    let (m1, z1, e1) = solve(gmm, x, sigma_start, sigma_min, h);
    let (m2, z2, e2) = solve(gmm, x, sigma_start, sigma_min, 2.0 * h);
    let bound = (&m1 - &m2)
        .iter()
        .chain((&z1 - &z2).iter())
        .fold(0.0f64, |a, b| a.max(b.abs()));
    Flow {
        at_sigma_min: &m1 + &((&m1 - &m2) / 15.0),
        at_zero: &z1 + &((&z1 - &z2) / 15.0),
        error_bound: bound,
        evals: e1 + e2,
    }
}

/// Root mean square of the entries of `a - b`.
pub fn rms_error(a: &ArrayView2<'_, f64>, b: &ArrayView2<'_, f64>) -> f64 {
    let n = a.len().max(1) as f64;
    ((a - b).mapv(|v| v * v).sum() / n).sqrt()
}

/// `n_proj` unit directions in `dim` dimensions (rows), seeded.
pub fn directions(dim: usize, n_proj: usize, seed: u64) -> Array2<f64> {
    let mut noise = HostNoise::new(seed);
    let mut out = Array2::zeros((n_proj, dim));
    for mut row in out.rows_mut() {
        let v = noise.normals(dim);
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-300);
        for (r, a) in row.iter_mut().zip(v) {
            *r = a / norm;
        }
    }
    out
}

/// Sliced W2 between the rows of `x` and `y` over the given unit directions (rows of `dirs`):
/// `sqrt(mean_theta W2(theta^T x, theta^T y)^2)`, each 1-D W2 exact on sorted projections.
pub fn sliced_w2(
    x: &ArrayView2<'_, f64>,
    y: &ArrayView2<'_, f64>,
    dirs: &ArrayView2<'_, f64>,
) -> f64 {
    let px = x.dot(&dirs.t());
    let py = y.dot(&dirs.t());
    let mut total = 0.0;
    for j in 0..dirs.nrows() {
        let a = px.column(j).to_vec();
        let b = py.column(j).to_vec();
        total += w2_1d(a, b).map(|w| w * w).unwrap_or(f64::INFINITY);
    }
    (total / dirs.nrows() as f64).sqrt()
}
