//! Euler ancestral sampling: an Euler step of the PF-ODE down to `sigma_down`, then fresh noise
//! of standard deviation `sigma_up` (k-diffusion's `sample_euler_ancestral`).
//!
//! Paper: Song, Meng & Ermon (2021), "Denoising Diffusion Implicit Models", arXiv:2010.02502,
//! Eq. (12) and (16) (the eta-scaled ancestral noise `sigma_t(eta)`), with the Euler step of
//! Karras, Aittala, Aila & Laine (2022), arXiv:2206.00364, Eq. (4), in EDM coordinates
//! (`y = x / alpha`, `rho = sigma / alpha`):
//! `rho_up = min(rho1, eta rho1 sqrt(1 - rho1^2 / rho0^2))`, `rho_down = sqrt(rho1^2 - rho_up^2)`,
//! `y1 = y0 + (rho_down - rho0) eps_hat + s_noise rho_up z`, `x1 = alpha1 y1`.
//! The step to noise level 0 adds no noise and returns `alpha1 x0_hat`.
//!
//! Order: `eta = 0` is exactly [`crate::ode::Euler`] (order 1); for `eta > 0` the step
//! discretizes the reverse SDE with additive noise and converges strongly with order 1 along a
//! Brownian tree.

use super::{ancestral_split, move_with_noise, NoiseControl};
use crate::error::Result;
use crate::ode::{edm_euler_coefs, Level, Slope};
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// Euler ancestral with stochasticity `eta` and noise multiplier `s_noise`: 1 evaluation per
/// step.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EulerAncestral {
    ctl: NoiseControl,
}

impl EulerAncestral {
    /// Euler ancestral; `eta` and `s_noise` must be finite and `>= 0` (k-diffusion defaults: 1, 1).
    pub fn new(eta: f64, s_noise: f64) -> Result<Self> {
        Ok(EulerAncestral {
            ctl: NoiseControl::new(eta, s_noise)?,
        })
    }
}

impl<S: State> Solver<S> for EulerAncestral {
    noise_control_solver_info!("euler-ancestral", 1.0);
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let slope = Slope::eval(step, &x, step.t0, cache)?;
        let (from, to) = (
            Level::at(step.schedule, step.t0),
            Level::at(step.schedule, step.t1),
        );
        let split = ancestral_split(&from, &to, self.ctl.eta);
        let (a, b) = edm_euler_coefs(&from, split.rho_down, to.alpha);
        let (p, q) = slope.times(b);
        let coef = to.alpha * self.ctl.s_noise * split.rho_up;
        // The Euler move and the noise in one pass over the state (which also checks it): a
        // data-predicting model never has its eps written.
        let out = move_with_noise(
            x,
            a + p,
            slope.state(),
            q,
            coef,
            noise,
            (step.t0, step.t1),
            cache,
        )?;
        cache.recycle(slope.into_state());
        Ok(out)
    }
}
