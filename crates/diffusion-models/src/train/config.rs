//! Training configuration as TOML (`diffusion train --config <file>`).
//!
//! ```toml
//! seed = 0
//! device = "cpu"                 # cpu, cuda, cuda:N, auto
//! cpu_threads = 1                # libtorch threads on the CPU (0: one per core)
//! [data]
//! toy = "8gaussians"             # any diffusion_core::Toy2d name
//! [model]                        # MlpConfig; every field optional
//! hidden = 128
//! depth = 3
//! embedding = { kind = "fourier", dim = 32, scale = 4.0 }
//! [loss]                         # kind = "edm" | "dsm" | "flow" | "scm"
//! kind = "edm"
//! sigma_data = 2.0
//! [train]                        # every field optional
//! steps = 3000
//! [sample]                       # how `diffusion train` samples the result
//! solver = "heun"
//! ```
//!
//! Unknown keys are errors (a typo never silently falls back to a default).

use super::adamw::AdamWConfig;
use super::log::LogFormat;
use super::lr::WarmupCosine;
use crate::denoiser::Output;
use crate::error::{ModelError, Result};
use crate::losses::{
    DsmLoss, EdmLoss, FlowMatchingLoss, Objective, ScmConfig, ScmLoss, TimeSampling, Weighting,
};
use crate::nets::MlpConfig;
use crate::precond::EdmPrecond;
use diffusion_core::Toy2d;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A whole training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed of the initial weights, the data stream and the training noise.
    #[serde(default)]
    pub seed: u64,
    /// Device: `cpu`, `cuda`, `cuda:N` or `auto`.
    #[serde(default = "default_device")]
    pub device: String,
    /// libtorch's intra-op threads on the CPU, set process-wide by the trainer (0: libtorch's
    /// default, one per core). 1 is the fastest for small networks, and by far the fastest when
    /// other processes share the cores (idle threads spin in libtorch's thread pool).
    #[serde(default = "one")]
    pub cpu_threads: usize,
    /// The data.
    pub data: DataConfig,
    /// The network.
    #[serde(default)]
    pub model: MlpConfig,
    /// The objective.
    pub loss: LossConfig,
    /// Optimizer, schedule, EMA, logging and checkpoints.
    #[serde(default)]
    pub train: OptimConfig,
    /// Sampling after training.
    #[serde(default)]
    pub sample: SampleConfig,
}

fn default_device() -> String {
    "cpu".into()
}

fn one() -> usize {
    1
}

/// The training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A 2-D toy by name (`8gaussians`, `moons`, `checkerboard`, `swissroll`, `2spirals`,
    /// `pinwheel`).
    pub toy: String,
}

/// The objective (TOML `[loss]` with `kind = "edm" | "dsm" | "flow" | "scm"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum LossConfig {
    /// The EDM loss with preconditioning.
    Edm {
        /// Data standard deviation.
        #[serde(default = "half")]
        sigma_data: f64,
        /// Mean of `ln sigma`.
        #[serde(default = "p_mean")]
        p_mean: f64,
        /// Standard deviation of `ln sigma`.
        #[serde(default = "p_std")]
        p_std: f64,
        /// Largest noise level for sampling (the EDM schedule's range).
        #[serde(default = "sigma_max")]
        sigma_max: f64,
    },
    /// Denoising score matching.
    Dsm {
        /// The schedule, as `diffusion_core::schedule::build` reads it.
        #[serde(default = "vp_linear")]
        schedule: String,
        /// What the network predicts.
        #[serde(default = "epsilon")]
        target: Output,
        /// The weighting.
        #[serde(default = "simple")]
        weighting: Weighting,
        /// Smallest training time.
        #[serde(default = "t_min")]
        t_min: f64,
        /// Largest training time (default: the schedule's).
        #[serde(default)]
        t_max: Option<f64>,
    },
    /// Flow matching with the linear interpolant.
    Flow {
        /// How training times are drawn.
        #[serde(default = "uniform")]
        time: TimeSampling,
    },
    /// Continuous-time consistency training under TrigFlow (sCT, `losses::scm`); sample the
    /// result with the `consistency` solver on the `trigflow` schedule.
    Scm {
        /// TrigFlow's data standard deviation.
        #[serde(default = "half")]
        sigma_d: f64,
        /// Mean of `ln(sigma_d tan t)`.
        #[serde(default = "scm_p_mean")]
        p_mean: f64,
        /// Standard deviation of `ln(sigma_d tan t)`.
        #[serde(default = "scm_p_std")]
        p_std: f64,
        /// Tangent normalization constant `c` (0: no normalization).
        #[serde(default = "tangent_c")]
        tangent_c: f64,
        /// Updates of tangent warmup (0: none).
        #[serde(default)]
        warmup_steps: u64,
        /// Learn the adaptive weighting `w_phi(t)`.
        #[serde(default = "yes")]
        adaptive: bool,
    },
}

