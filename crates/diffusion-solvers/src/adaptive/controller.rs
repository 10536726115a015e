//! Step-size controllers: decide, from the scaled error estimate of an attempted step, whether to
//! accept it and how long the next step should be.
//!
//! Paper: Söderlind (2003), "Digital Filters in Adaptive Time-Stepping", ACM Trans. Math. Softw.
//! 29(1):1-26 (the PID filter
//! `h_{n+1} = h_n (1/e_n)^{b1} (1/e_{n-1})^{b2} (1/e_{n-2})^{b3}` with
//! `b1 = (kP + kI + kD)/k`, `b2 = -(kP + 2 kD)/k`, `b3 = kD/k`, `k` the order of the error
//! estimate); Söderlind & Wang (2006), "Adaptive time-stepping and computational stability",
//! J. Comput. Appl. Math. 185(2):225-243 (the smooth limiter `1 + atan(x - 1)` and acceptance by
//! the step ratio). The conventions follow diffrax's `PIDController` (pcoeff, icoeff, dcoeff,
//! safety, factor clipping, accept iff error <= 1) and k-diffusion's `PIDStepSizeController`
//! (arctan limiter, accept iff the factor is at least `accept_safety`). The "standard"
//! integral controller `h_{n+1} = theta h_n e_n^{-1/k}` with `theta = 0.9` is the rule of
//! DPM-Solver's Algorithm 4 (Lu et al. 2022, arXiv:2206.00927).

use crate::error::{Result, SolverError};

/// Decides on attempted steps of an adaptive solver.
pub trait StepSizeController {
    /// Forgets the error history; called before every new integration.
    fn reset(&mut self);
    /// Decides on an attempted step of signed size `h` whose scaled error norm is `error`
    /// (`error <= 1` meets the tolerance). Returns whether to accept the step and the signed size
    /// of the next attempt.
    fn propose(&mut self, h: f64, error: f64) -> StepDecision;
}

/// The outcome of [`StepSizeController::propose`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepDecision {
    /// Whether the attempted step is accepted.
    pub accept: bool,
    /// The size of the next attempt (same sign as the attempted one).
    pub h_next: f64,
}

/// How the raw step-size factor is bounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limiter {
    /// Clamp the factor to `[min, max]` (diffrax's `factormin`, `factormax`).
    Clip {
        /// Smallest factor.
        min: f64,
        /// Largest factor (may be `f64::INFINITY`).
        max: f64,
    },
    /// The smooth limiter `1 + atan(factor - 1)` of Söderlind & Wang (2006) (k-diffusion).
    Arctan,
}

/// When an attempted step is accepted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Acceptance {
    /// Accept iff the scaled error is at most 1 (diffrax, DPM-Solver).
    ErrorAtMostOne,
    /// Accept iff the limited factor is at least this value in `(0, 1]` (Söderlind & Wang 2006;
    /// k-diffusion uses 0.81).
    FactorAtLeast(f64),
}

/// A PID step-size controller (P, I and D gains on the log of the inverse error).
#[derive(Debug, Clone, PartialEq)]
pub struct PidController {
    pcoeff: f64,
    icoeff: f64,
    dcoeff: f64,
    order: f64,
    safety: f64,
    limiter: Limiter,
    acceptance: Acceptance,
    /// Inverse errors of the newest accepted steps (newest first); `None` after a reset.
    history: Option<[f64; 3]>,
}

