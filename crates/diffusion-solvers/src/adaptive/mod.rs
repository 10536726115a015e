//! Adaptive step-size solvers: they choose their own steps from an embedded error estimate, so
//! they run their own loop over time instead of walking a [`diffusion_core::TimeGrid`].
//!
//! - [`dpm_solver_adaptive`] / [`dpm_solver_adaptive_with`]: DPM-Solver-12 and -23 (Lu et al.
//!   2022, Algorithm 4) between two times with finite log-SNR;
//! - [`DpmSolverAdaptive`]: the same as a grid [`crate::Solver`], integrating every grid interval
//!   adaptively (so the registry and the grid-based tools can use it);
//! - [`controller`]: the [`StepSizeController`] trait and a PID controller.

pub mod controller;
mod dpm_solver_adaptive;

pub use controller::{Acceptance, Limiter, PidController, StepDecision, StepSizeController};
pub use dpm_solver_adaptive::{
    dpm_solver_adaptive, dpm_solver_adaptive_with, AdaptiveOptions, AdaptiveStats,
    DpmSolverAdaptive,
};
