//! The trainer: seeded data and noise streams, AdamW, warmup + cosine learning rate, gradient
//! clipping, EMA at several decays, metrics log, progress bar and exact-resume checkpoints.
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, App. F (training setup: Adam, warmup, EMA); Pascanu,
//! Mikolov & Bengio (2013), "On the difficulty of training recurrent neural networks",
//! arXiv:1211.5063, Alg. 1 (clipping the global gradient norm, as `torch.nn.utils.clip_grad_norm_`).
//!
//! Determinism: update `k` (0-based) draws its data batch from `HostNoise::with_stream(seed,
//! 2k + 1)` and its times and noise from stream `2k + 2`; the weights start from
//! `HostNoise::new(seed)`. Nothing depends on torch's global generator or on earlier draws, so a
//! run resumed from a checkpoint (weights, AdamW moments and step count, EMA averages, all stored
//! bit for bit) computes exactly the losses of an uninterrupted run on the CPU.

use super::adamw::AdamW;
use super::checkpoint::{Checkpoint, Named};
use super::config::TrainConfig;
use super::ema::Ema;
use super::log::MetricsLog;
use super::lr::WarmupCosine;
use crate::device::parse_device;
use crate::error::{ModelError, Result};
use crate::losses::Objective;
use crate::nets::{Mlp, TimeNet};
use diffusion_core::{HostNoise, Toy2d};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

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

/// Trains an [`Mlp`] on a 2-D toy with the configured objective.
pub struct Trainer {
    config: TrainConfig,
    device: Device,
    vs: nn::VarStore,
    net: Mlp,
    names: Vec<String>,
    params: Vec<Tensor>,
    opt: AdamW,
    ema: Ema,
    objective: Box<dyn Objective>,
    toy: Toy2d,
    lr: WarmupCosine,
    step: u64,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("step", &self.step)
            .field("device", &self.device)
            .field("objective", &self.objective.name())
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
        let net = Mlp::new(&vs.root(), &config.model, config.seed)?;
        let (names, params): (Vec<String>, Vec<Tensor>) = sorted_variables(&vs)
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .unzip();
        let opt = AdamW::new(&params, config.adamw())?;
        let ema = Ema::new(&config.train.ema_decays, &params, config.train.ema_warmup)?;
        let objective = config.objective()?;
        let toy = config.toy()?;
        let lr = config.lr_schedule()?;
        Ok(Trainer {
            config,
            device,
            vs,
            net,
            names,
            params,
            opt,
            ema,
            objective,
            toy,
            lr,
            step: 0,
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
    pub fn net(&self) -> &Mlp {
        &self.net
    }

    /// The objective.
    pub fn objective(&self) -> &dyn Objective {
        self.objective.as_ref()
    }

    /// The toy data set.
    pub fn toy(&self) -> Toy2d {
        self.toy
    }

    /// Every variable of the raw network under its PyTorch name.
    pub fn named_variables(&self) -> Named {
        sorted_variables(&self.vs)
    }

    /// A copy of the network with the EMA weights of `decay` (buffers from the raw network).
    pub fn ema_model(&self, decay: f64) -> Result<(nn::VarStore, Mlp)> {
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
        let net = Mlp::new(&vs.root(), &self.config.model, self.config.seed)?;
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

    /// The global gradient norm, clipped to `max` in place when `max > 0` (the factor
    /// `max / (norm + 1e-6)` of `torch.nn.utils.clip_grad_norm_`).
    fn clip_gradients(&self, max: f64) -> f64 {
        tch::no_grad(|| {
            let sq: Vec<Tensor> = self
                .params
                .iter()
                .map(|p| p.grad())
                .filter(|g| g.defined())
                .map(|g| g.to_kind(Kind::Double).square().sum(Kind::Double))
                .collect();
            if sq.is_empty() {
                return 0.0;
            }
            let norm = Tensor::stack(&sq, 0)
                .sum(Kind::Double)
                .sqrt()
                .double_value(&[]);
            if max > 0.0 {
                let coef = max / (norm + 1e-6);
                if coef < 1.0 {
                    for p in &self.params {
                        let mut g = p.grad();
                        if g.defined() {
                            let _ = g.g_mul_scalar_(coef);
                        }
                    }
                }
            }
            norm
        })
    }

    /// The data batch of update `k` (0-based), on the device.
    pub fn batch(&self, k: u64) -> Tensor {
        let mut noise = HostNoise::with_stream(self.config.seed, 2 * k + 1);
        let x = self.toy.sample(self.config.train.batch_size, &mut noise);
        Tensor::from_slice(x.as_slice().expect("standard layout"))
            .reshape([x.nrows() as i64, x.ncols() as i64])
            .to_kind(self.net.kind())
            .to_device(self.device)
    }

    /// One update.
    pub fn train_step(&mut self) -> Result<StepStats> {
        let k = self.step;
        let x0 = self.batch(k);
        let mut noise = HostNoise::with_stream(self.config.seed, 2 * k + 2);
        for p in &mut self.params {
            p.zero_grad();
        }
        let loss = self.objective.loss(&self.net, &x0, None, &mut noise)?;
        let value = loss.double_value(&[]);
        if !value.is_finite() {
            return Err(ModelError::NonFinite(format!(
                "the loss at update {} ({value})",
                k + 1
            )));
        }
        loss.f_backward()?;
        let grad_norm = self.clip_gradients(self.config.train.grad_clip);
        if !grad_norm.is_finite() {
            return Err(ModelError::NonFinite(format!(
                "the gradient at update {} (norm {grad_norm})",
                k + 1
            )));
        }
        let lr = self.lr.at(k);
        self.opt.step(&self.params, lr)?;
        self.step += 1;
        self.ema.update(&self.params, self.step);
        Ok(StepStats {
            step: self.step,
            loss: value,
            lr,
            grad_norm,
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
        while self.step < total {
            let s = self.train_step()?;
            smooth = if smooth.is_nan() {
                s.loss
            } else {
                0.98 * smooth + 0.02 * s.loss
            };
            if s.step % self.config.train.log_every == 0 || s.step == total {
                if let Some(log) = opts.log.as_deref_mut() {
                    log.write(&s, started.elapsed().as_secs_f64())?;
                }
            }
            if let Some(pb) = &pb {
                pb.set_position(s.step);
                pb.set_message(format!("loss {smooth:.4}"));
            }
            if let Some(path) = &opts.checkpoint {
                if every > 0 && s.step % every == 0 && s.step != total {
                    self.save_checkpoint(path)?;
                }
            }
            all.push(s);
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
