//! DEIS (Zhang & Chen 2022, arXiv:2204.13902, tAB-DEIS): exponential integrator with an
//! Adams-Bashforth polynomial extrapolation of eps in time, on the VP SDE; metric: RMS error to
//! the exact PF-ODE solution of a Gaussian target, with the observed order as a check.

use anyhow::Result;
use clap::Parser;
use diffusion::core::{schedule::VpLinear, TimeGrid};
use diffusion_examples::OdeShowcase;

#[derive(Parser)]
struct Args {
    /// Extrapolation order (1 to 3; 1 is DDIM).
    #[arg(long, default_value_t = 3)]
    order: usize,
    /// Solver steps (= NFE).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Samples.
    #[arg(long, default_value_t = 512)]
    n: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let vp = VpLinear::default();
    let spec = format!("deis:order={}", a.order);
    let (r, _) = OdeShowcase {
        example: "deis",
        solver: &spec,
        schedule: &vp,
        grid: TimeGrid::log_snr_uniform(&vp, 1.0, 1e-3, a.steps)?,
        n: a.n,
        seed: a.seed,
        bound: 0.012,
        order: a.order as f64,
        span: (1.0, 0.05),
        ladder: &[32, 64, 128, 256],
    }
    .run()?;
    r.finish()
}
