//! DPM-Solver-1, -2 and -3 (Lu et al. 2022, arXiv:2206.00927, Sec. 3, Algorithms 1 and 2):
//! singlestep exponential integrators in noise prediction on the VP SDE; metric: RMS error of
//! DPM-Solver-`order` to the exact PF-ODE solution of a Gaussian target, with its observed order
//! and the identity DPM-Solver-1 = DDIM (same grid, same start) as checks.

use anyhow::Result;
use clap::Parser;
use diffusion::core::{schedule::VpLinear, TimeGrid};
use diffusion_examples::{pf_ode_run, rms_diff, OdeShowcase};

#[derive(Parser)]
struct Args {
    /// Order of the singlestep solver (1, 2 or 3).
    #[arg(long, default_value_t = 3)]
    order: usize,
    /// Solver steps (NFE = order * steps).
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
    let grid = TimeGrid::log_snr_uniform(&vp, 1.0, 1e-3, a.steps)?;
    let spec = format!("dpm-solver:order={}", a.order);
    // Bounds: measured 0.129 / 0.0404 / 0.00118 at 10 steps for orders 1 / 2 / 3 (seed 0).
    let bound = [0.2, 0.06, 0.002][a.order.clamp(1, 3) - 1];
    let (mut report, _) = OdeShowcase {
        example: "dpm_solver",
        solver: &spec,
        schedule: &vp,
        grid: grid.clone(),
        n: a.n,
        seed: a.seed,
        bound,
        order: a.order as f64,
        span: (1.0, 0.05),
        ladder: &[16, 32, 64, 128],
    }
    .run()?;
    let dpm1 = pf_ode_run("dpm-solver:order=1", &vp, &grid, a.n, a.seed)?;
    let ddim = pf_ode_run("ddim", &vp, &grid, a.n, a.seed)?;
    report.check_max("dpm1_vs_ddim", rms_diff(&dpm1.out, &ddim.out), 1e-12);
    report.finish()
}
