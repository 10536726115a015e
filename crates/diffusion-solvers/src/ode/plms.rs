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
//! `sigma = 0` returns `alpha1 x0_hat`.

use super::{combine_eps, edm_euler_move, edm_euler_move_owned, ensure_current, ADAMS_BASHFORTH};
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
        let sch = step.schedule;
        let history = ensure_current(step, &x, cache, 4)?;
        let e0 = cache.back(0).expect("ensured");
        if sch.sigma(step.t1) <= 0.0 {
            return Ok(e0.x0.scale(sch.alpha(step.t1)));
        }
        if history == 0 {
            let x_pred = edm_euler_move(sch, &x, step.t0, step.t1, &e0.eps);
            let e1 = step.eval(&x_pred, step.t1)?;
            let d = e0.eps.lincomb(0.5, &e1.eps, 0.5);
            return Ok(edm_euler_move_owned(sch, x, step.t0, step.t1, &d));
        }
        let k = (history + 1).min(4);
        let d = combine_eps(cache, ADAMS_BASHFORTH[k - 1]);
        Ok(edm_euler_move_owned(sch, x, step.t0, step.t1, &d))
    }
}
