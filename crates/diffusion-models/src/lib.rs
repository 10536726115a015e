//! # diffusion-models
//!
//! The part of the workspace that always needs libtorch (through `tch`): devices and the
//! libtorch health check, networks ([`nets`]: MLP, U-Net, DiT, sequence transformer), the adapter that lets every solver sample a
//! network ([`TchDenoiser`]), EDM preconditioning ([`precond`]), classifier-free guidance
//! ([`guidance`]), training losses ([`losses`]), the trainer with exact-resume checkpoints
//! ([`train`]) and its data: 2-D toys, Fashion-MNIST and PNG sample grids ([`data`]), and
//! evaluation ([`eval`]: PF-ODE likelihoods in bits/dim, FMNIST-FD). Solvers from
//! `diffusion-solvers` run on `tch::Tensor` directly because `diffusion-core` implements
//! `State` for it (feature `tch`).
//!
//! All randomness (initial weights, data, training times and noise) comes from seeded
//! `HostNoise` streams, never from torch's global generator, so runs are reproducible in every
//! thread and resume bit for bit on the CPU.

pub mod data;
pub mod denoiser;
pub mod device;
pub mod error;
pub mod eval;
pub mod guidance;
pub mod host_malloc;
pub mod losses;
pub mod nets;
pub mod precond;
pub mod train;

pub use denoiser::{x0_per_row, Output, Parameterization, TchDenoiser};
pub use device::{doctor, parse_device, DoctorReport};
pub use error::{ModelError, Result};
pub use guidance::Guided;
pub use losses::{
    DsmLoss, EdmLoss, FlowMatchingLoss, Objective, ProgressiveDistillation, ScmConfig, ScmLoss,
    SmdLoss, Teacher, TimeSampling, Weighting,
};
pub use nets::{
    Dit, DitConfig, GmmNet, Mlp, MlpConfig, SeqTransformer, SeqTransformerConfig, SharedTime,
    TimeEmbedding, TimeNet, UNet, UNetConfig,
};
pub use precond::EdmPrecond;
pub use tch;
