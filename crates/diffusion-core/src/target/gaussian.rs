//! The Gaussian target `N(mu, Sigma)`: exact diffused marginals, score, denoiser, log-density and
//! the exact probability-flow ODE solution between any two times.
//!
//! Paper: Song et al. (2021), "Score-Based Generative Modeling through Stochastic Differential
//! Equations", arXiv:2011.13456, Eq. (13) (the probability-flow ODE). For a Gaussian target the
//! diffused covariance `C(t) = alpha^2 Sigma + sigma^2 I` shares the eigenvectors `U` of `Sigma`, and
//! the PF-ODE moves every eigen-coordinate affinely:
//! `x_t = alpha_t mu + U diag(sqrt(c_i(t) / c_i(s))) U^T (x_s - alpha_s mu)`, `c_i = alpha^2 s_i + sigma^2`.

use super::check_cols;
use crate::error::{CoreError, Result};
use crate::schedule::NoiseSchedule;
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use ndarray::{Array2, ArrayView2};

/// A multivariate normal `N(mean, cov)` with a symmetric positive semi-definite covariance.
#[derive(Debug, Clone)]
pub struct Gaussian {
    mean: DVector<f64>,
    cov: DMatrix<f64>,
    pub(crate) eig_vals: DVector<f64>,
    pub(crate) eig_vecs: DMatrix<f64>,
}

impl Gaussian {
    /// Builds `N(mean, cov)`; `cov` is `d x d` row-major, symmetric and PSD (eigenvalues >= -1e-12).
    pub fn new(mean: Vec<f64>, cov: Vec<Vec<f64>>) -> Result<Self> {
        let d = mean.len();
        if d == 0 {
            return Err(CoreError::invalid("mean", "dimension must be at least 1"));
        }
        if cov.len() != d || cov.iter().any(|r| r.len() != d) {
            return Err(CoreError::ShapeMismatch {
                context: "Gaussian covariance",
                expected: vec![d, d],
                got: vec![cov.len(), cov.first().map_or(0, |r| r.len())],
            });
        }
        if mean
            .iter()
            .chain(cov.iter().flatten())
            .any(|v| !v.is_finite())
        {
            return Err(CoreError::invalid("mean/cov", "entries must be finite"));
        }
        let cov = DMatrix::from_fn(d, d, |i, j| cov[i][j]);
        if (&cov - cov.transpose()).abs().max() > 1e-10 * (1.0 + cov.abs().max()) {
            return Err(CoreError::invalid("cov", "must be symmetric"));
        }
        let eig = SymmetricEigen::new(cov.clone());
        if eig.eigenvalues.min() < -1e-12 * (1.0 + cov.abs().max()) {
            return Err(CoreError::invalid(
                "cov",
                format!(
                    "must be positive semi-definite (smallest eigenvalue {})",
                    eig.eigenvalues.min()
                ),
            ));
        }
        Ok(Gaussian {
            mean: DVector::from_vec(mean),
            eig_vals: eig.eigenvalues.map(|v| v.max(0.0)),
            eig_vecs: eig.eigenvectors,
            cov,
        })
    }

