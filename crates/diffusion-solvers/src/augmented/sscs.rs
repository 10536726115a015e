//! SSCS, the symmetric splitting CLD sampler, for every complete-recipe process (CLD, PSLD).
//!
//! Paper: Dockhorn, Vahdat & Kreis (2022), "Score-Based Generative Modeling with Critically-Damped
//! Langevin Diffusion", arXiv:2112.07068, Sec. 3.3 and Alg. 1 (CLD-SGM `sampling.py`,
//! `get_sscs_sampler`; PSLD's `SSCSSampler` applies it to PSLD). In reverse time the SDE splits
//! into a linear Ornstein-Uhlenbeck part and a score part:
//!
//! `dz = beta (J - D) S^{-1} z dtau + sqrt(beta) G dW`   (A: analytic, the recipe with `J -> -J`)
//! `dz = beta Q (s(z) + S^{-1} z) dtau`                   (S: Euler, vanishes at equilibrium)
//!
//! because `-F - Q S^{-1} = (D + J) S^{-1} - 2 D S^{-1}`. One step is A over the first half,
//! S over the whole step, A over the second half (Strang splitting, one score evaluation).
//! The A half-steps are exact Gaussian transitions (mean map and covariance of the reversed-
//! rotation recipe, `MultivariateSde::phase_kernel`), each driven by the normalized Brownian
//! increment over its half interval. The score half-step is evaluated at the step's midpoint
//! time; the reference evaluates at the start time `t_n` (the same for constant `beta` up to
//! the score's own time dependence), and both reference implementations integrate the second
//! A half over the first half's `beta` increment, which is the same for constant `beta`.
//! Declared order 1 (the Euler score step is not symmetric); tested in law.

use super::{apply, check_step, gaussian_draw, PhaseSolver, PhaseStep, Recipe};
use crate::error::Result;
use diffusion_core::process::Psld;
use diffusion_core::{BrownianPath, Phase, State};

/// The symmetric splitting sampler: one score evaluation per step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sscs;

/// The reverse-time linear part of `p`: the same recipe with the rotation reversed.
fn reversed_linear_part(p: &Psld) -> Result<Psld> {
    Ok(Psld::recipe(
        p.dissipation(),
        -p.rotation(),
        p.mass(),
        p.initial_velocity_variance() / p.mass(),
        p.sde().time_change(),
    )?)
}

/// The exact A flow over the `beta` increment between `lo` and `hi` (`lo < hi`), driven by the
/// Brownian increment between `from` and `to`.
fn analytic_half<S: State>(
    lin: &Psld,
    z: &Phase<S>,
    (lo, hi): (f64, f64),
    (from, to): (f64, f64),
    noise: &mut dyn BrownianPath<Phase<S>>,
) -> Result<Phase<S>> {
    let k = lin.sde().phase_kernel(lo, hi)?;
    let mean = apply(&k.phi(), z);
    let eps = gaussian_draw(&k.noise_factor(), noise, from, to, z)?;
    Ok(mean.axpy(1.0, &eps))
}

impl<S: State> PhaseSolver<S> for Sscs {
    fn name(&self) -> String {
        "sscs".into()
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
        let lin = reversed_linear_part(step.process)?;
        let z = analytic_half(&lin, &z, (tm, t0), (t0, tm), noise)?;
        let r = Recipe::of(step.process);
        let s = step.score(&z, tm)?;
        let kick = apply(&r.q, &s.axpy(1.0, &apply(&r.prec, &z)));
        let z = z.axpy((t0 - t1) * r.beta(tm), &kick);
        analytic_half(&lin, &z, (t1, tm), (tm, t1), noise)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diffusion_core::process::Cld;
    use nalgebra::Matrix2;

    #[test]
    fn the_linear_part_matches_cld_sgm_closed_form() {
        // CLD-SGM's `compute_mean_of_analytical_dynamics` with B the (negative) beta increment
        // of a reverse step and g = 1/Gamma:
        // mean_x = e^{2gB} ((1 - 2gB) x + 4 g^2 B v), mean_v = e^{2gB} (-B x + (1 + 2gB) v).
        let cld = Cld::default();
        let p = Psld::from_cld(&cld);
        let lin = reversed_linear_part(&p).unwrap();
        let (lo, hi) = (0.3, 0.35);
        let b = -cld.time_change().integral_between(lo, hi);
        let g = 1.0 / cld.friction();
        let e = (2.0 * g * b).exp();
        let want = Matrix2::new(
            e * (1.0 - 2.0 * g * b),
            e * 4.0 * g * g * b,
            -e * b,
            e * (1.0 + 2.0 * g * b),
        );
        let k = lin.sde().phase_kernel(lo, hi).unwrap();
        // (4 g^2 = 1/M under critical damping M = Gamma^2 / 4.)
        assert!(
            (k.phi() - want).abs().max() < 1e-12,
            "{} vs {want}",
            k.phi()
        );
        // And its variance (`compute_variance_of_analytical_dynamics`, without num_stab).
        let c4 = (4.0 * g * b).exp();
        let f = cld.friction();
        let vxx = c4 * (1.0 / c4 - 1.0 + 4.0 * g * b - 8.0 * g * g * b * b);
        let vxv = -c4 * (4.0 * g * b * b);
        let vvv = c4 * (-f * f * (1.0 - 1.0 / c4) / 4.0 - f * b - 2.0 * b * b);
        let c = k.cov();
        assert!((c[(0, 0)] - vxx).abs() < 1e-12, "{} vs {vxx}", c[(0, 0)]);
        assert!((c[(0, 1)] - vxv).abs() < 1e-12, "{} vs {vxv}", c[(0, 1)]);
        assert!((c[(1, 1)] - vvv).abs() < 1e-12, "{} vs {vvv}", c[(1, 1)]);
    }
}
