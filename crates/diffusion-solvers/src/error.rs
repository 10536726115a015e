//! The error type of `diffusion-solvers`.

use diffusion_core::CoreError;
use thiserror::Error;

/// Result alias of `diffusion-solvers`.
pub type Result<T, E = SolverError> = std::result::Result<T, E>;

/// What can go wrong while sampling.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SolverError {
    /// An error from the core math (bad grid, model failure, shape mismatch, ...).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The state became NaN or infinite.
    #[error("state became non-finite at step {step} (t = {t}) of solver {solver}")]
    NonFinite {
        /// Index of the step that produced it (0-based).
        step: usize,
        /// The time the step was heading to.
        t: f64,
        /// The solver's name.
        solver: String,
    },
    /// A deterministic solver was required (inversion), but this one draws noise.
    #[error("solver {solver} is stochastic; inversion needs a deterministic solver (an ODE solver, or eta = 0)")]
    NotDeterministic {
        /// The solver's name.
        solver: String,
    },
    /// A solver parameter is invalid.
    #[error("invalid solver parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why.
        reason: String,
    },
}