impl PidController {
    /// A PID controller. `order` is the exponent denominator `k` (the order of the higher method
    /// of an embedded pair, i.e. the local order of the error estimate); the gains must be
    /// finite, `order > 0`, `safety` in `(0, 1]`, clip bounds `0 <= min <= 1 <= max`, and an
    /// acceptance factor in `(0, 1]`.
    pub fn new(
        (pcoeff, icoeff, dcoeff): (f64, f64, f64),
        order: f64,
        safety: f64,
        limiter: Limiter,
        acceptance: Acceptance,
    ) -> Result<Self> {
        let bad =
            |name: &'static str, reason: String| SolverError::InvalidParameter { name, reason };
        if ![pcoeff, icoeff, dcoeff].iter().all(|c| c.is_finite()) {
            return Err(bad(
                "pcoeff/icoeff/dcoeff",
                format!("gains must be finite, got ({pcoeff}, {icoeff}, {dcoeff})"),
            ));
        }
        if !(order > 0.0 && order.is_finite()) {
            return Err(bad("order", format!("must be positive, got {order}")));
        }
        if !(safety > 0.0 && safety <= 1.0) {
            return Err(bad("safety", format!("must be in (0, 1], got {safety}")));
        }
        if let Limiter::Clip { min, max } = limiter {
            if !((0.0..=1.0).contains(&min) && max >= 1.0) {
                return Err(bad(
                    "limiter",
                    format!("clip bounds need 0 <= min <= 1 <= max, got [{min}, {max}]"),
                ));
            }
        }
        if let Acceptance::FactorAtLeast(a) = acceptance {
            if !(a > 0.0 && a <= 1.0) {
                return Err(bad("accept_safety", format!("must be in (0, 1], got {a}")));
            }
        }
        Ok(PidController {
            pcoeff,
            icoeff,
            dcoeff,
            order,
            safety,
            limiter,
            acceptance,
            history: None,
        })
    }

    /// The standard integral controller `h_next = 0.9 h error^(-1/order)` without factor bounds,
    /// accepting iff `error <= 1`: the rule of DPM-Solver's Algorithm 4 (`theta = 0.9`).
    pub fn standard(order: f64) -> Result<Self> {
        Self::new(
            (0.0, 1.0, 0.0),
            order,
            0.9,
            Limiter::Clip {
                min: 0.0,
                max: f64::INFINITY,
            },
            Acceptance::ErrorAtMostOne,
        )
    }

    /// The PI controller of Gustafsson (1991) with the gains recommended by Hairer & Wanner
    /// ("Solving Ordinary Differential Equations II"): `b1 = 0.7/k`, `b2 = -0.4/k` (`pcoeff = 0.4`, `icoeff = 0.3`), safety 0.9,
    /// factors clipped to `[0.2, 10]` (diffrax's defaults), accept iff `error <= 1`.
    pub fn pi(order: f64) -> Result<Self> {
        Self::new(
            (0.4, 0.3, 0.0),
            order,
            0.9,
            Limiter::Clip {
                min: 0.2,
                max: 10.0,
            },
            Acceptance::ErrorAtMostOne,
        )
    }

    /// k-diffusion's `PIDStepSizeController`: the given gains, no safety factor, the arctan
    /// limiter and acceptance iff the factor is at least `accept_safety = 0.81`.
    pub fn k_diffusion(order: f64, (pcoeff, icoeff, dcoeff): (f64, f64, f64)) -> Result<Self> {
        Self::new(
            (pcoeff, icoeff, dcoeff),
            order,
            1.0,
            Limiter::Arctan,
            Acceptance::FactorAtLeast(0.81),
        )
    }
}

impl StepSizeController for PidController {
    fn reset(&mut self) {
        self.history = None;
    }

