//! The affine rate `beta(t) = beta_0 + beta_1 t` and its integral `B(t)`, the one time change shared
//! by the augmented-space and mean-reverting processes.
//!
//! Paper: Dockhorn, Vahdat & Kreis (2022), "Score-Based Generative Modeling with Critically-Damped
//! Langevin Diffusion", arXiv:2112.07068, App. B (`beta(t) = beta_0 + beta_1 t`,
//! `B(t) = beta_0 t + beta_1 t^2 / 2`). The same affine form is PSLD's (Pandey & Mandt 2023,
//! arXiv:2303.01748: `beta_min + t (beta_max - beta_min)`), FDM's (Wu et al. 2023, arXiv:2306.06991:
//! `beta_min t + beta_d t^2 / 2` as `B`) and Grad-TTS's (Popov et al. 2021, arXiv:2105.06337, Eq. 2).
//! Note CLD's `beta_1` is the slope, not `beta_max`.

use crate::error::{CoreError, Result};

/// `beta(t) = beta_0 + beta_1 t` on `t >= 0`, with `beta_0, beta_1 >= 0` and `beta_0 + beta_1 > 0`
/// (so `B(t)` is strictly increasing for `t > 0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffineBeta {
    beta0: f64,
    beta1: f64,
}

impl AffineBeta {
    /// `beta(t) = beta0 + beta1 t`; needs finite `beta0 >= 0`, `beta1 >= 0`, `beta0 + beta1 > 0`.
    pub fn new(beta0: f64, beta1: f64) -> Result<Self> {
        if !(beta0.is_finite() && beta0 >= 0.0) {
            return Err(CoreError::invalid(
                "beta0",
                format!("must be finite and >= 0, got {beta0}"),
            ));
        }
        if !(beta1.is_finite() && beta1 >= 0.0) {
            return Err(CoreError::invalid(
                "beta1",
                format!("must be finite and >= 0, got {beta1}"),
            ));
        }
        if beta0 + beta1 <= 0.0 {
            return Err(CoreError::invalid(
                "beta0 + beta1",
                "must be > 0 (a zero rate never diffuses)",
            ));
        }
        Ok(AffineBeta { beta0, beta1 })
    }

    /// A constant rate `beta(t) = beta`.
    pub fn constant(beta: f64) -> Result<Self> {
        Self::new(beta, 0.0)
    }

    /// The Score-SDE / PSLD / Grad-TTS form `beta(t) = beta_min + t (beta_max - beta_min)` on
    /// `t in [0, 1]`; needs `0 <= beta_min <= beta_max`, `beta_max > 0`.
    pub fn from_range(beta_min: f64, beta_max: f64) -> Result<Self> {
        Self::new(beta_min, beta_max - beta_min)
    }

    /// `beta_0`, the rate at `t = 0`.
    pub fn beta0(&self) -> f64 {
        self.beta0
    }

    /// `beta_1`, the slope.
    pub fn beta1(&self) -> f64 {
        self.beta1
    }

    /// `beta(t)`.
    pub fn beta(&self, t: f64) -> f64 {
        self.beta0 + self.beta1 * t
    }

    /// `B(t) = int_0^t beta = beta_0 t + beta_1 t^2 / 2`.
    pub fn integral(&self, t: f64) -> f64 {
        t * (self.beta0 + 0.5 * self.beta1 * t)
    }

    /// `B(t) - B(s) = int_s^t beta`.
    pub fn integral_between(&self, s: f64, t: f64) -> f64 {
        (t - s) * (self.beta0 + 0.5 * self.beta1 * (t + s))
    }

    /// The inverse of [`AffineBeta::integral`] on `t >= 0`: the `t` with `B(t) = b` (`b >= 0`;
    /// negative `b` maps to 0). Uses the cancellation-free root `2b / (beta_0 + sqrt(beta_0^2 + 2 beta_1 b))`.
    pub fn inverse_integral(&self, b: f64) -> f64 {
        if b <= 0.0 {
            return 0.0;
        }
        2.0 * b / (self.beta0 + (self.beta0 * self.beta0 + 2.0 * self.beta1 * b).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_matches_quadrature_and_inverts() {
        let b = AffineBeta::new(0.1, 19.9).unwrap();
        // Simpson's rule is exact for the quadratic B.
        let t = 0.7;
        let simpson = t / 6.0 * (b.beta(0.0) + 4.0 * b.beta(t / 2.0) + b.beta(t));
        assert!((b.integral(t) - simpson).abs() < 1e-13);
        assert!((b.integral_between(0.2, t) - (b.integral(t) - b.integral(0.2))).abs() < 1e-13);
        for &t in &[0.0, 1e-6, 0.3, 1.0, 5.0] {
            assert!((b.inverse_integral(b.integral(t)) - t).abs() < 1e-12 * (1.0 + t));
        }
        let c = AffineBeta::constant(4.0).unwrap();
        assert!((c.inverse_integral(2.0) - 0.5).abs() < 1e-15);
        assert_eq!(AffineBeta::from_range(0.05, 20.0).unwrap().beta1(), 19.95);
    }

    #[test]
    fn rejects_bad_rates() {
        assert!(AffineBeta::new(-1.0, 1.0).is_err());
        assert!(AffineBeta::new(1.0, -1.0).is_err());
        assert!(AffineBeta::new(0.0, 0.0).is_err());
        assert!(AffineBeta::new(f64::NAN, 1.0).is_err());
        assert!(AffineBeta::from_range(2.0, 1.0).is_err());
    }
}
