//! Training throughput of the Rust trainer (`cargo xtask bench --train` runs it next to
//! tools/bench/train_torch.py): updates per second of `Trainer::train_steps` for the toy MLP on
//! a 2-D toy and for a small U-Net on Fashion-MNIST-shaped data (synthetic 28x28 images written
//! as IDX files, so the data set need not be installed), with the EDM loss, AdamW, clipping and
//! one EMA, in float32 on the CPU with a fixed number of libtorch threads.
//!
//! Prints one parseable line per run:
//! `train_rust net=mlp device=cpu threads=1 batch=256 steps=300 params=... steps_per_s=... loss=...`

use anyhow::{Context, Result};
use clap::Parser;
use diffusion::models::data::idx::write_idx;
use diffusion::models::train::{TrainConfig, Trainer};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Parser)]
#[command(about = "Training throughput of the Rust trainer")]
struct Args {
    /// `mlp` (toy data) or `unet` (28x28 images).
    #[arg(long, default_value = "mlp")]
    net: String,
    /// The MLP's or the U-Net's fields as TOML inline-table entries, e.g. `hidden = 128` or
    /// `model_channels = 32, channel_mult = [1, 2]`.
    #[arg(long, default_value = "")]
    model: String,
    /// Batch size.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Timed updates.
    #[arg(long, default_value_t = 200)]
    steps: u64,
    /// Untimed updates first.
    #[arg(long, default_value_t = 10)]
    warmup: u64,
    /// libtorch threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Device (`cpu`, `cuda`).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// `fp32` or `bf16`.
    #[arg(long, default_value = "fp32")]
    precision: String,
    /// Folder for the synthetic image files.
    #[arg(long, default_value = "out/bench/synthetic_fmnist")]
    data_dir: PathBuf,
}

/// `, <fields>` when there are any.
fn extra(fields: &str) -> String {
    if fields.trim().is_empty() {
        String::new()
    } else {
        format!(", {fields}")
    }
}

fn main() -> Result<()> {
    let a = Args::parse();
    if a.device == "cpu" {
        // As `diffusion train` does (glibc's heap thresholds; `DIFFUSION_GLIBC_DEFAULTS=1` keeps
        // the defaults): re-executes now, before anything large is allocated.
        let tuning = diffusion::models::host_malloc::reexec_with_malloc_tunables();
        eprintln!("train_bench: heap settings {tuning:?}");
    }
    let total = a.warmup + a.steps;
    let (data, model, sigma_data) = match a.net.as_str() {
        "mlp" => (
            "toy = \"8gaussians\"".to_string(),
            format!("kind = \"mlp\"{}", extra(&a.model)),
            2.0,
        ),
        "unet" => {
            // 4096 random images (the cost of a batch does not depend on the pixels).
            std::fs::create_dir_all(&a.data_dir)
                .with_context(|| format!("creating {}", a.data_dir.display()))?;
            let n = 4096usize;
            let mut state = 0x2545_f491_4f6c_dd1du64;
            let px: Vec<u8> = (0..n * 784)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 56) as u8
                })
                .collect();
            let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
            write_idx(
                &a.data_dir.join("train-images-idx3-ubyte"),
                &[n, 28, 28],
                &px,
            )?;
            write_idx(&a.data_dir.join("train-labels-idx1-ubyte"), &[n], &labels)?;
            (
                format!(
                    "fmnist = {{ dir = {:?}, flip = false, sampling = \"replacement\" }}",
                    a.data_dir.to_string_lossy()
                ),
                format!("kind = \"unet\", dropout = 0.0{}", extra(&a.model)),
                0.5,
            )
        }
        other => anyhow::bail!("--net must be mlp or unet, got {other}"),
    };
    let toml = format!(
        r#"
seed = 0
device = "{device}"
cpu_threads = {threads}
model = {{ {model} }}
[data]
{data}
[loss]
kind = "edm"
sigma_data = {sigma_data}
[train]
steps = {total}
batch_size = {batch}
lr = 1e-3
warmup_steps = 0
min_lr_ratio = 1.0
weight_decay = 0.0
grad_clip = 1.0
ema_decays = [0.999]
ema_warmup = false
log_every = 1000000
checkpoint_every = 0
precision = "{precision}"
"#,
        device = a.device,
        threads = a.threads,
        batch = a.batch,
        precision = a.precision,
    );
    let cfg = TrainConfig::from_toml_str(&toml).with_context(|| format!("config:\n{toml}"))?;
    let mut t = Trainer::new(cfg)?;
    let params: i64 = t
        .named_variables()
        .iter()
        .filter(|(_, v)| v.requires_grad())
        .map(|(_, v)| v.numel() as i64)
        .sum();
    // Updates are launched back to back and read back once at the end (as the PyTorch script
    // reads its losses at the end); reading them back is the synchronisation point on a GPU.
    t.train_steps(a.warmup as usize)?;
    let start = Instant::now();
    let stats = t.train_steps(a.steps as usize)?;
    let losses: Vec<f64> = stats.iter().rev().take(20).map(|s| s.loss).collect();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "train_rust net={} device={} threads={} batch={} steps={} params={params} precision={:?} steps_per_s={:.3} loss={:.4}",
        a.net,
        a.device,
        a.threads,
        a.batch,
        a.steps,
        t.precision(),
        a.steps as f64 / secs,
        losses.iter().sum::<f64>() / losses.len().max(1) as f64
    );
    Ok(())
}
