//! UniPC (Zhao et al. 2023, arXiv:2302.04867, Algorithms 2 and 3): multistep data-prediction
//! predictor (UniP-p) with the unified corrector (UniC, order p + 1) on the VP SDE; metric: RMS
//! error to the exact PF-ODE solution of a Gaussian target, with the observed order and the gain
//! of the corrector (same predictor without UniC) as checks.

use anyhow::Result;
use clap::Parser;
use diffusion::core::{schedule::VpLinear, TimeGrid};
use diffusion_examples::{pf_ode_run, OdeShowcase};

#[derive(Parser)]
struct Args {
    /// Predictor order p (1 to 3); with the corrector the order is p + 1.
    #[arg(long, default_value_t = 2)]
    order: usize,
    /// B(h) variant: 1 (bh1) or 2 (bh2).
    #[arg(long, default_value_t = 2)]
    variant: usize,
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
    let grid = TimeGrid::log_snr_uniform(&vp, 1.0, 1e-3, a.steps)?;
    let spec = |corrector: u8| {
        format!(
            "unipc:order={},variant={},corrector={corrector}",
            a.order, a.variant
        )
    };
    let with = spec(1);
    let ladder: &[usize] = if a.order >= 3 {
        &[64, 128, 256, 512]
    } else {
        &[32, 64, 128, 256]
    };
    let (mut r, run) = OdeShowcase {
        example: "unipc",
        solver: &with,
        schedule: &vp,
        grid: grid.clone(),
        n: a.n,
        seed: a.seed,
        bound: 0.0075,
        order: (a.order + 1) as f64,
        span: (1.0, 0.05),
        ladder,
    }
    .run()?;
    let without = pf_ode_run(&spec(0), &vp, &grid, a.n, a.seed)?;
    r.info("predictor_only_rmse", without.error()).check_max(
        "corrector_gain",
        run.error() / without.error(),
        0.8,
    );
    r.finish()
}
