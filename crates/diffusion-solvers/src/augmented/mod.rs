//! Samplers for phase-space (augmented) diffusions: CLD, PSLD and every process of the
//! "complete recipe", acting on [`Phase`] states `(x, v)` and driven by an augmented score.
//!
//! Conventions. The forward process is [`Psld`] (CLD enters through [`Psld::from_cld`]): per
//! data coordinate, `dz = beta(t) F z dt + sqrt(beta(t)) G dW` with `F = -(D + J) S^{-1}`,
//! `G G^T = Q = 2 D`, `J` skew and `S = diag(1, M)` the stationary covariance. Its reverse-time
//! SDE and probability-flow ODE are
//!
//! `dz = beta [F z - Q s(z, t)] dt + sqrt(beta) G dW_bar`,  `dz/dt = beta [F z - (1/2) Q s(z, t)]`,
//!
//! with `s = grad_(x,v) log p_t(x, v)` the augmented score. Grids run from large to small `t`.
//!
//! The model. A [`PhaseScore`] returns the whole score `s = (s_x, s_v)`. Only `Q s` enters any
//! sampler here (the conjugate integrator reads `s` through the lower Cholesky factor of the
//! perturbation covariance, which has the same sparsity), so for CLD, whose noise enters the
//! velocity only (`D = diag(0, Gamma)`), the `x` half of the score is never read and a CLD
//! network may return zeros there: CLD-SGM's networks predict the velocity score only. PSLD
//! has `D_xx = gamma / 2 > 0`, so both halves are noised and both are used, as in the PSLD
//! reference (`mode = score_xm`).
//!
//! Samplers: [`PhaseEulerMaruyama`] (reverse SDE, or Euler on the PF-ODE), [`Sscs`] (the
//! symmetric splitting CLD sampler, generalized to every recipe), [`ConjugateIntegrator`]
//! (lambda-DDIM, Pandey et al. 2024), [`VelocityVerlet`] (a naive splitting integrator of
//! the PF-ODE), [`ReducedVelocityVerlet`] (its reduced form, one evaluation fewer) and
//! [`ConjugateSplitting`] (exact linear half-steps around a score kick); the stochastic
//! splitting samplers of the reverse SDE built on its exact Ornstein-Uhlenbeck part ([`Oba`],
//! [`Baoab`], [`ReducedBaoab`], Pandey et al. 2024). [`sample_phase`] is the loop.
//!
//! Paper: Dockhorn, Vahdat & Kreis (2022), arXiv:2112.07068 (CLD, SSCS); Pandey & Mandt (2023),
//! arXiv:2303.01748 (PSLD); Pandey, Rudolph & Mandt (2024), "Efficient Integrators for Diffusion
//! Generative Models", arXiv:2310.07894 (conjugate and splitting integrators).

mod baoab;
mod conjugate;
mod euler_maruyama;
mod langevin;
mod oba;
mod reduced_baoab;
mod splitting;
mod sscs;
mod velocity_verlet;

pub use baoab::Baoab;
pub use conjugate::ConjugateIntegrator;
pub use euler_maruyama::PhaseEulerMaruyama;
pub use oba::Oba;
pub use reduced_baoab::ReducedBaoab;
pub use splitting::{ConjugateSplitting, ReducedVelocityVerlet};
pub use sscs::Sscs;
pub use velocity_verlet::VelocityVerlet;

use crate::error::{Result, SolverError};
use crate::sampler::Observer;
use diffusion_core::process::{psd_cholesky, Psld};
use diffusion_core::{BrownianPath, CoreError, Phase, State, TimeGrid};
use nalgebra::{DMatrix, Matrix2};

/// An augmented score model: `grad_(x,v) log p_t(x, v)` at a phase state. Closures
/// `Fn(&Phase<S>, f64) -> diffusion_core::Result<Phase<S>>` implement it.
pub trait PhaseScore<S> {
    /// The score at `(z, t)`; for processes whose noise enters `v` only (CLD), the `x` half is
    /// ignored by every sampler and may be zero.
    fn score(&self, z: &Phase<S>, t: f64) -> diffusion_core::Result<Phase<S>>;
}

