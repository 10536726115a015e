//! DPM-Solver++(2S) (Lu et al. 2022, arXiv:2211.01095, Algorithm 1, r = 1/2): the second-order
//! singlestep exponential integrator in data prediction on the VP SDE; metric: RMS error to the
//! exact PF-ODE solution of a Gaussian target, with the observed order as a check.

use anyhow::Result;
use clap::Parser;
use diffusion::core::{schedule::VpLinear, TimeGrid};
use diffusion_examples::OdeShowcase;

#[derive(Parser)]
struct Args {
    /// Solver steps (NFE = 2 steps).
    #[arg(long, default_value_t = 10)]
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
    let (r, _) = OdeShowcase {
        example: "dpmpp_2s",
        solver: "dpmpp-2s",
        schedule: &vp,
        grid: TimeGrid::log_snr_uniform(&vp, 1.0, 1e-3, a.steps)?,
        n: a.n,
        seed: a.seed,
        bound: 0.045,
        order: 2.0,
        span: (1.0, 0.05),
        ladder: &[32, 64, 128, 256],
    }
    .run()?;
    r.finish()
}
