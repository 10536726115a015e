//! The error type of `diffusion-core`.

use thiserror::Error;

/// Result alias used throughout `diffusion-core`.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in `diffusion-core`: invalid configuration, bad shapes,
/// non-finite numbers and malformed files. Each variant names what was wrong.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A constructor or function received a parameter outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Name of the offending parameter.
        name: &'static str,
        /// Why the value is invalid.
        reason: String,
    },
    /// Two arrays that must agree in shape do not.
    #[error("shape mismatch in {context}: expected {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Where the mismatch was found.
        context: &'static str,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape that was given.
        got: Vec<usize>,
    },
    /// A time grid is not strictly monotone, or leaves the schedule's time range.
    #[error("invalid time grid: {0}")]
    InvalidGrid(String),
    /// A number that must be finite is NaN or infinite.
    #[error("non-finite value in {context}")]
    NonFinite {
        /// Where it appeared.
        context: String,
    },
    /// A file (JSON target description, npy array, ...) could not be parsed.
    #[error("cannot parse {what}: {reason}")]
    Parse {
        /// What was being parsed.
        what: String,
        /// The parser's message.
        reason: String,
    },
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl CoreError {
    /// Shorthand for [`CoreError::InvalidParameter`].
    pub fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        CoreError::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }
}

/// Checks that `value` is finite, naming `name` in the error otherwise.
pub fn ensure_finite(name: &'static str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(CoreError::invalid(
            name,
            format!("must be finite, got {value}"),
        ))
    }
}
