//! The error type of `diffusion-models`.

use thiserror::Error;

/// Result alias of `diffusion-models`.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// What can go wrong with networks, devices, training and checkpoints.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ModelError {
    /// An error raised by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// An error from the core math.
    #[error(transparent)]
    Core(#[from] diffusion_core::CoreError),
    /// A requested device does not exist.
    #[error("device `{0}` is not available (see `diffusion doctor`)")]
    DeviceUnavailable(String),
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
