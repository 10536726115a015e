//! Reduced BAOAB: the symmetric splitting of [`super::Baoab`] with one score evaluation per step,
//! the second half kick reusing the first one's score deviation.
//!
//! Paper: Pandey, Rudolph & Mandt (2024), "Efficient Integrators for Diffusion Generative Models",
//! arXiv:2310.07894, Sec. 4 ("reduced" splitting integrators: naive splitting schemes with score
//! evaluations dropped and the available ones reused, one network evaluation per step). Written
//! from the decomposition in [`super::langevin`]; the paper's algorithm boxes could not be checked
//! here, so which quantity is reused is this module's choice: the kick is
//! `(0, q x) + g`, `g = Q (s + S^{-1} z)`; the harmonic force `q x` is recomputed at the current
//! state (it costs nothing) and the score deviation `g`, evaluated once at the step start, drives
//! both half kicks. `g` vanishes at equilibrium (data `N(0, I)`, stationary `v0`), so the reduced
//! scheme keeps `N(0, S)` exactly as the naive one does, whereas reusing the raw score `s` would
//! not. One step from `t0` down to `t1` (`db_1`, `db_2` as in [`super::Baoab`]):
//!
//! `g = Q (s(z, t0) + S^{-1} z)`, `B(db_1; g)`, `A(db_1)`, `O`, `A(db_2)`, `B(db_2; g)`.
//!
//! First order (strong and weak).

use super::langevin::Langevin;
use super::{check_step, PhaseSolver, PhaseStep};
use crate::error::Result;
use diffusion_core::{BrownianPath, Phase, State};

/// The reduced BAOAB splitting sampler of the reverse augmented SDE: one score evaluation per step.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReducedBaoab;

impl<S: State> PhaseSolver<S> for ReducedBaoab {
    fn name(&self) -> String {
        "reduced-baoab".into()
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
        let tm = 0.5 * (t0 + t1);
        let l = Langevin::of(step.process)?;
        let (db1, db2) = (l.beta_integral(tm, t0), l.beta_integral(t1, tm));
        let g = l.score_force_at(step, &z, t0)?;
        let z = l.a_step(l.b_step(z, &g, db1), db1);
        let z = l.o_step(&z, (t1, t0), (t0, t1), noise)?;
        let z = l.a_step(z, db2);
        Ok(l.b_step(z, &g, db2))
    }
}
