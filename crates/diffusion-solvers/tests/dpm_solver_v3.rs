//! DPM-Solver-v3 on a 2-D Gaussian mixture with its exact denoiser as the model: EMS estimated
//! by Monte Carlo, few-step error against DPM-Solver++(2M), convergence, and the degenerate
//! statistics that reduce it to DPM-Solver++.

use diffusion_core::schedule::VpLinear;
use diffusion_core::{
    GaussianMixture, HostNoise, IndependentIncrements, NoiseSchedule, State, TimeGrid,
};
use diffusion_solvers::ode::{
    estimate_ems, Ddim, DpmSolver, DpmSolverPp2M, DpmSolverV3, Ems, EmsOptions, V3Corrector,
};
use diffusion_solvers::{sample, NoObserver, Solver};
use ndarray::Array2;
use std::sync::{Arc, OnceLock};

const T0: f64 = 1.0;
const T1: f64 = 1e-3;

fn gmm() -> GaussianMixture {
    GaussianMixture::new(
        vec![0.3, 0.5, 0.2],
        vec![vec![-1.5, 0.5], vec![1.0, 1.0], vec![0.5, -1.5]],
        vec![
            vec![vec![0.1, 0.05], vec![0.05, 0.2]],
            vec![vec![0.3, -0.1], vec![-0.1, 0.1]],
            vec![vec![0.05, 0.0], vec![0.0, 0.05]],
        ],
    )
    .unwrap()
}

/// EMS of the exact mixture denoiser from 1000 data samples, 200 log-SNR intervals.
fn ems() -> Arc<Ems> {
    static EMS: OnceLock<Arc<Ems>> = OnceLock::new();
    EMS.get_or_init(|| {
        let g = gmm();
        let vp = VpLinear::default();
        let data = g.sample(1000, &mut HostNoise::new(1));
        let options = EmsOptions {
            intervals: 200,
            ..EmsOptions::default()
        };
        Arc::new(estimate_ems(&g.denoiser(&vp), &vp, &data, 2, T0, T1, &options).unwrap())
    })
    .clone()
}

/// Held-out starts (exact samples of the marginal at T0) and their reference solution (DPM-Solver-3,
/// 600 log-SNR-uniform steps; it differs from the 300-step solution by 2e-6, so its own error is
/// about 3e-7).
fn starts() -> &'static (Array2<f64>, Array2<f64>) {
    static STARTS: OnceLock<(Array2<f64>, Array2<f64>)> = OnceLock::new();
    STARTS.get_or_init(|| {
        let g = gmm();
        let vp = VpLinear::default();
        let x0 = g.sample(256, &mut HostNoise::new(2));
        let eps = Array2::from_shape_vec((256, 2), HostNoise::new(3).normals(512)).unwrap();
        let x = x0.lincomb(vp.alpha(T0), &eps, vp.sigma(T0));
        let grid = TimeGrid::log_snr_uniform(&vp, T0, T1, 600).unwrap();
        let reference = run(&DpmSolver::new(3).unwrap(), &grid, x.clone());
        (x, reference)
    })
}

fn run(solver: &dyn Solver<Array2<f64>>, grid: &TimeGrid, x: Array2<f64>) -> Array2<f64> {
    let g = gmm();
    let vp = VpLinear::default();
    sample(
        solver,
        &g.denoiser(&vp),
        &vp,
        grid,
        x,
        &mut IndependentIncrements::seeded(0),
        &mut NoObserver,
    )
    .unwrap()
}

fn error(solver: &dyn Solver<Array2<f64>>, grid: &TimeGrid) -> f64 {
    let (x, reference) = starts();
    run(solver, grid, x.clone())
        .lincomb(1.0, reference, -1.0)
        .rms()
}

#[test]
fn the_reference_solution_is_converged() {
    let vp = VpLinear::default();
    let (x, reference) = starts();
    let grid = TimeGrid::log_snr_uniform(&vp, T0, T1, 300).unwrap();
    let half = run(&DpmSolver::new(3).unwrap(), &grid, x.clone());
    let d = half.lincomb(1.0, reference, -1.0).rms();
    assert!(d < 1e-5, "600 vs 300 steps differ by {d}");
}

#[test]
fn ems_look_like_the_paper_describes() {
    // l runs from ~1 at high noise (eps ~ x / sigma: data prediction is optimal) towards 0 at low
    // noise (x0 ~ x: noise prediction is optimal); s and b are finite.
    let ems = ems();
    let n = ems.len();
    for d in 0..2 {
        assert!((ems.l(0)[d] - 1.0).abs() < 0.05, "l at T: {:?}", ems.l(0));
        assert!(
            ems.l(n - 1)[d].abs() < 0.1,
            "l at t_end: {:?}",
            ems.l(n - 1)
        );
    }
    for i in 0..n {
        assert!(ems.s(i).iter().chain(ems.b(i)).all(|v| v.is_finite()));
    }
}

