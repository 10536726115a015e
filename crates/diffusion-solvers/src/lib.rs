//! # diffusion-solvers
//!
//! Every continuous sampler, written once against [`diffusion_core::State`] so it runs on ndarray
//! arrays, tch tensors and phase-space pairs alike. A [`Solver`] is a one-step rule; [`sample`]
//! walks a [`diffusion_core::TimeGrid`] with it. Multistep history lives in an explicit
//! [`Cache`], randomness in an explicit [`diffusion_core::BrownianPath`].
//!
//! The registry ([`registry::build`], [`registry::SOLVERS`]) builds any solver from a name with
//! parameters, for the command line and benchmarks.
//!
//! Adaptive solvers that choose their own steps live in [`adaptive`] (with the step-size
//! controllers); denoiser wrappers such as dynamic thresholding and AB-Cache live in
//! [`adapters`]. [`inversion::invert`] runs any deterministic solver from data to noise.

pub mod adapters;
pub mod adaptive;
pub mod error;
pub mod inversion;
pub mod ode;
pub mod registry;
pub mod sampler;
pub mod sde;
pub mod solver;

pub use error::{Result, SolverError};
pub use inversion::invert;
pub use sampler::{sample, NoObserver, Observer, Trajectory};
pub use solver::{Cache, Eval, Solver, Step};
