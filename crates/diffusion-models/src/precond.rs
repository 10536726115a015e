//! EDM preconditioning: wrap a raw network `F` into a denoiser
//! `D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma))`.
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Eq. (7) and Table 1 ("Ours" column), derived in App. B.6:
//! `c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)`,
//! `c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2)`,
//! `c_in = 1 / sqrt(sigma^2 + sigma_data^2)`, `c_noise = ln(sigma) / 4`, and the loss weight
//! `lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 = 1 / c_out^2` (Eq. (8)).
//! Reference code: `NVlabs/edm:training/networks.py:EDMPrecond` and `training/loss.py:EDMLoss`.
//!
//! `sigma` is EDM's noise level, i.e. `sigma(t) / alpha(t)` of a general schedule: a state
//! `x_t = alpha (x_0 + sigma_edm eps)` is first divided by `alpha` (see `TchDenoiser`).
//! The scalar coefficients come from `diffusion_core::weighting` (one formula in the workspace);
//! this module adds their per-sample tensor form.

use crate::error::{ModelError, Result};
use crate::nets::TimeNet;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// The EDM preconditioning coefficients for data of standard deviation `sigma_data`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EdmPrecond {
    /// Standard deviation of the data (0.5 for EDM's images).
    pub sigma_data: f64,
}

impl Default for EdmPrecond {
    fn default() -> Self {
        EdmPrecond { sigma_data: 0.5 }
    }
}

impl EdmPrecond {
    /// Preconditioning for data of standard deviation `sigma_data > 0`.
    pub fn new(sigma_data: f64) -> Result<Self> {
        if !(sigma_data.is_finite() && sigma_data > 0.0) {
            return Err(ModelError::invalid(
                "sigma_data",
                format!("must be finite and positive, got {sigma_data}"),
            ));
        }
        Ok(EdmPrecond { sigma_data })
    }

    /// The core coefficients at `sigma` (all NaN for a `sigma` that is not positive and finite).
    fn coeffs(&self, sigma: f64) -> diffusion_core::weighting::EdmPrecond {
        diffusion_core::weighting::EdmPrecond::new(sigma, self.sigma_data).unwrap_or(
            diffusion_core::weighting::EdmPrecond {
                c_skip: f64::NAN,
                c_out: f64::NAN,
                c_in: f64::NAN,
                c_noise: f64::NAN,
            },
        )
    }

    /// `c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)`.
    pub fn c_skip(&self, sigma: f64) -> f64 {
        self.coeffs(sigma).c_skip
    }

    /// `c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2)`.
    pub fn c_out(&self, sigma: f64) -> f64 {
        self.coeffs(sigma).c_out
    }

    /// `c_in = 1 / sqrt(sigma^2 + sigma_data^2)`.
    pub fn c_in(&self, sigma: f64) -> f64 {
        self.coeffs(sigma).c_in
    }

    /// `c_noise = ln(sigma) / 4`.
    pub fn c_noise(&self, sigma: f64) -> f64 {
        self.coeffs(sigma).c_noise
    }

    /// The loss weight `lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2`.
    pub fn loss_weight(&self, sigma: f64) -> f64 {
        diffusion_core::weighting::edm_loss_weight(sigma, self.sigma_data).unwrap_or(f64::NAN)
    }

    /// `D(x; sigma)` for states `x` (`[B, ...]`) and per-sample noise levels `sigma` (`[B]`,
    /// positive), in the kind of `x`. Gradients flow through `net` (call under `tch::no_grad`
    /// for inference).
    pub fn denoise(
        &self,
        net: &dyn TimeNet,
        x: &Tensor,
        sigma: &Tensor,
        class: Option<&Tensor>,
    ) -> Result<Tensor> {
        crate::nets::check_time(x, sigma, "EDM preconditioning")?;
        let mut shape = vec![-1i64];
        shape.extend(std::iter::repeat_n(1, x.dim().saturating_sub(1)));
        let s = sigma
            .to_kind(x.kind())
            .to_device(x.device())
            .reshape(&shape);
        let sd2 = self.sigma_data * self.sigma_data;
        let denom = s.square() + sd2;
        let c_skip = denom.reciprocal() * sd2;
        let c_out = &s * self.sigma_data / denom.sqrt();
        let c_in = denom.rsqrt();
        let c_noise = sigma.to_kind(x.kind()).to_device(x.device()).log() / 4.0;
        let f = net.forward_t(&(x * c_in), &c_noise, class)?;
        let f = f.to_kind(x.kind()).to_device(x.device());
        Ok(c_skip * x + c_out * f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coefficients_follow_table_1() {
        let p = EdmPrecond::new(0.5).unwrap();
        let s = 2.0;
        assert!((p.c_skip(s) - 0.25 / 4.25).abs() < 1e-15);
        assert!((p.c_out(s) - 1.0 / 4.25f64.sqrt()).abs() < 1e-15);
        assert!((p.c_in(s) - 1.0 / 4.25f64.sqrt()).abs() < 1e-15);
        assert!((p.c_noise(s) - 2f64.ln() / 4.0).abs() < 1e-15);
        assert!((p.loss_weight(s) - 4.25).abs() < 1e-12);
        assert!(EdmPrecond::new(0.0).is_err());
        assert!(EdmPrecond::new(f64::NAN).is_err());
    }

    #[test]
    fn network_input_and_target_have_unit_variance() {
        // The design principle of App. B.6: for data of variance sigma_data^2, the input
        // c_in (y + sigma n) and the effective target (y - c_skip x) / c_out have unit variance,
        // and lambda = 1 / c_out^2 makes the effective loss weight 1.
        for &sd in &[0.5, 2.0] {
            let p = EdmPrecond::new(sd).unwrap();
            for &s in &[0.01, 0.3, 1.0, 7.0, 80.0] {
                let var_x = sd * sd + s * s;
                assert!((p.c_in(s).powi(2) * var_x - 1.0).abs() < 1e-12);
                // Var(y - c_skip (y + s n)) = (1 - c_skip)^2 sd^2 + c_skip^2 s^2.
                let k = p.c_skip(s);
                let var_t = ((1.0 - k).powi(2) * sd * sd + k * k * s * s) / p.c_out(s).powi(2);
                assert!((var_t - 1.0).abs() < 1e-9, "sd {sd} sigma {s}: {var_t}");
                assert!((p.loss_weight(s) * p.c_out(s).powi(2) - 1.0).abs() < 1e-12);
            }
        }
    }
}
