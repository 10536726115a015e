//! Training configuration as TOML (`diffusion train --config <file>`).
//!
//! ```toml
//! seed = 0
//! device = "cpu"                 # cpu, cuda, cuda:N, auto
//! cpu_threads = 1                # libtorch threads on the CPU (0: one per core)
//! [data]                         # exactly one of `toy` and `fmnist`
//! toy = "8gaussians"             # any diffusion_core::Toy2d name
//! # fmnist = { flip = true, classes = true, p_uncond = 0.1, pad32 = false }
//! [model]                        # kind = "mlp" (default) | "unet" | "dit", then its fields
//! hidden = 128
//! depth = 3
//! embedding = { kind = "fourier", dim = 32, scale = 4.0 }
//! [loss]                         # kind = "edm" | "dsm" | "flow" | "scm" | "iddpm" | "progressive"
//! kind = "edm"
//! sigma_data = 2.0
//! [train]                        # every field optional
//! steps = 3000
//! precision = "fp32"             # or "bf16" (CUDA; falls back to fp32 on the CPU)
//! sample_every = 0               # write a sample grid PNG every this many updates
//! [sample]                       # how `diffusion train` samples the result
//! solver = "heun"
//! ```
//!
//! Unknown keys are errors (a typo never silently falls back to a default). Any value can be
//! overridden from the command line with [`TrainConfig::set`] (`diffusion train --set
//! train.batch_size=32`).

use super::adamw::AdamWConfig;
use super::log::LogFormat;
use super::lr::WarmupCosine;
use super::model::ModelConfig;
use crate::data::fmnist::{FashionMnist, Split};
use crate::data::{DataSource, ImageData, ImageOptions, Sampling, ToyData};
use crate::denoiser::Output;
use crate::denoiser::Parameterization;
use crate::error::{ModelError, Result};
use crate::losses::{
    Decoder, DsmLoss, EdmLoss, FlowMatchingLoss, IddpmLoss, Objective, ProgressiveDistillation,
    ScmConfig, ScmLoss, Teacher, TimeSampling, Variance, Weighting,
};
use crate::precond::EdmPrecond;
use diffusion_core::Toy2d;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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
    pub model: ModelConfig,
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

/// The training data (TOML `[data]`): exactly one of `toy` and `fmnist`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A 2-D toy by name (`8gaussians`, `moons`, `checkerboard`, `swissroll`, `2spirals`,
    /// `pinwheel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toy: Option<String>,
    /// Fashion-MNIST images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fmnist: Option<FmnistConfig>,
}

/// Fashion-MNIST as training data (TOML `[data] fmnist = { ... }`); see
/// [`crate::data`] for the batch order and the augmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FmnistConfig {
    /// The folder of the IDX files (absent: `$DIFFUSION_FMNIST_DIR`, else
    /// `/usr/share/datasets/fashion-mnist`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// `train` (60 000 images) or `test` (10 000).
    pub split: Split,
    /// Random horizontal flips.
    pub flip: bool,
    /// Condition on the class labels (the network needs `num_classes = 10`).
    pub classes: bool,
    /// Probability of replacing a label by the null class during training (classifier-free
    /// guidance; used when `classes` is on).
    pub p_uncond: f64,
    /// Centre the 28x28 images in 32x32 (background padding).
    pub pad32: bool,
    /// `shuffle` (epochs) or `replacement`.
    pub sampling: Sampling,
    /// Use only the first `limit` images (0: all).
    pub limit: usize,
}

impl Default for FmnistConfig {
    fn default() -> Self {
        FmnistConfig {
            dir: None,
            split: Split::Train,
            flip: true,
            classes: false,
            p_uncond: 0.1,
            pad32: false,
            sampling: Sampling::Shuffle,
            limit: 0,
        }
    }
}