    fn propose(&mut self, h: f64, error: f64) -> StepDecision {
        // A NaN error is treated as an infinitely bad step; 0 as a tiny one.
        let error = if error.is_nan() {
            f64::INFINITY
        } else {
            error.max(1e-10)
        };
        let inv = 1.0 / error;
        let hist = self.history.get_or_insert([inv; 3]);
        hist[0] = inv;
        let k = self.order;
        let (b1, b2, b3) = (
            (self.pcoeff + self.icoeff + self.dcoeff) / k,
            -(self.pcoeff + 2.0 * self.dcoeff) / k,
            self.dcoeff / k,
        );
        let raw = self.safety * hist[0].powf(b1) * hist[1].powf(b2) * hist[2].powf(b3);
        let mut factor = match self.limiter {
            Limiter::Clip { min, max } => raw.clamp(min, max),
            Limiter::Arctan => 1.0 + (raw - 1.0).atan(),
        };
        let accept = match self.acceptance {
            Acceptance::ErrorAtMostOne => error <= 1.0,
            Acceptance::FactorAtLeast(a) => factor >= a,
        };
        if accept {
            hist[2] = hist[1];
            hist[1] = hist[0];
        } else if self.acceptance == Acceptance::ErrorAtMostOne {
            // After a rejection never grow: fall back to the integral controller (< 1 here).
            let integral = self.safety * inv.powf(1.0 / k);
            factor = match self.limiter {
                Limiter::Clip { min, .. } => factor.min(integral).max(min),
                Limiter::Arctan => factor.min(integral),
            };
        }
        StepDecision {
            accept,
            h_next: h * factor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_controller_is_dpm_solvers_rule() {
        let mut c = PidController::standard(3.0).unwrap();
        let d = c.propose(0.05, 0.5);
        assert!(d.accept);
        assert!((d.h_next - 0.9 * 0.05 * 0.5f64.powf(-1.0 / 3.0)).abs() < 1e-15);
        let d = c.propose(-0.2, 8.0);
        assert!(!d.accept);
        assert!((d.h_next + 0.9 * 0.2 * 0.5).abs() < 1e-15, "{d:?}");
        // Zero error: finite, large growth (the loop clamps to the remaining interval).
        let d = c.propose(0.1, 0.0);
        assert!(d.accept && d.h_next.is_finite() && d.h_next > 10.0);
        // NaN error: rejected, shrinks to 0 rather than propagating NaN.
        let d = c.propose(0.1, f64::NAN);
        assert!(!d.accept && d.h_next == 0.0);
    }

    #[test]
    fn pid_uses_the_error_history_and_clips() {
        let mut c = PidController::pi(2.0).unwrap();
        let d1 = c.propose(1.0, 0.25);
        // First step: history filled with the same error, so factor = 0.9 * 4^(0.3/2).
        assert!((d1.h_next - 0.9 * 4f64.powf(0.15)).abs() < 1e-14, "{d1:?}");
        let d2 = c.propose(1.0, 0.25);
        assert!((d2.h_next - d1.h_next).abs() < 1e-14);
        // A rising error is penalized more than by the integral part alone.
        let d3 = c.propose(1.0, 0.5);
        let integral_only = 0.9 * 2f64.powf(0.15);
        assert!(d3.accept && d3.h_next < integral_only, "{d3:?}");
        // Clipping to [0.2, 10].
        c.reset();
        assert!((c.propose(1.0, 1e-12).h_next - 10.0).abs() < 1e-12);
        c.reset();
        let r = c.propose(1.0, 1e9);
        assert!(!r.accept && (r.h_next - 0.2).abs() < 1e-12);
    }

    #[test]
    fn k_diffusion_controller_accepts_by_factor() {
        let mut c = PidController::k_diffusion(3.0, (0.0, 1.0, 0.0)).unwrap();
        // error 1.5: factor 1 + atan(1.5^(-1/3) - 1) ~ 0.874 >= 0.81: accepted although > 1.
        let d = c.propose(0.1, 1.5);
        let f = 1.0 + (1.5f64.powf(-1.0 / 3.0) - 1.0).atan();
        assert!(d.accept && (d.h_next - 0.1 * f).abs() < 1e-15);
        let d = c.propose(0.1, 3.0);
        assert!(!d.accept);
    }

    #[test]
    fn bad_controller_parameters_are_errors() {
        assert!(PidController::standard(0.0).is_err());
        assert!(PidController::new(
            (0.0, 1.0, 0.0),
            2.0,
            1.5,
            Limiter::Arctan,
            Acceptance::ErrorAtMostOne
        )
        .is_err());
        assert!(PidController::new(
            (f64::NAN, 1.0, 0.0),
            2.0,
            0.9,
            Limiter::Arctan,
            Acceptance::ErrorAtMostOne
        )
        .is_err());
        assert!(PidController::new(
            (0.0, 1.0, 0.0),
            2.0,
            0.9,
            Limiter::Clip { min: 2.0, max: 1.0 },
            Acceptance::ErrorAtMostOne
        )
        .is_err());
        assert!(PidController::new(
            (0.0, 1.0, 0.0),
            2.0,
            0.9,
            Limiter::Arctan,
            Acceptance::FactorAtLeast(0.0)
        )
        .is_err());
    }
}
