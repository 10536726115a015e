//! The linear (rectified-flow / conditional-OT flow-matching) interpolant `x_t = (1 - t) x_0 + t eps`.
//!
//! Paper: Liu, Gong & Liu (2022), "Flow Straight and Fast: Learning to Generate and Transfer Data
//! with Rectified Flow", arXiv:2209.03003, Eq. (1) (`X_t = t X_1 + (1 - t) X_0`); Lipman, Chen,
//! Ben-Hamu, Nickel & Le (2022), "Flow Matching for Generative Modeling", arXiv:2210.02747,
//! Eq. (20)-(23) (the OT path, here with `sigma_min = 0`). Both papers put the data at `t = 1`;
//! this module reverses time so that `t = 0` is data, like every schedule of this crate:
//! `alpha(t) = 1 - t`, `sigma(t) = t` on `[0, 1]`; `lambda = ln(1 - t) - ln t`, with closed-form
//! inverse `t = 1 / (1 + e^lambda)`. The SDE with these marginals has `f = -1 / (1 - t)` and
//! `g^2 = 2 t / (1 - t)`.
//!
//! At `t = 1` the signal vanishes: `alpha = 0`, `lambda = -inf`, `f = -inf`, `g^2 = +inf` and
//! `sigma / alpha = +inf`, all without NaN; `t_of_lambda(-inf) = 1` and `t_of_lambda(+inf) = 0`.
//! Samplers that start at pure noise integrate the velocity `eps - x_0` from `t = 1`.

use super::NoiseSchedule;

/// The rectified-flow linear interpolant on `t in [0, 1]` (no parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RectifiedFlow;

impl RectifiedFlow {
    /// The linear interpolant.
    pub fn new() -> Self {
        RectifiedFlow
    }
}

impl NoiseSchedule for RectifiedFlow {
    fn name(&self) -> String {
        "flow".to_string()
    }
    fn t_range(&self) -> (f64, f64) {
        (0.0, 1.0)
    }
    fn alpha(&self, t: f64) -> f64 {
        1.0 - t
    }
    fn sigma(&self, t: f64) -> f64 {
        t
    }
    fn lambda(&self, t: f64) -> f64 {
        (-t).ln_1p() - t.ln()
    }
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        1.0 / (1.0 + lambda.exp())
    }
    fn drift(&self, t: f64) -> f64 {
        -1.0 / (1.0 - t)
    }
    fn diffusion_sq(&self, t: f64) -> f64 {
        2.0 * t / (1.0 - t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testing::check_schedule;
    use proptest::prelude::*;

    #[test]
    fn flow_is_consistent() {
        let s = RectifiedFlow::new();
        let ts: Vec<f64> = (1..100).map(|i| i as f64 / 100.0).collect();
        check_schedule(&s, &ts);
        check_schedule(&s, &[1e-8, 1e-4, 0.999]);
        for &t in &ts {
            assert!((s.alpha(t) + s.sigma(t) - 1.0).abs() < 1e-15);
        }
        assert_eq!(s.lambda(0.5), 0.0);
        assert_eq!(s.t_of_lambda(0.0), 0.5);
        assert!((s.noise_ratio(0.75) - 3.0).abs() < 1e-15);
        // lambda(0.2) = ln 4.
        assert!((s.lambda(0.2) - 4.0f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn flow_endpoints_are_not_nan() {
        let s = RectifiedFlow::new();
        assert_eq!(s.alpha(1.0), 0.0);
        assert_eq!(s.lambda(1.0), f64::NEG_INFINITY);
        assert_eq!(s.lambda(0.0), f64::INFINITY);
        assert_eq!(s.t_of_lambda(f64::NEG_INFINITY), 1.0);
        assert_eq!(s.t_of_lambda(f64::INFINITY), 0.0);
        assert_eq!(s.noise_ratio(1.0), f64::INFINITY);
        assert_eq!(s.t_of_noise_ratio(f64::INFINITY), 1.0);
        assert_eq!(s.t_of_noise_ratio(0.0), 0.0);
        assert_eq!(s.drift(1.0), f64::NEG_INFINITY);
        assert_eq!(s.diffusion_sq(1.0), f64::INFINITY);
        assert_eq!(s.drift(0.0), -1.0);
        assert_eq!(s.diffusion_sq(0.0), 0.0);
        // Extreme lambdas stay in range.
        assert_eq!(s.t_of_lambda(800.0), 0.0);
        assert_eq!(s.t_of_lambda(-800.0), 1.0);
    }

    #[test]
    fn flow_builds_from_spec() {
        let s = crate::schedule::build("flow").unwrap();
        assert_eq!(s.name(), "flow");
        assert_eq!(s.t_range(), (0.0, 1.0));
        assert!(crate::schedule::build("flow:shift=3").is_err());
    }

    proptest! {
        #[test]
        fn flow_lambda_decreasing_and_invertible(a in 1e-9f64..1.0, b in 1e-9f64..1.0) {
            let s = RectifiedFlow::new();
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            prop_assume!(hi - lo > 1e-9);
            prop_assert!(s.lambda(lo) > s.lambda(hi));
            prop_assert!((s.t_of_lambda(s.lambda(a)) - a).abs() < 1e-14);
        }
    }
}
