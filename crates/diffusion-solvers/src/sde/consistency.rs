//! Multistep consistency sampling: jump to the model's clean estimate, then re-noise to the next
//! time with fresh noise.
//!
//! Paper: Song, Dhariwal, Chen & Sutskever (2023), "Consistency Models", arXiv:2303.01469,
//! Algorithm 1 (multistep consistency sampling); Lu & Song (2024), "Simplifying, Stabilizing and
//! Scaling Continuous-Time Consistency Models", arXiv:2410.11081, Sec. 5 (1- and 2-step sampling
//! under TrigFlow, intermediate time `t = 1.1`).
//!
//! One step from `t0` to `t1`: `x0_hat = D(x, t0)`, then `x_{t1} = alpha(t1) x0_hat + sigma(t1)
//! z` with `z` a fresh standard normal (`(W(t1) - W(t0)) / sqrt|t1 - t0|` of the Brownian path);
//! the step to `sigma(t1) = 0` returns `alpha(t1) x0_hat`. On a grid `[T, 0]` this is one-step
//! generation; `[T, t_mid, 0]` is two-step. With an exact consistency function (the PF-ODE map to
//! `t = 0`) every grid samples the data law exactly; with a diffusion denoiser it is the
//! "x0-then-renoise" sampler (a DDPM step with all of the posterior variance replaced by fresh
//! noise), of order 0 as an SDE solver: it is not a discretization of the reverse SDE.

use super::add_noise;
use crate::error::Result;
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// Multistep consistency sampling (see the module documentation): 1 evaluation per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Consistency;

impl<S: State> Solver<S> for Consistency {
    fn name(&self) -> String {
        "consistency".into()
    }
    fn order(&self) -> f64 {
        0.0
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
        let e = step.eval(&x, step.t0)?;
        let (a1, s1) = (step.schedule.alpha(step.t1), step.schedule.sigma(step.t1));
        add_noise(e.x0.scale(a1), s1, noise, step.t0, step.t1)
    }
}
