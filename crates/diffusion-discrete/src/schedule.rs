//! Masking schedules `alpha(t)`: the probability that a token is still clean at time `t in [0, 1]`.
//!
//! Paper: Shi, Han, Wang, Doucet & Titsias (2024), "Simplified and Generalized Masked Diffusion
//! for Discrete Data" (MD4), arXiv:2406.04329, Sec. 2 and Table 3 (linear and cosine schedules);
//! Sahoo et al. (2024), "Simple and Effective Masked Diffusion Language Models" (MDLM),
//! arXiv:2406.07524, Sec. 3. `alpha(0) = 1`, `alpha(1) = 0`, `alpha` decreasing.

use crate::error::{DiscreteError, Result};

/// A masking schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaskSchedule {
    /// `alpha(t) = 1 - t`.
    Linear,
    /// `alpha(t) = 1 - cos(pi/2 (1 - t))`.
    Cosine,
    /// `alpha(t) = 1 - t^p` (MD4's polynomial family), `p > 0`.
    Polynomial(f64),
}

impl MaskSchedule {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        match *self {
            MaskSchedule::Polynomial(p) if !(p > 0.0 && p.is_finite()) => {
                Err(DiscreteError::InvalidParameter {
                    name: "p",
                    reason: format!("the polynomial exponent must be positive, got {p}"),
                })
            }
            _ => Ok(()),
        }
    }

    /// `alpha(t)`, clamped to `t in [0, 1]`.
    pub fn alpha(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match *self {
            MaskSchedule::Linear => 1.0 - t,
            MaskSchedule::Cosine => 1.0 - (std::f64::consts::FRAC_PI_2 * (1.0 - t)).cos(),
            MaskSchedule::Polynomial(p) => 1.0 - t.powf(p),
        }
    }

    /// `d alpha / dt`.
    pub fn d_alpha(&self, t: f64) -> f64 {
        let t = t.clamp(0.0, 1.0);
        match *self {
            MaskSchedule::Linear => -1.0,
            MaskSchedule::Cosine => {
                -std::f64::consts::FRAC_PI_2 * (std::f64::consts::FRAC_PI_2 * (1.0 - t)).sin()
            }
            MaskSchedule::Polynomial(p) => -p * t.powf(p - 1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_run_from_one_to_zero_with_the_right_derivative() {
        for s in [
            MaskSchedule::Linear,
            MaskSchedule::Cosine,
            MaskSchedule::Polynomial(2.0),
        ] {
            s.validate().unwrap();
            assert!((s.alpha(0.0) - 1.0).abs() < 1e-15);
            assert!(s.alpha(1.0).abs() < 1e-15);
            for i in 1..20 {
                let t = i as f64 / 20.0;
                let h = 1e-6;
                let fd = (s.alpha(t + h) - s.alpha(t - h)) / (2.0 * h);
                assert!((s.d_alpha(t) - fd).abs() < 1e-6, "{s:?} at {t}");
                assert!(s.d_alpha(t) < 0.0);
            }
        }
        assert!(MaskSchedule::Polynomial(0.0).validate().is_err());
    }
}
