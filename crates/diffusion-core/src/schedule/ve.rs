//! The variance-exploding (VE) SDE of Score SDE with geometric noise levels.
//!
//! Paper: Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole (2021), "Score-Based Generative
//! Modeling through Stochastic Differential Equations", arXiv:2011.13456, Section 3.4 (the VE SDE
//! `dx = sqrt(d[sigma^2]/dt) dW`, the continuous limit of SMLD/NCSN) with the geometric
//! `sigma(t) = sigma_min (sigma_max / sigma_min)^t`, `t in [0, 1]`, as in `score_sde`
//! `sde_lib.py:VESDE`. Here `alpha = 1`, `f = 0` and `g^2 = 2 ln(sigma_max / sigma_min) sigma(t)^2`.
//!
//! Convention: `sigma(0) = sigma_min > 0`, so `t = 0` is not the clean data but data plus
//! `sigma_min` noise, and `lambda(0) = -ln sigma_min` is finite. Like Score SDE (which uses
//! `sigma(t)` as the perturbation std and ignores the `sigma(0)^2` offset of the exact SDE marginal
//! `sigma(t)^2 - sigma(0)^2`) we take `sigma(t)` itself as the marginal std. Samplers that want to
//! reach `sigma = 0` must denoise once more at the end. `t_of_lambda` is the exact inverse and
//! extrapolates outside `[0, 1]`; `t_of_noise_ratio(0)` returns 0.

use super::{check_range, NoiseSchedule};
use crate::error::{CoreError, Result};

/// VE SDE with `sigma(t) = sigma_min (sigma_max / sigma_min)^t` on `t in [0, 1]` (default
/// `sigma_min = 0.01`, `sigma_max = 50`, Score SDE's CIFAR-10 setting).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ve {
    sigma_min: f64,
    sigma_max: f64,
    log_sigma_min: f64,
    log_ratio: f64,
}

impl Default for Ve {
    fn default() -> Self {
        Ve::new(0.01, 50.0).expect("default parameters are valid")
    }
}

impl Ve {
    /// A VE schedule; needs finite `0 < sigma_min < sigma_max`.
    pub fn new(sigma_min: f64, sigma_max: f64) -> Result<Self> {
        if sigma_min.is_nan() || sigma_min <= 0.0 {
            return Err(CoreError::invalid(
                "sigma_min",
                format!("must be > 0, got {sigma_min}"),
            ));
        }
        check_range("sigma_min < sigma_max", sigma_min, sigma_max)?;
        Ok(Ve {
            sigma_min,
            sigma_max,
            log_sigma_min: sigma_min.ln(),
            log_ratio: (sigma_max / sigma_min).ln(),
        })
    }

    /// The noise level at `t = 0`.
    pub fn sigma_min(&self) -> f64 {
        self.sigma_min
    }

    /// The noise level at `t = 1`.
    pub fn sigma_max(&self) -> f64 {
        self.sigma_max
    }
}

impl NoiseSchedule for Ve {
    fn name(&self) -> String {
        format!("ve({},{})", self.sigma_min, self.sigma_max)
    }
    fn t_range(&self) -> (f64, f64) {
        (0.0, 1.0)
    }
    fn alpha(&self, _t: f64) -> f64 {
        1.0
    }
    fn sigma(&self, t: f64) -> f64 {
        (self.log_sigma_min + t * self.log_ratio).exp()
    }
    fn lambda(&self, t: f64) -> f64 {
        -(self.log_sigma_min + t * self.log_ratio)
    }
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        (-lambda - self.log_sigma_min) / self.log_ratio
    }
    fn drift(&self, _t: f64) -> f64 {
        0.0
    }
    fn diffusion_sq(&self, t: f64) -> f64 {
        2.0 * self.log_ratio * self.sigma(t).powi(2)
    }
    fn noise_ratio(&self, t: f64) -> f64 {
        self.sigma(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testing::check_schedule;
    use proptest::prelude::*;

    #[test]
    fn ve_is_consistent() {
        let s = Ve::default();
        let ts: Vec<f64> = (0..=50).map(|i| i as f64 / 50.0).collect();
        check_schedule(&s, &ts[1..50]);
        assert!((s.sigma(0.0) - 0.01).abs() < 1e-17);
        assert!((s.sigma(1.0) - 50.0).abs() < 1e-12);
        assert!((s.sigma(0.5) - (0.01f64 * 50.0).sqrt()).abs() < 1e-14);
        assert_eq!(s.alpha(0.3), 1.0);
        assert!(s.lambda(0.0).is_finite());
        assert_eq!(s.t_of_noise_ratio(0.0), 0.0);
        assert!((s.t_of_noise_ratio(50.0) - 1.0).abs() < 1e-15);
        // Score SDE's VESDE: g = sigma(t) sqrt(2 (ln sigma_max - ln sigma_min)).
        let g = s.sigma(0.7) * (2.0 * (50.0f64.ln() - 0.01f64.ln())).sqrt();
        assert!((s.diffusion_sq(0.7) - g * g).abs() < 1e-12 * g * g);
    }

    #[test]
    fn ve_rejects_bad_parameters() {
        assert!(Ve::new(0.0, 50.0).is_err());
        assert!(Ve::new(-1.0, 50.0).is_err());
        assert!(Ve::new(50.0, 0.01).is_err());
        assert!(Ve::new(1.0, 1.0).is_err());
        assert!(Ve::new(0.01, f64::INFINITY).is_err());
        assert!(matches!(
            Ve::new(f64::NAN, 1.0),
            Err(CoreError::InvalidParameter {
                name: "sigma_min",
                ..
            })
        ));
    }

    #[test]
    fn ve_builds_from_spec() {
        let s = crate::schedule::build("ve:sigma_min=0.002,sigma_max=80").unwrap();
        assert_eq!(s.name(), "ve(0.002,80)");
        assert!((s.sigma(1.0) - 80.0).abs() < 1e-12);
        assert_eq!(crate::schedule::build("ve").unwrap().name(), "ve(0.01,50)");
        assert!(crate::schedule::build("ve:sigma_min=0").is_err());
    }

    proptest! {
        #[test]
        fn ve_lambda_decreasing_and_invertible(a in 0.0f64..1.0, b in 0.0f64..1.0) {
            let s = Ve::default();
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            prop_assume!(hi - lo > 1e-9);
            prop_assert!(s.lambda(lo) > s.lambda(hi));
            prop_assert!((s.t_of_lambda(s.lambda(a)) - a).abs() < 1e-12);
        }
    }
}
