//! Euler-Maruyama on the reverse-time SDE.
//!
//! Paper: Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole (2021), "Score-Based Generative
//! Modeling through Stochastic Differential Equations", arXiv:2011.13456, Eq. (6) and the
//! `EulerMaruyamaPredictor` of its code. The reverse SDE is
//! `dx = [f(t) x - g(t)^2 grad log p_t(x)] dt + g(t) dW`, with `grad log p_t = -eps_hat / sigma`:
//! `x1 = x + (f x + g^2 eps_hat / sigma) (t1 - t0) + g(t0) (W(t1) - W(t0))`. The noise is
//! additive, so the strong order is 1 with a consistent Brownian path (`BrownianTree`). A step
//! to sigma = 0 returns the denoised mean `alpha1 x0_hat` (score_sde's `noise_removal`).

use super::draw_increment;
use crate::error::Result;
use crate::ode::Slope;
use crate::ops::{lincomb3_checked, scale_reusing};
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
        cache: &mut Cache<S>,
        noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        let sch = step.schedule;
        let (t0, t1) = (step.t0, step.t1);
        if sch.sigma(t1) <= 0.0 {
            let x0 = step.eval_x0_reusing(&x, t0, cache)?;
            return Ok(scale_reusing(&x0, sch.alpha(t1), x));
        }
        // `eps_hat` as a `Slope` (a data-predicting model's output goes in directly), the drift,
        // the score term and the increment in one checked pass over the state.
        let slope = Slope::eval(step, &x, t0, cache)?;
        let (f, g2, s0) = (sch.drift(t0), sch.diffusion_sq(t0), sch.sigma(t0));
        let dt = t1 - t0;
        let (dw, c) = draw_increment(noise, (t0, t1), &x, cache.take_spare())?;
        let (p, q) = slope.times(g2 / s0 * dt);
        let (out, checked) =
            lincomb3_checked(x, 1.0 + f * dt + p, slope.state(), q, &dw, c * g2.sqrt());
        cache.set_checked(checked);
        cache.recycle(slope.into_state());
        cache.recycle(dw);
        Ok(out)
    }
}