fn scm_p_mean() -> f64 {
    -1.0
}
fn scm_p_std() -> f64 {
    1.4
}
fn tangent_c() -> f64 {
    0.1
}
fn yes() -> bool {
    true
}

fn half() -> f64 {
    0.5
}
fn p_mean() -> f64 {
    -1.2
}
fn p_std() -> f64 {
    1.2
}
fn sigma_max() -> f64 {
    80.0
}
fn vp_linear() -> String {
    "vp-linear".into()
}
fn epsilon() -> Output {
    Output::Epsilon
}
fn simple() -> Weighting {
    Weighting::Simple
}
fn t_min() -> f64 {
    1e-3
}
fn uniform() -> TimeSampling {
    TimeSampling::Uniform
}

/// Optimizer, learning rate, EMA, logging and checkpointing (TOML `[train]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    /// Total updates.
    pub steps: u64,
    /// Samples per update.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warmup updates.
    pub warmup_steps: u64,
    /// Final learning rate as a fraction of `lr` (cosine decay).
    pub min_lr_ratio: f64,
    /// AdamW beta1.
    pub beta1: f64,
    /// AdamW beta2.
    pub beta2: f64,
    /// AdamW eps.
    pub eps: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this (0: no clipping).
    pub grad_clip: f64,
    /// EMA decays (several may be tracked).
    pub ema_decays: Vec<f64>,
    /// Ramp the EMA decay up as `(1 + k) / (10 + k)`.
    pub ema_warmup: bool,
    /// Write a metrics line every this many updates.
    pub log_every: u64,
    /// Write a checkpoint every this many updates (0: only at the end).
    pub checkpoint_every: u64,
    /// Metrics file format.
    pub log_format: LogFormat,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            steps: 2000,
            batch_size: 256,
            lr: 1e-3,
            warmup_steps: 100,
            min_lr_ratio: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            grad_clip: 1.0,
            ema_decays: vec![0.999],
            ema_warmup: true,
            log_every: 10,
            checkpoint_every: 1000,
            log_format: LogFormat::Csv,
        }
    }
}

/// How `diffusion train` samples the trained network (TOML `[sample]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleConfig {
    /// A registry solver spec (`diffusion solvers`).
    pub solver: String,
    /// A time-grid spec (`karras`, `uniform:t_start=0.999`, ...).
    pub grid: String,
    /// Solver steps.
    pub steps: usize,
    /// Number of samples.
    pub n: usize,
    /// Which EMA decay to sample (absent: the first one, or the raw weights if there is none).
    pub ema: Option<f64>,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            solver: "heun".into(),
            grid: "karras".into(),
            steps: 32,
            n: 2000,
            ema: None,
        }
    }
}

