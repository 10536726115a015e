//! IIA-DDIM (Zhang, Niwa & Kleijn 2024, arXiv:2304.11328): DDIM plus, at every step, fitted
//! multiples of the differences of the newest data predictions, the coefficients found by least
//! squares against a fine-grained DDIM solve of each step on 1000 pilot samples. 3-component 2-D
//! Gaussian mixture with its exact denoiser, VP SDE, 6 log-SNR steps from t = 1 to 1e-3. Metric:
//! RMS error on 256 held-out starts against a converged PF-ODE solution (DPM-Solver-3, 200
//! steps); checks: it beats DDIM on the same grid (the same NFE), and with its coefficients
//! zeroed it is DDIM. The same fit on EDM's Heun (IIA-EDM, 3 steps = 6 NFE) and on
//! DPM-Solver++(2M) (IIA-DPM-Solver, 6 steps) beats its base solver on the same grid.

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::VpLinear;
use diffusion::core::TimeGrid;
use diffusion::solvers::ode::{Ddim, DpmSolver, DpmSolverPp2M, Heun, Iia, IiaBase};
use diffusion_examples::{marginal_samples, mixture_2d, rms_diff, solve_ode, OdeReference, Report};

#[derive(Parser)]
struct Args {
    /// Fitted coefficients (prediction differences) per step.
    #[arg(long, default_value_t = 1)]
    history: usize,
    /// Steps (= NFE).
    #[arg(long, default_value_t = 6)]
    steps: usize,
    /// Fine DDIM sub-steps per step of the fit.
    #[arg(long, default_value_t = 16)]
    fine_steps: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

const T0: f64 = 1.0;
const T1: f64 = 1e-3;

fn main() -> Result<()> {
    let a = Args::parse();
    let vp = VpLinear::default();
    let gmm = mixture_2d()?;
    let den = gmm.denoiser(&vp);
    let grid = TimeGrid::log_snr_uniform(&vp, T0, T1, a.steps)?;
    let pilots = marginal_samples(&gmm, &vp, T0, 1000, a.seed);
    let iia = Iia::fit(a.history, &den, &vp, &grid, pilots, a.fine_steps)?;
    let held_out = marginal_samples(&gmm, &vp, T0, 256, a.seed + 1);
    let fine = TimeGrid::log_snr_uniform(&vp, T0, T1, 200)?;
    let reference = OdeReference::new(&den, &vp, held_out.clone(), &DpmSolver::new(3)?, &fine)?;
    let ddim = Ddim::new(0.0)?;
    let (e_iia, e_ddim) = (
        reference.error(&iia, &grid)?,
        reference.error(&ddim, &grid)?,
    );
    let zeroed = rms_diff(
        &solve_ode(&iia.zeroed(), &den, &vp, &grid, held_out.clone())?,
        &solve_ode(&ddim, &den, &vp, &grid, held_out)?,
    );
    // IIA-EDM on 3 Heun steps (6 NFE) and IIA-DPM-Solver on the 6-step grid.
    let heun_grid = TimeGrid::log_snr_uniform(&vp, T0, T1, (a.steps / 2).max(1))?;
    let pilots = || marginal_samples(&gmm, &vp, T0, 1000, a.seed);
    let iia_heun = Iia::fit_base(
        IiaBase::Heun,
        a.history,
        &den,
        &vp,
        &heun_grid,
        pilots(),
        a.fine_steps,
    )?;
    let iia_2m = Iia::fit_base(
        IiaBase::DpmPp2M,
        a.history,
        &den,
        &vp,
        &grid,
        pilots(),
        a.fine_steps,
    )?;
    let (e_iia_heun, e_heun) = (
        reference.error(&iia_heun, &heun_grid)?,
        reference.error(&Heun, &heun_grid)?,
    );
    let (e_iia_2m, e_2m) = (
        reference.error(&iia_2m, &grid)?,
        reference.error(&DpmSolverPp2M, &grid)?,
    );
    // Bounds: measured 0.147 and a ratio 0.43 to DDIM with one coefficient per step (seeds 1-4:
    // 0.150-0.161, 0.47-0.50; two coefficients: 0.173, 0.50).
    let mut r = Report::new("iia", "pf_ode_rmse", e_iia, a.steps, 0.2);
    r.text("schedule", "vp-linear")
        .info("history", a.history as f64)
        .info("ddim_rmse", e_ddim)
        .check_max("iia_over_ddim", e_iia / e_ddim, 0.6)
        .check_max("zeroed_vs_ddim", zeroed, 1e-12)
        .info("heun_rmse", e_heun)
        .check_max("iia_heun_over_heun", e_iia_heun / e_heun, 0.5)
        .info("dpmpp_2m_rmse", e_2m)
        .check_max("iia_dpmpp_2m_over_dpmpp_2m", e_iia_2m / e_2m, 0.95);
    r.finish()
}