impl<S, F> PhaseScore<S> for F
where
    F: Fn(&Phase<S>, f64) -> diffusion_core::Result<Phase<S>>,
{
    fn score(&self, z: &Phase<S>, t: f64) -> diffusion_core::Result<Phase<S>> {
        self(z, t)
    }
}

/// Everything one augmented step needs besides the state.
pub struct PhaseStep<'a, S> {
    /// The augmented score model.
    pub model: &'a dyn PhaseScore<S>,
    /// The forward process the model was trained for.
    pub process: &'a Psld,
    /// The time the step starts from.
    pub t0: f64,
    /// The time the step ends at (`t1 < t0`).
    pub t1: f64,
    /// Index of this step in the grid (0-based).
    pub index: usize,
    /// Total number of steps in the grid.
    pub n_steps: usize,
}

impl<S: State> PhaseStep<'_, S> {
    /// The model's score at `(z, t)`, checked to be finite.
    pub fn score(&self, z: &Phase<S>, t: f64) -> Result<Phase<S>> {
        let s = self.model.score(z, t)?;
        if !s.is_finite() {
            return Err(CoreError::NonFinite {
                context: format!("augmented score at t = {t}"),
            }
            .into());
        }
        Ok(s)
    }

    /// The reverse-time drift `beta(t) [F z - w Q s]` (`w = 1`: reverse SDE, `w = 1/2`: PF-ODE).
    pub(crate) fn drift(&self, z: &Phase<S>, s: &Phase<S>, t: f64, w: f64) -> Phase<S> {
        let r = Recipe::of(self.process);
        let b = r.beta(t);
        apply(&(r.f * b), z).axpy(-w * b, &apply(&r.q, s))
    }
}

/// A one-step rule for augmented processes, from `step.t0` down to `step.t1`.
pub trait PhaseSolver<S: State> {
    /// Name with parameters.
    fn name(&self) -> String;
    /// The declared order (global for ODE solvers, strong or weak as documented for SDE solvers).
    fn order(&self) -> f64;
    /// Score evaluations per step.
    fn evals_per_step(&self) -> usize;
    /// `true` when the step draws noise.
    fn is_stochastic(&self) -> bool {
        false
    }
    /// Advances `z` from `step.t0` to `step.t1`.
    fn step(
        &self,
        step: &PhaseStep<'_, S>,
        z: Phase<S>,
        noise: &mut dyn BrownianPath<Phase<S>>,
    ) -> Result<Phase<S>>;
}

/// Runs `solver` over the decreasing `grid` from `z` (at `grid.times()[0]`), like
/// [`crate::sample`] for scalar schedules. Errors: an increasing grid or negative times, any
/// model or solver error, and a non-finite state (naming the step and time).
pub fn sample_phase<S: State>(
    solver: &dyn PhaseSolver<S>,
    model: &dyn PhaseScore<S>,
    process: &Psld,
    grid: &TimeGrid,
    z: Phase<S>,
    noise: &mut dyn BrownianPath<Phase<S>>,
    observer: &mut dyn Observer<Phase<S>>,
) -> Result<Phase<S>> {
    let times = grid.times();
    if !grid.is_decreasing() || times.iter().any(|&t| t < 0.0) {
        return Err(SolverError::InvalidParameter {
            name: "grid",
            reason: "augmented samplers need a decreasing grid of times >= 0".into(),
        });
    }
    if !z.is_finite() {
        return Err(CoreError::NonFinite {
            context: "the initial phase state".into(),
        }
        .into());
    }
    observer.on_step(0, times[0], &z);
    let mut z = z;
    for (index, w) in times.windows(2).enumerate() {
        let step = PhaseStep {
            model,
            process,
            t0: w[0],
            t1: w[1],
            index,
            n_steps: grid.steps(),
        };
        z = solver.step(&step, z, noise)?;
        if !z.is_finite() {
            return Err(SolverError::NonFinite {
                step: index,
                t: w[1],
                solver: solver.name(),
            });
        }
        observer.on_step(index + 1, w[1], &z);
    }
    Ok(z)
}

/// The host matrices of a recipe process (per unit of `B = int beta`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recipe {
    /// Drift matrix `F`.
    pub f: Matrix2<f64>,
    /// Noise covariance rate `Q = 2 D`.
    pub q: Matrix2<f64>,
    /// Stationary precision `S^{-1} = diag(1, 1/M)`.
    pub prec: Matrix2<f64>,
    process_beta: diffusion_core::process::AffineBeta,
}

