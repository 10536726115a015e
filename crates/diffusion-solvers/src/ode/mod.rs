//! Deterministic solvers of the probability-flow ODE.

mod ddim;
mod dpmpp_2m;
mod euler;
mod heun;

pub use ddim::Ddim;
pub use dpmpp_2m::DpmSolverPp2M;
pub use euler::Euler;
pub use heun::Heun;

use diffusion_core::{NoiseSchedule, State};

/// The EDM-coordinate Euler move shared by Euler, Heun and DDIM: with `y = x / alpha` and
/// `rho = sigma / alpha` the PF-ODE is `dy/drho = eps_hat` for every schedule, so one step with
/// slope `d` from `t0` to `t1` gives `x1 = alpha1 (x / alpha0 + (rho1 - rho0) d)`.
pub(crate) fn edm_euler_move<S: State>(
    schedule: &dyn NoiseSchedule,
    x: &S,
    t0: f64,
    t1: f64,
    d: &S,
) -> S {
    let (a0, a1) = (schedule.alpha(t0), schedule.alpha(t1));
    let (r0, r1) = (schedule.noise_ratio(t0), schedule.noise_ratio(t1));
    x.lincomb(a1 / a0, d, a1 * (r1 - r0))
}
