//! The trainer: seeded data and noise streams, AdamW, warmup + cosine learning rate, gradient
//! clipping, EMA at several decays, metrics log, progress bar and exact-resume checkpoints.
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, App. F (training setup: Adam, warmup, EMA); Pascanu,
//! Mikolov & Bengio (2013), "On the difficulty of training recurrent neural networks",
//! arXiv:1211.5063, Alg. 1 (clipping the global gradient norm, as `torch.nn.utils.clip_grad_norm_`).
//!
//! The network is any [`TimeNet`] the `[model]` section names (MLP, U-Net, DiT) and the data any
//! [`DataSource`] (a 2-D toy, Fashion-MNIST). Class-labelled data trains a class-conditional
//! network; each label is replaced by the network's null class with probability `p_uncond`
//! (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance", arXiv:2207.12598, Alg. 1), so the
//! same network also answers unconditionally and can be sampled with guidance.
//!
//! Determinism: update `k` (0-based) draws its data batch (items, flips) and then its label
//! dropout from `HostNoise::with_stream(seed, 2k + 1)` (plus, for shuffled epochs, the
//! permutation streams of [`crate::data`]) and its times and noise from stream `2k + 2`; the
//! weights start from `HostNoise::new(seed)`. Nothing depends on torch's global generator or on
//! earlier draws, so a run resumed from a checkpoint (weights, AdamW moments and step count, EMA
//! averages, all stored bit for bit) computes exactly the losses of an uninterrupted run on the
//! CPU.
//!
//! Precision: see [`Precision`]. With `bf16` on CUDA a bfloat16 copy of the network does the
//! forward and backward passes; the float32 master weights are copied into it before each update
//! and its gradients are copied back (as float32) before clipping and AdamW. Inside the copy the
//! time embedding, the norms and the attention softmax still run in float32, as under CUDA's
//! `torch.autocast`, and the variables autocast never rounds (GroupNorm's parameters, embedding
//! and position tables) stay float32: the copy keeps them in a float32 buffer of their own,
//! filled from their places in the master buffer and scattered back into the master gradients.
//! [`Trainer::loss_gradients`] exposes one update's forward/backward pass for comparing it with
//! PyTorch's (`tests/train_bf16.rs`).
//!
//! Speed: the trainable parameters are views of one flat buffer and their gradients views of
//! another ([`super::flat`]), so zeroing, clipping, AdamW, the EMA and the bf16 copies are a few
//! kernels per update whatever the number of tensors. Host data goes to a GPU through pinned
//! memory without blocking, and an update reads nothing back: whether its loss and gradient norm
//! are finite is decided on the device, where a non-finite one turns the update (and every later
//! one) into an exact no-op. [`Trainer::train_steps`] and [`Trainer::run`] read the losses back
//! once per batch of updates; a non-finite value then becomes an error naming the update, with
//! the trainer left at the state before it.

use super::adamw::AdamW;
use super::checkpoint::{Checkpoint, Named};
use super::config::{Precision, TrainConfig};
use super::ema::Ema;
use super::flat::FlatLayout;
use super::log::MetricsLog;
use super::lr::WarmupCosine;
use super::model::Net;
use crate::data::{grid, Batch, DataSource};
use crate::denoiser::TchDenoiser;
use crate::device::{parse_device, upload};
use crate::error::{ModelError, Result};
use crate::guidance::Guided;
use crate::losses::Objective;
use crate::nets::TimeNet;
use diffusion_core::{BrownianTree, Denoiser, HostNoise, TimeGrid, Toy2d};
use diffusion_solvers::{registry, sample};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

/// [`Trainer::run`] reads losses back at least once per this many updates.
const READ_BACK_EVERY: usize = 25;

/// XORed into the seed for the per-update dropout seeds.
const DROPOUT_SALT: u64 = 0xd509_0f7a_11ce_5eed;

/// What one update did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Updates done after this one.
    pub step: u64,
    /// The batch loss (before the update).
    pub loss: f64,
    /// The learning rate used.
    pub lr: f64,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
}

/// Where [`Trainer::run`] reports and saves.
#[derive(Debug, Default)]
pub struct RunOptions<'a> {
    /// The metrics log (a line every `train.log_every` updates and at the end).
    pub log: Option<&'a mut MetricsLog>,
    /// The checkpoint file (written every `train.checkpoint_every` updates and at the end).
    pub checkpoint: Option<PathBuf>,
    /// Show an indicatif progress bar (loss, it/s, ETA) on stderr when it is a terminal.
    pub progress: bool,
}

/// The bfloat16 copy of the network that computes the passes under `precision = "bf16"`.
struct LowPrecision {
    _vs: nn::VarStore,
    net: Net,
    /// Its bfloat16 trainable variables, in the order of the master parameters (views of `flat`).
    params: Vec<Tensor>,
    /// Where they sit: the master layout less the float32 ones.
    layout: FlatLayout,
    /// The variables that are not trainable, with their master counterparts.
    others: Vec<(Tensor, Tensor)>,
    /// The bf16 parameter buffer and its gradient buffer (the master layout's length; the
    /// places of the float32 parameters are unused and their gradients stay zero).
    flat: Tensor,
    grads: Tensor,
    /// The trainable variables the copy keeps in float32 (GroupNorm's parameters, embedding
    /// and position tables: what autocast never rounds), when it has any.
    wide: Option<WideParams>,
}

