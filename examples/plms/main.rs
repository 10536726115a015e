//! PLMS / PNDM (Liu et al. 2022, arXiv:2202.09778, Sec. 3): the pseudo linear multistep method,
//! DDIM's transfer driven by the 4-step Adams-Bashforth combination of eps (pseudo improved Euler
//! first step, then 2- and 3-step weights), on the VP SDE; metric: RMS error to the exact PF-ODE
//! solution of a Gaussian target, with the observed order as a check (2: the equal-step weights
//! are used on every grid, as in the reference).

use anyhow::Result;
use clap::Parser;
use diffusion::core::{schedule::VpLinear, TimeGrid};
use diffusion_examples::OdeShowcase;

#[derive(Parser)]
struct Args {
    /// Solver steps (NFE = steps + 1).
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
    let (r, _) = OdeShowcase {
        example: "plms",
        solver: "plms",
        schedule: &vp,
        grid: TimeGrid::uniform(1.0, 1e-3, a.steps)?,
        n: a.n,
        seed: a.seed,
        bound: 0.0015,
        order: 2.0,
        span: (1.0, 0.05),
        ladder: &[32, 64, 128, 256],
    }
    .run()?;
    r.finish()
}
