//! The error type of `diffusion-discrete`.

use thiserror::Error;

/// Result alias of `diffusion-discrete`.
pub type Result<T, E = DiscreteError> = std::result::Result<T, E>;

/// What can go wrong with discrete processes.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DiscreteError {
    /// A parameter is outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A token id is not in the vocabulary.
    #[error("token {token} is outside the vocabulary of size {vocab}")]
    TokenOutOfRange {
        /// The token.
        token: u32,
        /// The vocabulary size (including the mask token where there is one).
        vocab: usize,
    },
}
