//! EDM's preconditioning, loss weight and log-normal training noise levels.
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Table 1 ("Ours" column) and Appendix B.6:
//! `D(x; sigma) = c_skip x + c_out F(c_in x; c_noise)` with
//! `c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)`,
//! `c_out = sigma sigma_data / sqrt(sigma^2 + sigma_data^2)`,
//! `c_in = 1 / sqrt(sigma^2 + sigma_data^2)`, `c_noise = ln(sigma) / 4`; loss weight
//! `lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 = 1 / c_out^2`; training
//! levels `ln sigma ~ N(P_mean, P_std^2)` with `P_mean = -1.2`, `P_std = 1.2`,
//! `sigma_data = 0.5`. Here `sigma` is the EDM noise level (`sigma / alpha` of a
//! schedule, [`crate::NoiseSchedule::noise_ratio`]).

use crate::error::{CoreError, Result};
use crate::noise::HostNoise;

fn check_sigma_pair(sigma: f64, sigma_data: f64) -> Result<()> {
    if !(sigma > 0.0 && sigma.is_finite()) {
        return Err(CoreError::invalid(
            "sigma",
            format!("must be positive and finite, got {sigma}"),
        ));
    }
    if !(sigma_data > 0.0 && sigma_data.is_finite()) {
        return Err(CoreError::invalid(
            "sigma_data",
            format!("must be positive and finite, got {sigma_data}"),
        ));
    }
    Ok(())
}

/// EDM's loss weight `lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2`, which
/// makes the weighted loss of the preconditioned network `F` unit-weighted (`lambda c_out^2 = 1`).
pub fn edm_loss_weight(sigma: f64, sigma_data: f64) -> Result<f64> {
    check_sigma_pair(sigma, sigma_data)?;
    Ok((sigma * sigma + sigma_data * sigma_data) / (sigma * sigma_data).powi(2))
}

/// The four preconditioning coefficients of EDM (Table 1) at one noise level.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdmPrecond {
    /// Skip connection weight `sigma_data^2 / (sigma^2 + sigma_data^2)`.
    pub c_skip: f64,
    /// Output scale `sigma sigma_data / sqrt(sigma^2 + sigma_data^2)`.
    pub c_out: f64,
    /// Input scale `1 / sqrt(sigma^2 + sigma_data^2)`.
    pub c_in: f64,
    /// Noise conditioning `ln(sigma) / 4`.
    pub c_noise: f64,
}

impl EdmPrecond {
    /// The coefficients at noise level `sigma > 0` for data of standard deviation `sigma_data > 0`
    /// (EDM: 0.5).
    pub fn new(sigma: f64, sigma_data: f64) -> Result<Self> {
        check_sigma_pair(sigma, sigma_data)?;
        let n2 = sigma * sigma + sigma_data * sigma_data;
        Ok(EdmPrecond {
            c_skip: sigma_data * sigma_data / n2,
            c_out: sigma * sigma_data / n2.sqrt(),
            c_in: 1.0 / n2.sqrt(),
            c_noise: 0.25 * sigma.ln(),
        })
    }
}

/// EDM's training distribution of noise levels: `ln sigma ~ N(p_mean, p_std^2)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogNormalSigma {
    p_mean: f64,
    p_std: f64,
}

impl Default for LogNormalSigma {
    /// EDM's `P_mean = -1.2`, `P_std = 1.2`.
    fn default() -> Self {
        LogNormalSigma {
            p_mean: -1.2,
            p_std: 1.2,
        }
    }
}

impl LogNormalSigma {
    /// Log-normal noise levels; needs a finite `p_mean` and `p_std > 0`.
    pub fn new(p_mean: f64, p_std: f64) -> Result<Self> {
        if !p_mean.is_finite() {
            return Err(CoreError::invalid(
                "p_mean",
                format!("must be finite, got {p_mean}"),
            ));
        }
        if !(p_std > 0.0 && p_std.is_finite()) {
            return Err(CoreError::invalid(
                "p_std",
                format!("must be positive and finite, got {p_std}"),
            ));
        }
        Ok(LogNormalSigma { p_mean, p_std })
    }