impl FmnistConfig {
    /// The folder the files are read from (see [`FmnistConfig::dir`]).
    pub fn resolved_dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(FashionMnist::default_dir)
    }

    /// Loads the images (and keeps the first `limit`).
    pub fn load(&self) -> Result<FashionMnist> {
        let mut set = FashionMnist::load(&self.resolved_dir(), self.split)?;
        if self.limit > 0 {
            set.truncate(self.limit);
        }
        Ok(set)
    }

    /// The batch options.
    pub fn options(&self) -> ImageOptions {
        ImageOptions {
            flip: self.flip,
            classes: self.classes,
            pad32: self.pad32,
            sampling: self.sampling,
        }
    }

    /// The served image shape `[1, H, W]`.
    pub fn item_shape(&self) -> Vec<i64> {
        if self.pad32 {
            vec![1, 32, 32]
        } else {
            vec![1, 28, 28]
        }
    }
}

/// The objective (TOML `[loss]` with `kind = "edm" | "dsm" | "flow" | "scm" | "iddpm" |
/// "progressive"`). The distillation objectives (`progressive`, and `scm` with a `teacher`) read
/// their teacher from a `diffusion train` run folder ([`super::run_folder::load_teacher`]) when
/// the objective is built, not when the configuration is parsed.
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
    /// Continuous-time consistency training under TrigFlow (sCT, `losses::scm`), or
    /// distillation (sCD) from a `teacher` run; sample the result with the `consistency` solver
    /// on the `trigflow` schedule.
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
        /// A `diffusion train` run folder whose network is the teacher: consistency distillation
        /// (sCD) along the teacher's probability-flow ODE; absent: consistency training (sCT).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        teacher: Option<PathBuf>,
        /// Classifier-free guidance scale of the teacher (1: unguided; needs a class-conditional
        /// teacher and a `teacher`).
        #[serde(default = "one_f64", skip_serializing_if = "is_one")]
        teacher_guidance: f64,
    },
    /// Progressive distillation (`losses::progressive`, Salimans & Ho 2022, Algorithm 2): the
    /// student learns to match two DDIM steps of the `teacher` run in one, on a uniform grid of
    /// `steps` steps from `t_start` to `t_end` of `schedule`. Sample the student with `solver =
    /// "ddim"`, `grid = "uniform:t_start=<t_start>,t_end=<t_end>"` and `steps`; start it from the
    /// teacher's weights (`diffusion train --init-weights <teacher>/ema_<decay>.safetensors`) as
    /// the paper does; the next round's teacher is this run.
    Progressive {
        /// The teacher: a `diffusion train` run folder.
        teacher: PathBuf,
        /// The student's forward process, as `diffusion_core::schedule::build` reads it.
        #[serde(default = "vp_cosine")]
        schedule: String,
        /// What the student predicts (the paper's choice: `v`).
        #[serde(default = "v_target")]
        target: Output,
        /// The student's number of DDIM steps `N` (the teacher takes `2 N` on the same grid).
        steps: usize,
        /// The grid's first (noisiest) time.
        #[serde(default = "pd_t_start")]
        t_start: f64,
        /// The grid's last time.
        #[serde(default = "pd_t_end")]
        t_end: f64,
        /// Classifier-free guidance scale of the teacher (1: unguided; needs a class-conditional
        /// teacher).
        #[serde(default = "one_f64", skip_serializing_if = "is_one")]
        teacher_guidance: f64,
    },
    /// Improved DDPM's hybrid loss `L_simple + lambda L_vlb` with learned variances
    /// (`losses::iddpm`). A learned-variance network outputs twice the data's channels (MLP
    /// `out_dim`, U-Net / DiT `out_channels`); samplers see its eps half.
    Iddpm {
        /// The discrete table, a `ddpm-linear | ddpm-scaled-linear | ddpm-cosine` spec.
        #[serde(default = "ddpm_cosine")]
        schedule: String,
        /// Weight of `L_vlb`.
        #[serde(default = "iddpm_lambda")]
        lambda: f64,
        /// The `k = 0` term: `gaussian` (real-valued data) or `discretized` (8-bit images; also
        /// clips `x0_hat` to `[-1, 1]` when sampling).
        #[serde(default = "gaussian_decoder")]
        decoder: Decoder,
        /// `learned`, `fixed-small` or `fixed-large`.
        #[serde(default = "learned")]
        variance: Variance,
    },
}

