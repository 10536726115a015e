//! Adaptive Dormand-Prince 5(4) (Dormand & Prince 1980) on the probability-flow ODE (Song et al.
//! 2021, arXiv:2011.13456, Sec. 4.3, as score_sde's `RK45` ODE sampler) in EDM coordinates, VP
//! SDE from t = 1 to 1e-3. Metric: RMS error to the exact PF-ODE solution of a Gaussian target at
//! `rtol = atol = 1e-5`; checks: the error falls in proportion to the tolerance (slope of
//! -ln(error) against ln(1/tol) over 1e-3..1e-7 within [0.7, 1.3]) while the NFE grows slowly, as
//! a fifth-order method's should (slope of -ln(error) against ln(NFE) above 3.5).

use anyhow::Result;
use clap::Parser;
use diffusion::core::schedule::VpLinear;
use diffusion::core::TimeGrid;
use diffusion_examples::{fitted_slope, pf_ode_run, Report};

#[derive(Parser)]
struct Args {
    /// Tolerance (rtol = atol).
    #[arg(long, default_value_t = 1e-5)]
    tol: f64,
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
    let run = |tol: f64| {
        pf_ode_run(
            &format!("rk45:rtol={tol},atol={tol}"),
            &vp,
            &grid,
            a.n,
            a.seed,
        )
    };
    let main = run(a.tol)?;
    let tols = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7];
    let runs = tols.iter().map(|&t| run(t)).collect::<Result<Vec<_>>>()?;
    let errs: Vec<f64> = runs.iter().map(|r| r.error()).collect();
    let nfes: Vec<usize> = runs.iter().map(|r| r.nfe).collect();
    let inv: Vec<usize> = tols.iter().map(|&t| (1.0 / t).round() as usize).collect();
    // Bound: measured 4.4e-6 at tol 1e-5.
    let mut r = Report::new("rk45", "pf_ode_rmse", main.error(), main.nfe, 1e-5);
    r.text("schedule", "vp-linear")
        .info("tol", a.tol)
        .info("nfe_at_1e-3", nfes[0] as f64)
        .info("nfe_at_1e-7", nfes[4] as f64)
        .check_range("error_vs_tol_slope", fitted_slope(&inv, &errs), 0.7, 1.3)
        .check_min("error_vs_nfe_slope", fitted_slope(&nfes, &errs), 3.5);
    r.finish()
}
