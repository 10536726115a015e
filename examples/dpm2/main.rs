//! DPM2 (Lu et al. 2022, arXiv:2206.00927, Algorithm 1 with r1 = 1/2, in EDM coordinates as
//! k-diffusion's `sample_dpm_2`): a log-midpoint second-order step on the EDM PF-ODE with Karras
//! steps; metric: RMS error to the exact PF-ODE solution of a Gaussian target, with the observed
//! order as a check.

use anyhow::Result;
use clap::Parser;
use diffusion::core::{schedule::Edm, TimeGrid};
use diffusion_examples::OdeShowcase;

#[derive(Parser)]
struct Args {
    /// Solver steps (NFE = 2 steps).
    #[arg(long, default_value_t = 18)]
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
    let edm = Edm::default();
    let (r, _) = OdeShowcase {
        example: "dpm2",
        solver: "dpm2",
        schedule: &edm,
        grid: TimeGrid::karras(&edm, 0.002, 80.0, 7.0, a.steps, false)?,
        n: a.n,
        seed: a.seed,
        bound: 0.025,
        order: 2.0,
        span: (80.0, 0.01),
        ladder: &[32, 64, 128, 256],
    }
    .run()?;
    r.finish()
}
