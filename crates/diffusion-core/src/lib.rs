//! # diffusion-core
//!
//! The mathematical vocabulary of the diffusion workspace: the [`State`] backend trait (ndarray
//! arrays of any dimension, `tch::Tensor` behind the `tch` feature, phase-space pairs), explicit
//! noise ([`NoiseSource`], [`HostNoise`], the opt-in vectorised [`FastNoise`]) and Brownian paths ([`BrownianTree`]), noise schedules
//! on one continuous time axis, model predictions and their conversions, validated time grids,
//! analytic Gaussian and Gaussian-mixture targets, the optimal denoiser of a finite data set, the
//! 2-D toy data sets, and distances between distributions (exact and sliced W2, MMD, energy
//! distance, Gaussian KL and W2, NLL under an exact target), and forward processes beyond scalar
//! schedules ([`process`]: multivariate linear SDEs, CLD, PSLD, FDM, mean-reverting and
//! mean-shifted SDEs, the PFGM++ kernel), and training-time weightings ([`weighting`]: SNR and
//! min-SNR-gamma, EDM preconditioning and loss weight, the prior gap at the truncation time, score
//! calibration).
//!
//! Everything here is pure Rust; `cargo test -p diffusion-core` needs neither Python nor libtorch.
//! The notation is in `docs/notation.md`.

pub mod brownian;
pub mod error;
pub mod grid;
pub mod metrics;
pub mod noise;
pub mod noise_fast;
pub mod prediction;
pub mod process;
pub mod schedule;
pub mod spec;
pub mod state;
pub mod target;
pub mod weighting;

pub use brownian::{BrownianPath, BrownianTree, IndependentIncrements, TreeNoise};
pub use error::{CoreError, Result};
pub use grid::TimeGrid;
pub use noise::{HostNoise, NoiseSource};
pub use noise_fast::FastNoise;
pub use prediction::{denoise, Coeffs, Counted, Denoiser, Prediction};
pub use schedule::NoiseSchedule;
pub use spec::Spec;
pub use state::{Finiteness, Phase, State};
pub use target::{EmpiricalData, Gaussian, GaussianMixture, Toy2d};
