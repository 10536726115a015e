//! EDM's deterministic Heun sampler (Karras et al. 2022, arXiv:2206.00364, Algorithm 1) with the
//! rho = 7 time steps, on the EDM schedule (sigma = t); metric: RMS error to the exact PF-ODE
//! solution of a Gaussian target at sigma_min.

use anyhow::Result;
use clap::Parser;
use diffusion::core::{schedule::Edm, TimeGrid};
use diffusion_examples::{pf_ode_error, report, Outcome};

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
    let grid = TimeGrid::karras(&edm, 0.002, 80.0, 7.0, a.steps, false)?;
    let (err, nfe) = pf_ode_error("heun", &edm, &grid, a.n, a.seed)?;
    report(
        "edm",
        &Outcome {
            metric: "pf_ode_rmse",
            value: err,
            nfe,
            expected_max: 0.04,
        },
        "schedule=edm grid=karras(rho=7)",
    )
}