fn ddpm_cosine() -> String {
    "ddpm-cosine".into()
}
fn iddpm_lambda() -> f64 {
    0.001
}
fn gaussian_decoder() -> Decoder {
    Decoder::Gaussian
}
fn learned() -> Variance {
    Variance::Learned
}

fn one_f64() -> f64 {
    1.0
}
// serde's `skip_serializing_if` passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_one(x: &f64) -> bool {
    *x == 1.0
}
fn vp_cosine() -> String {
    "vp-cosine".into()
}
fn v_target() -> Output {
    Output::V
}
fn pd_t_start() -> f64 {
    0.99
}
fn pd_t_end() -> f64 {
    1e-3
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
    /// Arithmetic of the forward and backward passes.
    pub precision: Precision,
    /// Write a grid of the EMA model's samples as a PNG every this many updates (0: only at the
    /// end, when the run is given a sample folder).
    pub sample_every: u64,
}

/// Arithmetic of training (TOML `train.precision`).
///
/// `bf16` runs the network's forward and backward passes in bfloat16 on CUDA while the
/// optimizer, the EMA and the checkpoints keep float32 master weights (the gradients are
/// converted to float32 before clipping and AdamW), the scheme of mixed-precision training
/// without loss scaling (Micikevicius et al. 2018, arXiv:1710.03740, Sec. 3.1; bfloat16 needs no
/// loss scaling: Kalamkar et al. 2019, arXiv:1905.12322). The loss itself is computed in float32
/// from the network's bfloat16 output. (tch 0.24's `autocast` can only select float16 on CUDA,
/// so the network is cast instead.) Inside the bfloat16 copy the arithmetic is split as
/// CUDA's `torch.autocast` splits it: the time embedding, GroupNorm (with float32 parameters) /
/// LayerNorm with what follows them up to the next convolution or linear layer, and the
/// attention softmax run in float32; convolutions, linear layers and matrix products in
/// bfloat16 (`nets::layers`; the gradients equal PyTorch's under CUDA autocast's op lists,
/// `tests/train_bf16.rs`). On the CPU, `bf16` falls back to `fp32` with a warning:
/// libtorch's CPU bfloat16 kernels are slower than float32 ones on most machines (the
/// environment variable `DIFFUSION_BF16_ON_CPU=1` keeps bf16 on the CPU, for testing that path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 throughout.
    #[default]
    Fp32,
    /// bfloat16 forward/backward with float32 master weights (CUDA only).
    Bf16,
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
            precision: Precision::Fp32,
            sample_every: 0,
        }
    }
}

