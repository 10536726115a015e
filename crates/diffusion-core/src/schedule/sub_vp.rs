//! The sub-variance-preserving (sub-VP) SDE of Score SDE.
//!
//! Paper: Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole (2021), "Score-Based Generative
//! Modeling through Stochastic Differential Equations", arXiv:2011.13456, Section 3.4 (the sub-VP
//! SDE) and Eq. (34) (its perturbation kernel), as in `score_sde` `sde_lib.py:subVPSDE`:
//! `dx = -1/2 beta(t) x dt + sqrt(beta(t) (1 - e^{-2 int_0^t beta})) dW` with the linear
//! `beta(t) = beta_min + t (beta_max - beta_min)` of the VP SDE. The mean coefficient is VP's,
//! `ln alpha(t) = -t^2 (beta_max - beta_min) / 4 - t beta_min / 2`, but the standard deviation is
//! `sigma(t) = 1 - alpha(t)^2` (variance `(1 - e^{-int beta})^2`), always below VP's.
//! So `f = -beta/2` and `g^2 = beta (1 - alpha^4)`. The inverse of lambda is closed-form:
//! `e^lambda = alpha / (1 - alpha^2)` gives `ln alpha = -asinh(e^{-lambda} / 2)`, then the VP quadratic.

use super::vp_linear::LinearBeta;
use super::NoiseSchedule;
use crate::error::Result;

/// Sub-VP SDE with linear `beta(t)` on `t in [0, t_max]` (default `beta_min = 0.1`,
/// `beta_max = 20`, `t_max = 1`, as in Score SDE).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SubVp(LinearBeta);

impl SubVp {
    /// A sub-VP schedule; needs `0 <= beta_min < beta_max` and `t_max > 0`.
    pub fn new(beta_min: f64, beta_max: f64, t_max: f64) -> Result<Self> {
        LinearBeta::new(beta_min, beta_max, t_max).map(SubVp)
    }

    /// `beta(t)`.
    pub fn beta(&self, t: f64) -> f64 {
        self.0.beta(t)
    }

    fn log_alpha(&self, t: f64) -> f64 {
        self.0.log_alpha(t)
    }

    /// `1 - alpha^2 = -expm1(2 ln alpha)`, accurate for small t.
    fn one_minus_alpha_sq(&self, t: f64) -> f64 {
        (-(2.0 * self.log_alpha(t)).exp_m1()).max(0.0)
    }
}

