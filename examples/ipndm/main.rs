//! iPNDM (Zhang & Chen 2022, arXiv:2204.13902, appendix): improved pseudo-numerical multistep
//! method, Adams-Bashforth on eps in EDM coordinates with lower-order multistep warm-up; metric:
//! RMS error to the exact PF-ODE solution of a Gaussian target on the EDM schedule with Karras
//! steps. Checks: the observed order of the variable-step weights (4) and of k-diffusion's fixed
//! equal-step weights (2 on non-uniform grids), and the identity of variable-step iPNDM with
//! LMS of the same order (both integrate the Lagrange interpolant of eps exactly in sigma).

use anyhow::Result;
use clap::Parser;
use diffusion::core::{schedule::Edm, TimeGrid};
use diffusion_examples::{ode_order, pf_ode_run, rms_diff, OdeShowcase};

#[derive(Parser)]
struct Args {
    /// Order (1 to 4).
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
    let grid = TimeGrid::karras(&edm, 0.002, 80.0, 7.0, a.steps, false)?;
    let spec = format!("ipndm:order={},variable=1", a.order);
    let span = (80.0, 0.2);
    let (mut r, run) = OdeShowcase {
        example: "ipndm",
        solver: &spec,
        schedule: &edm,
        grid: grid.clone(),
        n: a.n,
        seed: a.seed,
        bound: 0.025,
        order: a.order as f64,
        span,
        ladder: &[64, 128, 256, 512],
    }
    .run()?;
    let fixed = format!("ipndm:order={},variable=0", a.order);
    let fixed_rmse = pf_ode_run(&fixed, &edm, &grid, a.n, a.seed)?.error();
    let (_, fixed_order) = ode_order(&fixed, &edm, span, &[32, 64, 128, 256], a.seed)?;
    let lms = pf_ode_run(&format!("lms:order={}", a.order), &edm, &grid, a.n, a.seed)?;
    let want = (a.order.min(2)) as f64;
    r.info("fixed_weights_rmse", fixed_rmse)
        .check_range("fixed_weights_order", fixed_order, want - 0.3, want + 0.3)
        .check_max("variable_vs_lms", rms_diff(&run.out, &lms.out), 1e-10);
    r.finish()
}
