//! Stochastic interpolants `x_t = a(t) x_0 + b(t) x_1 + gamma(t) z` and their conditional
//! velocity targets.
//!
//! Paper: Albergo, Boffi & Vanden-Eijnden (2023), "Stochastic Interpolants: A Unifying Framework for
//! Flows and Diffusions", arXiv:2303.08797, Eq. (2.1) and (2.10): the velocity regressed by
//! flow matching is `d/dt x_t = a'(t) x_0 + b'(t) x_1 + gamma'(t) z`. With `gamma = 0` and
//! `a = 1 - t`, `b = t` this is rectified flow / conditional flow matching (Liu et al. 2022,
//! arXiv:2209.03003; Lipman et al. 2022, arXiv:2210.02747; Tong et al. 2023 I-CFM with constant
//! `gamma = sigma`, arXiv:2302.00482).

use crate::error::{BridgeError, Result};
use diffusion_core::State;

/// The coefficients of an interpolant on `t in [0, 1]` with `a(0) = b(1) = 1`, `a(1) = b(0) = 0`.
pub trait Interpolant: Send + Sync + std::fmt::Debug {
    /// `(a, b, gamma)` at `t`.
    fn coeffs(&self, t: f64) -> (f64, f64, f64);
    /// `(a', b', gamma')` at `t`.
    fn d_coeffs(&self, t: f64) -> (f64, f64, f64);

    /// The interpolated point `x_t`.
    fn point<S: State>(&self, x0: &S, x1: &S, z: &S, t: f64) -> S
    where
        Self: Sized,
    {
        let (a, b, g) = self.coeffs(t);
        x0.lincomb3(a, x1, b, z, g)
    }

    /// The conditional velocity `a' x_0 + b' x_1 + gamma' z` (the flow-matching target).
    fn velocity<S: State>(&self, x0: &S, x1: &S, z: &S, t: f64) -> S
    where
        Self: Sized,
    {
        let (da, db, dg) = self.d_coeffs(t);
        x0.lincomb3(da, x1, db, z, dg)
    }
}

fn check_sigma(sigma: f64) -> Result<()> {
    if sigma >= 0.0 && sigma.is_finite() {
        Ok(())
    } else {
        Err(BridgeError::InvalidParameter {
            name: "sigma",
            reason: format!("must be finite and >= 0, got {sigma}"),
        })
    }
}

/// `a = 1 - t`, `b = t`, `gamma = sigma` (constant; I-CFM) or
/// `gamma = sigma sqrt(t (1 - t))` (a Brownian-bridge-like interpolant), `sigma = 0` giving
/// rectified flow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearInterpolant {
    sigma: f64,
    bridge_noise: bool,
}

impl LinearInterpolant {
    /// Rectified flow / CFM with constant noise `sigma` (0 = deterministic path).
    pub fn constant_noise(sigma: f64) -> Result<Self> {
        check_sigma(sigma)?;
        Ok(LinearInterpolant {
            sigma,
            bridge_noise: false,
        })
    }
    /// Noise `sigma sqrt(t (1 - t))`, vanishing at both ends.
    pub fn bridge_noise(sigma: f64) -> Result<Self> {
        check_sigma(sigma)?;
        Ok(LinearInterpolant {
            sigma,
            bridge_noise: true,
        })
    }
}

impl Interpolant for LinearInterpolant {
    fn coeffs(&self, t: f64) -> (f64, f64, f64) {
        let g = if self.bridge_noise {
            self.sigma * (t * (1.0 - t)).max(0.0).sqrt()
        } else {
            self.sigma
        };
        (1.0 - t, t, g)
    }
    fn d_coeffs(&self, t: f64) -> (f64, f64, f64) {
        let dg = if self.bridge_noise {
            let r = (t * (1.0 - t)).max(1e-300).sqrt();
            self.sigma * (1.0 - 2.0 * t) / (2.0 * r)
        } else {
            0.0
        };
        (-1.0, 1.0, dg)
    }
}

/// The trigonometric (variance-preserving) interpolant `a = cos(pi t / 2)`, `b = sin(pi t / 2)`,
/// `gamma = 0` (Albergo & Vanden-Eijnden 2023, arXiv:2209.15571, Sec. 3; torchcfm's VP-CFM).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TrigInterpolant;

impl Interpolant for TrigInterpolant {
    fn coeffs(&self, t: f64) -> (f64, f64, f64) {
        let h = std::f64::consts::FRAC_PI_2 * t;
        (h.cos(), h.sin(), 0.0)
    }
    fn d_coeffs(&self, t: f64) -> (f64, f64, f64) {
        let h = std::f64::consts::FRAC_PI_2 * t;
        (
            -std::f64::consts::FRAC_PI_2 * h.sin(),
            std::f64::consts::FRAC_PI_2 * h.cos(),
            0.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn velocity_is_the_time_derivative_of_the_path_and_ends_are_exact() {
        let x0 = array![1.0, -2.0];
        let x1 = array![0.5, 3.0];
        let z = array![0.3, 0.7];
        let lin = LinearInterpolant::constant_noise(0.0).unwrap();
        let bri = LinearInterpolant::bridge_noise(0.5).unwrap();
        let cfm = LinearInterpolant::constant_noise(0.1).unwrap();
        let h = 1e-6;
        for t in [0.1, 0.37, 0.5, 0.9] {
            for (name, v, p1, p0) in [
                (
                    "linear",
                    lin.velocity(&x0, &x1, &z, t),
                    lin.point(&x0, &x1, &z, t + h),
                    lin.point(&x0, &x1, &z, t - h),
                ),
                (
                    "bridge",
                    bri.velocity(&x0, &x1, &z, t),
                    bri.point(&x0, &x1, &z, t + h),
                    bri.point(&x0, &x1, &z, t - h),
                ),
                (
                    "cfm",
                    cfm.velocity(&x0, &x1, &z, t),
                    cfm.point(&x0, &x1, &z, t + h),
                    cfm.point(&x0, &x1, &z, t - h),
                ),
                (
                    "trig",
                    TrigInterpolant.velocity(&x0, &x1, &z, t),
                    TrigInterpolant.point(&x0, &x1, &z, t + h),
                    TrigInterpolant.point(&x0, &x1, &z, t - h),
                ),
            ] {
                let fd = p1.lincomb(0.5 / h, &p0, -0.5 / h);
                assert!(
                    v.lincomb(1.0, &fd, -1.0).rms() < 1e-6,
                    "{name} at {t}: {v:?} vs {fd:?}"
                );
            }
        }
        assert_eq!(lin.point(&x0, &x1, &z, 0.0), x0);
        assert_eq!(lin.point(&x0, &x1, &z, 1.0), x1);
        assert_eq!(bri.point(&x0, &x1, &z, 1.0), x1);
        assert_eq!(lin.velocity(&x0, &x1, &z, 0.3), array![-0.5, 5.0]);
        assert!(LinearInterpolant::constant_noise(-1.0).is_err());
    }
}
