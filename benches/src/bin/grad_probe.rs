//! The training arithmetic of the Rust trainer on given inputs: the EDM loss and its gradient
//! with respect to every parameter, computed as an update computes them (`Trainer::
//! loss_gradients`: under `train.precision = "bf16"` the bfloat16 copy with float32 norms and
//! time embedding, the gradients copied back as float32) but at given weights, data, noise
//! levels and noise instead of the trainer's own draws. tools/bench/gpu/grad_check.py writes the
//! inputs, runs this next to PyTorch (float32 and `torch.autocast(bfloat16)`) on the same ones
//! and prints how far apart the gradients are.
//!
//! Inputs: `--weights`, a PyTorch `state_dict` of the configured network (safetensors);
//! `--inputs`, a safetensors file with `x0` (`[B, C, H, W]`, float32), `sigma` (`[B]`, float64)
//! and `noise` (like `x0`). Output (`--out`, safetensors): `loss` (float64, one value) and
//! `grad.<name>` (float32) for every trainable parameter. Prints one line:
//! `grad_probe precision=Bf16 device=Cuda(0) loss=... grad_norm=... params=...`
//!
//! Paper: Karras, Aittala, Aila & Laine (2022), "Elucidating the Design Space of Diffusion-Based
//! Generative Models", arXiv:2206.00364, Eq. 2 and Table 1 (the loss, its weighting and
//! preconditioning); Micikevicius et al. (2018), "Mixed Precision Training", arXiv:1710.03740,
//! Sec. 3 (float32 master weights, half-precision passes).
use anyhow::{bail, Context, Result};
use clap::Parser;
use diffusion::models::losses::EdmLoss;
use diffusion::models::tch::{Kind, Tensor};
use diffusion::models::train::config::LossConfig;
use diffusion::models::train::{TrainConfig, Trainer};
use diffusion::models::EdmPrecond;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(about = "Loss and gradients of the Rust trainer at given weights and inputs")]
struct Args {
    /// The training config (network, `[loss]` of kind `edm`, device, `train.precision`).
    #[arg(long)]
    config: PathBuf,
    /// Overrides as in `diffusion train --set KEY=VALUE` (e.g. `train.precision="bf16"`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// The weights: a PyTorch `state_dict` of the configured network (safetensors).
    #[arg(long)]
    weights: PathBuf,
    /// `x0`, `sigma` and `noise` (safetensors).
    #[arg(long)]
    inputs: PathBuf,
    /// Where to write `loss` and `grad.<name>` (safetensors).
    #[arg(long)]
    out: PathBuf,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let mut cfg = TrainConfig::load(&a.config)?;
    cfg.set_all(&a.set)?;
    let LossConfig::Edm {
        sigma_data,
        p_mean,
        p_std,
        sigma_max,
    } = cfg.loss
    else {
        bail!("grad_probe computes the EDM loss; the config's [loss] is not of kind \"edm\"");
    };
    let loss = EdmLoss::new(EdmPrecond::new(sigma_data)?, p_mean, p_std, sigma_max)?;
    let mut trainer = Trainer::new(cfg)?;
    let weights = Tensor::read_safetensors(&a.weights)
        .with_context(|| format!("reading the weights {}", a.weights.display()))?;
    trainer.load_state_dict(&weights)?;
    let inputs: HashMap<String, Tensor> = Tensor::read_safetensors(&a.inputs)
        .with_context(|| format!("reading the inputs {}", a.inputs.display()))?
        .into_iter()
        .collect();
    let get = |name: &str| {
        inputs
            .get(name)
            .with_context(|| format!("{} has no tensor `{name}`", a.inputs.display()))
    };
    let device = trainer.device();
    let x0 = get("x0")?.to_kind(Kind::Float).to_device(device);
    let noise = get("noise")?.to_kind(Kind::Float).to_device(device);
    let sigma: Vec<f64> = Vec::try_from(get("sigma")?.to_kind(Kind::Double).flatten(0, -1))?;
    let (value, grads) = trainer.loss_gradients(|net| {
        Ok(loss
            .per_sample(net, &x0, &sigma, &noise, None)?
            .mean(x0.kind()))
    })?;
    let norm = grads
        .iter()
        .map(|(_, g)| {
            g.to_kind(Kind::Double)
                .square()
                .sum(Kind::Double)
                .double_value(&[])
        })
        .sum::<f64>()
        .sqrt();
    let mut out: Vec<(String, Tensor)> = vec![("loss".into(), Tensor::from_slice(&[value]))];
    out.extend(grads.into_iter().map(|(n, g)| {
        (
            format!("grad.{n}"),
            g.to_device(diffusion::models::tch::Device::Cpu),
        )
    }));
    Tensor::write_safetensors(&out, &a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    println!(
        "grad_probe precision={:?} device={:?} loss={value:.6} grad_norm={norm:.6} params={}",
        trainer.precision(),
        device,
        out.len() - 1
    );
    Ok(())
}