    /// `N(mean, s^2 I)`.
    pub fn isotropic(mean: Vec<f64>, std: f64) -> Result<Self> {
        let d = mean.len();
        let cov = (0..d)
            .map(|i| {
                (0..d)
                    .map(|j| if i == j { std * std } else { 0.0 })
                    .collect()
            })
            .collect();
        Self::new(mean, cov)
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The mean.
    pub fn mean(&self) -> &DVector<f64> {
        &self.mean
    }

    /// The covariance.
    pub fn cov(&self) -> &DMatrix<f64> {
        &self.cov
    }

    /// The diffused marginal at time `t`: `N(alpha mu, alpha^2 Sigma + sigma^2 I)`.
    pub fn marginal(&self, schedule: &dyn NoiseSchedule, t: f64) -> Gaussian {
        let (a, s) = (schedule.alpha(t), schedule.sigma(t));
        let d = self.dim();
        Gaussian {
            mean: &self.mean * a,
            cov: &self.cov * (a * a) + DMatrix::identity(d, d) * (s * s),
            eig_vals: self.eig_vals.map(|v| a * a * v + s * s),
            eig_vecs: self.eig_vecs.clone(),
        }
    }

    /// Draws `n` samples as rows, using `noise` for the standard normals.
    pub fn sample(&self, n: usize, noise: &mut crate::noise::HostNoise) -> Array2<f64> {
        let d = self.dim();
        let z = noise.normals(n * d);
        let sqrt_vals = self.eig_vals.map(f64::sqrt);
        let mut out = Array2::zeros((n, d));
        for i in 0..n {
            let zi = DVector::from_fn(d, |j, _| z[i * d + j] * sqrt_vals[j]);
            let xi = &self.mean + &self.eig_vecs * zi;
            for j in 0..d {
                out[[i, j]] = xi[j];
            }
        }
        out
    }

    /// The exact PF-ODE map: the state at time `t` of the trajectory that passes through each row
    /// of `x_s` at time `s`. Exact for every linear schedule, in either time direction.
    pub fn pf_ode_flow(
        &self,
        schedule: &dyn NoiseSchedule,
        s: f64,
        t: f64,
        x_s: &ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>> {
        check_cols(x_s, self.dim(), "Gaussian::pf_ode_flow input")?;
        let (a_s, s_s) = (schedule.alpha(s), schedule.sigma(s));
        let (a_t, s_t) = (schedule.alpha(t), schedule.sigma(t));
        let ratio = DVector::from_fn(self.dim(), |i, _| {
            let cs = a_s * a_s * self.eig_vals[i] + s_s * s_s;
            let ct = a_t * a_t * self.eig_vals[i] + s_t * s_t;
            (ct / cs).sqrt()
        });
        if ratio.iter().any(|r| !r.is_finite()) {
            return Err(CoreError::invalid(
                "s",
                format!("the PF-ODE map from t = {s} is singular (a zero-variance direction)"),
            ));
        }
        let m = &self.eig_vecs * DMatrix::from_diagonal(&ratio) * self.eig_vecs.transpose();
        let mut out = Array2::zeros(x_s.raw_dim());
        for (i, row) in x_s.rows().into_iter().enumerate() {
            let r = DVector::from_fn(self.dim(), |j, _| row[j] - a_s * self.mean[j]);
            let y = &m * r;
            for j in 0..self.dim() {
                out[[i, j]] = a_t * self.mean[j] + y[j];
            }
        }
        Ok(out)
    }

    /// Log-density of each row (errors if the covariance is singular).
    pub fn log_density(&self, x: &ArrayView2<'_, f64>) -> Result<Vec<f64>> {
        check_cols(x, self.dim(), "Gaussian::log_density input")?;
        let prec = self.precision()?;
        let logdet: f64 = self.eig_vals.iter().map(|v| v.ln()).sum();
        let d = self.dim() as f64;
        Ok(x.rows()
            .into_iter()
            .map(|row| {
                let r = DVector::from_fn(self.dim(), |j, _| row[j] - self.mean[j]);
                -0.5 * (r.dot(&(&prec * &r)) + logdet + d * (2.0 * std::f64::consts::PI).ln())
            })
            .collect())
    }

    fn precision(&self) -> Result<DMatrix<f64>> {
        if self.eig_vals.min() <= 0.0 {
            return Err(CoreError::invalid(
                "cov",
                "is singular; the density does not exist",
            ));
        }
        let inv = self.eig_vals.map(|v| 1.0 / v);
        Ok(&self.eig_vecs * DMatrix::from_diagonal(&inv) * self.eig_vecs.transpose())
    }

    /// The symmetric square root `cov^{1/2}`.
    pub fn cov_sqrt(&self) -> DMatrix<f64> {
        let r = self.eig_vals.map(f64::sqrt);
        &self.eig_vecs * DMatrix::from_diagonal(&r) * self.eig_vecs.transpose()
    }
}
