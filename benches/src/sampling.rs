//! One sampling pass of a configured network, the unit that `sample_bench` times and that the
//! profiling library (`benches/ffi`, loaded into a Python process by
//! tools/bench/gpu/profile_rust.py) runs under `torch.profiler`: either the trainer's sampler
//! (`Trainer::sample_with`: initial noise, the registry solver on the grid, the network in every
//! step) or, with `net_only`, `sample.steps` calls of the network alone on one fixed input (noise
//! levels of the Karras grid as `c_noise`). Every pass ends with a value read back, so it waits
//! for the device.

use anyhow::Result;
use diffusion::models::nets::TimeNet;
use diffusion::models::tch::{self, nn, Kind, Tensor};
use diffusion::models::train::{TrainConfig, Trainer};
use std::path::Path;

/// A built network (EMA weights when the config tracks an average) and what a pass needs.
pub struct SamplingPass {
    trainer: Trainer,
    ema: Option<(nn::VarStore, Box<dyn TimeNet>)>,
    n: usize,
    net_only: bool,
    input: Tensor,
    c_noise: Vec<Tensor>,
}

impl SamplingPass {
    /// Builds the network of `config` (with the `KEY=VALUE` overrides `sets`, as `diffusion train
    /// --set`), from `checkpoint` when given (else the seeded initial weights: the cost of a pass
    /// does not depend on them), for passes of `n` items.
    pub fn new(
        config: &Path,
        sets: &[String],
        checkpoint: Option<&Path>,
        n: usize,
        net_only: bool,
    ) -> Result<Self> {
        let mut cfg = TrainConfig::load(config)?;
        cfg.set_all(sets)?;
        let steps = cfg.sample.steps;
        let decay = cfg.sample_decay();
        let trainer = match checkpoint {
            Some(ck) => Trainer::resume(cfg, ck)?,
            None => Trainer::new(cfg)?,
        };
        let ema = decay.map(|d| trainer.ema_model(d)).transpose()?;
        let mut shape = vec![n as i64];
        shape.extend(trainer.data().item_shape());
        let device = trainer.device();
        let input = Tensor::randn(&shape, (Kind::Float, device));
        // c_noise = ln(sigma) / 4 along the Karras grid (sigma 80 .. 0.002, rho 7).
        let (hi, lo) = (80f64.powf(1.0 / 7.0), 0.002f64.powf(1.0 / 7.0));
        let c_noise = (0..steps)
            .map(|i| {
                let r = i as f64 / (steps.max(2) - 1) as f64;
                let s = (hi + r * (lo - hi)).powi(7);
                Tensor::full([n as i64], s.ln() / 4.0, (Kind::Float, device))
            })
            .collect();
        Ok(SamplingPass {
            trainer,
            ema,
            n,
            net_only,
            input,
            c_noise,
        })
    }

    /// The configuration (after the overrides).
    pub fn config(&self) -> &TrainConfig {
        self.trainer.config()
    }

    fn net(&self) -> &dyn TimeNet {
        match &self.ema {
            Some((_, net)) => net.as_ref(),
            None => self.trainer.net(),
        }
    }

    /// One pass (initial noise from `seed`); returns the mean of its output, read back.
    pub fn run(&self, seed: u64) -> Result<f64> {
        if self.net_only {
            let device = self.trainer.device();
            let mut acc = Tensor::zeros([], (Kind::Float, device));
            tch::no_grad(|| -> Result<()> {
                for c in &self.c_noise {
                    acc += self
                        .net()
                        .forward_t(&self.input, c, None)?
                        .mean(Kind::Float);
                }
                Ok(())
            })?;
            return Ok(acc.double_value(&[]));
        }
        let (x, _) = self.trainer.sample_with(self.net(), self.n, seed)?;
        Ok(x.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]))
    }
}
