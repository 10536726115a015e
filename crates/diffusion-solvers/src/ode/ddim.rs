//! DDIM and its eta family of non-Markovian samplers.
//!
//! Paper: Song, Meng & Ermon (2021), "Denoising Diffusion Implicit Models", arXiv:2010.02502,
//! Eq. (12) and (16). In continuous time with `lambda = ln(alpha / sigma)`:
//! `x1 = alpha1 x0_hat + sqrt(sigma1^2 - s^2) eps_hat + s z`,
//! `s = eta sigma1 sqrt(1 - exp(2 (lambda0 - lambda1)))`, which for VP schedules is the paper's
//! `sigma_t(eta)`. eta = 0 is deterministic (order 1), eta = 1 is the DDPM ancestral posterior
//! variance. A step to sigma = 0 returns `alpha1 x0_hat` (from the data prediction alone,
//! `data_end_step`).
//!
//! At eta = 0 the step is algebraically `Euler`'s: with `x = alpha0 x0_hat + sigma0 eps_hat`,
//! `alpha1 x0_hat + sigma1 eps_hat = alpha1 (x / alpha0 + (rho1 - rho0) eps_hat)`, `rho = sigma /
//! alpha`; for a data prediction both are `(sigma1 / sigma0) x + (alpha1 - sigma1 alpha0 /
//! sigma0) x0_hat`. So it takes Euler's step (`euler_step_direct`: no eps pass for a
//! data-predicting model, one checked pass over the state); the results equal the two-pass form
//! `alpha1 x0_hat + sigma1 eps_hat` up to rounding.
//!
//! Order 1 for every eta: at eta = 0 the global ODE order; for eta > 0 the step is algebraically
//! Euler ancestral with the same eta (`crate::sde::EulerAncestral`), strong order 1 along a
//! Brownian tree (additive noise; `crate::sde::Ddpm` at eta = 1 is tested for it).

use super::{data_end_step, euler_step_direct};
use crate::error::{Result, SolverError};
use crate::ops::lincomb3_owned;
use crate::sde::draw_normalized;
use crate::solver::{Cache, Eval, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// DDIM with stochasticity `eta >= 0`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ddim {
    eta: f64,
}

impl Ddim {
    /// DDIM with the given `eta` (0 = deterministic, 1 = DDPM-like).
    pub fn new(eta: f64) -> Result<Self> {
        if !(eta >= 0.0 && eta.is_finite()) {
            return Err(SolverError::InvalidParameter {
                name: "eta",
                reason: format!("must be finite and >= 0, got {eta}"),
            });
        }
        Ok(Ddim { eta })
    }
}

impl<S: State> Solver<S> for Ddim {
    fn name(&self) -> String {
        format!("ddim(eta={})", self.eta)
    }
    fn order(&self) -> f64 {
        1.0
    }
    fn is_stochastic(&self) -> bool {
        self.eta > 0.0
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch = step.schedule;
        let s1 = sch.sigma(step.t1);
        if s1 <= 0.0 {
            return data_end_step(step, x, cache);
        }
        if self.eta == 0.0 {
            return euler_step_direct(step, x, cache);
        }
        let e = step.eval_reusing(&x, step.t0, cache)?;
        let a1 = sch.alpha(step.t1);
        let Eval { x0, eps, .. } = e;
        let ratio = (2.0 * (sch.lambda(step.t0) - sch.lambda(step.t1))).exp();
        let s = (self.eta * s1 * (1.0 - ratio).max(0.0).sqrt()).min(s1);
        let (z, c) = draw_normalized(noise, (step.t0, step.t1), &x, cache.take_spare())?;
        let out = lincomb3_owned(x0, a1, &eps, (s1 * s1 - s * s).max(0.0).sqrt(), &z, c * s);
        cache.recycle(eps);
        cache.recycle(x);
        cache.recycle(z);
        Ok(out)
    }
}
