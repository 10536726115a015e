//! # diffusion-models
//!
//! The part of the workspace that always needs libtorch (through `tch`): devices and the
//! libtorch health check, and (as the models issue lands) networks, denoiser adapters, training
//! losses, the trainer and atomic checkpoints. Solvers from `diffusion-solvers` run on
//! `tch::Tensor` directly because `diffusion-core` implements `State` for it (feature `tch`).

pub mod device;
pub mod error;

pub use device::{doctor, parse_device, DoctorReport};
pub use error::{ModelError, Result};
pub use tch;