#[test]
fn few_step_errors_are_at_most_dpm_solver_pp_2m() {
    // Order 3 with the pseudo-order corrector (the reference defaults), on EMS-node grids
    // uniform in log-SNR. Measured RMS errors against the reference solution:
    //   NFE        5       6       7       8       9       10
    //   v3       0.209   0.136   0.136   0.085   0.074   0.058
    //   2M       0.281   0.225   0.210   0.175   0.167   0.149
    // The ordering held for every EMS tried (data seeds 5/7/9, 100-400 intervals, 500-2000
    // samples); without the corrector v3 is worse than 2M at NFE 6-7 (0.28-0.30 vs 0.21-0.22).
    let ems = ems();
    let v3 = DpmSolverV3::new(ems.clone(), 3).unwrap();
    let mut table = Vec::new();
    for steps in 5..=10 {
        let grid = ems.grid(steps).unwrap();
        let e3 = error(&v3, &grid);
        let e2m = error(&DpmSolverPp2M, &grid);
        eprintln!("NFE {steps:2}: dpm-solver-v3 {e3:.3e}  dpmpp-2m {e2m:.3e}");
        table.push((e3, e2m));
    }
    for (k, &(e3, e2m)) in table.iter().enumerate() {
        assert!(e3 <= e2m, "NFE {}: v3 {e3} vs 2M {e2m}", k + 5);
    }
}

#[test]
fn it_converges_as_steps_grow() {
    let ems = ems();
    let v3 = DpmSolverV3::new(ems.clone(), 3).unwrap();
    let errs: Vec<f64> = [10, 20, 40, 80]
        .iter()
        .map(|&n| error(&v3, &ems.grid(n).unwrap()))
        .collect();
    eprintln!("dpm-solver-v3 at 10/20/40/80 steps: {errs:?}");
    // Measured 5.8e-2, 1.3e-2, 3.1e-3, 9.7e-4: at 80 steps a step spans 2-3 EMS intervals and
    // the trapezoid integrals of the statistics start to limit the accuracy.
    assert!(errs.windows(2).all(|w| w[1] < 0.5 * w[0]), "{errs:?}");
    assert!(errs[3] < 2e-3, "{errs:?}");
}

#[test]
fn degenerate_statistics_give_dpm_solver_pp() {
    // l = 1, s = b = 0: the first-order predictor is DDIM (DPM-Solver++(1)), up to the
    // trapezoid rule of the integrals (relative error ~ dlambda^2 / 12 ~ 4e-4 per step with 200
    // intervals over 13.8 units of lambda).
    let vp = VpLinear::default();
    let ems = Arc::new(Ems::degenerate(&vp, T0, T1, 200, 2).unwrap());
    let grid = ems.grid(8).unwrap();
    let v3 = DpmSolverV3::new(ems.clone(), 1)
        .unwrap()
        .with_corrector(V3Corrector::None);
    let (x, _) = starts();
    let a = run(&v3, &grid, x.clone());
    let b = run(&Ddim::new(0.0).unwrap(), &grid, x.clone());
    let d = a.lincomb(1.0, &b, -1.0).rms();
    assert!(d < 2e-3 * b.rms(), "v3(degenerate) vs DDIM: {d}");
    // The corrector changes the first-order solver (it is not DDIM any more).
    let corrected = run(&DpmSolverV3::new(ems, 1).unwrap(), &grid, x.clone());
    assert!(corrected.lincomb(1.0, &b, -1.0).rms() > 10.0 * d);
}

#[test]
fn grids_must_be_on_the_ems_nodes() {
    let ems = ems();
    let vp = VpLinear::default();
    let v3 = DpmSolverV3::new(ems.clone(), 2).unwrap();
    let off = TimeGrid::log_snr_uniform(&vp, T0, T1, 7).unwrap();
    let g = gmm();
    let (x, _) = starts();
    let err = sample(
        &v3,
        &g.denoiser(&vp),
        &vp,
        &off,
        x.clone(),
        &mut IndependentIncrements::seeded(0),
        &mut NoObserver,
    );
    // 7 log-SNR-uniform steps over 200 intervals fall between nodes.
    assert!(err.is_err());
    let snapped = ems.snap(&vp, &off).unwrap();
    assert_eq!(snapped.steps(), 7);
    assert!(error(&v3, &snapped) < error(&DpmSolverPp2M, &snapped));
    assert!(DpmSolverV3::new(ems.clone(), 4).is_err());
    assert!(ems.grid(0).is_err() && ems.grid(500).is_err());
}
