//! PLMS: the pseudo linear multistep method of PNDM.
//!
//! Paper: Liu, Ren, Lin & Zhao (2022), "Pseudo Numerical Methods for Diffusion Models on
//! Manifolds", arXiv:2202.09778, Sec. 3 (PLMS, the pseudo linear multistep method): the DDIM
//! transfer
//! `x1 = alpha1 x0_hat(eps') + sigma1 eps'` (in EDM coordinates
//! `x1 = alpha1 (x / alpha0 + (rho1 - rho0) eps')`) driven by the fourth-order linear multistep
//! estimate `eps' = (55 e0 - 59 e1 + 37 e2 - 9 e3) / 24`. Lower-order start as in the CompVis /
//! diffusers PLMS sampler (`skip_prk_steps`): the first step is the pseudo improved Euler step
//! (`eps' = (e0 + eps(x_pred, t1)) / 2`, two evaluations), then the 2- and 3-step Adams-Bashforth
//! weights, then the 4-step ones.
//!
//! The weights are the equal-step ones whatever the grid (the paper steps uniformly in the
//! discrete DDPM index), so the global order is 2 on smooth non-uniform grids; it reaches the
//! weights' order only on grids uniform in `rho` (`tests/dpm_family.rs` measures both). A step to
//! `sigma = 0` returns `alpha1 x0_hat` (from the data prediction alone).
//!
//! Cost: the first step is Heun's (`heun_from_slope`: the second evaluation folded into one
//! checked corrector pass); the cache keeps noise predictions only (`ensure_current_eps`) and
//! the Adams update goes straight into the state, two terms a pass (`adams_update`).

use super::{
    adams_update, data_end_step, ensure_current_eps, heun_from_slope, Slope, ADAMS_BASHFORTH,
};
use crate::error::Result;
use crate::solver::{Cache, Solver, Step};
use diffusion_core::{BrownianPath, State};

/// PLMS (PNDM's linear multistep part with a pseudo improved Euler start): one evaluation per
/// step, two on the first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plms;

impl<S: State> Solver<S> for Plms {
    fn name(&self) -> String {
        "plms".into()
    }
    fn order(&self) -> f64 {
        2.0
    }
    fn step(
        &self,
        step: &Step<'_, S>,
        x: S,
        cache: &mut Cache<S>,
        _noise: &mut dyn BrownianPath<S>,
    ) -> Result<S> {
        if step.schedule.sigma(step.t1) <= 0.0 {
            return data_end_step(step, x, cache);
        }
        if cache.len_eps() == 0 {
            // Pseudo improved Euler: Heun's step with eps0 kept (as eps) for the history.
            let s0 = Slope::Eps(step.eval_eps_reusing(&x, step.t0, cache)?);
            let out = heun_from_slope(step, x, &s0, cache)?;
            cache.push_eps(step.t0, s0.into_state(), 4);
            return Ok(out);
        }
        let history = ensure_current_eps(step, &x, cache, 4)?;
        let k = (history + 1).min(4);
        Ok(adams_update(step, x, cache, ADAMS_BASHFORTH[k - 1]))
    }
}
