//! LMS (k-diffusion `sample_lms`): variable-step Adams-Bashforth of order 1-4 (Hairer, Norsett &
//! Wanner 1993, III.5) on the EDM PF-ODE (Karras et al. 2022, arXiv:2206.00364, Eq. 4) with
//! Karras steps; metric: RMS error to the exact PF-ODE solution of a Gaussian target, with the
//! observed order as a check.

use anyhow::Result;
use clap::Parser;
use diffusion::core::{schedule::Edm, TimeGrid};
use diffusion_examples::OdeShowcase;

#[derive(Parser)]
struct Args {
    /// Order (number of slopes, 1 to 4).
    #[arg(long, default_value_t = 4)]
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
    let edm = Edm::default();
    let spec = format!("lms:order={}", a.order);
    let (r, _) = OdeShowcase {
        example: "lms",
        solver: &spec,
        schedule: &edm,
        grid: TimeGrid::karras(&edm, 0.002, 80.0, 7.0, a.steps, false)?,
        n: a.n,
        seed: a.seed,
        bound: 0.025,
        order: a.order as f64,
        span: (80.0, 0.01),
        ladder: &[64, 128, 256, 512],
    }
    .run()?;
    r.finish()
}
