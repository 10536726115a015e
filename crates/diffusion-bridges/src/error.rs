//! The error type of `diffusion-bridges`.

use thiserror::Error;

/// Result alias of `diffusion-bridges`.
pub type Result<T, E = BridgeError> = std::result::Result<T, E>;

/// What can go wrong with bridges and interpolants.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// A parameter is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// An error from the core math.
    #[error(transparent)]
    Core(#[from] diffusion_core::CoreError),
}
