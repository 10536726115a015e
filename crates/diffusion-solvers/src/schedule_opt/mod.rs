//! Sampling-schedule optimization: time grids fitted to a model instead of chosen by hand.
//!
//! - [`ays`]: Align Your Steps (Sabour, Fidler & Kreis 2024): minimize a KL upper bound between
//!   the generative SDE and its discretization over the interior noise levels;
//! - [`gits`]: GITS (Chen, Zhou, Wang, Shen & Lyu 2024): dynamic programming over a fine
//!   candidate grid, with the chosen solver's local error against pilot teacher trajectories as
//!   the step cost.
//!
//! Both return a validated [`diffusion_core::TimeGrid`] on the schedule's own time axis, usable
//! with every solver. They are library functions (no registry): they need a model and data.

pub mod ays;
pub mod gits;

pub use ays::{optimize_ays, refine_ays, AysOptions, AysResult, AysSweep, Klub, Proxy};
pub use gits::{dp_schedule, gits_schedule, local_error_costs, GitsResult, StepCosts};
