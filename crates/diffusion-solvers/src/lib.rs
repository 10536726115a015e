//! # diffusion-solvers
//!
//! Every continuous sampler, written once against [`diffusion_core::State`] so it runs on ndarray
//! arrays, tch tensors and phase-space pairs alike. A [`Solver`] is a one-step rule; [`sample`]
//! walks a [`diffusion_core::TimeGrid`] with it. Multistep history lives in an explicit
//! [`Cache`], randomness in an explicit [`diffusion_core::BrownianPath`].
//!
//! The registry ([`registry::build`], [`registry::SOLVERS`]) builds any solver from a name with
//! parameters, for the command line and benchmarks. [`schedule_opt`] fits time grids to a model
//! (Align Your Steps, GITS).
//!
//! Adaptive solvers that choose their own steps live in [`adaptive`] (with the step-size
//! controllers); denoiser wrappers such as dynamic thresholding and AB-Cache live in
//! [`adapters`]. [`inversion::invert`] runs any deterministic solver from data to noise.
//!
//! Samplers for phase-space processes (CLD, PSLD) driven by an augmented score live in
//! [`augmented`], with their own one-step trait and loop.

pub mod adapters;
pub mod adaptive;
pub mod augmented;
pub mod error;
pub mod inversion;
pub mod ode;
mod ops;
pub mod registry;
pub mod sampler;
pub mod schedule_opt;
pub mod sde;
pub mod solver;

pub use error::{Result, SolverError};
pub use inversion::invert;
pub use sampler::{sample, NoObserver, Observer, Trajectory, PENDING_CHECKS};
pub use solver::{Cache, Eval, Solver, Step};
