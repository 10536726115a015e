//! Adaptive DPM-Solver (Lu et al. 2022, arXiv:2206.00927, Algorithm 4, DPM-Solver-12/23): the
//! solver picks its own steps in lambda from an embedded error estimate; one grid interval from
//! t = 1 to 1e-3 on the VP SDE. Metric: RMS error to the exact PF-ODE solution of a Gaussian
//! target; checks: the NFE it spent, and that a 10x tighter tolerance lowers the error.

use anyhow::Result;
use clap::Parser;
use diffusion::core::{schedule::VpLinear, TimeGrid};
use diffusion_examples::{pf_ode_run, Report};

#[derive(Parser)]
struct Args {
    /// Order of the higher method (2: DPM-Solver-12, 3: DPM-Solver-23).
    #[arg(long, default_value_t = 3)]
    order: usize,
    /// Relative tolerance (reference default 0.05).
    #[arg(long, default_value_t = 0.05)]
    rtol: f64,
    /// Absolute tolerance (reference default 0.0078).
    #[arg(long, default_value_t = 0.0078)]
    atol: f64,
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
    let grid = TimeGrid::new(vec![1.0, 1e-3])?;
    let spec = |rtol: f64, atol: f64| {
        format!(
            "dpm-solver-adaptive:order={},rtol={rtol},atol={atol}",
            a.order
        )
    };
    let run = pf_ode_run(&spec(a.rtol, a.atol), &vp, &grid, a.n, a.seed)?;
    let tight = pf_ode_run(&spec(a.rtol / 10.0, a.atol / 10.0), &vp, &grid, a.n, a.seed)?;
    let mut r = Report::new(
        "dpm_solver_adaptive",
        "pf_ode_rmse",
        run.error(),
        run.nfe,
        0.0105,
    );
    r.text("schedule", "vp-linear")
        .info("rtol", a.rtol)
        .info("atol", a.atol)
        .info("tight_rmse", tight.error())
        .info("tight_nfe", tight.nfe as f64)
        .check_max("tight_over_default", tight.error() / run.error(), 0.5);
    r.finish()
}
