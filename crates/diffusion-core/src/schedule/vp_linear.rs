//! The variance-preserving SDE with a linear beta(t) (DDPM's continuous-time limit).
//!
//! Paper: Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole (2021), "Score-Based Generative
//! Modeling through Stochastic Differential Equations", arXiv:2011.13456, Eq. (11) and (33):
//! `dx = -1/2 beta(t) x dt + sqrt(beta(t)) dW`, `beta(t) = beta_min + t (beta_max - beta_min)`,
//! `ln alpha(t) = -t^2 (beta_max - beta_min) / 4 - t beta_min / 2`, `sigma^2 = 1 - alpha^2`.
//! The closed-form inverse of lambda follows Lu et al. (2022), arXiv:2206.00927, Appendix (DPM-Solver
//! `NoiseScheduleVP.inverse_lambda`).

use super::vp_cosine::softplus;
use super::{check_range, NoiseSchedule};
use crate::error::{CoreError, Result};

/// The linear `beta(t) = beta_min + t (beta_max - beta_min)` on `t in [0, t_max]` shared by the VP
/// and sub-VP SDEs, with its integral `ln alpha(t) = -t^2 (beta_max - beta_min) / 4 - t beta_min / 2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LinearBeta {
    pub(crate) beta_min: f64,
    pub(crate) beta_max: f64,
    pub(crate) t_max: f64,
}

impl Default for LinearBeta {
    fn default() -> Self {
        LinearBeta {
            beta_min: 0.1,
            beta_max: 20.0,
            t_max: 1.0,
        }
    }
}

impl LinearBeta {
    /// Needs `0 <= beta_min < beta_max` and `t_max > 0`.
    pub(crate) fn new(beta_min: f64, beta_max: f64, t_max: f64) -> Result<Self> {
        if beta_min.is_nan() || beta_min < 0.0 {
            return Err(CoreError::invalid(
                "beta_min",
                format!("must be >= 0, got {beta_min}"),
            ));
        }
        check_range("beta_min < beta_max", beta_min, beta_max)?;
        check_range("t_max", 0.0, t_max)?;
        Ok(LinearBeta {
            beta_min,
            beta_max,
            t_max,
        })
    }

    /// `beta(t)`.
    pub(crate) fn beta(&self, t: f64) -> f64 {
        self.beta_min + t * (self.beta_max - self.beta_min)
    }

    /// `ln alpha(t) = -1/2 int_0^t beta`.
    pub(crate) fn log_alpha(&self, t: f64) -> f64 {
        -0.25 * t * t * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min
    }

    /// `(name, beta_min, beta_max, t_max)` as a schedule name.
    pub(crate) fn name(&self, kind: &str) -> String {
        format!("{kind}({},{},{})", self.beta_min, self.beta_max, self.t_max)
    }
}

/// The VP standard deviation `sqrt(1 - alpha^2) = sqrt(-expm1(2 ln alpha))`, accurate for small t.
pub(crate) fn vp_sigma(log_alpha: f64) -> f64 {
    (-(2.0 * log_alpha).exp_m1()).max(0.0).sqrt()
}

/// The VP log-SNR `ln alpha - ln sqrt(1 - alpha^2)`.
pub(crate) fn vp_lambda(log_alpha: f64) -> f64 {
    log_alpha - 0.5 * (-(2.0 * log_alpha).exp_m1()).max(0.0).ln()
}

/// VP SDE with linear `beta(t)` on `t in [0, t_max]` (default `beta_min = 0.1`, `beta_max = 20`,
/// `t_max = 1`, as in Score SDE and DPM-Solver).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VpLinear(LinearBeta);

impl VpLinear {
    /// A VP-linear schedule; needs `0 <= beta_min < beta_max` and `t_max > 0`.
    pub fn new(beta_min: f64, beta_max: f64, t_max: f64) -> Result<Self> {
        LinearBeta::new(beta_min, beta_max, t_max).map(VpLinear)
    }

    /// `beta(t)`.
    pub fn beta(&self, t: f64) -> f64 {
        self.0.beta(t)
    }
}

impl NoiseSchedule for VpLinear {
    fn name(&self) -> String {
        self.0.name("vp-linear")
    }
    fn t_range(&self) -> (f64, f64) {
        (0.0, self.0.t_max)
    }
    fn alpha(&self, t: f64) -> f64 {
        self.0.log_alpha(t).exp()
    }
    fn sigma(&self, t: f64) -> f64 {
        vp_sigma(self.0.log_alpha(t))
    }
    fn lambda(&self, t: f64) -> f64 {
        vp_lambda(self.0.log_alpha(t))
    }
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        if lambda == f64::INFINITY {
            return 0.0;
        }
        // ln(1 + e^{-2 lambda}) computed stably.
        let softplus = softplus(-2.0 * lambda);
        let (beta_min, beta_max) = (self.0.beta_min, self.0.beta_max);
        let db = beta_max - beta_min;
        let tmp = 2.0 * db * softplus;
        let delta = beta_min * beta_min + tmp;
        tmp / (delta.sqrt() + beta_min) / db
    }
    fn drift(&self, t: f64) -> f64 {
        -0.5 * self.beta(t)
    }
    fn diffusion_sq(&self, t: f64) -> f64 {
        self.beta(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testing::check_schedule;

    #[test]
    fn vp_linear_is_variance_preserving_and_consistent() {
        let s = VpLinear::default();
        let ts: Vec<f64> = (1..=50).map(|i| i as f64 / 50.0).collect();
        check_schedule(&s, &ts);
        for &t in &ts {
            assert!((s.alpha(t).powi(2) + s.sigma(t).powi(2) - 1.0).abs() < 1e-14);
        }
        assert_eq!(s.sigma(0.0), 0.0);
        assert_eq!(s.alpha(0.0), 1.0);
        // alpha(1) for (0.1, 20): exp(-(19.9/4 + 0.05)) = exp(-5.025).
        assert!((s.alpha(1.0) - (-5.025_f64).exp()).abs() < 1e-15);
        assert_eq!(s.t_of_lambda(f64::INFINITY), 0.0);
    }

    #[test]
    fn vp_linear_rejects_bad_parameters() {
        assert!(VpLinear::new(20.0, 0.1, 1.0).is_err());
        assert!(VpLinear::new(-1.0, 1.0, 1.0).is_err());
        assert!(VpLinear::new(0.1, 20.0, 0.0).is_err());
        assert!(VpLinear::new(f64::NAN, 20.0, 1.0).is_err());
    }
}