/// How `diffusion train` samples the trained network (TOML `[sample]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleConfig {
    /// A registry solver spec (`diffusion solvers`), or the objective's own sampler
    /// (`iddpm-ancestral` for `[loss] kind = "iddpm"`: the ancestral chain respaced to `steps`
    /// entries, with the learned variances; `grid` is then unused).
    pub solver: String,
    /// A time-grid spec (`karras`, `uniform:t_start=0.999`, ...).
    pub grid: String,
    /// Solver steps.
    pub steps: usize,
    /// Number of samples.
    pub n: usize,
    /// Which EMA decay to sample (absent: the first one, or the raw weights if there is none).
    pub ema: Option<f64>,
    /// Classifier-free guidance scale for class-conditional networks (1: the conditional model,
    /// no unconditional evaluation).
    pub guidance: f64,
    /// Number of images (or 2-D points) in the sample pictures written during training.
    pub grid_n: usize,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            solver: "heun".into(),
            grid: "karras".into(),
            steps: 32,
            n: 2000,
            ema: None,
            guidance: 1.0,
            grid_n: 64,
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
        let g = self.teacher_guidance();
        if !g.is_finite() {
            return Err(ModelError::Config(format!(
                "loss.teacher_guidance must be finite, got {g}"
            )));
        }
        self.check_data()?;
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
        if self.sample.n == 0 || self.sample.steps == 0 || self.sample.grid_n == 0 {
            return Err(ModelError::Config(
                "sample.n, sample.steps and sample.grid_n must be at least 1".into(),
            ));
        }
        if !self.sample.guidance.is_finite() {
            return Err(ModelError::Config(format!(
                "sample.guidance must be finite, got {}",
                self.sample.guidance
            )));
        }
        match &self.loss {
            LossConfig::Progressive {
                schedule,
                steps,
                t_start,
                t_end,
                ..
            } => ProgressiveDistillation::check(
                diffusion_core::schedule::build(schedule)?.as_ref(),
                *steps,
                *t_start,
                *t_end,
            )?,
            LossConfig::Scm {
                teacher: None,
                teacher_guidance,
                ..
            } if *teacher_guidance != 1.0 => {
                return Err(ModelError::Config(format!(
                    "loss.teacher_guidance = {teacher_guidance} needs a loss.teacher"
                )))
            }
            // The teacher is read when the objective is built (`Trainer::new`), not here.
            _ => {
                self.build_objective(None)?;
            }
        }
        Ok(())
    }

    /// Checks `[data]` and that the network fits it (shape and classes), without loading files.
    fn check_data(&self) -> Result<()> {
        let d = &self.data;
        let shape = match (&d.toy, &d.fmnist) {
            (Some(_), None) => {
                self.toy()?;
                vec![2]
            }
            (None, Some(f)) => {
                if !(0.0..1.0).contains(&f.p_uncond) {
                    return Err(ModelError::Config(format!(
                        "data.fmnist.p_uncond must be in [0, 1), got {}",
                        f.p_uncond
                    )));
                }
                f.item_shape()
            }
            _ => {
                return Err(ModelError::Config(
                    "[data] needs exactly one of `toy = \"<name>\"` and `fmnist = { ... }`".into(),
                ))
            }
        };
        let want = self.model.item_shape();
        if want != shape {
            return Err(ModelError::Config(format!(
                "the {} takes items of shape {want:?} but the data has shape {shape:?}{}",
                self.model.label(),
                if shape.len() == 3 && want.len() == 1 {
                    " (use [model] kind = \"unet\" or \"dit\" for images)"
                } else {
                    ""
                }
            )));
        }
        let classes = self.data_classes();
        let nc = self.model.num_classes();
        if classes != nc {
            return Err(ModelError::Config(format!(
                "the data has {classes} classes but model.num_classes = {nc} \
                 (set data.fmnist.classes = true with num_classes = 10, or neither)"
            )));
        }
        Ok(())
    }

    /// Number of classes the data's labels have (0: unlabelled, or labels not asked for).
    pub fn data_classes(&self) -> usize {
        match &self.data.fmnist {
            Some(f) if f.classes => 10,
            _ => 0,
        }
    }

    /// The seed of the initial noise of the samples a run draws when it ends (and of its sample
    /// pictures): `seed` XOR 0x5a3b1e00, a stream apart from the training's.
    pub fn sample_seed(&self) -> u64 {
        self.seed ^ 0x5a3b_1e00
    }

    /// The EMA decay whose weights are sampled: `sample.ema`, else the first tracked decay
    /// (`None`: the raw weights, when no EMA is tracked).
    pub fn sample_decay(&self) -> Option<f64> {
        self.sample.ema.or(self.train.ema_decays.first().copied())
    }

    /// Probability of dropping a label during training (0 without labels).
    pub fn p_uncond(&self) -> f64 {
        match &self.data.fmnist {
            Some(f) if f.classes => f.p_uncond,
            _ => 0.0,
        }
    }

    /// The toy data set (an error when `[data]` is not a toy).
    pub fn toy(&self) -> Result<Toy2d> {
        let name = self.data.toy.as_deref().ok_or_else(|| {
            ModelError::Config("[data] is not a 2-D toy (no `toy = \"<name>\"`)".into())
        })?;
        Toy2d::from_name(name).map_err(|e| ModelError::Config(e.to_string()))
    }

    /// Builds the data source (loading the image files for `fmnist`).
    pub fn data_source(&self) -> Result<Box<dyn DataSource>> {
        if let Some(f) = &self.data.fmnist {
            return Ok(Box::new(ImageData::new(f.load()?, f.options(), self.seed)?));
        }
        Ok(Box::new(ToyData(self.toy()?)))
    }

    /// Applies the overrides `assignments` in order ([`TrainConfig::set`] each), as `--set`
    /// options of the command line do.
    pub fn set_all<S: AsRef<str>>(&mut self, assignments: &[S]) -> Result<()> {
        assignments.iter().try_for_each(|kv| self.set(kv.as_ref()))
    }

    /// Overrides one value by its dotted path, e.g. `train.batch_size=32`,
    /// `data.fmnist.limit=1000`, `sample.solver="dpmpp-2m"` or `model.channels=[32, 64]`. The
    /// value is TOML (a bare word that is not valid TOML is taken as a string); the result is
    /// validated.
    pub fn set(&mut self, assignment: &str) -> Result<()> {
        let (key, value) = assignment.split_once('=').ok_or_else(|| {
            ModelError::Config(format!("--set `{assignment}`: expected key=value"))
        })?;
        let (key, value) = (key.trim(), value.trim());
        let parsed: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
            Ok(mut t) => t.remove("v").expect("just parsed"),
            Err(_) => toml::Value::String(value.to_string()),
        };
        let mut root =
            toml::Table::try_from(&*self).map_err(|e| ModelError::Config(e.to_string()))?;
        let parts: Vec<&str> = key.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ModelError::Config(format!(
                "--set `{assignment}`: bad key `{key}`"
            )));
        }
        let mut table = &mut root;
        for p in &parts[..parts.len() - 1] {
            let entry = table
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry.as_table_mut().ok_or_else(|| {
                ModelError::Config(format!("--set `{assignment}`: `{p}` is not a table"))
            })?;
        }
        table.insert(parts[parts.len() - 1].to_string(), parsed);
        let text = toml::to_string(&root).map_err(|e| ModelError::Config(e.to_string()))?;
        *self = Self::from_toml_str(&text)
            .map_err(|e| ModelError::Config(format!("--set `{assignment}`: {e}")))?;
        Ok(())
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

    /// The teacher run of a distillation objective (`progressive`, `scm` with a `teacher`).
    pub fn teacher_run(&self) -> Option<&Path> {
        match &self.loss {
            LossConfig::Scm { teacher, .. } => teacher.as_deref(),
            LossConfig::Progressive { teacher, .. } => Some(teacher),
            _ => None,
        }
    }

    /// The classifier-free guidance scale of a distillation objective's teacher (1: unguided,
    /// and for every other objective).
    pub fn teacher_guidance(&self) -> f64 {
        match &self.loss {
            LossConfig::Scm {
                teacher_guidance, ..
            }
            | LossConfig::Progressive {
                teacher_guidance, ..
            } => *teacher_guidance,
            _ => 1.0,
        }
    }

    /// The teacher run, made absolute against the current directory (`diffusion train` does
    /// this before writing the run's `config.toml`, so the run can be sampled from anywhere).
    pub fn absolutize_teacher(&mut self) -> Result<()> {
        let teacher = match &mut self.loss {
            LossConfig::Scm {
                teacher: Some(t), ..
            }
            | LossConfig::Progressive { teacher: t, .. } => t,
            _ => return Ok(()),
        };
        if teacher.as_os_str().is_empty() {
            return Err(ModelError::Config(
                "loss.teacher is empty: give a `diffusion train --out` run folder".into(),
            ));
        }
        *teacher = std::path::absolute(&*teacher)?;
        Ok(())
    }

    /// This configuration with its teacher dropped, for sampling or evaluating a trained run
    /// without reading its teacher (`diffusion generate`, `diffusion eval --nll`, a run read as
    /// a teacher itself): sCD becomes sCT, and progressive distillation DSM on the student's
    /// schedule, target, time range (`[t_end, t_start]`) and weighting (`max(snr, 1)`), which
    /// read the network exactly as the distillation objective does (same
    /// [`Objective::parameterization`] and forward process; their checkpoint states agree).
    /// Other configurations are returned unchanged.
    pub fn without_teacher(&self) -> TrainConfig {
        let mut c = self.clone();
        match &mut c.loss {
            LossConfig::Scm {
                teacher,
                teacher_guidance,
                ..
            } => {
                *teacher = None;
                *teacher_guidance = 1.0;
            }
            LossConfig::Progressive {
                schedule,
                target,
                t_start,
                t_end,
                ..
            } => {
                c.loss = LossConfig::Dsm {
                    schedule: schedule.clone(),
                    target: *target,
                    weighting: Weighting::TruncatedSnr,
                    t_min: *t_end,
                    t_max: Some(*t_start),
                }
            }
            _ => {}
        }
        c
    }

    /// Builds the objective, reading the teacher run of a distillation objective onto the
    /// configured device.
    pub fn objective(&self) -> Result<Box<dyn Objective>> {
        let teacher = match self.teacher_run() {
            Some(run) => Some(
                super::run_folder::load_teacher(run, crate::device::parse_device(&self.device)?)?
                    .with_guidance(self.teacher_guidance())?,
            ),
            None => None,
        };
        self.build_objective(teacher)
    }

    /// How a network trained with this configuration is read as a denoiser, without reading any
    /// teacher: its parameterization and forward process (what a distillation teacher needs of
    /// a run). Improved DDPM's learned-variance networks are not supported (their output carries
    /// the variance head).
    pub fn reading(&self) -> Result<(Parameterization, Box<dyn diffusion_core::NoiseSchedule>)> {
        if let LossConfig::Iddpm { .. } = &self.loss {
            return Err(ModelError::Config(
                "an improved-DDPM run (learned variances) cannot be read as a plain denoiser"
                    .into(),
            ));
        }
        let o = self.without_teacher().build_objective(None)?;
        Ok((o.parameterization(), o.into_schedule()))
    }

    /// Builds the objective with `teacher` for a distillation objective (`scm` without one
    /// trains; `progressive` needs one).
    fn build_objective(&self, teacher: Option<Teacher>) -> Result<Box<dyn Objective>> {
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
                teacher: _,
                teacher_guidance: _,
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
                let device = crate::device::parse_device(&self.device)?;
                Box::new(match teacher {
                    Some(t) => ScmLoss::distillation(config, t, device)?,
                    None => ScmLoss::training(config, device)?,
                })
            }
            LossConfig::Progressive {
                teacher: run,
                schedule,
                target,
                steps,
                t_start,
                t_end,
                teacher_guidance: _,
            } => {
                let teacher = teacher.ok_or_else(|| {
                    ModelError::Config(format!(
                        "progressive distillation needs its teacher run {}",
                        run.display()
                    ))
                })?;
                Box::new(ProgressiveDistillation::new(
                    teacher,
                    diffusion_core::schedule::build(schedule)?,
                    *target,
                    *steps,
                    *t_start,
                    *t_end,
                )?)
            }
            LossConfig::Iddpm {
                schedule,
                lambda,
                decoder,
                variance,
            } => Box::new(
                IddpmLoss::new(
                    diffusion_core::schedule::build_ddpm(schedule)?,
                    *lambda,
                    *decoder,
                )?
                .with_variance(*variance)
                // Images on [-1, 1] (the discretized decoder): clip x0_hat when sampling and in
                // the bound, as the authors' `clip_denoised`.
                .with_clip(matches!(decoder, Decoder::Discretized)),
            ),
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
        let iddpm = TrainConfig::from_toml_str(&format!(
            "{base}[loss]\nkind = \"iddpm\"\nschedule = \"ddpm-linear:n=100\"\nvariance = \"fixed-small\"\n"
        ))
        .unwrap();
        assert!(iddpm.objective().unwrap().name().contains("FixedSmall"));
        assert!(TrainConfig::from_toml_str(&format!(
            "{base}[loss]\nkind = \"iddpm\"\nschedule = \"edm\"\n"
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
        // Distillation: the teacher run is not read when the configuration is checked.
        let scd = TrainConfig::from_toml_str(&format!(
            "{base}[loss]\nkind = \"scm\"\nteacher = \"no/such/run\"\n"
        ))
        .unwrap();
        assert_eq!(scd.teacher_run(), Some(Path::new("no/such/run")));
        assert_eq!(
            TrainConfig::from_toml_str(&scd.to_toml().unwrap()).unwrap(),
            scd
        );
        assert_eq!(no_norm.teacher_run(), None);
        assert!(!no_norm.to_toml().unwrap().contains("teacher"));
        let pd = TrainConfig::from_toml_str(&format!(
            "{base}[loss]\nkind = \"progressive\"\nteacher = \"no/such/run\"\nsteps = 4\n"
        ))
        .unwrap();
        assert!(matches!(
            &pd.loss,
            LossConfig::Progressive { schedule, target: Output::V, steps: 4, t_start, t_end, .. }
                if schedule == "vp-cosine" && *t_start == 0.99 && *t_end == 1e-3
        ));
        assert_eq!(
            TrainConfig::from_toml_str(&pd.to_toml().unwrap()).unwrap(),
            pd
        );
        let (param, schedule) = pd.reading().unwrap();
        assert_eq!(param, crate::Parameterization::Raw(Output::V));
        assert_eq!(
            schedule.name(),
            diffusion_core::NoiseSchedule::name(&diffusion_core::schedule::VpCosine::default())
        );
        assert!(matches!(
            pd.without_teacher().loss,
            LossConfig::Dsm {
                target: Output::V,
                weighting: Weighting::TruncatedSnr,
                ..
            }
        ));
        let mut empty = scd.clone();
        empty.set("loss.teacher=\"\"").unwrap();
        assert!(
            matches!(empty.absolutize_teacher(), Err(ModelError::Config(m)) if m.contains("loss.teacher"))
        );
        let mut rel = scd.clone();
        rel.absolutize_teacher().unwrap();
        assert!(rel.teacher_run().unwrap().is_absolute());
        assert!(rel.teacher_run().unwrap().ends_with("no/such/run"));
        for bad in [
            format!("{base}[loss]\nkind = \"edm\"\nsigma_dta = 1.0\n"),
            format!("{base}[loss]\nkind = \"nope\"\n"),
            format!("{base}[loss]\nkind = \"edm\"\n[train]\nstepz = 3\n"),
            format!("{base}[loss]\nkind = \"edm\"\n[train]\nsteps = 0\n"),
            format!("{base}[loss]\nkind = \"edm\"\nsigma_data = -1.0\n"),
            format!("{base}[loss]\nkind = \"edm\"\n[sample]\nema = 0.5\n"),
            format!("{base}[loss]\nkind = \"progressive\"\nsteps = 2\n"),
            format!("{base}[loss]\nkind = \"scm\"\nteacher_guidance = 2.0\n"),
            format!("{base}[loss]\nkind = \"scm\"\nteacher = \"t\"\nteacher_guidance = nan\n"),
            format!("{base}[loss]\nkind = \"progressive\"\nteacher = \"t\"\nsteps = 0\n"),
            format!("{base}[loss]\nkind = \"progressive\"\nteacher = \"t\"\nsteps = 2\nt_end = 0.5\nt_start = 0.4\n"),
            format!("{base}[loss]\nkind = \"progressive\"\nteacher = \"t\"\nsteps = 2\nschedule = \"nope\"\n"),
            "[data]\ntoy = \"circles\"\n[loss]\nkind = \"edm\"\n".to_string(),
            "this is not toml".to_string(),
        ] {
            assert!(
                matches!(
                    TrainConfig::from_toml_str(&bad),
                    Err(ModelError::Config(_)) | Err(ModelError::InvalidParameter { .. }) | Err(ModelError::Core(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn every_shipped_config_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let c = TrainConfig::load(&dir.join("toy2d-edm.toml")).unwrap();
        assert!(matches!(c.loss, LossConfig::Edm { .. }));
        assert_eq!(c.toy().unwrap(), Toy2d::EightGaussians);
        assert_eq!(c.model.kind(), "mlp");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let c = TrainConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
                // Round trip through TOML.
                assert_eq!(
                    TrainConfig::from_toml_str(&c.to_toml().unwrap()).unwrap(),
                    c
                );
                names.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
        names.sort();
        for want in [
            "fmnist-ddpm.toml",
            "fmnist-edm.toml",
            "fmnist-flow.toml",
            "fmnist-iddpm.toml",
            "fmnist-progressive.toml",
            "fmnist-scm.toml",
            "toy2d-edm.toml",
            "toy2d-progressive.toml",
            "toy2d-scm.toml",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
    }

    #[test]
    fn model_kind_data_choice_and_overrides() {
        let base = "[data]\ntoy = \"moons\"\n[loss]\nkind = \"edm\"\n";
        // `kind` defaults to the MLP; its fields are checked.
        let c = TrainConfig::from_toml_str(&format!("{base}[model]\nhidden = 8\n")).unwrap();
        assert_eq!(c.model.mlp().unwrap().hidden, 8);
        let k = TrainConfig::from_toml_str(&format!("{base}[model]\nkind = \"mlp\"\nhidden = 8\n"))
            .unwrap();
        assert_eq!(k, c);
        for bad in [
            format!("{base}[model]\nkind = \"resnet\"\n"),
            format!("{base}[model]\nhiden = 8\n"),
            format!("{base}[model]\nkind = 3\n"),
            // Both or neither data source; a bad p_uncond; classes without a conditional net.
            "[data]\ntoy = \"moons\"\nfmnist = {}\n[loss]\nkind = \"edm\"\n".to_string(),
            "[data]\n[loss]\nkind = \"edm\"\n".to_string(),
            "[data]\nfmnist = { p_uncond = 1.5 }\n[loss]\nkind = \"edm\"\n".to_string(),
            "[data]\nfmnist = { colour = true }\n[loss]\nkind = \"edm\"\n".to_string(),
            format!("{base}[model]\nnum_classes = 3\n"),
            // The MLP cannot take images.
            "[data]\nfmnist = {}\n[loss]\nkind = \"edm\"\n".to_string(),
            format!("{base}[train]\nprecision = \"fp8\"\n"),
        ] {
            assert!(TrainConfig::from_toml_str(&bad).is_err(), "{bad}");
        }
        let msg = TrainConfig::from_toml_str("[data]\nfmnist = {}\n[loss]\nkind = \"edm\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("unet"), "{msg}");
        // --set: dotted keys, TOML values, bare strings; the result is validated.
        let mut c = c;
        c.set("train.batch_size=32").unwrap();
        c.set("sample.solver = dpmpp-2m").unwrap();
        c.set("model.hidden=16").unwrap();
        c.set("train.precision=\"bf16\"").unwrap();
        c.set("train.ema_decays=[0.9, 0.99]").unwrap();
        assert_eq!(c.train.batch_size, 32);
        assert_eq!(c.sample.solver, "dpmpp-2m");
        assert_eq!(c.model.mlp().unwrap().hidden, 16);
        assert_eq!(c.train.precision, Precision::Bf16);
        assert_eq!(c.train.ema_decays, [0.9, 0.99]);
        // The sampled decay: `sample.ema`, else the first tracked one, else none (raw weights).
        let mut d = c.clone();
        d.sample.ema = None;
        assert_eq!(d.sample_decay(), Some(0.9));
        d.sample.ema = Some(0.99);
        assert_eq!(d.sample_decay(), Some(0.99));
        d.sample.ema = None;
        d.train.ema_decays.clear();
        assert_eq!(d.sample_decay(), None);
        // `set_all` applies them in order (the last one wins) and stops at the first bad one.
        c.set_all(&["train.batch_size=8", "train.batch_size=16"])
            .unwrap();
        assert_eq!(c.train.batch_size, 16);
        assert!(c
            .set_all(&[
                "train.batch_size=4",
                "train.nonsense=1",
                "train.batch_size=2"
            ])
            .is_err());
        assert_eq!(c.train.batch_size, 4);
        for bad in [
            "train.batch_size=0",
            "train.nope=1",
            "batch_size",
            "seed.x=1",
            "data.toy=circles",
        ] {
            let before = c.clone();
            assert!(c.set(bad).is_err(), "{bad}");
            assert_eq!(c, before, "{bad} changed the config");
        }
    }
}
