//! res_multistep (Zhang, Song & Chen 2023, RES, arXiv:2308.02157; ComfyUI's
//! `sample_res_multistep`): a second-order exponential multistep method in data prediction with
//! the exact `phi_2` weight of the previous prediction. Metric: RMS error to the exact PF-ODE
//! solution of a Gaussian target on 10 log-SNR steps of the VP SDE, with its observed order 2 as a
//! check and its distance to DPM-Solver++(2M) (same frame, approximate `phi_2`) printed.

use anyhow::Result;
use clap::Parser;
use diffusion::core::{schedule::VpLinear, TimeGrid};
use diffusion_examples::{pf_ode_run, rms_diff, OdeShowcase};

#[derive(Parser)]
struct Args {
    /// Solver steps (= NFE).
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
    let (mut report, run) = OdeShowcase {
        example: "res_multistep",
        solver: "res-multistep",
        schedule: &vp,
        grid: grid.clone(),
        n: a.n,
        seed: a.seed,
        bound: 0.08,
        order: 2.0,
        span: (1.0, 1e-3),
        ladder: &[16, 32, 64, 128],
    }
    .run()?;
    let two_m = pf_ode_run("dpmpp-2m", &vp, &grid, a.n, a.seed)?;
    report.info("dpmpp_2m_rmse", two_m.error()).check_min(
        "distance_to_dpmpp_2m",
        rms_diff(&run.out, &two_m.out),
        1e-6,
    );
    report.finish()
}
