//! Training: the [`Trainer`], its AdamW, EMA, learning-rate schedule, checkpoints, TOML
//! configuration (network and data included) and metrics log.

pub mod adamw;
pub mod checkpoint;
pub mod config;
pub mod ema;
pub mod flat;
pub mod log;
pub mod lr;
pub mod model;
pub mod run_folder;
pub mod trainer;

pub use adamw::{AdamW, AdamWConfig};
pub use checkpoint::{load_weights, save_weights, Checkpoint};
pub use config::{
    DataConfig, FmnistConfig, LossConfig, OptimConfig, Precision, SampleConfig, TrainConfig,
};
pub use ema::Ema;
pub use log::{LogFormat, MetricsLog};
pub use lr::WarmupCosine;
pub use model::{ModelConfig, Net};
pub use run_folder::{load_teacher, save_run_weights, weights_file, RUN_CONFIG};
pub use trainer::{RunOptions, StepStats, Trainer};
