//! The benchmark targets and a fast exact denoiser for them.
//!
//! - `gmm2d`: the 2-D mixture of three full-covariance Gaussians used by the reference fixtures
//!   (tools/refdata/make_fixtures.py);
//! - `gmm64d`: a seeded 64-D mixture of four Gaussians with full-rank covariances
//!   `Q diag(l) Q^T` (random orthogonal `Q`, eigenvalues log-uniform in `[0.02, 1]`) and means
//!   drawn from `N(0, I)`.
//!
//! [`FastGmm`] evaluates the same exact posterior mean as `diffusion_core::GaussianMixture`
//! (`sum_k r_k (mu_k + Sigma_k C_k^{-1} (x - mu_k))`, `C_k = Sigma_k + sigma^2 I`, EDM
//! coordinates), but with the eigendecompositions computed once and all rows at a time through
//! matrix products, so the fine reference solves and hundreds of sampling runs stay cheap. The
//! accuracy binary checks it against the core's `GmmDenoiser` before using it.

use diffusion::core::target::GmmSpec;
use diffusion::core::{Denoiser, HostNoise, NoiseSchedule, Prediction, State};
use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{Array1, Array2, ArrayView2, Axis};

/// The 2-D mixture of tools/refdata/make_fixtures.py (`GMM` there).
pub fn gmm2d() -> GmmSpec {
    GmmSpec {
        weights: vec![0.5, 0.3, 0.2],
        means: vec![vec![-1.0, 0.5], vec![1.5, -0.5], vec![0.25, 1.75]],
        covariances: vec![
            vec![vec![0.30, 0.10], vec![0.10, 0.20]],
            vec![vec![0.15, -0.06], vec![-0.06, 0.25]],
            vec![vec![0.20, 0.08], vec![0.08, 0.10]],
        ],
    }
}

/// A seeded `dim`-dimensional mixture of four Gaussians with full-rank covariances (see the
/// module docs).
pub fn gmm_nd(dim: usize, seed: u64) -> GmmSpec {
    let mut noise = HostNoise::new(seed);
    let weights = vec![0.35, 0.3, 0.2, 0.15];
    let mut means = Vec::new();
    let mut covariances = Vec::new();
    for _ in 0..weights.len() {
        means.push(noise.normals(dim));
        let g = DMatrix::from_vec(dim, dim, noise.normals(dim * dim));
        let q = g.qr().q();
        let lam: Vec<f64> = (0..dim)
            .map(|j| 0.02 * 50f64.powf(j as f64 / (dim.max(2) - 1) as f64))
            .collect();
        let mut c = DMatrix::zeros(dim, dim);
        for (j, l) in lam.iter().enumerate() {
            let v = q.column(j);
            c += v * v.transpose() * *l;
        }
        let c = (&c + c.transpose()) * 0.5;
        covariances.push(
            (0..dim)
                .map(|i| (0..dim).map(|j| c[(i, j)]).collect())
                .collect(),
        );
    }
    GmmSpec {
        weights,
        means,
        covariances,
    }
}

/// One mixture component in its eigenbasis.
#[derive(Debug, Clone)]
struct Component {
    log_w: f64,
    mean: Array1<f64>,
    /// Eigenvectors as columns (`d x d`).
    u: Array2<f64>,
    lam: Array1<f64>,
}

/// The exact denoiser of a Gaussian mixture, evaluated for all rows at once (see module docs).
#[derive(Debug, Clone)]
pub struct FastGmm {
    comps: Vec<Component>,
    dim: usize,
}

impl FastGmm {
    /// Precomputes the eigendecomposition of every covariance.
    pub fn new(spec: &GmmSpec) -> Self {
        let dim = spec.means[0].len();
        let comps = spec
            .weights
            .iter()
            .zip(&spec.means)
            .zip(&spec.covariances)
            .map(|((w, m), c)| {
                let cov = DMatrix::from_fn(dim, dim, |i, j| c[i][j]);
                let eig = SymmetricEigen::new(cov);
                Component {
                    log_w: w.ln(),
                    mean: Array1::from(m.clone()),
                    u: Array2::from_shape_fn((dim, dim), |(i, j)| eig.eigenvectors[(i, j)]),
                    lam: Array1::from_iter(eig.eigenvalues.iter().map(|v| v.max(0.0))),
                }
            })
            .collect();
        FastGmm { comps, dim }
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `E[x0 | x0 + sigma eps = x]` for every row of `x` (EDM coordinates); `x` itself at
    /// `sigma = 0`.
    pub fn denoise(&self, x: &ArrayView2<'_, f64>, sigma: f64) -> Array2<f64> {
        if sigma <= 0.0 {
            return x.to_owned();
        }
        let s2 = sigma * sigma;
        let n = x.nrows();
        let mut logits = Array2::<f64>::zeros((self.comps.len(), n));
        let mut means = Vec::with_capacity(self.comps.len());
        for (k, c) in self.comps.iter().enumerate() {
            let r = x - &c.mean.view().insert_axis(Axis(0));
            let y = r.dot(&c.u);
            let v = c.lam.mapv(|l| l + s2);
            let inv_v = v.mapv(|v| 1.0 / v);
            let half_logdet = 0.5 * v.mapv(f64::ln).sum();
            let maha = (&y * &y).dot(&inv_v);
            for i in 0..n {
                logits[[k, i]] = c.log_w - 0.5 * maha[i] - half_logdet;
            }
            let gain = &c.lam * &inv_v;
            let m = (&y * &gain.view().insert_axis(Axis(0))).dot(&c.u.t())
                + c.mean.view().insert_axis(Axis(0));
            means.push(m);
        }
        let mut out = Array2::zeros((n, self.dim));
        for i in 0..n {
            let col = logits.column(i);
            let mx = col.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            let z: f64 = col.iter().map(|l| (l - mx).exp()).sum();
            for (k, m) in means.iter().enumerate() {
                let r = (col[k] - mx).exp() / z;
                if r > 0.0 {
                    out.row_mut(i).scaled_add(r, &m.row(i));
                }
            }
        }
        out
    }

    /// This mixture's denoiser under `schedule` (any linear schedule: the state is mapped to EDM
    /// coordinates `x / alpha` at noise level `sigma / alpha`).
    pub fn denoiser<'a>(&'a self, schedule: &'a dyn NoiseSchedule) -> FastGmmDenoiser<'a> {
        FastGmmDenoiser {
            gmm: self,
            schedule,
        }
    }
}

/// [`FastGmm`] as a [`Denoiser`] for any state (host round trip), answering
/// [`Prediction::Sample`].
#[derive(Debug, Clone, Copy)]
pub struct FastGmmDenoiser<'a> {
    gmm: &'a FastGmm,
    schedule: &'a dyn NoiseSchedule,
}

impl<S: State> Denoiser<S> for FastGmmDenoiser<'_> {
    fn predict(&self, x: &S, t: f64) -> diffusion::core::Result<Prediction<S>> {
        let d = self.gmm.dim;
        let host = x.to_host();
        let n = host.len() / d;
        let a = self.schedule.alpha(t);
        let rows = Array2::from_shape_vec((n, d), host)
            .map_err(|e| diffusion::core::CoreError::invalid("state", e.to_string()))?
            .mapv_into(|v| v / a);
        let den = self.gmm.denoise(&rows.view(), self.schedule.noise_ratio(t));
        Ok(Prediction::Sample(
            x.from_host_like(den.as_slice().expect("standard layout")),
        ))
    }
}