impl TrainConfig {
    /// Parses and validates TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let c: TrainConfig = toml::from_str(text).map_err(|e| ModelError::Config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Reads, parses and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ModelError::Config(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml_str(&text)
            .map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| ModelError::Config(e.to_string()))
    }

    /// Checks every value that can be checked without building anything heavy.
    pub fn validate(&self) -> Result<()> {
        self.toy()?;
        self.model.validate()?;
        let t = &self.train;
        if t.steps == 0 || t.batch_size == 0 {
            return Err(ModelError::Config(
                "train.steps and train.batch_size must be at least 1".into(),
            ));
        }
        if !(t.grad_clip.is_finite() && t.grad_clip >= 0.0) {
            return Err(ModelError::Config(format!(
                "train.grad_clip must be finite and >= 0, got {}",
                t.grad_clip
            )));
        }
        if t.log_every == 0 {
            return Err(ModelError::Config(
                "train.log_every must be at least 1".into(),
            ));
        }
        self.adamw().validate()?;
        self.lr_schedule()?;
        if let Some(e) = self.sample.ema {
            if !t.ema_decays.contains(&e) {
                return Err(ModelError::Config(format!(
                    "sample.ema = {e} is not one of train.ema_decays {:?}",
                    t.ema_decays
                )));
            }
        }
        if self.sample.n == 0 || self.sample.steps == 0 {
            return Err(ModelError::Config(
                "sample.n and sample.steps must be at least 1".into(),
            ));
        }
        self.objective()?;
        Ok(())
    }

    /// The toy data set.
    pub fn toy(&self) -> Result<Toy2d> {
        let toy =
            Toy2d::from_name(&self.data.toy).map_err(|e| ModelError::Config(e.to_string()))?;
        if self.model.data_dim != 2 {
            return Err(ModelError::Config(format!(
                "model.data_dim = {} but the 2-D toys have dimension 2",
                self.model.data_dim
            )));
        }
        Ok(toy)
    }

    /// The AdamW hyperparameters.
    pub fn adamw(&self) -> AdamWConfig {
        AdamWConfig {
            beta1: self.train.beta1,
            beta2: self.train.beta2,
            eps: self.train.eps,
            weight_decay: self.train.weight_decay,
        }
    }

    /// The learning-rate schedule.
    pub fn lr_schedule(&self) -> Result<WarmupCosine> {
        WarmupCosine::new(
            self.train.lr,
            self.train.warmup_steps,
            self.train.steps,
            self.train.min_lr_ratio,
        )
    }

    /// Builds the objective.
    pub fn objective(&self) -> Result<Box<dyn Objective>> {
        Ok(match &self.loss {
            LossConfig::Edm {
                sigma_data,
                p_mean,
                p_std,
                sigma_max,
            } => Box::new(EdmLoss::new(
                EdmPrecond::new(*sigma_data)?,
                *p_mean,
                *p_std,
                *sigma_max,
            )?),
            LossConfig::Dsm {
                schedule,
                target,
                weighting,
                t_min,
                t_max,
            } => {
                let s = diffusion_core::schedule::build(schedule)?;
                let hi = t_max.unwrap_or(s.t_range().1);
                Box::new(DsmLoss::new(s, *target, *weighting, *t_min, hi)?)
            }
            LossConfig::Flow { time } => Box::new(FlowMatchingLoss::new(*time)?),
            LossConfig::Scm {
                sigma_d,
                p_mean,
                p_std,
                tangent_c,
                warmup_steps,
                adaptive,
            } => {
                let config = ScmConfig {
                    sigma_d: *sigma_d,
                    p_mean: *p_mean,
                    p_std: *p_std,
                    tangent_c: (*tangent_c != 0.0).then_some(*tangent_c),
                    warmup_steps: *warmup_steps,
                    adaptive: *adaptive,
                    ..ScmConfig::default()
                };
                Box::new(ScmLoss::training(
                    config,
                    crate::device::parse_device(&self.device)?,
                )?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_loss_kind_and_rejects_typos() {
        let base = "[data]\ntoy = \"moons\"\n";
        let edm = TrainConfig::from_toml_str(&format!(
            "{base}[loss]\nkind = \"edm\"\nsigma_data = 1.0\n"
        ))
        .unwrap();
        assert!(
            matches!(edm.loss, LossConfig::Edm { sigma_data, p_mean, .. } if sigma_data == 1.0 && p_mean == -1.2)
        );
        assert_eq!(edm.train, OptimConfig::default());
        let dsm = TrainConfig::from_toml_str(&format!(
            "{base}[loss]\nkind = \"dsm\"\ntarget = \"v\"\nweighting = {{ kind = \"min-snr\", gamma = 5.0 }}\n"
        ))
        .unwrap();
        assert!(
            matches!(dsm.loss, LossConfig::Dsm { target: Output::V, weighting: Weighting::MinSnr { gamma }, .. } if gamma == 5.0)
        );
        let flow = TrainConfig::from_toml_str(&format!(
            "{base}[loss]\nkind = \"flow\"\ntime = {{ kind = \"logit-normal\", mean = 0.0, std = 1.0 }}\n"
        ))
        .unwrap();
        assert_eq!(
            flow.objective().unwrap().parameterization(),
            crate::Parameterization::Raw(Output::Velocity)
        );
        let scm = TrainConfig::from_toml_str(&format!(
            "{base}[loss]\nkind = \"scm\"\nsigma_d = 1.0\nwarmup_steps = 10\n"
        ))
        .unwrap();
        assert!(
            matches!(scm.loss, LossConfig::Scm { sigma_d, warmup_steps: 10, tangent_c, adaptive: true, .. } if sigma_d == 1.0 && tangent_c == 0.1)
        );
        assert_eq!(
            scm.objective().unwrap().parameterization(),
            crate::Parameterization::TrigFlow { sigma_d: 1.0 }
        );
        assert!(TrainConfig::from_toml_str(&format!(
            "{base}[loss]\nkind = \"scm\"\np_std = 0.0\n"
        ))
        .is_err());
        assert!(TrainConfig::from_toml_str(&format!(
            "{base}[loss]\nkind = \"scm\"\ntangent_c = -1.0\n"
        ))
        .is_err());
        let no_norm =
            TrainConfig::from_toml_str(&format!("{base}[loss]\nkind = \"scm\"\ntangent_c = 0.0\n"))
                .unwrap();
        assert_eq!(
            TrainConfig::from_toml_str(&no_norm.to_toml().unwrap()).unwrap(),
            no_norm
        );
        // Round trip through TOML.
        assert_eq!(
            TrainConfig::from_toml_str(&dsm.to_toml().unwrap()).unwrap(),
            dsm
        );
        for bad in [
            format!("{base}[loss]\nkind = \"edm\"\nsigma_dta = 1.0\n"),
            format!("{base}[loss]\nkind = \"nope\"\n"),
            format!("{base}[loss]\nkind = \"edm\"\n[train]\nstepz = 3\n"),
            format!("{base}[loss]\nkind = \"edm\"\n[train]\nsteps = 0\n"),
            format!("{base}[loss]\nkind = \"edm\"\nsigma_data = -1.0\n"),
            format!("{base}[loss]\nkind = \"edm\"\n[sample]\nema = 0.5\n"),
            "[data]\ntoy = \"circles\"\n[loss]\nkind = \"edm\"\n".to_string(),
            "this is not toml".to_string(),
        ] {
            assert!(
                matches!(
                    TrainConfig::from_toml_str(&bad),
                    Err(ModelError::Config(_)) | Err(ModelError::InvalidParameter { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_shipped_toy2d_edm_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/toy2d-edm.toml");
        let c = TrainConfig::load(&path).unwrap();
        assert!(matches!(c.loss, LossConfig::Edm { .. }));
        assert_eq!(c.toy().unwrap(), Toy2d::EightGaussians);
    }
}