/// The float32 trainable variables of the bfloat16 copy: views of a buffer of their own, filled
/// from (and their gradients scattered back to) their places in the master buffers.
struct WideParams {
    params: Vec<Tensor>,
    layout: FlatLayout,
    /// Their elements' positions in the master buffers (`Int64`).
    positions: Tensor,
    flat: Tensor,
    grads: Tensor,
}

/// An update launched on the device and not read back yet.
struct Pending {
    step: u64,
    lr: f64,
    /// `[loss, grad_norm]` in `Double`, on the device.
    stats: Tensor,
}

/// Trains the configured network on the configured data with the configured objective.
pub struct Trainer {
    config: TrainConfig,
    device: Device,
    precision: Precision,
    vs: nn::VarStore,
    net: Net,
    low: Option<LowPrecision>,
    names: Vec<String>,
    params: Vec<Tensor>,
    /// Where each parameter lives in `flat` and `grads`.
    layout: FlatLayout,
    /// The flat parameter buffer (the parameters are views of it).
    flat: Tensor,
    /// The flat gradient buffer (the parameters' gradients are views of it).
    grads: Tensor,
    /// Set (on the device) by the first update whose loss or gradient norm is not finite.
    poisoned: Tensor,
    opt: AdamW,
    ema: Ema,
    objective: Box<dyn Objective>,
    data: Box<dyn DataSource>,
    lr: WarmupCosine,
    step: u64,
    samples_dir: Option<PathBuf>,
    /// Show a progress bar while sampling (`Trainer::set_sampling_progress`).
    sampling_progress: bool,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("step", &self.step)
            .field("device", &self.device)
            .field("objective", &self.objective.name())
            .field("data", &self.data.name())
            .field("precision", &self.precision)
            .field("parameters", &self.names)
            .finish()
    }
}

