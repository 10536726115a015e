//! Sampling throughput of a trained (or freshly initialised: the weights do not change the cost)
//! network with a registry solver, the side-by-side partner of
//! tools/bench/gpu/sample_diffusers.py (the same U-Net in PyTorch driven by a diffusers
//! scheduler). Both sides build the network and load the weights first, run one untimed warm-up
//! pass (kernels, allocator, cuDNN algorithm choice), then time `--repeats` passes of `--n`
//! images, each ending with the samples read back, and report the median.
//!
//! Prints one parseable line:
//! `sample_rust n=1000 solver=euler steps=32 repeats=3 cudnn_benchmark=false seconds=... images_per_s=... mean=...`
//!
//! `--net-only` times the network alone instead: a pass is `sample.steps` forward calls of the
//! raw network on one fixed input (noise levels of the Karras grid as `c_noise`), ending with a
//! value read back; `sample_diffusers.py --net-only` does the same, so the two splits tell a
//! slower network from a slower loop around it. Its line starts with `net_rust`.
use anyhow::Result;
use clap::Parser;
use diffusion_benches::sampling::SamplingPass;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Parser)]
#[command(about = "Sampling throughput of the Rust sampler on a trained network")]
struct Args {
    /// The training config (network, objective, data shape, sampling settings).
    #[arg(long)]
    config: PathBuf,
    /// A checkpoint to sample (default: the config's freshly initialised weights).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Overrides as in `diffusion train --set KEY=VALUE` (e.g. `sample.solver=euler`).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Images per pass.
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Timed passes (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Let cuDNN time its convolution algorithms on the first call of each shape and keep the
    /// fastest (`torch.backends.cudnn.benchmark = True`); off by default, as in PyTorch.
    #[arg(long)]
    cudnn_benchmark: bool,
    /// Time `sample.steps` calls of the network on a fixed input per pass instead of sampling.
    #[arg(long)]
    net_only: bool,
}

fn main() -> Result<()> {
    let a = Args::parse();
    diffusion::models::tch::Cuda::cudnn_set_benchmark(a.cudnn_benchmark);
    let pass = SamplingPass::new(&a.config, &a.set, a.checkpoint.as_deref(), a.n, a.net_only)?;
    pass.run(1)?;
    let mut times = Vec::new();
    let mut mean = f64::NAN;
    for _ in 0..a.repeats.max(1) {
        let start = Instant::now();
        mean = pass.run(0)?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let secs = times[times.len() / 2];
    let cfg = pass.config();
    println!(
        "{} n={} solver={} steps={} repeats={} cudnn_benchmark={} seconds={secs:.3} images_per_s={:.1} mean={mean:.4}",
        if a.net_only { "net_rust" } else { "sample_rust" },
        a.n,
        cfg.sample.solver,
        cfg.sample.steps,
        times.len(),
        a.cudnn_benchmark,
        a.n as f64 / secs
    );
    Ok(())
}
