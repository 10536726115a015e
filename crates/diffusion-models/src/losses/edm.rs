//! The EDM training loss: log-normal noise levels and the `lambda(sigma)` weighting of a
//! preconditioned denoiser.
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Eq. (2) and (8), Table 1 ("Ours": `ln sigma ~
//! N(P_mean, P_std^2)`, `P_mean = -1.2`, `P_std = 1.2`, `lambda = (sigma^2 + sigma_data^2) /
//! (sigma sigma_data)^2`). Reference: `NVlabs/edm:training/loss.py:EDMLoss`.
//!
//! Per sample: `lambda(sigma) * mean((D(x0 + sigma n; sigma) - x0)^2)` with `D` the
//! preconditioned network ([`EdmPrecond::denoise`]). EDM sums over the data dimensions; this
//! averages, which only rescales the loss by the dimension.

use super::{check_batch, mean_per_sample, normals_like, per_row, vector, Objective};
use crate::denoiser::Parameterization;
use crate::error::{ModelError, Result};
use crate::nets::TimeNet;
use crate::precond::EdmPrecond;
use diffusion_core::schedule::Edm;
use diffusion_core::{HostNoise, NoiseSchedule};
use tch::Tensor;

/// The EDM loss (see the module documentation).
#[derive(Debug, Clone)]
pub struct EdmLoss {
    precond: EdmPrecond,
    p_mean: f64,
    p_std: f64,
    schedule: Edm,
}

impl EdmLoss {
    /// The loss with `ln sigma ~ N(p_mean, p_std^2)`; the network is sampled under the EDM
    /// schedule on `[0, sigma_max]`.
    pub fn new(precond: EdmPrecond, p_mean: f64, p_std: f64, sigma_max: f64) -> Result<Self> {
        EdmPrecond::new(precond.sigma_data)?;
        if !(p_mean.is_finite() && p_std.is_finite() && p_std > 0.0) {
            return Err(ModelError::invalid(
                "p_mean/p_std",
                format!("need finite values with p_std > 0, got {p_mean}, {p_std}"),
            ));
        }
        Ok(EdmLoss {
            precond,
            p_mean,
            p_std,
            schedule: Edm::new(sigma_max)?,
        })
    }

    /// The paper's defaults: `sigma_data = 0.5`, `P_mean = -1.2`, `P_std = 1.2`, `sigma_max = 80`.
    pub fn paper() -> Self {
        EdmLoss {
            precond: EdmPrecond::default(),
            p_mean: -1.2,
            p_std: 1.2,
            schedule: Edm::default(),
        }
    }

    /// The preconditioning.
    pub fn precond(&self) -> EdmPrecond {
        self.precond
    }

    /// Per-sample losses `[B]` at noise levels `sigma` (one per sample, positive) and noise `n`.
    pub fn per_sample(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        sigma: &[f64],
        n: &Tensor,
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        check_batch(x0, n, sigma.len(), "EDM loss")?;
        if let Some(s) = sigma.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(ModelError::invalid(
                "sigma",
                format!("noise levels must be positive, got {s}"),
            ));
        }
        let y = x0 + per_row(sigma, x0) * n;
        let d = self.precond.denoise(net, &y, &vector(sigma, x0), class)?;
        let w: Vec<f64> = sigma.iter().map(|&s| self.precond.loss_weight(s)).collect();
        Ok(vector(&w, x0) * mean_per_sample(&(d - x0).square()))
    }
}

impl Objective for EdmLoss {
    fn name(&self) -> String {
        format!(
            "edm(sigma_data {}, P_mean {}, P_std {})",
            self.precond.sigma_data, self.p_mean, self.p_std
        )
    }

    fn loss(
        &self,
        net: &dyn TimeNet,
        x0: &Tensor,
        class: Option<&Tensor>,
        noise: &mut HostNoise,
    ) -> Result<Tensor> {
        let b = *x0.size().first().unwrap_or(&0) as usize;
        let sigma: Vec<f64> = noise
            .normals(b)
            .iter()
            .map(|z| (self.p_mean + self.p_std * z).exp())
            .collect();
        let n = normals_like(noise, x0);
        Ok(self.per_sample(net, x0, &sigma, &n, class)?.mean(x0.kind()))
    }

    fn parameterization(&self) -> Parameterization {
        Parameterization::Edm(self.precond)
    }

    fn schedule(&self) -> &dyn NoiseSchedule {
        &self.schedule
    }
    fn into_schedule(self: Box<Self>) -> Box<dyn NoiseSchedule> {
        Box::new(self.schedule)
    }
}
