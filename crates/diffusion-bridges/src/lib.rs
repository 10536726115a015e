//! # diffusion-bridges
//!
//! Transport between two distributions: stochastic interpolants and flow-matching targets here;
//! OT couplings, Schrodinger bridges and DDBM/DBIM arrive with the bridges issue. Bridges reuse
//! the solvers of `diffusion-solvers`: a bridge builds an ODE drift or SDE and runs the same
//! steppers, so there is no second solver framework.

pub mod error;
pub mod interpolant;

pub use error::{BridgeError, Result};
pub use interpolant::{Interpolant, LinearInterpolant, TrigInterpolant};
