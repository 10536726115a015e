//! Deterministic solvers of the probability-flow ODE.
//!
//! Shared coordinates: with `y = x / alpha`, `rho = sigma / alpha` (k-diffusion's sigma) and
//! `lambda = -ln rho` the PF-ODE of every linear schedule is `dy/drho = eps_hat(y, rho)`, or in
//! data prediction `dy/dlambda = x0_hat - y`. The helpers below take one step in these
//! coordinates and map back with the target `alpha`, so every solver here (and the stochastic
//! ones in [`crate::sde`]) is valid for every schedule.

mod ddim;
mod dpm2;
mod dpmpp_2m;
mod euler;
mod heun;
mod lms;

pub use ddim::Ddim;
pub use dpm2::Dpm2;
pub use dpmpp_2m::DpmSolverPp2M;
pub use euler::Euler;
pub use heun::Heun;
pub(crate) use lms::GAUSS_LEGENDRE_4;
pub use lms::{Lms, MAX_LMS_ORDER};

use diffusion_core::{NoiseSchedule, State};

/// Where a schedule stands at one time: the host numbers every step needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Level {
    /// The schedule time.
    pub t: f64,
    /// Signal coefficient `alpha(t)`.
    pub alpha: f64,
    /// EDM noise level `rho = sigma / alpha` (0 at the data end).
    pub rho: f64,
    /// Half log-SNR `lambda = -ln rho` (`+inf` where `rho = 0`).
    pub lambda: f64,
}

impl Level {
    /// The level of `schedule` at time `t`.
    pub fn at(schedule: &dyn NoiseSchedule, t: f64) -> Self {
        let rho = schedule.noise_ratio(t);
        Level {
            t,
            alpha: schedule.alpha(t),
            rho,
            lambda: if rho <= 0.0 {
                f64::INFINITY
            } else {
                schedule.lambda(t)
            },
        }
    }

    /// `true` at noise level 0 (a step there must denoise, not divide by `rho`).
    pub fn is_data(&self) -> bool {
        self.rho <= 0.0
    }
}

/// The EDM-coordinate Euler move shared by Euler, Heun, DDIM and DPM2: with `y = x / alpha` and
/// `rho = sigma / alpha` the PF-ODE is `dy/drho = eps_hat` for every schedule, so one step with
/// slope `d` from `t0` to `t1` gives `x1 = alpha1 (x / alpha0 + (rho1 - rho0) d)`.
pub(crate) fn edm_euler_move<S: State>(
    schedule: &dyn NoiseSchedule,
    x: &S,
    t0: f64,
    t1: f64,
    d: &S,
) -> S {
    let to = Level::at(schedule, t1);
    edm_euler_to(x, &Level::at(schedule, t0), to.rho, to.alpha, d)
}

/// The Euler move of [`edm_euler_move`] to an arbitrary noise level `rho_to` (ancestral samplers
/// step to `sigma_down`, which is no grid time), scaled by `a_out`:
/// `a_out (x / alpha0 + (rho_to - rho0) d)`.
pub(crate) fn edm_euler_to<S: State>(x: &S, from: &Level, rho_to: f64, a_out: f64, d: &S) -> S {
    x.lincomb(a_out / from.alpha, d, a_out * (rho_to - from.rho))
}

/// The first-order data-prediction exponential-integrator move of DPM-Solver++ from `from` to
/// half log-SNR `lambda_to`, scaled by `a_out`: with `h = lambda_to - lambda0`,
/// `a_out (e^{-h} x / alpha0 - expm1(-h) d)`; `lambda_to = +inf` (noise level 0) gives
/// `a_out d`. Algebraically the same as [`edm_euler_to`] with `d` the data prediction.
pub(crate) fn data_pred_move<S: State>(
    x: &S,
    from: &Level,
    lambda_to: f64,
    a_out: f64,
    d: &S,
) -> S {
    if lambda_to == f64::INFINITY {
        return d.scale(a_out);
    }
    let h = lambda_to - from.lambda;
    x.lincomb(a_out * (-h).exp() / from.alpha, d, -a_out * (-h).exp_m1())
}