impl NoiseSchedule for SubVp {
    fn name(&self) -> String {
        self.0.name("sub-vp")
    }
    fn t_range(&self) -> (f64, f64) {
        (0.0, self.0.t_max)
    }
    fn alpha(&self, t: f64) -> f64 {
        self.log_alpha(t).exp()
    }
    fn sigma(&self, t: f64) -> f64 {
        self.one_minus_alpha_sq(t)
    }
    fn lambda(&self, t: f64) -> f64 {
        self.log_alpha(t) - self.one_minus_alpha_sq(t).ln()
    }
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        // alpha solves e^lambda (1 - alpha^2) = alpha, i.e. alpha = 2 / (z + sqrt(z^2 + 4)) with
        // z = e^{-lambda}, which is ln alpha = -asinh(z / 2). For lambda < -20 the correction to
        // asinh(z/2) ~ ln z is below 1e-17, and e^{-lambda} could overflow.
        let log_alpha = if lambda < -20.0 {
            lambda
        } else {
            -(0.5 * (-lambda).exp()).asinh()
        };
        // Solve a t^2 + b t = c for t >= 0 with a = (beta_max - beta_min)/4, b = beta_min/2.
        let c = -log_alpha;
        let a = 0.25 * (self.0.beta_max - self.0.beta_min);
        let b = 0.5 * self.0.beta_min;
        if c <= 1.0 {
            2.0 * c / (b + (b * b + 4.0 * a * c).sqrt())
        } else {
            // Divide through by sqrt(c) so that c = inf gives t = inf, not NaN.
            let rc = c.sqrt();
            2.0 * rc / (b / rc + (b * b / c + 4.0 * a).sqrt())
        }
    }
    fn drift(&self, t: f64) -> f64 {
        -0.5 * self.beta(t)
    }
    fn diffusion_sq(&self, t: f64) -> f64 {
        // beta (1 - alpha^4) = beta (1 - alpha^2)(1 + alpha^2).
        let a2 = (2.0 * self.log_alpha(t)).exp();
        self.beta(t) * self.one_minus_alpha_sq(t) * (1.0 + a2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::CoreError;
    use crate::schedule::testing::check_schedule;
    use crate::schedule::VpLinear;
    use proptest::prelude::*;

    #[test]
    fn sub_vp_is_consistent() {
        let s = SubVp::default();
        let ts: Vec<f64> = (1..=50).map(|i| i as f64 / 50.0).collect();
        check_schedule(&s, &ts);
        check_schedule(&s, &[2e-5, 1e-4, 1e-3]);
        assert_eq!(s.alpha(0.0), 1.0);
        assert_eq!(s.sigma(0.0), 0.0);
        assert_eq!(s.lambda(0.0), f64::INFINITY);
        assert_eq!(s.t_of_lambda(f64::INFINITY), 0.0);
        assert_eq!(s.t_of_lambda(f64::NEG_INFINITY), f64::INFINITY);
    }

    #[test]
    fn sub_vp_has_vp_mean_and_smaller_std() {
        let s = SubVp::default();
        let vp = VpLinear::default();
        for i in 1..=20 {
            let t = i as f64 / 20.0;
            let a = s.alpha(t);
            assert_eq!(a, vp.alpha(t));
            assert!((s.sigma(t) - (1.0 - a * a)).abs() < 1e-15);
            assert!(s.sigma(t) <= vp.sigma(t));
            assert_eq!(s.drift(t), vp.drift(t));
            // Score SDE's subVPSDE: g^2 = beta(t) (1 - exp(-2 beta_0 t - (beta_1 - beta_0) t^2)).
            let disc = 1.0 - (-2.0 * 0.1 * t - 19.9 * t * t).exp();
            assert!((s.diffusion_sq(t) - s.beta(t) * disc).abs() < 1e-12);
        }
        // sigma(1) = 1 - exp(-10.05).
        assert!((s.sigma(1.0) - (1.0 - (-10.05_f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn sub_vp_rejects_bad_parameters() {
        assert!(SubVp::new(20.0, 0.1, 1.0).is_err());
        assert!(SubVp::new(-1.0, 1.0, 1.0).is_err());
        assert!(SubVp::new(0.1, 20.0, 0.0).is_err());
        assert!(SubVp::new(f64::NAN, 20.0, 1.0).is_err());
        assert!(matches!(
            SubVp::new(0.1, 20.0, -1.0),
            Err(CoreError::InvalidParameter { .. })
        ));
    }

    #[test]
    fn sub_vp_builds_from_spec() {
        let s = crate::schedule::build("sub-vp:beta_min=0.2,beta_max=10").unwrap();
        assert_eq!(s.name(), "sub-vp(0.2,10,1)");
        assert!(crate::schedule::build("sub-vp:beta_max=0.01").is_err());
        assert!(crate::schedule::build("sub-vp:beta=1").is_err());
    }

    proptest! {
        #[test]
        fn sub_vp_lambda_decreasing_and_invertible(a in 1e-6f64..1.0, b in 1e-6f64..1.0) {
            let s = SubVp::default();
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            prop_assume!(hi - lo > 1e-9);
            prop_assert!(s.lambda(lo) > s.lambda(hi));
            prop_assert!((s.t_of_lambda(s.lambda(a)) - a).abs() < 1e-10 * (1.0 + a));
        }
    }
}
