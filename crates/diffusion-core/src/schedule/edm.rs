//! The EDM / variance-exploding parameterization with `sigma(t) = t`, `alpha(t) = 1`.
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Table 1 and Eq. (4): `sigma(t) = t`, `s(t) = 1`, so the
//! forward SDE is `dx = sqrt(2 t) dW` (`f = 0`, `g^2 = 2 t`) and the PF-ODE is
//! `dx/dt = (x - D(x; t)) / t`.

use super::{check_range, NoiseSchedule};
use crate::error::Result;

/// EDM schedule on `t = sigma in [0, sigma_max]` (default `sigma_max = 80`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edm {
    sigma_max: f64,
}

impl Default for Edm {
    fn default() -> Self {
        Edm { sigma_max: 80.0 }
    }
}

impl Edm {
    /// An EDM schedule with time range `[0, sigma_max]`.
    pub fn new(sigma_max: f64) -> Result<Self> {
        check_range("sigma_max", 0.0, sigma_max)?;
        Ok(Edm { sigma_max })
    }
}

impl NoiseSchedule for Edm {
    fn name(&self) -> String {
        format!("edm({})", self.sigma_max)
    }
    fn t_range(&self) -> (f64, f64) {
        (0.0, self.sigma_max)
    }
    fn alpha(&self, _t: f64) -> f64 {
        1.0
    }
    fn sigma(&self, t: f64) -> f64 {
        t
    }
    fn lambda(&self, t: f64) -> f64 {
        -t.ln()
    }
    fn t_of_lambda(&self, lambda: f64) -> f64 {
        (-lambda).exp()
    }
    fn drift(&self, _t: f64) -> f64 {
        0.0
    }
    fn diffusion_sq(&self, t: f64) -> f64 {
        2.0 * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testing::check_schedule;

    #[test]
    fn edm_schedule_is_consistent() {
        let s = Edm::default();
        let ts: Vec<f64> = (0..40)
            .map(|i| 0.002 * (80.0_f64 / 0.002).powf(i as f64 / 39.0))
            .collect();
        check_schedule(&s, &ts);
        assert_eq!(s.noise_ratio(3.5), 3.5);
        assert!(Edm::new(-1.0).is_err());
    }
}
