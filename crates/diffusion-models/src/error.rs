//! The error type of `diffusion-models`.

use std::path::PathBuf;
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
    /// An error from a solver while sampling a network.
    #[error(transparent)]
    Solver(#[from] diffusion_solvers::SolverError),
    /// A requested device does not exist.
    #[error("device `{0}` is not available (see `diffusion doctor`)")]
    DeviceUnavailable(String),
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A parameter outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Name of the offending parameter.
        name: &'static str,
        /// Why the value is invalid.
        reason: String,
    },
    /// A tensor of the wrong shape.
    #[error("shape mismatch in {context}: expected {expected:?}, got {got:?}")]
    Shape {
        /// Where the mismatch was found.
        context: String,
        /// The expected shape (`-1` for any size).
        expected: Vec<i64>,
        /// The shape that was given.
        got: Vec<i64>,
    },
    /// A training configuration that cannot be parsed or is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A checkpoint that is missing, truncated, corrupt or does not fit the model.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A data set that is missing, truncated, corrupt or malformed.
    #[error("data {}: {reason}", path.display())]
    Data {
        /// The file (or folder) concerned.
        path: PathBuf,
        /// What is wrong with it (and, for a missing data set, how to install it).
        reason: String,
    },
    /// A loss or a parameter became NaN or infinite during training.
    #[error("non-finite value in {0}")]
    NonFinite(String),
}

impl ModelError {
    /// Shorthand for [`ModelError::InvalidParameter`].
    pub fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        ModelError::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ModelError::Data`].
    pub fn data(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ModelError::Data {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ModelError::Checkpoint`].
    pub fn checkpoint(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ModelError::Checkpoint {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
