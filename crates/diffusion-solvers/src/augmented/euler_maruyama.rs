//! Euler-Maruyama on the reverse-time augmented SDE, and Euler on the augmented probability-flow
//! ODE.
//!
//! Paper: Dockhorn, Vahdat & Kreis (2022), "Score-Based Generative Modeling with
//! Critically-Damped Langevin Diffusion", arXiv:2112.07068, Sec. 3.3 (the Euler-Maruyama baseline
//! of SSCS; CLD-SGM `sampling.py`, `get_em_sampler`) and Pandey & Mandt (2023), arXiv:2303.01748
//! (PSLD reference `EulerMaruyamaSampler`, `reverse_sde`). With `h = t1 - t0 < 0`:
//! `z1 = z + h beta(t0) [F z - Q s(z, t0)] + sqrt(beta(t0)) G (W(t1) - W(t0))`; the
//! probability-flow variant drops the noise and halves the score term. Strong order 1 (the noise
//! is additive), global order 1 for the ODE.

use super::{check_step, gaussian_draw, PhaseSolver, PhaseStep, Recipe};
use crate::error::Result;
use diffusion_core::{BrownianPath, Phase, State};

/// Euler-Maruyama on the reverse augmented SDE, or Euler on its PF-ODE when
/// `probability_flow` is set. One score evaluation per step.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseEulerMaruyama {
    /// Integrate the probability-flow ODE instead of the reverse SDE.
    pub probability_flow: bool,
}

impl PhaseEulerMaruyama {
    /// Euler-Maruyama on the reverse SDE.
    pub fn sde() -> Self {
        PhaseEulerMaruyama {
            probability_flow: false,
        }
    }

    /// Euler on the probability-flow ODE.
    pub fn ode() -> Self {
        PhaseEulerMaruyama {
            probability_flow: true,
        }
    }
}

impl<S: State> PhaseSolver<S> for PhaseEulerMaruyama {
    fn name(&self) -> String {
        if self.probability_flow {
            "phase-euler".into()
        } else {
            "phase-euler-maruyama".into()
        }
    }
    fn order(&self) -> f64 {
        1.0
    }
    fn evals_per_step(&self) -> usize {
        1
    }
    fn is_stochastic(&self) -> bool {
        !self.probability_flow
    }
    fn step(
        &self,
        step: &PhaseStep<'_, S>,
        z: Phase<S>,
        noise: &mut dyn BrownianPath<Phase<S>>,
    ) -> Result<Phase<S>> {
        check_step(step)?;
        let (t0, t1) = (step.t0, step.t1);
        let s = step.score(&z, t0)?;
        let w = if self.probability_flow { 0.5 } else { 1.0 };
        let out = z.axpy(t1 - t0, &step.drift(&z, &s, t0, w));
        if self.probability_flow {
            return Ok(out);
        }
        // sqrt(beta) G xi sqrt|h|, with G G^T = Q.
        let r = Recipe::of(step.process);
        let g = super::cholesky2(&r.q)? * (r.beta(t0) * (t0 - t1)).max(0.0).sqrt();
        Ok(out.axpy(1.0, &gaussian_draw(&g, noise, t0, t1, &out)?))
    }
}
