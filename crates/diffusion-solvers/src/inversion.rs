//! Inversion: running a deterministic solver from data to noise.
//!
//! Paper: Song, Meng & Ermon (2021), "Denoising Diffusion Implicit Models", arXiv:2010.02502,
//! Sec. 4.3 (the ODE form of DDIM, which can be integrated in either direction) and Sec. 5.4
//! (encoding data into latents and reconstructing them); Lu et al. (2022), "DPM-Solver",
//! arXiv:2206.00927 (`DPM_Solver.inverse` of its code). Every deterministic [`Solver`] here is written for either direction of time,
//! so inversion is [`sample`] on an increasing grid: DDIM inversion is `ddim` on the reversed
//! sampling grid, and a solver of order `p` inverts with error `O(h^p)`, so inverting with `N`
//! steps and sampling back with `N` steps returns the data up to `O(N^-p)`.
//!
//! The round trip is exact only for an algebraically reversible method: see
//! [`crate::sde::ReversibleHeun::invert`], which keeps the auxiliary state that a plain
//! [`Solver`] loses between the two runs. Stochastic solvers are refused
//! ([`SolverError::NotDeterministic`]): their noise cannot be inverted by running forwards.

use crate::error::{Result, SolverError};
use crate::sampler::{sample, NoObserver};
use crate::solver::Solver;
use diffusion_core::{Denoiser, IndependentIncrements, NoiseSchedule, State, TimeGrid};

/// Runs the deterministic `solver` over the increasing `grid` (from data towards noise) from
/// `x0` at the grid's first time, returning the state at its last time.
///
/// The first time should have `sigma > 0` (a small `t_min`; noise predictions are singular at
/// the data). Errors: a stochastic solver ([`SolverError::NotDeterministic`]), a grid that walks
/// towards the data, and every error of [`sample`].
pub fn invert<S: State>(
    solver: &dyn Solver<S>,
    model: &dyn Denoiser<S>,
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    x0: S,
) -> Result<S> {
    if solver.is_stochastic() {
        return Err(SolverError::NotDeterministic {
            solver: solver.name(),
        });
    }
    if grid.is_decreasing() {
        return Err(SolverError::InvalidParameter {
            name: "grid",
            reason: format!(
                "inversion walks from data to noise, so the grid must increase; got {} -> {} (use grid.reversed())",
                grid.times()[0],
                grid.times()[grid.steps()]
            ),
        });
    }
    // Deterministic solvers never draw; the path only satisfies the signature.
    let mut no_noise = IndependentIncrements::seeded(0);
    sample(
        solver,
        model,
        schedule,
        grid,
        x0,
        &mut no_noise,
        &mut NoObserver,
    )
}