    /// `n` noise levels `exp(p_mean + p_std z)`, `z ~ N(0, 1)` from `noise`.
    pub fn sample(&self, noise: &mut HostNoise, n: usize) -> Vec<f64> {
        noise
            .normals(n)
            .into_iter()
            .map(|z| (self.p_mean + self.p_std * z).exp())
            .collect()
    }

    /// The density of `sigma` (0 for `sigma <= 0`).
    pub fn density(&self, sigma: f64) -> f64 {
        if sigma.is_nan() || sigma <= 0.0 {
            return 0.0;
        }
        let z = (sigma.ln() - self.p_mean) / self.p_std;
        (-0.5 * z * z).exp() / (sigma * self.p_std * (2.0 * std::f64::consts::PI).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditioning_gives_unit_variance_inputs_and_targets() {
        let sd = 0.5;
        for &sigma in &[0.002, 0.1, 0.5, 2.0, 80.0] {
            let c = EdmPrecond::new(sigma, sd).unwrap();
            // Var(c_in (x0 + sigma n)) = 1 for Var(x0) = sigma_data^2.
            assert!((c.c_in.powi(2) * (sd * sd + sigma * sigma) - 1.0).abs() < 1e-12);
            // The effective target (x0 - c_skip (x0 + sigma n)) / c_out has unit variance.
            let var_t =
                ((1.0 - c.c_skip).powi(2) * sd * sd + (c.c_skip * sigma).powi(2)) / c.c_out.powi(2);
            assert!((var_t - 1.0).abs() < 1e-9, "sigma {sigma}: {var_t}");
            // lambda(sigma) c_out^2 = 1.
            let w = edm_loss_weight(sigma, sd).unwrap();
            assert!((w * c.c_out.powi(2) - 1.0).abs() < 1e-12);
            assert!((c.c_noise - sigma.ln() / 4.0).abs() < 1e-15);
        }
        // sigma = sigma_data: c_skip = 1/2, c_out = c_in^-1 / 2 = sigma_data / sqrt 2.
        let c = EdmPrecond::new(0.5, 0.5).unwrap();
        assert!((c.c_skip - 0.5).abs() < 1e-15);
        assert!((c.c_out - 0.5 / 2f64.sqrt()).abs() < 1e-15);
        assert!((edm_loss_weight(0.5, 0.5).unwrap() - 8.0).abs() < 1e-12);
        assert!(EdmPrecond::new(0.0, 0.5).is_err());
        assert!(edm_loss_weight(1.0, -0.5).is_err());
    }

    #[test]
    fn log_normal_levels_have_the_stated_moments() {
        let d = LogNormalSigma::default();
        let n = 20_000;
        let logs: Vec<f64> = d
            .sample(&mut HostNoise::new(11), n)
            .iter()
            .map(|s| s.ln())
            .collect();
        let mean = logs.iter().sum::<f64>() / n as f64;
        let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        // Standard errors: 1.2 / sqrt(n) = 0.0085 for the mean, ~0.012 for the variance 1.44.
        assert!((mean + 1.2).abs() < 0.035, "{mean}");
        assert!((var - 1.44).abs() < 0.06, "{var}");
        // The density integrates to 1 (trapezoid in ln sigma).
        let (a, b, m) = (-10.0f64, 8.0f64, 4000);
        let h = (b - a) / m as f64;
        let total: f64 = (0..=m)
            .map(|i| {
                let u = a + i as f64 * h;
                let w = if i == 0 || i == m { 0.5 } else { 1.0 };
                w * d.density(u.exp()) * u.exp() * h
            })
            .sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert!(LogNormalSigma::new(0.0, 0.0).is_err());
        assert_eq!(d.density(-1.0), 0.0);
    }
}
