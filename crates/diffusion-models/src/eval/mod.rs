//! Evaluation of trained models: the log-likelihood of data through the probability-flow ODE in
//! nats and bits per dimension ([`nll`]), and FMNIST-FD ([`fd`]): the Frechet distance between
//! penultimate features of the project's own Fashion-MNIST classifier ([`classifier`]), with the
//! classifier's accuracy and predictive entropy on class-conditional samples.

pub mod classifier;
pub mod fd;
pub mod nll;

pub use classifier::{default_cache_dir, CacheStatus, Classifier, ClassifierRecipe, LabeledImages};
pub use fd::{
    frechet_distance, mean_entropy, reference_stats, sample_metrics, split_half_fds, FeatureStats,
    SampleMetrics,
};
pub use nll::{
    bits_per_dim, log_likelihood, Dequantization, Divergence, Likelihood, LogDensityFn, NllOptions,
    OdeMethod, Prior, Probe,
};
