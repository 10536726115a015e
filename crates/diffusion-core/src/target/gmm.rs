//! Gaussian-mixture targets with full covariances in any dimension: exact diffused log-density,
//! score and denoiser `E[x_0 | x_t]` at every time of every linear schedule.
//!
//! Paper: Song et al. (2021), "Score-Based Generative Modeling through Stochastic Differential
//! Equations", arXiv:2011.13456 (the oracle used to test its samplers); Karras et al. (2022),
//! arXiv:2206.00364, Eq. (3) (the ideal denoiser `D(x; sigma) = E[x_0 | x]`).
//!
//! For component `k` with weight `w_k`, mean `mu_k` and covariance `Sigma_k = U diag(l) U^T`,
//! `C_k(t) = alpha^2 Sigma_k + sigma^2 I`, the diffused density is `sum_k w_k N(x; alpha mu_k, C_k)`,
//! the score is `-sum_k r_k C_k^{-1} (x - alpha mu_k)` and the denoiser is
//! `sum_k r_k (mu_k + alpha Sigma_k C_k^{-1} (x - alpha mu_k))`, with posterior responsibilities `r_k`.

use super::{check_cols, Gaussian};
use crate::error::{CoreError, Result};
use crate::noise::HostNoise;

use crate::schedule::NoiseSchedule;

use nalgebra::{DMatrix, DVector};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// A mixture `sum_k w_k N(mu_k, Sigma_k)`.
#[derive(Debug, Clone)]
pub struct GaussianMixture {
    weights: Vec<f64>,
    components: Vec<Gaussian>,
}

/// The JSON form of a mixture: `{"weights": [..], "means": [[..]], "covariances": [[[..]]]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GmmSpec {
    /// Mixture weights (positive, summing to 1 within 1e-9).
    pub weights: Vec<f64>,
    /// Component means, one row each.
    pub means: Vec<Vec<f64>>,
    /// Component covariances, `d x d` each.
    pub covariances: Vec<Vec<Vec<f64>>>,
}

/// Per-time quantities of one component.
struct Diffused {
    log_w_norm: f64,
    mean_t: DVector<f64>,
    mean0: DVector<f64>,
    precision: DMatrix<f64>,
    gain: DMatrix<f64>,
}

impl GaussianMixture {
    /// Builds a mixture; errors on mismatched lengths, negative weights or weights that do not sum
    /// to 1, and on covariances that are not symmetric PSD.
    pub fn new(
        weights: Vec<f64>,
        means: Vec<Vec<f64>>,
        covariances: Vec<Vec<Vec<f64>>>,
    ) -> Result<Self> {
        if weights.is_empty() || weights.len() != means.len() || weights.len() != covariances.len()
        {
            return Err(CoreError::invalid(
                "weights/means/covariances",
                format!(
                    "need the same positive number of each, got {}, {}, {}",
                    weights.len(),
                    means.len(),
                    covariances.len()
                ),
            ));
        }
        if weights.iter().any(|w| !(*w > 0.0 && w.is_finite())) {
            return Err(CoreError::invalid("weights", "must be positive and finite"));
        }
        let total: f64 = weights.iter().sum();
        if (total - 1.0).abs() > 1e-9 {
            return Err(CoreError::invalid(
                "weights",
                format!("must sum to 1, sum to {total}"),
            ));
        }
        let d = means[0].len();
        let mut components = Vec::with_capacity(weights.len());
        for (m, c) in means.into_iter().zip(covariances) {
            if m.len() != d {
                return Err(CoreError::ShapeMismatch {
                    context: "mixture means (all components need one dimension)",
                    expected: vec![d],
                    got: vec![m.len()],
                });
            }
            components.push(Gaussian::new(m, c)?);
        }
        Ok(GaussianMixture {
            weights,
            components,
        })
    }

    /// Parses the JSON form ([`GmmSpec`]).
    pub fn from_json(text: &str) -> Result<Self> {
        let spec: GmmSpec = serde_json::from_str(text).map_err(|e| CoreError::Parse {
            what: "Gaussian-mixture JSON".into(),
            reason: e.to_string(),
        })?;
        Self::new(spec.weights, spec.means, spec.covariances)
    }

