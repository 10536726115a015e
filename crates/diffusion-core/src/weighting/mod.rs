//! Training-time weightings and the time-wise corrections built on them: the signal-to-noise
//! ratio and min-SNR-gamma loss weights, EDM's loss weight, preconditioning and log-normal noise
//! levels, the prior gap that decides the truncation time `T`, and score calibration.
//!
//! Each concept has its own file: [`mod@snr`] (Hang et al. 2023), [`edm`] (Karras et al. 2022),
//! [`truncation`] (Franzese et al. 2023), [`calibration`] (Pang et al. 2023). The loss weights
//! are host `f64` numbers per time; the networks and losses that use them live in
//! `diffusion-models`.

pub mod calibration;
pub mod edm;
pub mod snr;
pub mod truncation;

pub use calibration::{dsm_loss, Calibrated};
pub use edm::{edm_loss_weight, EdmPrecond, LogNormalSigma};
pub use snr::{min_snr_weight, snr, LossTarget};
pub use truncation::{prior_gap_kl, prior_gap_kl_at_snr, truncation_time};