/// Every variable of a store, sorted by name.
fn sorted_variables(vs: &nn::VarStore) -> Named {
    let mut v: Named = vs.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn copy_into(dst: &Tensor, src: &Tensor) {
    let src = src.to_kind(dst.kind()).to_device(dst.device());
    tch::no_grad(|| dst.shallow_clone().copy_(&src));
}

impl Trainer {
    /// A fresh run: weights from the seed, zero optimizer state, EMA at the initial weights.
    pub fn new(config: TrainConfig) -> Result<Self> {
        config.validate()?;
        let device = parse_device(&config.device)?;
        if device == Device::Cpu && config.cpu_threads > 0 {
            tch::set_num_threads(config.cpu_threads.min(i32::MAX as usize) as i32);
        }
        let vs = nn::VarStore::new(device);
        let net = config.model.build(&vs.root(), config.seed)?;
        let (names, params): (Vec<String>, Vec<Tensor>) = sorted_variables(&vs)
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .unzip();
        let precision = match (config.train.precision, device) {
            (Precision::Bf16, Device::Cpu)
                if std::env::var("DIFFUSION_BF16_ON_CPU").as_deref() != Ok("1") =>
            {
                eprintln!(
                    "warning: train.precision = \"bf16\" needs a CUDA device; training in fp32 on the CPU"
                );
                Precision::Fp32
            }
            (p, _) => p,
        };
        let layout = FlatLayout::of(&params);
        let flat = layout.flatten(&params)?;
        let grads = layout.zeros(flat.kind(), device);
        layout.attach_grads(&params, &grads)?;
        let low = match precision {
            Precision::Fp32 => None,
            Precision::Bf16 => Some(Self::low_precision(&config, device, &names, &vs, &layout)?),
        };
        let opt = AdamW::flat(&layout, flat.kind(), device, config.adamw())?;
        let ema = Ema::flat(
            &config.train.ema_decays,
            &layout,
            &flat,
            config.train.ema_warmup,
        )?;
        let poisoned = Tensor::zeros([], (Kind::Bool, device));
        let objective = config.objective()?;
        let data = config.data_source()?;
        let lr = config.lr_schedule()?;
        Ok(Trainer {
            config,
            device,
            precision,
            vs,
            net,
            low,
            names,
            params,
            layout,
            flat,
            grads,
            poisoned,
            opt,
            ema,
            objective,
            data,
            lr,
            step: 0,
            samples_dir: None,
            sampling_progress: false,
        })
    }

    /// The bfloat16 compute copy of the network, its variables in the master's order.
    fn low_precision(
        config: &TrainConfig,
        device: Device,
        names: &[String],
        master: &nn::VarStore,
        layout: &FlatLayout,
    ) -> Result<LowPrecision> {
        let mut vs = nn::VarStore::new(device);
        vs.set_kind(Kind::BFloat16);
        let net = config.model.build(&vs.root(), config.seed)?;
        let all = sorted_variables(&vs);
        let master = sorted_variables(master);
        let others = all
            .iter()
            .zip(&master)
            .filter(|((n, _), _)| !names.contains(n))
            .map(|((_, c), (_, m))| (m.shallow_clone(), c.shallow_clone()))
            .collect();
        let params = names
            .iter()
            .map(|n| {
                all.iter()
                    .find(|(m, _)| m == n)
                    .map(|(_, t)| t.shallow_clone())
                    .ok_or_else(|| {
                        ModelError::invalid("precision", format!("no bf16 copy of `{n}`"))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        // Variables the store made in its own kind are computed in bfloat16; the ones a layer
        // made in float32 (`nets::layers::wide_variable`: norms, tables) stay float32.
        let narrow: Vec<bool> = params.iter().map(|p| p.kind() == vs.kind()).collect();
        let pick = |want: bool| -> Vec<Tensor> {
            params
                .iter()
                .zip(&narrow)
                .filter(|(_, &n)| n == want)
                .map(|(p, _)| p.shallow_clone())
                .collect()
        };
        let low_layout = layout.subset(&narrow);
        let low_params = pick(true);
        let flat = low_layout.flatten(&low_params)?;
        let grads = low_layout.zeros(vs.kind(), device);
        low_layout.attach_grads(&low_params, &grads)?;
        let wide_params = pick(false);
        let wide = if wide_params.is_empty() {
            None
        } else {
            let wide_layout = FlatLayout::of(&wide_params);
            let wide_flat = wide_layout.flatten(&wide_params)?;
            let wide_grads = wide_layout.zeros(wide_flat.kind(), device);
            wide_layout.attach_grads(&wide_params, &wide_grads)?;
            let outside: Vec<bool> = narrow.iter().map(|n| !n).collect();
            Some(WideParams {
                params: wide_params,
                layout: wide_layout,
                positions: layout.subset(&outside).positions(device),
                flat: wide_flat,
                grads: wide_grads,
            })
        };
        Ok(LowPrecision {
            _vs: vs,
            net,
            params: low_params,
            layout: low_layout,
            others,
            flat,
            grads,
            wide,
        })
    }

    /// Continues the run saved in `checkpoint` under `config` (which may raise `train.steps`).
    /// The network shape and the EMA decays must match the checkpoint.
    pub fn resume(config: TrainConfig, checkpoint: &Path) -> Result<Self> {
        let ck = Checkpoint::load(checkpoint)?;
        let mut t = Trainer::new(config)?;
        t.load(&ck, checkpoint)?;
        Ok(t)
    }

    fn load(&mut self, ck: &Checkpoint, path: &Path) -> Result<()> {
        let bad = |reason: String| ModelError::checkpoint(path, reason);
        let check_names = |what: &str, want: &[String], got: &Named| -> Result<()> {
            let got: Vec<&String> = got.iter().map(|e| &e.0).collect();
            if got.len() != want.len() || got.iter().zip(want).any(|(a, b)| *a != b) {
                return Err(bad(format!(
                    "{what} tensors {got:?} do not match the configured network's {want:?}"
                )));
            }
            Ok(())
        };
        let vars = sorted_variables(&self.vs);
        let var_names: Vec<String> = vars.iter().map(|v| v.0.clone()).collect();
        check_names("model", &var_names, &ck.model)?;
        for ((name, dst), (_, src)) in vars.iter().zip(&ck.model) {
            if dst.size() != src.size() {
                return Err(bad(format!(
                    "`{name}` has shape {:?} in the checkpoint, {:?} in the configured network",
                    src.size(),
                    dst.size()
                )));
            }
        }
        check_names("optimizer exp_avg", &self.names, &ck.exp_avg)?;
        check_names("optimizer exp_avg_sq", &self.names, &ck.exp_avg_sq)?;
        let decays: Vec<f64> = ck.ema.iter().map(|e| e.0).collect();
        if decays != self.ema.decays() {
            return Err(bad(format!(
                "EMA decays {decays:?} differ from the configured {:?}",
                self.ema.decays()
            )));
        }
        for (_, named) in &ck.ema {
            check_names("EMA", &self.names, named)?;
        }
        // Everything checked: copy.
        for ((_, dst), (_, src)) in vars.iter().zip(&ck.model) {
            copy_into(dst, src);
        }
        let m: Vec<Tensor> = ck.exp_avg.iter().map(|e| e.1.shallow_clone()).collect();
        let v: Vec<Tensor> = ck.exp_avg_sq.iter().map(|e| e.1.shallow_clone()).collect();
        self.opt.load_state(ck.optim_step, &m, &v)?;
        for (i, (_, named)) in ck.ema.iter().enumerate() {
            let vals: Vec<Tensor> = named.iter().map(|e| e.1.shallow_clone()).collect();
            self.ema.load(i, &vals)?;
        }
        self.objective
            .load_state(&ck.objective)
            .map_err(|e| bad(format!("objective state: {e}")))?;
        self.step = ck.step;
        Ok(())
    }

    /// Updates done.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Mutable configuration (e.g. to raise `train.steps` before [`Trainer::run`]).
    pub fn config_mut(&mut self) -> &mut TrainConfig {
        &mut self.config
    }

    /// The device.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The network (raw, not averaged, weights).
    pub fn net(&self) -> &dyn TimeNet {
        self.net.as_time_net()
    }

    /// Where [`Trainer::run`] writes the sample pictures of `train.sample_every`
    /// (`<dir>/step_<k>.png`); none are written without a folder.
    pub fn set_samples_dir(&mut self, dir: Option<PathBuf>) {
        self.samples_dir = dir;
    }

    /// Show an indicatif progress bar over the solver's steps (on stderr, when it is a terminal)
    /// while [`Trainer::sample`] and its relatives sample with a registry solver; off by default.
    pub fn set_sampling_progress(&mut self, on: bool) {
        self.sampling_progress = on;
    }

    /// The precision training runs in (`fp32` when `bf16` was asked for on the CPU).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The data source.
    pub fn data(&self) -> &dyn DataSource {
        self.data.as_ref()
    }

    /// The objective.
    pub fn objective(&self) -> &dyn Objective {
        self.objective.as_ref()
    }

    /// The toy data set, when the data is one.
    pub fn toy(&self) -> Option<Toy2d> {
        self.config.toy().ok()
    }

    /// Every variable of the raw network under its PyTorch name.
    pub fn named_variables(&self) -> Named {
        sorted_variables(&self.vs)
    }

    /// A copy of the network with the EMA weights of `decay` (buffers from the raw network).
    pub fn ema_model(&self, decay: f64) -> Result<(nn::VarStore, Box<dyn TimeNet>)> {
        let i = self.ema.index_of(decay).ok_or_else(|| {
            ModelError::invalid(
                "ema",
                format!(
                    "decay {decay} is not tracked (tracked: {:?})",
                    self.ema.decays()
                ),
            )
        })?;
        let vs = nn::VarStore::new(self.device);
        let net: Box<dyn TimeNet> =
            Box::new(self.config.model.build(&vs.root(), self.config.seed)?);
        let own = sorted_variables(&self.vs);
        for (name, dst) in sorted_variables(&vs) {
            let src = match self.names.iter().position(|n| *n == name) {
                Some(k) => self.ema.shadow(i)[k].shallow_clone(),
                None => own
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, t)| t.shallow_clone())
                    .ok_or_else(|| ModelError::invalid("ema", format!("no variable `{name}`")))?,
            };
            copy_into(&dst, &src);
        }
        Ok((vs, net))
    }

    /// The loss `loss(net)` of the network that computes the updates (the bfloat16 copy, with
    /// the master weights copied in, under `bf16`; the raw network otherwise), in training mode
    /// with the dropout seed of the next update, differentiated into the master gradient buffer
    /// (float32, not clipped). Returns the loss, on the device (float32 under `bf16`, else in
    /// the kind `loss` gave).
    fn forward_backward(
        &self,
        loss: impl FnOnce(&dyn TimeNet) -> Result<Tensor>,
    ) -> Result<Tensor> {
        // Dropout masks of this update: seeded by the run's seed and the update index.
        let dropout_seed = HostNoise::with_stream(self.config.seed ^ DROPOUT_SALT, self.step)
            .uniform()
            .to_bits();
        tch::no_grad(|| {
            let _ = self.grads.shallow_clone().zero_();
        });
        let net = match &self.low {
            None => &self.net,
            Some(low) => {
                tch::no_grad(|| {
                    low.flat.shallow_clone().copy_(&self.flat);
                    let _ = low.grads.shallow_clone().zero_();
                    if let Some(w) = &low.wide {
                        w.flat
                            .shallow_clone()
                            .copy_(&self.flat.index_select(0, &w.positions));
                        let _ = w.grads.shallow_clone().zero_();
                    }
                    for (m, c) in &low.others {
                        c.shallow_clone().copy_(m);
                    }
                });
                &low.net
            }
        };
        net.set_train(true);
        net.set_dropout_seed(dropout_seed);
        let l = loss(net);
        net.set_train(false);
        // The bf16 copy's loss is differentiated from float32, as autocast's would be.
        let l = match self.low {
            None => l?,
            Some(_) => l?.to_kind(Kind::Float),
        };
        l.f_backward()?;
        match &self.low {
            None => {
                self.layout.adopt_grads(&self.params, &self.grads)?;
            }
            Some(low) => {
                // The master parameters' gradients are the bf16 copy's, as float32.
                low.layout.adopt_grads(&low.params, &low.grads)?;
                tch::no_grad(|| {
                    self.grads.shallow_clone().copy_(&low.grads);
                });
                if let Some(w) = &low.wide {
                    w.layout.adopt_grads(&w.params, &w.grads)?;
                    tch::no_grad(|| {
                        let _ = self
                            .grads
                            .shallow_clone()
                            .index_copy_(0, &w.positions, &w.grads);
                    });
                }
            }
        }
        Ok(l)
    }

    /// The value of `loss(net)` and its gradient with respect to every trainable parameter
    /// (float32, under the parameter's name, before clipping), computed exactly as an update
    /// computes them (the bfloat16 copy under `bf16`, training mode, the next update's dropout
    /// seed) but without updating anything: a probe for comparing the training arithmetic with
    /// another implementation's on the same inputs (`benches/src/bin/grad_probe.rs`). `loss`
    /// gets the network that computes the passes and returns a scalar.
    pub fn loss_gradients(
        &self,
        loss: impl FnOnce(&dyn TimeNet) -> Result<Tensor>,
    ) -> Result<(f64, Named)> {
        let l = self.forward_backward(loss)?;
        let grads = self
            .names
            .iter()
            .cloned()
            .zip(self.layout.views(&self.grads))
            .map(|(n, g)| (n, g.copy()))
            .collect();
        Ok((l.double_value(&[]), grads))
    }

    /// Starts from the weights `named`, a PyTorch `state_dict` of the configured network
    /// (strict: every variable, same shapes; see [`crate::nets::state::load_state_dict`]): the
    /// raw weights become them and every EMA average restarts at them. The AdamW moments and the
    /// step count are kept (zero in a fresh run, which then is a run from these weights).
    pub fn load_state_dict(&mut self, named: &[(String, Tensor)]) -> Result<()> {
        crate::nets::state::load_state_dict(&self.vs, named)?;
        self.ema = Ema::flat(
            &self.config.train.ema_decays,
            &self.layout,
            &self.flat,
            self.config.train.ema_warmup,
        )?;
        Ok(())
    }

    /// The global gradient norm (a 0-dim `Double` on the device), the flat gradient clipped to
    /// `max` in place when `max > 0` (the factor `min(1, max / (norm + 1e-6))` of
    /// `torch.nn.utils.clip_grad_norm_`), without a host read-back.
    fn clip_gradients(&self, max: f64) -> Tensor {
        tch::no_grad(|| {
            let norm = self
                .grads
                .to_kind(Kind::Double)
                .square()
                .sum(Kind::Double)
                .sqrt();
            if max > 0.0 {
                let coef = ((&norm + 1e-6).reciprocal() * max)
                    .clamp_max(1.0)
                    .to_kind(self.grads.kind());
                let _ = self.grads.shallow_clone().g_mul_(&coef);
            }
            norm
        })
    }

    /// The clean data of update `k`'s batch (0-based), on the device (an empty tensor if the
    /// data source fails, which it cannot for the built-in sources once constructed; use
    /// [`Trainer::labelled_batch`] for the error and the labels).
    pub fn batch(&self, k: u64) -> Tensor {
        self.labelled_batch(k)
            .map(|b| b.x)
            .unwrap_or_else(|_| Tensor::zeros([0], (Kind::Float, self.device)))
    }

    /// Update `k`'s batch on the device: clean data and, for class-conditional training, the
    /// labels after dropout (a dropped label is the network's null class).
    pub fn labelled_batch(&self, k: u64) -> Result<Batch> {
        let mut noise = HostNoise::with_stream(self.config.seed, 2 * k + 1);
        let b = self
            .data
            .batch(k, self.config.train.batch_size, &mut noise)?;
        let x = upload(&b.x.to_kind(Kind::Float), self.device);
        let class = match (b.class, self.net.null_class()) {
            (Some(c), Some(null)) => {
                let p = self.config.p_uncond();
                let mut l: Vec<i64> = Vec::try_from(&c)?;
                for v in &mut l {
                    if noise.uniform() < p {
                        *v = null;
                    }
                }
                Some(upload(&Tensor::from_slice(&l), self.device))
            }
            (Some(_), None) => {
                return Err(ModelError::Config(
                    "the data has class labels but the network is unconditional".into(),
                ))
            }
            (None, _) => None,
        };
        Ok(Batch { x, class })
    }

    /// One update, read back at once (a host synchronisation; [`Trainer::train_steps`] launches
    /// several before reading them back).
    pub fn train_step(&mut self) -> Result<StepStats> {
        let p = self.launch_update()?;
        Ok(self.settle(vec![p])?.remove(0))
    }

    /// `n` more updates (whatever `train.steps` says), read back once at the end. A non-finite loss or gradient is an error naming the update; the trainer is
    /// then at the state before that update.
    pub fn train_steps(&mut self, n: usize) -> Result<Vec<StepStats>> {
        let mut pending = Vec::with_capacity(n);
        for _ in 0..n {
            pending.push(self.launch_update()?);
        }
        self.settle(pending)
    }

    /// Launches one update on the device without reading anything back.
    fn launch_update(&mut self) -> Result<Pending> {
        let k = self.step;
        let batch = self.labelled_batch(k)?;
        let mut noise = HostNoise::with_stream(self.config.seed, 2 * k + 2);
        let loss = self.forward_backward(|net| {
            self.objective
                .loss(net, &batch.x, batch.class.as_ref(), &mut noise)
        })?;
        self.apply_update(loss)
    }

    /// One update on a loss given by the caller instead of the objective's own draw: the
    /// forward/backward pass of [`Trainer::loss_gradients`], then clipping, AdamW at the
    /// schedule's learning rate and the EMA, exactly as [`Trainer::train_step`] does them, read
    /// back at once. For replaying another implementation's inputs (data, noise levels, noise)
    /// update for update (`tests/train_parity.rs`).
    pub fn update_with(
        &mut self,
        loss: impl FnOnce(&dyn TimeNet) -> Result<Tensor>,
    ) -> Result<StepStats> {
        let l = self.forward_backward(loss)?;
        let p = self.apply_update(l)?;
        Ok(self.settle(vec![p])?.remove(0))
    }

    /// Clipping, the finiteness gate, AdamW and the EMA for update `self.step`, whose loss is
    /// `loss` and whose gradient is in the master gradient buffer; launched, not read back.
    fn apply_update(&mut self, loss: Tensor) -> Result<Pending> {
        let k = self.step;
        let grad_norm = self.clip_gradients(self.config.train.grad_clip);
        let stats =
            tch::no_grad(|| Tensor::stack(&[loss.detach().to_kind(Kind::Double), grad_norm], 0));
        // The gate: 1 while every loss and gradient norm so far was finite, else 0.
        let gate = tch::no_grad(|| {
            let ok = stats
                .isfinite()
                .all()
                .logical_and(&self.poisoned.logical_not());
            self.poisoned = ok.logical_not();
            // A non-finite gradient must not reach the moments through a zero weight.
            let _ = self.grads.shallow_clone().nan_to_num_(0.0, 0.0, 0.0);
            ok.to_kind(self.flat.kind())
        });
        let lr = self.lr.at(k);
        self.opt.step_flat(&self.flat, &self.grads, lr, &gate)?;
        self.step += 1;
        self.ema.update_flat(&self.flat, self.step, &gate)?;
        Ok(Pending {
            step: self.step,
            lr,
            stats,
        })
    }

    /// Reads back launched updates (one host synchronisation) and checks them: the first
    /// non-finite loss or gradient norm is an error naming its update, after rewinding the
    /// step counters to the update before it (whose state the gate kept).
    fn settle(&mut self, pending: Vec<Pending>) -> Result<Vec<StepStats>> {
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let all = Tensor::stack(&pending.iter().map(|p| &p.stats).collect::<Vec<_>>(), 0)
            .to_device(Device::Cpu);
        let values: Vec<f64> = Vec::try_from(all.flatten(0, -1))?;
        let mut out = Vec::with_capacity(pending.len());
        for (p, v) in pending.iter().zip(values.chunks_exact(2)) {
            let (loss, grad_norm) = (v[0], v[1]);
            if !(loss.is_finite() && grad_norm.is_finite()) {
                let before = p.step - 1;
                let undone = self.step - before;
                self.opt
                    .set_steps_done(self.opt.steps_done().saturating_sub(undone));
                self.step = before;
                self.poisoned = Tensor::zeros([], (Kind::Bool, self.device));
                return Err(ModelError::NonFinite(if loss.is_finite() {
                    format!(
                        "the gradient at update {} (norm {grad_norm}); training state kept at update {before}",
                        p.step
                    )
                } else {
                    format!(
                        "the loss at update {} ({loss}); training state kept at update {before}",
                        p.step
                    )
                }));
            }
            out.push(StepStats {
                step: p.step,
                loss,
                lr: p.lr,
                grad_norm,
            });
        }
        Ok(out)
    }

    /// Samples `n` items from the EMA network of `sample.ema` (or the first tracked decay, or the
    /// raw weights when there is no EMA) with the configured solver, grid and steps, on the
    /// training device. The initial noise comes from `HostNoise::new(seed)` (scaled to the
    /// marginal's size at the grid's first time), the Brownian path of stochastic solvers from
    /// `seed + 1`. A class-conditional network gets labels `i mod num_classes` (returned), with
    /// classifier-free guidance at `sample.guidance` when that is not 1.
    pub fn sample(&self, n: usize, seed: u64) -> Result<(Tensor, Option<Tensor>)> {
        let ema = self
            .config
            .sample_decay()
            .map(|d| self.ema_model(d))
            .transpose()?;
        let net: &dyn TimeNet = match &ema {
            Some((_, n)) => n.as_ref(),
            None => self.net.as_time_net(),
        };
        self.sample_with(net, n, seed)
    }

    /// [`Trainer::sample`] with a given network (e.g. an [`Trainer::ema_model`] built once
    /// for several calls): the configured solver, grid, steps and guidance, on the training
    /// device, from the same seeded noise.
    pub fn sample_with(
        &self,
        net: &dyn TimeNet,
        n: usize,
        seed: u64,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let cfg = &self.config.sample;
        let mut shape = vec![n as i64];
        shape.extend(self.data.item_shape());
        let labels = self.sample_labels(n);
        // The objective's own sampler (iDDPM's ancestral chain), when `sample.solver` names it.
        let mut own_noise = HostNoise::new(seed);
        if let Some(x) = self.objective.own_sampler(
            &cfg.solver,
            net,
            &shape,
            cfg.steps,
            labels.as_ref(),
            &mut own_noise,
        ) {
            if labels.is_some() && net.null_class().is_some() && cfg.guidance != 1.0 {
                return Err(ModelError::invalid(
                    "sample.guidance",
                    format!(
                        "the objective's own sampler `{}` does not guide; set sample.guidance = 1",
                        cfg.solver
                    ),
                ));
            }
            return Ok((x?, labels));
        }
        let schedule = self.objective.schedule();
        let grid = TimeGrid::build(&cfg.grid, schedule, cfg.steps)?;
        let t_start = grid.times()[0];
        let scale = (schedule.alpha(t_start).powi(2) + schedule.sigma(t_start).powi(2)).sqrt();
        let numel: i64 = shape.iter().product();
        // Scaled and rounded to float32 in one host pass (the values a float64 tensor cast to
        // float32 would hold), then uploaded: no float64 tensor and no conversion pass.
        let z: Vec<f32> = HostNoise::new(seed)
            .normals(numel as usize)
            .iter()
            .map(|v| (v * scale) as f32)
            .collect();
        let x_t = upload(&Tensor::from_slice(&z).reshape(&shape), self.device);
        self.sample_from(net, &x_t, seed)
    }

    /// The labels `i mod num_classes` of `n` samples of a class-conditional network, on the
    /// device (`None` for an unconditional one).
    fn sample_labels(&self, n: usize) -> Option<Tensor> {
        let nc = self.config.model.num_classes();
        (nc > 0).then(|| {
            let l: Vec<i64> = (0..n).map(|i| (i % nc) as i64).collect();
            Tensor::from_slice(&l).to_device(self.device)
        })
    }

    /// [`Trainer::sample_with`] from given initial states `x_t` (shape `[n, item...]`, at the
    /// scale of the marginal at the grid's first time, e.g. `sigma_max` times standard normals
    /// for EDM; moved to the training device as float32): the configured registry solver, grid
    /// and steps, labels `i mod num_classes` and guidance as there, the Brownian path of
    /// stochastic solvers from `seed + 1`. For replaying another implementation's initial noise
    /// (`tests/sample_parity.rs`); an objective's own sampler draws its own and is refused here.
    pub fn sample_from(
        &self,
        net: &dyn TimeNet,
        x_t: &Tensor,
        seed: u64,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let cfg = &self.config.sample;
        let item = self.data.item_shape();
        let size = x_t.size();
        if size.len() != item.len() + 1 || size[1..] != item[..] || size[0] == 0 {
            let mut expected = vec![-1];
            expected.extend(&item);
            return Err(ModelError::Shape {
                context: "the initial states of sampling".into(),
                expected,
                got: size,
            });
        }
        let n = size[0] as usize;
        let x_t = x_t.to_device(self.device).to_kind(Kind::Float);
        let labels = self.sample_labels(n);
        let head = self.objective.sampling_net(net);
        let net: &dyn TimeNet = head.as_deref().unwrap_or(net);
        let schedule = self.objective.schedule();
        let grid = TimeGrid::build(&cfg.grid, schedule, cfg.steps)?;
        let solver = registry::build::<Tensor>(&cfg.solver).map_err(|e| {
            ModelError::invalid(
                "sample.solver",
                format!(
                    "{e} (only an objective's own sampler, such as `iddpm-ancestral`, is not in \
                     the registry, and it draws its own initial states)"
                ),
            )
        })?;
        let (lo, hi) = schedule.t_range();
        let mut noise = BrownianTree::with_default_tol(seed.wrapping_add(1), lo, hi)?;
        let param = self.objective.parameterization();
        let plain = TchDenoiser::new(net, param, schedule);
        let bar = self.sampling_progress.then(|| {
            let pb = ProgressBar::new(grid.times().len().saturating_sub(1) as u64);
            pb.set_style(
                ProgressStyle::with_template(
                    "sample {msg} [{bar:25}] {pos}/{len} steps (eta {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            pb.set_message(format!("{} x {n}", cfg.solver));
            pb
        });
        // Advances the bar on every step (index 0 is the initial state); reads nothing back.
        let mut tick = |i: usize, _t: f64, _x: &Tensor| {
            if let (true, Some(pb)) = (i > 0, &bar) {
                pb.inc(1);
            }
        };
        let mut run = |den: &dyn Denoiser<Tensor>, noise: &mut BrownianTree| {
            sample(
                solver.as_ref(),
                den,
                schedule,
                &grid,
                x_t.shallow_clone(),
                noise,
                &mut tick,
            )
        };
        let out = match (&labels, net.null_class()) {
            (None, _) => run(&plain, &mut noise)?,
            (Some(l), null) => {
                let cond = TchDenoiser::new(net, param, schedule).with_class(l.shallow_clone());
                match null {
                    Some(null) if cfg.guidance != 1.0 => {
                        let uncond = TchDenoiser::new(net, param, schedule)
                            .with_class(Tensor::full([n as i64], null, (Kind::Int64, self.device)));
                        let guided = Guided::new(&cond, &uncond, cfg.guidance, schedule)?;
                        run(&guided, &mut noise)?
                    }
                    _ => run(&cond, &mut noise)?,
                }
            }
        };
        if let Some(pb) = bar {
            pb.finish_and_clear();
        }
        Ok((out, labels))
    }

    /// Writes a picture of `sample.grid_n` samples (see [`Trainer::sample`], always from the same
    /// noise, so successive pictures show the training progress) with [`Trainer::save_picture`].
    pub fn save_sample_picture(&self, path: &Path) -> Result<()> {
        let (x, _) = self.sample(self.config.sample.grid_n, self.config.sample_seed())?;
        self.save_picture(&x, path)
    }

    /// Writes a picture of samples `x` (`[n, ...]`) that are already drawn: a grid of the first
    /// `sample.grid_n` images (one column per class for class-conditional networks, whose
    /// samples come with labels `i mod num_classes`), or for 2-D data a density picture of all
    /// the points on the square that holds the data.
    pub fn save_picture(&self, x: &Tensor, path: &Path) -> Result<()> {
        if x.dim() == 4 {
            let n = (self.config.sample.grid_n as i64).min(x.size()[0]);
            let nc = self.config.model.num_classes();
            let cols = if nc > 0 {
                nc
            } else {
                (n as f64).sqrt().ceil() as usize
            };
            grid::save_image_grid(path, &x.narrow(0, 0, n), cols)
        } else {
            let lim = self.data_extent()?;
            grid::save_scatter(path, x, lim, 256)
        }
    }

    /// 1.1 times the largest coordinate of 2000 data items (the scatter pictures' range).
    fn data_extent(&self) -> Result<f64> {
        let mut noise = HostNoise::new(self.config.seed ^ 0xe4ac_7000);
        let b = self.data.batch(0, 2000, &mut noise)?;
        let m = b.x.abs().max().double_value(&[]);
        Ok(if m.is_finite() && m > 0.0 {
            1.1 * m
        } else {
            1.0
        })
    }

    /// A checkpoint of the current state.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        let named = |ts: &[Tensor]| -> Named {
            self.names
                .iter()
                .cloned()
                .zip(ts.iter().map(|t| t.shallow_clone()))
                .collect()
        };
        Ok(Checkpoint {
            step: self.step,
            model: sorted_variables(&self.vs),
            ema: self
                .ema
                .decays()
                .iter()
                .enumerate()
                .map(|(i, &d)| (d, named(self.ema.shadow(i))))
                .collect(),
            optim_step: self.opt.steps_done(),
            exp_avg: named(self.opt.exp_avg()),
            exp_avg_sq: named(self.opt.exp_avg_sq()),
            objective: self.objective.state()?,
            config: self.config.to_toml()?,
        })
    }

    /// Writes a checkpoint atomically.
    pub fn save_checkpoint(&self, path: &Path) -> Result<()> {
        self.checkpoint()?.save(path)
    }

    /// Trains until `train.steps` updates are done, logging, checkpointing and showing progress
    /// as `opts` asks; returns the statistics of every update made.
    pub fn run(&mut self, opts: &mut RunOptions<'_>) -> Result<Vec<StepStats>> {
        let total = self.config.train.steps;
        let started = Instant::now();
        let pb = if opts.progress {
            let pb = ProgressBar::new(total);
            pb.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} (eta {eta})")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            pb.set_position(self.step);
            pb.reset_eta();
            Some(pb)
        } else {
            None
        };
        let mut all = Vec::new();
        let mut smooth = f64::NAN;
        let every = self.config.train.checkpoint_every;
        let log_every = self.config.train.log_every;
        let sample_every = self.config.train.sample_every;
        let due = |step: u64, n: u64| n > 0 && step % n == 0;
        while self.step < total {
            // Launch updates until one needs its numbers or the batch is full, then read back.
            let mut pending = Vec::new();
            loop {
                let p = self.launch_update()?;
                let step = p.step;
                pending.push(p);
                if step == total
                    || due(step, log_every)
                    || due(step, every)
                    || (self.samples_dir.is_some() && due(step, sample_every))
                    || pending.len() >= READ_BACK_EVERY
                {
                    break;
                }
            }
            for s in self.settle(pending)? {
                smooth = if smooth.is_nan() {
                    s.loss
                } else {
                    0.98 * smooth + 0.02 * s.loss
                };
                if due(s.step, log_every) || s.step == total {
                    if let Some(log) = opts.log.as_deref_mut() {
                        log.write(&s, started.elapsed().as_secs_f64())?;
                    }
                }
                all.push(s);
            }
            let step = self.step;
            if let Some(pb) = &pb {
                pb.set_position(step);
                pb.set_message(format!("loss {smooth:.4}"));
            }
            if let Some(path) = &opts.checkpoint {
                if due(step, every) && step != total {
                    self.save_checkpoint(path)?;
                }
            }
            if let Some(dir) = &self.samples_dir {
                if due(step, sample_every) {
                    self.save_sample_picture(&dir.join(format!("step_{step:07}.png")))?;
                }
            }
        }
        if let Some(path) = &opts.checkpoint {
            self.save_checkpoint(path)?;
        }
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        Ok(all)
    }
}
