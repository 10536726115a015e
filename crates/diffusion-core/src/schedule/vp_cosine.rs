//! The variance-preserving cosine schedule of improved DDPM, in continuous time.
//!
//! Paper: Nichol & Dhariwal (2021), "Improved Denoising Diffusion Probabilistic Models",
//! arXiv:2102.09672, Eq. (17): `alpha_bar(t) = f(t) / f(0)`, `f(t) = cos^2((t + s) / (1 + s) * pi/2)`
//! with `s = 0.008`. Here `alpha(t) = sqrt(alpha_bar(t))` on a continuous `t in [0, t_max]` and
//! `sigma = sqrt(1 - alpha^2)`, as in DPM-Solver's `NoiseScheduleVP('cosine')` (Lu et al. 2022,
//! arXiv:2206.00927), which stops at `t_max = 0.9946` because `alpha -> 0` and `beta(t) -> inf`
//! as `t -> 1`. With `theta(t) = (t + s) / (1 + s) * pi/2`:
//! `ln alpha = ln cos(theta(t)) - ln cos(theta(0))`, `f(t) = -pi / (2 (1 + s)) tan(theta(t))` and
//! `g^2 = beta(t) = -2 f(t)`. The inverse of lambda is closed-form (an `acos`).

use super::vp_linear::{vp_lambda, vp_sigma};
use super::NoiseSchedule;
use crate::error::{CoreError, Result};
use std::f64::consts::FRAC_PI_2;

/// Continuous VP cosine schedule on `t in [0, t_max]` (default `s = 0.008`, `t_max = 0.9946`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpCosine {
    s: f64,
    t_max: f64,
    /// `ln sin(phi(0))` with `phi(t) = pi/2 - theta(t) = (1 - t) / (1 + s) * pi/2`.
    log_alpha_ref: f64,
}

impl Default for VpCosine {
    fn default() -> Self {
        VpCosine::new(0.008, 0.9946).expect("default parameters are valid")
    }
}

impl VpCosine {
    /// A VP cosine schedule; needs a finite offset `s >= 0` and `0 < t_max < 1` (at `t = 1` the
    /// signal vanishes and the drift is infinite).
    pub fn new(s: f64, t_max: f64) -> Result<Self> {
        if !(s.is_finite() && s >= 0.0) {
            return Err(CoreError::invalid(
                "s",
                format!("must be finite and >= 0, got {s}"),
            ));
        }
        if !(t_max > 0.0 && t_max < 1.0) {
            return Err(CoreError::invalid(
                "t_max",
                format!("must lie in (0, 1), got {t_max}"),
            ));
        }
        Ok(VpCosine {
            s,
            t_max,
            log_alpha_ref: (FRAC_PI_2 / (1.0 + s)).sin().ln(),
        })
    }

    /// The offset `s`.
    pub fn s(&self) -> f64 {
        self.s
    }

    /// `beta(t) = pi / (1 + s) * tan(theta(t))`, the VP SDE's noise rate.
    pub fn beta(&self, t: f64) -> f64 {
        -2.0 * self.drift(t)
    }

    fn scale(&self) -> f64 {
        FRAC_PI_2 / (1.0 + self.s)
    }

    fn log_alpha(&self, t: f64) -> f64 {
        if t <= 0.5 {
            // cos(theta0 + d) / cos(theta0) = 1 - 2 sin^2(d/2) - tan(theta0) sin(d): no cancellation
            // between two nearly equal logarithms at small t.
            let d = t * self.scale();
            let tan0 = (self.s * self.scale()).tan();
            (-2.0 * (0.5 * d).sin().powi(2) - tan0 * d.sin()).ln_1p()
        } else {
            // cos(theta) = sin(pi/2 - theta), with pi/2 - theta = (1 - t) * scale computed exactly.
            ((1.0 - t) * self.scale()).sin().ln() - self.log_alpha_ref
        }
    }
}