    /// Reads the JSON form from a file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)?;
        Self::from_json(&text).map_err(|e| match e {
            CoreError::Parse { reason, .. } => CoreError::Parse {
                what: format!("Gaussian-mixture JSON {}", path.display()),
                reason,
            },
            other => other,
        })
    }

    /// The JSON form.
    pub fn to_spec(&self) -> GmmSpec {
        GmmSpec {
            weights: self.weights.clone(),
            means: self
                .components
                .iter()
                .map(|c| c.mean().iter().copied().collect())
                .collect(),
            covariances: self
                .components
                .iter()
                .map(|c| {
                    c.cov()
                        .row_iter()
                        .map(|r| r.iter().copied().collect())
                        .collect()
                })
                .collect(),
        }
    }

    /// A single Gaussian as a one-component mixture.
    pub fn from_gaussian(g: Gaussian) -> Self {
        GaussianMixture {
            weights: vec![1.0],
            components: vec![g],
        }
    }

    /// The "8 Gaussians" toy: equal weights, means on a circle of `radius`, isotropic `std`.
    pub fn ring(k: usize, radius: f64, std: f64) -> Result<Self> {
        if k == 0 {
            return Err(CoreError::invalid("k", "need at least one component"));
        }
        let comps = (0..k)
            .map(|i| {
                let a = 2.0 * std::f64::consts::PI * i as f64 / k as f64;
                Gaussian::isotropic(vec![radius * a.cos(), radius * a.sin()], std)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GaussianMixture {
            weights: vec![1.0 / k as f64; k],
            components: comps,
        })
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.components[0].dim()
    }

    /// The weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The components.
    pub fn components(&self) -> &[Gaussian] {
        &self.components
    }

    /// Draws `n` samples as rows (component by inverse CDF on a uniform, then the Gaussian).
    pub fn sample(&self, n: usize, noise: &mut HostNoise) -> Array2<f64> {
        let d = self.dim();
        let mut out = Array2::zeros((n, d));
        for i in 0..n {
            let u = noise.uniform();
            let mut acc = 0.0;
            let mut k = self.weights.len() - 1;
            for (j, w) in self.weights.iter().enumerate() {
                acc += w;
                if u < acc {
                    k = j;
                    break;
                }
            }
            let x = self.components[k].sample(1, noise);
            out.row_mut(i).assign(&x.row(0));
        }
        out
    }

    /// The overall mean and covariance of the mixture.
    pub fn moments(&self) -> (DVector<f64>, DMatrix<f64>) {
        let d = self.dim();
        let mut mean = DVector::zeros(d);
        for (w, c) in self.weights.iter().zip(&self.components) {
            mean += c.mean() * *w;
        }
        let mut cov = DMatrix::zeros(d, d);
        for (w, c) in self.weights.iter().zip(&self.components) {
            let dm = c.mean() - &mean;
            cov += (c.cov() + &dm * dm.transpose()) * *w;
        }
        (mean, cov)
    }

    fn diffused(&self, schedule: &dyn NoiseSchedule, t: f64) -> Vec<Diffused> {
        let a = schedule.alpha(t);
        let d = self.dim() as f64;
        self.weights
            .iter()
            .zip(&self.components)
            .map(|(w, g)| {
                let m = g.marginal(schedule, t);
                let (vals, vecs) = m.eig();
                let base = g.eig().0;
                let logdet: f64 = vals.iter().map(|v| v.ln()).sum();
                let inv = vals.map(|v| 1.0 / v);
                let gain_diag = DVector::from_fn(vals.len(), |i, _| a * base[i] / vals[i]);
                Diffused {
                    log_w_norm: w.ln() - 0.5 * logdet - 0.5 * d * (2.0 * std::f64::consts::PI).ln(),
                    mean_t: m.mean().clone(),
                    mean0: g.mean().clone(),
                    precision: vecs * DMatrix::from_diagonal(&inv) * vecs.transpose(),
                    gain: vecs * DMatrix::from_diagonal(&gain_diag) * vecs.transpose(),
                }
            })
            .collect()
    }

    /// For each row: (log p_t(x), score, denoiser).
    fn evaluate(
        &self,
        schedule: &dyn NoiseSchedule,
        t: f64,
        x: &ArrayView2<'_, f64>,
    ) -> Result<(Vec<f64>, Array2<f64>, Array2<f64>)> {
        check_cols(x, self.dim(), "Gaussian-mixture input")?;
        if schedule.sigma(t) <= 0.0 {
            return Err(CoreError::invalid(
                "t",
                format!("the diffused mixture needs sigma(t) > 0, got t = {t}"),
            ));
        }
        let comps = self.diffused(schedule, t);
        let d = self.dim();
        let (n, k) = (x.nrows(), comps.len());
        let mut logp = vec![0.0; n];
        let mut score = Array2::zeros((n, d));
        let mut den = Array2::zeros((n, d));
        let mut logs = vec![0.0; k];
        let mut scores: Vec<DVector<f64>> = vec![DVector::zeros(d); k];
        let mut dens: Vec<DVector<f64>> = vec![DVector::zeros(d); k];
        for (i, row) in x.rows().into_iter().enumerate() {
            let xi = DVector::from_fn(d, |j, _| row[j]);
            for (c, comp) in comps.iter().enumerate() {
                let r = &xi - &comp.mean_t;
                let pr = &comp.precision * &r;
                logs[c] = comp.log_w_norm - 0.5 * r.dot(&pr);
                scores[c] = -pr;
                dens[c] = &comp.mean0 + &comp.gain * &r;
            }
            let mx = logs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = logs.iter().map(|l| (l - mx).exp()).sum();
            logp[i] = mx + z.ln();
            for c in 0..k {
                let resp = (logs[c] - mx).exp() / z;
                for j in 0..d {
                    score[[i, j]] += resp * scores[c][j];
                    den[[i, j]] += resp * dens[c][j];
                }
            }
        }
        Ok((logp, score, den))
    }

    /// `log p(x)` of each row under the mixture itself (the data level, no diffusion):
    /// `log sum_k w_k N(x; mu_k, Sigma_k)`, computed with a log-sum-exp over the components.
    /// Errors on a column mismatch and when a component's covariance is singular (that component
    /// has no density); use [`GaussianMixture::log_density_t`] at `sigma(t) > 0` for those.
    pub fn log_density(&self, x: &ArrayView2<'_, f64>) -> Result<Vec<f64>> {
        check_cols(x, self.dim(), "Gaussian-mixture log-density input")?;
        let per_comp = self
            .components
            .iter()
            .zip(&self.weights)
            .map(|(c, w)| Ok(c.log_density(x)?.into_iter().map(|l| l + w.ln()).collect()))
            .collect::<Result<Vec<Vec<f64>>>>()?;
        Ok((0..x.nrows())
            .map(|i| {
                let mx = per_comp
                    .iter()
                    .map(|l| l[i])
                    .fold(f64::NEG_INFINITY, f64::max);
                if !mx.is_finite() {
                    return mx;
                }
                mx + per_comp.iter().map(|l| (l[i] - mx).exp()).sum::<f64>().ln()
            })
            .collect())
    }

    /// `log p_t(x)` of each row under the diffused mixture (needs `sigma(t) > 0`).
    pub fn log_density_t(
        &self,
        schedule: &dyn NoiseSchedule,
        t: f64,
        x: &ArrayView2<'_, f64>,
    ) -> Result<Vec<f64>> {
        Ok(self.evaluate(schedule, t, x)?.0)
    }

    /// `grad_x log p_t(x)` of each row (needs `sigma(t) > 0`).
    pub fn score_t(
        &self,
        schedule: &dyn NoiseSchedule,
        t: f64,
        x: &ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>> {
        Ok(self.evaluate(schedule, t, x)?.1)
    }

    /// The ideal denoiser `E[x_0 | x_t = x]` of each row; at `sigma(t) = 0` it is `x / alpha`.
    pub fn denoise_t(
        &self,
        schedule: &dyn NoiseSchedule,
        t: f64,
        x: &ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>> {
        if schedule.sigma(t) <= 0.0 {
            check_cols(x, self.dim(), "Gaussian-mixture input")?;
            return Ok(x.mapv(|v| v / schedule.alpha(t)));
        }
        Ok(self.evaluate(schedule, t, x)?.2)
    }

    /// The exact denoiser of this mixture under `schedule`, usable by every sampler.
    pub fn denoiser<'a>(&'a self, schedule: &'a dyn NoiseSchedule) -> GmmDenoiser<'a> {
        super::Analytic::new(self, schedule)
    }
}

impl Gaussian {
    /// Eigenvalues and eigenvectors of the covariance.
    pub(crate) fn eig(&self) -> (&DVector<f64>, &DMatrix<f64>) {
        (&self.eig_vals, &self.eig_vecs)
    }
}

impl super::RowDenoiser for GaussianMixture {
    fn dim(&self) -> usize {
        GaussianMixture::dim(self)
    }
    fn denoise_rows(
        &self,
        schedule: &dyn NoiseSchedule,
        t: f64,
        x: &ArrayView2<'_, f64>,
    ) -> Result<Array2<f64>> {
        self.denoise_t(schedule, t, x)
    }
}

/// The exact denoiser of a [`GaussianMixture`] under a schedule (see [`super::Analytic`]).
pub type GmmDenoiser<'a> = super::Analytic<'a, GaussianMixture>;
