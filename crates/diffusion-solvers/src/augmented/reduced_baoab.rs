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
//! both half kicks. `g` vanishes at equilibrium (data `N(0, I)`, stationary `v0`), so there the
//! reduced scheme is exactly the naive one, whereas reusing the raw score `s` would not be. One step from `t0` down to `t1` (`db_1`, `db_2` as in [`super::Baoab`]):
//!
//! `g = Q (s(z, t0) + S^{-1} z)`, `B(db_1; g)`, `A(db_1)`, `O`, `A(db_2)`, `B(db_2; g)`.
//!
//! First order (strong and weak). Measured on the Gaussian oracle (`tests/stochastic_splitting.rs`):
//! 3-5 times closer to the data law than Euler-Maruyama, 4-5 times than SSCS, at the same number
//! of evaluations.

use super::langevin::baoab_step;
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
        baoab_step(step, z, noise, true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Baoab, PhaseScore};
    use super::*;
    use diffusion_core::process::{AffineBeta, Cld, Psld};
    use diffusion_core::IndependentIncrements;
    use ndarray::arr1;

    #[test]
    fn at_equilibrium_the_reduced_scheme_is_the_naive_one() {
        // Data N(0, 1) and v0 ~ N(0, M): p_t = N(0, S) for every t, s = -S^{-1} z, so the score
        // deviation vanishes and reusing it changes nothing. Off equilibrium it does.
        let beta = AffineBeta::new(0.5, 3.0).unwrap();
        let p = Psld::paper(0.01, 4.01, 1.0, beta).unwrap();
        let cld = Cld::new(0.25, 1.0, beta).unwrap();
        for p in [p, Psld::from_cld(&cld)] {
            let inv_m = 1.0 / p.mass();
            let eq = move |z: &Phase<ndarray::Array1<f64>>, _t: f64| {
                Ok(Phase::new(z.x.scale(-1.0), z.v.scale(-inv_m)))
            };
            let off = move |z: &Phase<ndarray::Array1<f64>>, t: f64| {
                Ok(Phase::new(
                    z.x.scale(-1.5 - t),
                    z.v.scale(-(1.5 + t) * inv_m),
                ))
            };
            let models: [(&dyn PhaseScore<ndarray::Array1<f64>>, bool); 2] =
                [(&eq, true), (&off, false)];
            for (model, same) in models {
                let step = PhaseStep {
                    model,
                    process: &p,
                    t0: 0.6,
                    t1: 0.45,
                    index: 0,
                    n_steps: 1,
                };
                let z = Phase::new(arr1(&[0.4, -1.3, 2.0]), arr1(&[0.1, 0.6, -0.2]));
                let a = ReducedBaoab
                    .step(&step, z.dup(), &mut IndependentIncrements::seeded(3))
                    .unwrap();
                let b = Baoab
                    .step(&step, z, &mut IndependentIncrements::seeded(3))
                    .unwrap();
                let d = a.lincomb(1.0, &b, -1.0).rms();
                assert_eq!(d < 1e-14, same, "difference {d}");
            }
        }
    }
}