impl NoiseSchedule for VpCosine {
    fn name(&self) -> String {
        format!("vp-cosine({},{})", self.s, self.t_max)
    }
    fn t_range(&self) -> (f64, f64) {
        (0.0, self.t_max)
    }
    fn alpha(&self, t: f64) -> f64 {
        self.log_alpha(t).exp()
    }
    fn sigma(&self, t: f64) -> f64 {
        vp_sigma(self.log_alpha(t))
    }
    fn lambda(&self, t: f64) -> f64 {
        vp_lambda(self.log_alpha(t))
    }
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        if lambda == f64::INFINITY {
            return 0.0;
        }
        // alpha^2 = 1 / (1 + e^{-2 lambda}), so ln alpha = -softplus(-2 lambda) / 2.
        let log_alpha = -0.5 * softplus(-2.0 * lambda);
        // sin(phi) = alpha sin(phi(0)), phi = (1 - t) * scale.
        let phi = (log_alpha + self.log_alpha_ref).exp().min(1.0).asin();
        1.0 - phi / self.scale()
    }
    fn drift(&self, t: f64) -> f64 {
        let phi = (1.0 - t) * self.scale();
        -self.scale() * phi.cos() / phi.sin()
    }
    fn diffusion_sq(&self, t: f64) -> f64 {
        -2.0 * self.drift(t)
    }
}

/// `ln(1 + e^x)` without overflow.
pub(crate) fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testing::check_schedule;
    use proptest::prelude::*;

    #[test]
    fn vp_cosine_is_variance_preserving_and_consistent() {
        let s = VpCosine::default();
        let ts: Vec<f64> = (1..=60).map(|i| 0.9946 * i as f64 / 60.0).collect();
        check_schedule(&s, &ts);
        check_schedule(&s, &[2e-5, 1e-4, 1e-3]);
        for &t in &ts {
            assert!((s.alpha(t).powi(2) + s.sigma(t).powi(2) - 1.0).abs() < 1e-14);
        }
        assert_eq!(s.alpha(0.0), 1.0);
        assert_eq!(s.sigma(0.0), 0.0);
        assert_eq!(s.lambda(0.0), f64::INFINITY);
        assert_eq!(s.t_of_lambda(f64::INFINITY), 0.0);
        assert_eq!(s.t_range(), (0.0, 0.9946));
    }

    #[test]
    fn vp_cosine_matches_iddpm_formula() {
        let s = VpCosine::default();
        let f = |t: f64| ((t + 0.008) / 1.008 * FRAC_PI_2).cos();
        for t in [0.01, 0.25, 0.5, 0.75, 0.9946] {
            let want = f(t) / f(0.0);
            assert!(
                (s.alpha(t) - want).abs() < 1e-14,
                "t={t}: {} vs {want}",
                s.alpha(t)
            );
        }
        assert!((s.alpha(0.5) - 0.702_740_058_941_169).abs() < 1e-12);
        assert!((s.alpha(0.9946) - 0.008_415_534_959_361).abs() < 1e-12);
        // beta(t) = pi/(1+s) tan(theta(t)).
        let t = 0.3;
        let want = std::f64::consts::PI / 1.008 * ((t + 0.008) / 1.008 * FRAC_PI_2).tan();
        assert!((s.beta(t) - want).abs() < 1e-12 * want);
    }

    #[test]
    fn vp_cosine_rejects_bad_parameters() {
        assert!(VpCosine::new(-0.1, 0.99).is_err());
        assert!(VpCosine::new(f64::NAN, 0.99).is_err());
        assert!(VpCosine::new(0.008, 1.0).is_err());
        assert!(VpCosine::new(0.008, 0.0).is_err());
        assert!(VpCosine::new(0.0, 0.5).is_ok());
        let e = VpCosine::new(0.008, 2.0).unwrap_err();
        assert!(matches!(
            e,
            CoreError::InvalidParameter { name: "t_max", .. }
        ));
    }

    #[test]
    fn vp_cosine_builds_from_spec() {
        let s = crate::schedule::build("vp-cosine:s=0.01,t_max=0.99").unwrap();
        assert_eq!(s.t_range(), (0.0, 0.99));
        assert_eq!(s.name(), "vp-cosine(0.01,0.99)");
        let d = crate::schedule::build("vp-cosine").unwrap();
        assert_eq!(d.name(), VpCosine::default().name());
        assert!(crate::schedule::build("vp-cosine:t_max=1").is_err());
    }

    proptest! {
        #[test]
        fn vp_cosine_lambda_decreasing_and_invertible(a in 1e-6f64..0.99, b in 1e-6f64..0.99) {
            let s = VpCosine::default();
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            prop_assume!(hi - lo > 1e-9);
            prop_assert!(s.lambda(lo) > s.lambda(hi));
            prop_assert!((s.t_of_lambda(s.lambda(a)) - a).abs() < 1e-10);
        }
    }
}
