//! DDIM (Song, Meng & Ermon 2021, arXiv:2010.02502): deterministic sampling of a Gaussian target
//! under the VP SDE; metric: RMS error to the exact PF-ODE solution (DDIM with eta = 0 is the
//! exact PF-ODE's Euler discretization in EDM coordinates, order 1).

use anyhow::Result;
use clap::Parser;
use diffusion::core::{schedule::VpLinear, TimeGrid};
use diffusion_examples::{pf_ode_error, report, Outcome};

#[derive(Parser)]
struct Args {
    /// Solver steps.
    #[arg(long, default_value_t = 50)]
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
    let grid = TimeGrid::uniform(1.0, 1e-3, a.steps)?;
    let (err, nfe) = pf_ode_error("ddim", &vp, &grid, a.n, a.seed)?;
    report(
        "ddim",
        &Outcome {
            metric: "pf_ode_rmse",
            value: err,
            nfe,
            expected_max: 0.05,
        },
        "schedule=vp-linear grid=uniform-t",
    )
}