impl Recipe {
    pub fn of(p: &Psld) -> Self {
        let sde = p.sde();
        Recipe {
            f: mat2(sde.drift_matrix()),
            q: mat2(sde.noise_covariance()),
            prec: Matrix2::new(1.0, 0.0, 0.0, 1.0 / p.mass()),
            process_beta: sde.time_change(),
        }
    }

    /// `beta(t)`.
    pub fn beta(&self, t: f64) -> f64 {
        self.process_beta.beta(t)
    }
}

/// The top-left `2 x 2` block of a host matrix.
pub(crate) fn mat2(m: &DMatrix<f64>) -> Matrix2<f64> {
    Matrix2::new(m[(0, 0)], m[(0, 1)], m[(1, 0)], m[(1, 1)])
}

/// `M z` coordinate-wise: `(m00 x + m01 v, m10 x + m11 v)`.
pub(crate) fn apply<S: State>(m: &Matrix2<f64>, z: &Phase<S>) -> Phase<S> {
    Phase::new(
        z.x.lincomb(m[(0, 0)], &z.v, m[(0, 1)]),
        z.x.lincomb(m[(1, 0)], &z.v, m[(1, 1)]),
    )
}

/// The lower Cholesky factor of a `2 x 2` PSD matrix (degenerate directions give zero columns).
pub(crate) fn cholesky2(c: &Matrix2<f64>) -> Result<Matrix2<f64>> {
    let l = psd_cholesky(&DMatrix::from_row_slice(
        2,
        2,
        &[c[(0, 0)], c[(0, 1)], c[(1, 0)], c[(1, 1)]],
    ))?;
    Ok(mat2(&l))
}

/// `L xi` with `xi = (W(t1) - W(t0)) / sqrt|t1 - t0|` a standard normal phase state: a draw of
/// `N(0, L L^T)` coordinate-wise.
pub(crate) fn gaussian_draw<S: State>(
    l: &Matrix2<f64>,
    noise: &mut dyn BrownianPath<Phase<S>>,
    t0: f64,
    t1: f64,
    like: &Phase<S>,
) -> Result<Phase<S>> {
    let xi = noise.normalized(t0, t1, like)?;
    Ok(apply(l, &xi))
}

/// Checks `t1 < t0`, both finite and `t1 >= 0`.
pub(crate) fn check_step<S>(step: &PhaseStep<'_, S>) -> Result<()> {
    if step.t0.is_finite() && step.t1.is_finite() && 0.0 <= step.t1 && step.t1 < step.t0 {
        Ok(())
    } else {
        Err(SolverError::InvalidParameter {
            name: "grid",
            reason: format!(
                "an augmented step needs 0 <= t1 < t0, got t0 = {}, t1 = {}",
                step.t0, step.t1
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    #[test]
    fn apply_and_cholesky_are_the_2x2_algebra() {
        let m = Matrix2::new(1.0, 2.0, -3.0, 0.5);
        let z = Phase::new(arr1(&[1.0, 0.0]), arr1(&[0.0, 1.0]));
        let r = apply(&m, &z);
        assert_eq!(r.x, arr1(&[1.0, 2.0]));
        assert_eq!(r.v, arr1(&[-3.0, 0.5]));
        let c = Matrix2::new(4.0, 1.0, 1.0, 2.0);
        let l = cholesky2(&c).unwrap();
        assert!((l * l.transpose() - c).abs().max() < 1e-14);
        assert_eq!(l[(0, 1)], 0.0);
    }

    #[test]
    fn recipe_drift_of_cld_is_the_paper_drift() {
        let cld = diffusion_core::process::Cld::default();
        let p = Psld::from_cld(&cld);
        let r = Recipe::of(&p);
        // F = [[0, 1/M], [-1, -Gamma/M]], Q = diag(0, 2 Gamma).
        assert!((r.f - Matrix2::new(0.0, 4.0, -1.0, -4.0)).abs().max() < 1e-12);
        assert!((r.q - Matrix2::new(0.0, 0.0, 0.0, 2.0)).abs().max() < 1e-12);
        assert!((r.prec - Matrix2::new(1.0, 0.0, 0.0, 4.0)).abs().max() < 1e-12);
    }
}
