//! Euler-Maruyama on the reverse-time SDE.
//!
//! Paper: Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole (2021), "Score-Based Generative
//! Modeling through Stochastic Differential Equations", arXiv:2011.13456, Eq. (6) and the
//! `EulerMaruyamaPredictor` of its code. The reverse SDE is
//! `dx = [f(t) x - g(t)^2 grad log p_t(x)] dt + g(t) dW`, with `grad log p_t = -eps_hat / sigma`:
//! `x1 = x + (f x + g^2 eps_hat / sigma) (t1 - t0) + g(t0) (W(t1) - W(t0))`. The noise is
//! additive, so the strong order is 1 with a consistent Brownian path (`BrownianTree`). A step
//! to sigma = 0 returns the denoised mean `alpha1 x0_hat` (score_sde's `noise_removal`).

use crate::error::Result;
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// Euler-Maruyama for the reverse SDE: 1 evaluation per step, strong order 1 (additive noise).
#[derive(Debug, Clone, Copy, Default)]
pub struct EulerMaruyama;

impl<S: State> Solver<S> for EulerMaruyama {
    fn name(&self) -> String {
        "euler-maruyama".into()
    }
    fn order(&self) -> f64 {
        1.0
    }
    fn is_stochastic(&self) -> bool {
        true
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        _cache: &mut Cache<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch = step.schedule;
        let (t0, t1) = (step.t0, step.t1);
        let e = step.eval(&x, t0)?;
        if sch.sigma(t1) <= 0.0 {
            return Ok(e.x0.scale(sch.alpha(t1)));
        }
        let (f, g2, s0) = (sch.drift(t0), sch.diffusion_sq(t0), sch.sigma(t0));
        let dt = t1 - t0;
        let dw = noise.increment(t0, t1, &x)?;
        Ok(x.lincomb3(1.0 + f * dt, &e.eps, g2 / s0 * dt, &dw, g2.sqrt()))
    }
}
