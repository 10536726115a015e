//! OBA: the Lie-Trotter splitting of the reverse-time augmented SDE into its exact
//! Ornstein-Uhlenbeck part (O), the score kick (B) and the position drift (A), one score
//! evaluation per step.
//!
//! Paper: Pandey, Rudolph & Mandt (2024), "Efficient Integrators for Diffusion Generative Models",
//! arXiv:2310.07894, Sec. 4 (stochastic splitting integrators for CLD / PSLD; the OBA ordering)
//! and Leimkuhler & Matthews (2013), arXiv:1203.5428, Sec. 2 (OBA-type Langevin splittings).
//! Written from the decomposition in [`super::langevin`]; the paper's algorithm boxes could not
//! be checked here. One step from `t0` down to `t1`, `db = int_{t1}^{t0} beta`:
//!
//! `z <- O(z)` (exact Gaussian transition over `db`, noise `(W(t1) - W(t0)) / sqrt(t0 - t1)`),
//! `z <- z + db [(0, q x) + Q (s(z, t0) + S^{-1} z)]` (B, one evaluation),
//! `x <- x - q db v / M` (A).
//!
//! Only the B kick reads the score, so "naive" and "reduced" OBA coincide for this
//! decomposition: one evaluation per step. Strong and weak order 1 (additive noise, first-order
//! splitting); measured in `tests/stochastic_splitting.rs`.

use super::langevin::Langevin;
use super::{check_step, PhaseSolver, PhaseStep};
use crate::error::Result;
use diffusion_core::{BrownianPath, Phase, State};

/// The OBA splitting sampler of the reverse augmented SDE: one score evaluation per step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Oba;

impl<S: State> PhaseSolver<S> for Oba {
    fn name(&self) -> String {
        "oba".into()
    }
    fn order(&self) -> f64 {
        1.0
    }
    fn evals_per_step(&self) -> usize {
        1
    }
    fn is_stochastic(&self) -> bool {
        true
    }
    fn step(
        &self,
        step: &PhaseStep<'_, S>,
        z: Phase<S>,
        noise: &mut dyn BrownianPath<Phase<S>>,
    ) -> Result<Phase<S>> {
        check_step(step)?;
        let (t0, t1) = (step.t0, step.t1);
        let l = Langevin::of(step.process)?;
        let db = l.beta_integral(t1, t0);
        let z = l.o_step(&z, (t1, t0), (t0, t1), noise)?;
        let g = l.score_force_at(step, &z, t0)?;
        let z = l.b_step(z, &g, db);
        Ok(l.a_step(z, db))
    }
}
