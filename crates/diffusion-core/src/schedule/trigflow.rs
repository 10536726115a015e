//! TrigFlow: the trigonometric interpolant `x_t = cos(t) x_0 + sin(t) sigma_d eps` of sCM.
//!
//! Paper: Lu & Song (2024), "Simplifying, Stabilizing and Scaling Continuous-Time Consistency
//! Models", arXiv:2410.11081, Section 3 (TrigFlow: `x_t = cos(t) x_0 + sin(t) z`,
//! `z ~ N(0, sigma_d^2 I)`, `t in [0, pi/2]`). With a standard normal `eps` the coefficients are
//! `alpha(t) = cos t`, `sigma(t) = sigma_d sin t`; the default `sigma_d = 1` gives the
//! variance-preserving `alpha^2 + sigma^2 = 1` on data scaled to unit variance. Then
//! `lambda = -ln(sigma_d tan t)`, `t_of_lambda = atan(e^{-lambda} / sigma_d)`, the EDM noise level is
//! `sigma / alpha = sigma_d tan t` (the paper's `t = arctan(sigma / sigma_d)`), `f = -tan t` and
//! `g^2 = 2 sigma_d^2 tan t`.
//!
//! `alpha` is evaluated as `sin(pi/2 - t)` above `pi/4`, so `alpha(pi/2) = 0` exactly (not `6e-17`):
//! at the upper end `lambda = -inf`, `f = -inf` and `g^2 = +inf`, without NaN.

use super::NoiseSchedule;
use crate::error::{CoreError, Result};
use std::f64::consts::{FRAC_PI_2, FRAC_PI_4};

/// TrigFlow on `t in [0, pi/2]` (default `sigma_d = 1`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrigFlow {
    sigma_d: f64,
}

impl Default for TrigFlow {
    fn default() -> Self {
        TrigFlow { sigma_d: 1.0 }
    }
}

impl TrigFlow {
    /// A TrigFlow schedule with data standard deviation `sigma_d` (finite, `> 0`).
    pub fn new(sigma_d: f64) -> Result<Self> {
        if !(sigma_d > 0.0 && sigma_d.is_finite()) {
            return Err(CoreError::invalid(
                "sigma_d",
                format!("must be finite and > 0, got {sigma_d}"),
            ));
        }
        Ok(TrigFlow { sigma_d })
    }

    /// The data standard deviation `sigma_d`.
    pub fn sigma_d(&self) -> f64 {
        self.sigma_d
    }

    /// `tan t`, computed as `sin t / alpha(t)` so that it is `+inf` at `t = pi/2`.
    fn tan(&self, t: f64) -> f64 {
        t.sin() / self.alpha(t)
    }
}

impl NoiseSchedule for TrigFlow {
    fn name(&self) -> String {
        format!("trigflow({})", self.sigma_d)
    }
    fn t_range(&self) -> (f64, f64) {
        (0.0, FRAC_PI_2)
    }
    fn alpha(&self, t: f64) -> f64 {
        if t > FRAC_PI_4 {
            (FRAC_PI_2 - t).sin()
        } else {
            t.cos()
        }
    }
    fn sigma(&self, t: f64) -> f64 {
        self.sigma_d * t.sin()
    }
    fn lambda(&self, t: f64) -> f64 {
        self.alpha(t).ln() - t.sin().ln() - self.sigma_d.ln()
    }
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        ((-lambda).exp() / self.sigma_d).atan()
    }
    fn drift(&self, t: f64) -> f64 {
        -self.tan(t)
    }
    fn diffusion_sq(&self, t: f64) -> f64 {
        2.0 * self.sigma_d * self.sigma_d * self.tan(t)
    }
    fn noise_ratio(&self, t: f64) -> f64 {
        self.sigma_d * self.tan(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testing::check_schedule;
    use proptest::prelude::*;

    #[test]
    fn trigflow_is_variance_preserving_and_consistent() {
        let s = TrigFlow::default();
        let ts: Vec<f64> = (1..100).map(|i| FRAC_PI_2 * i as f64 / 100.0).collect();
        check_schedule(&s, &ts);
        check_schedule(&s, &[1e-8, 1e-4, FRAC_PI_2 - 1e-3]);
        for &t in &ts {
            assert!((s.alpha(t).powi(2) + s.sigma(t).powi(2) - 1.0).abs() < 1e-15);
            assert!((s.alpha(t) - t.cos()).abs() < 1e-15);
        }
        assert!(s.lambda(FRAC_PI_4).abs() < 1e-15);
        assert!((s.t_of_lambda(0.0) - FRAC_PI_4).abs() < 1e-16);
        // sCM's default T = arctan(sigma_max / sigma_d) = arctan(80 / 0.5).
        let scm = TrigFlow::new(0.5).unwrap();
        let t_max = (80.0f64 / 0.5).atan();
        assert!((scm.noise_ratio(t_max) - 80.0).abs() < 1e-10);
        assert!((scm.t_of_noise_ratio(80.0) - t_max).abs() < 1e-15);
        check_schedule(&scm, &ts);
    }

    #[test]
    fn trigflow_endpoints_are_not_nan() {
        let s = TrigFlow::default();
        assert_eq!(s.alpha(0.0), 1.0);
        assert_eq!(s.sigma(0.0), 0.0);
        assert_eq!(s.lambda(0.0), f64::INFINITY);
        assert_eq!(s.alpha(FRAC_PI_2), 0.0);
        assert_eq!(s.sigma(FRAC_PI_2), 1.0);
        assert_eq!(s.lambda(FRAC_PI_2), f64::NEG_INFINITY);
        assert_eq!(s.drift(FRAC_PI_2), f64::NEG_INFINITY);
        assert_eq!(s.diffusion_sq(FRAC_PI_2), f64::INFINITY);
        assert_eq!(s.t_of_lambda(f64::NEG_INFINITY), FRAC_PI_2);
        assert_eq!(s.t_of_lambda(f64::INFINITY), 0.0);
        assert_eq!(s.t_of_noise_ratio(f64::INFINITY), FRAC_PI_2);
    }

    #[test]
    fn trigflow_rejects_bad_parameters() {
        assert!(TrigFlow::new(0.0).is_err());
        assert!(TrigFlow::new(-0.5).is_err());
        assert!(matches!(
            TrigFlow::new(f64::NAN),
            Err(CoreError::InvalidParameter {
                name: "sigma_d",
                ..
            })
        ));
    }

    #[test]
    fn trigflow_builds_from_spec() {
        let s = crate::schedule::build("trigflow:sigma_d=0.5").unwrap();
        assert_eq!(s.name(), "trigflow(0.5)");
        assert_eq!(
            crate::schedule::build("trigflow").unwrap().name(),
            "trigflow(1)"
        );
        assert!(crate::schedule::build("trigflow:sigma_d=-1").is_err());
    }

    proptest! {
        #[test]
        fn trigflow_lambda_decreasing_and_invertible(a in 1e-9f64..(FRAC_PI_2 - 1e-4), b in 1e-9f64..(FRAC_PI_2 - 1e-4)) {
            let s = TrigFlow::default();
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            prop_assume!(hi - lo > 1e-9);
            prop_assert!(s.lambda(lo) > s.lambda(hi));
            prop_assert!((s.t_of_lambda(s.lambda(a)) - a).abs() < 1e-12);
        }
    }
}
