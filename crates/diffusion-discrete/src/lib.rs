//! # diffusion-discrete
//!
//! Discrete-state diffusion on token sequences. States are token arrays, not vector spaces, so
//! this crate has its own vocabulary: a [`DiscreteProcess`] gives the forward marginals
//! `q(x_t | x_0)` and transitions `q(x_t | x_s)` per token; [`Absorbing`] (masked diffusion) and
//! [`Uniform`] are the two base processes, driven by a [`MaskSchedule`] `alpha(t)` (the
//! probability that a token is still clean at time `t`).
//!
//! Denoisers (`TokenDenoiser`), ELBOs and samplers (ancestral, tau-leaping, remasking) arrive
//! with the discrete-diffusion issue; docs/methods.md tracks them.

pub mod error;
pub mod process;
pub mod schedule;

pub use error::{DiscreteError, Result};
pub use process::{Absorbing, DiscreteProcess, Uniform};
pub use schedule::MaskSchedule;
