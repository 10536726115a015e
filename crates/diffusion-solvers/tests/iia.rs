//! IIA (on DDIM, Heun and DPM-Solver++(2M)) on a 2-D Gaussian mixture with its exact denoiser:
//! coefficients fitted on pilot samples lower the error on held-out samples, step by step and
//! globally; zero coefficients are the base solver bit for bit; the coefficients belong to their
//! grid.

use diffusion_core::schedule::VpLinear;
use diffusion_core::{
    GaussianMixture, HostNoise, IndependentIncrements, NoiseSchedule, State, TimeGrid,
};
use diffusion_solvers::ode::{Ddim, DpmSolver, DpmSolverPp2M, Heun, Iia, IiaBase};
use diffusion_solvers::{sample, Solver, Trajectory};
use ndarray::Array2;

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

/// `n` exact samples of the marginal at `t`.
fn starts(n: usize, seed: u64, t: f64) -> Array2<f64> {
    let vp = VpLinear::default();
    let x0 = gmm().sample(n, &mut HostNoise::new(seed));
    let eps = Array2::from_shape_vec((n, 2), HostNoise::new(seed + 1000).normals(2 * n)).unwrap();
    x0.lincomb(vp.alpha(t), &eps, vp.sigma(t))
}

/// All states of a run (the start included).
fn trajectory(
    solver: &dyn Solver<Array2<f64>>,
    grid: &TimeGrid,
    x: Array2<f64>,
) -> Vec<Array2<f64>> {
    let g = gmm();
    let vp = VpLinear::default();
    let mut tr = Trajectory::default();
    sample(
        solver,
        &g.denoiser(&vp),
        &vp,
        grid,
        x.clone(),
        &mut IndependentIncrements::seeded(0),
        &mut tr,
    )
    .unwrap();
    tr.states
        .into_iter()
        .map(|v| Array2::from_shape_vec(x.raw_dim(), v).unwrap())
        .collect()
}

/// The PF-ODE solution from `x` at `t0` to `t1` (DPM-Solver-3, 100 log-SNR steps).
fn exact(x: &Array2<f64>, t0: f64, t1: f64) -> Array2<f64> {
    let vp = VpLinear::default();
    let grid = TimeGrid::log_snr_uniform(&vp, t0, t1, 100).unwrap();
    trajectory(&DpmSolver::new(3).unwrap(), &grid, x.clone())
        .pop()
        .unwrap()
}

const T0: f64 = 1.0;
const T1: f64 = 1e-3;

fn fitted(history: usize, grid: &TimeGrid) -> Iia {
    let g = gmm();
    let vp = VpLinear::default();
    Iia::fit(
        history,
        &g.denoiser(&vp),
        &vp,
        grid,
        starts(1000, 1, T0),
        16,
    )
    .unwrap()
}

#[test]
fn fitted_coefficients_lower_the_error_on_held_out_samples() {
    // 6 log-SNR-uniform steps from t = 1 to 1e-3, 1000 pilot samples, 16 fine sub-steps, 256
    // held-out samples. Measured: final RMS error 0.156 (K = 1) and 0.179 (K = 2) vs DDIM 0.332;
    // summed local error of steps 2-6 0.31 / 0.26 vs 0.50 (step 1 has no history, so no
    // coefficient, and equals DDIM).
    let vp = VpLinear::default();
    let grid = TimeGrid::log_snr_uniform(&vp, T0, T1, 6).unwrap();
    let held_out = starts(256, 2, T0);
    let reference = exact(&held_out, T0, T1);
    let ddim = trajectory(&Ddim::new(0.0).unwrap(), &grid, held_out.clone());
    let err = |tr: &[Array2<f64>]| tr.last().unwrap().lincomb(1.0, &reference, -1.0).rms();
    let e_ddim = err(&ddim);
    let times = grid.times();
    // Local error of each step along a run's own path: the step's output vs the exact flow of
    // its input over the same interval.
    let local = |tr: &[Array2<f64>]| -> Vec<f64> {
        (0..grid.steps())
            .map(|i| {
                tr[i + 1]
                    .lincomb(1.0, &exact(&tr[i], times[i], times[i + 1]), -1.0)
                    .rms()
            })
            .collect()
    };
    let l_ddim = local(&ddim);
    for history in [1, 2] {
        let iia = fitted(history, &grid);
        let tr = trajectory(&iia, &grid, held_out.clone());
        let e = err(&tr);
        let l = local(&tr);
        eprintln!(
            "history {history}: global {e:.3e} vs DDIM {e_ddim:.3e}; local {l:?} vs {l_ddim:?}; gammas {:?}",
            iia.gammas()
        );
        assert!(e < 0.6 * e_ddim, "history {history}: {e} vs DDIM {e_ddim}");
        // The first step has no history (no coefficient): identical to DDIM there.
        assert!((l[0] - l_ddim[0]).abs() < 1e-12);
        let later: f64 = l[1..].iter().sum();
        let later_ddim: f64 = l_ddim[1..].iter().sum();
        assert!(later < 0.75 * later_ddim, "local {l:?} vs {l_ddim:?}");
    }
}

#[test]
fn zero_coefficients_are_ddim_and_grids_must_match() {
    let vp = VpLinear::default();
    let grid = TimeGrid::log_snr_uniform(&vp, T0, T1, 5).unwrap();
    let iia = fitted(2, &grid);
    assert_eq!(iia.gammas()[0].len(), 0);
    assert_eq!(iia.gammas()[1].len(), 1);
    assert_eq!(iia.gammas()[2].len(), 2);
    let x = starts(16, 3, T0);
    let a = trajectory(&iia.zeroed(), &grid, x.clone());
    let b = trajectory(&Ddim::new(0.0).unwrap(), &grid, x.clone());
    let d = a
        .last()
        .unwrap()
        .lincomb(1.0, b.last().unwrap(), -1.0)
        .rms();
    assert!(d < 1e-12, "zeroed IIA vs DDIM: {d}");
    // Another grid is refused.
    let other = TimeGrid::log_snr_uniform(&vp, T0, T1, 6).unwrap();
    let g = gmm();
    let r = sample(
        &iia,
        &g.denoiser(&vp),
        &vp,
        &other,
        x,
        &mut IndependentIncrements::seeded(0),
        &mut diffusion_solvers::NoObserver,
    );
    assert!(r.unwrap_err().to_string().contains("another grid"));
    assert!(Iia::fit(5, &g.denoiser(&vp), &vp, &grid, starts(4, 1, T0), 16).is_err());
    assert!(Iia::fit(1, &g.denoiser(&vp), &vp, &grid, starts(4, 1, T0), 1).is_err());
}

#[test]
fn a_grid_ending_at_sigma_zero_is_fitted_too() {
    // Karras grid with a final step to sigma = 0 (DDIM returns alpha x0_hat there).
    let vp = VpLinear::default();
    let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 8, true).unwrap();
    let held_out = starts(256, 4, T0);
    let g = gmm();
    let iia = Iia::fit(2, &g.denoiser(&vp), &vp, &grid, starts(1000, 5, T0), 16).unwrap();
    let a = trajectory(&iia, &grid, held_out.clone()).pop().unwrap();
    let b = trajectory(&Ddim::new(0.0).unwrap(), &grid, held_out.clone())
        .pop()
        .unwrap();
    // The reference: DPM-Solver-3 on a 400-step Karras grid, whose last step is the same
    // denoising step to sigma = 0. Measured: IIA 0.155, DDIM 0.313.
    let fine = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 400, true).unwrap();
    let target = trajectory(&DpmSolver::new(3).unwrap(), &fine, held_out.clone())
        .pop()
        .unwrap();
    let (ea, eb) = (
        a.lincomb(1.0, &target, -1.0).rms(),
        b.lincomb(1.0, &target, -1.0).rms(),
    );
    eprintln!("karras 8 steps: iia {ea:.3e} ddim {eb:.3e}");
    assert!(ea < 0.5 * eb, "iia {ea} vs ddim {eb}");
}

/// (base, base solver, steps, bound on the global error ratio, bound on the summed local ratio).
type Case<'a> = (IiaBase, &'a dyn Solver<Array2<f64>>, usize, f64, f64);

/// IIA-EDM (Heun) and IIA-DPM-Solver++(2M): fitted on 1000 pilot samples, evaluated on 256
/// held-out samples (other seeds) against the converged PF-ODE solution; local errors along each
/// run's own path; zero coefficients are the base solver bit for bit. Measured (final RMS error,
/// summed local error): Heun 4 steps (8 NFE) K = 1: 0.256 / 0.24 vs Heun 1.315 / 2.32, K = 2:
/// 0.246 / 0.23; DPM-Solver++(2M) 6 steps K = 1: 0.198 / 0.31 vs 0.238 / 0.55, K = 2: 0.208 /
/// 0.26.
#[test]
fn heun_and_dpmpp_2m_bases_fit_and_zero_to_the_base() {
    let vp = VpLinear::default();
    let g = gmm();
    let held_out = starts(256, 12, T0);
    let reference = exact(&held_out, T0, T1);
    let err = |tr: &[Array2<f64>]| tr.last().unwrap().lincomb(1.0, &reference, -1.0).rms();
    let cases: [Case<'_>; 2] = [
        // (base, base solver, steps, bound on global ratio, bound on summed local ratio)
        (IiaBase::Heun, &Heun, 4, 0.3, 0.5),
        (IiaBase::DpmPp2M, &DpmSolverPp2M, 6, 0.9, 0.7),
    ];
    for (base, solver, steps, global_bound, local_bound) in cases {
        let grid = TimeGrid::log_snr_uniform(&vp, T0, T1, steps).unwrap();
        let times = grid.times();
        let local = |tr: &[Array2<f64>]| -> Vec<f64> {
            (0..grid.steps())
                .map(|i| {
                    tr[i + 1]
                        .lincomb(1.0, &exact(&tr[i], times[i], times[i + 1]), -1.0)
                        .rms()
                })
                .collect()
        };
        let plain = trajectory(solver, &grid, held_out.clone());
        let (e_base, l_base) = (err(&plain), local(&plain));
        for history in [1, 2] {
            let iia = Iia::fit_base(
                base,
                history,
                &g.denoiser(&vp),
                &vp,
                &grid,
                starts(1000, 11, T0),
                16,
            )
            .unwrap();
            let tr = trajectory(&iia, &grid, held_out.clone());
            let (e, l) = (err(&tr), local(&tr));
            eprintln!(
                "{base:?} K={history}: global {e:.3e} vs base {e_base:.3e}; local {l:.4?} vs \
                 {l_base:.4?}; gammas {:?}",
                iia.gammas()
            );
            assert!(
                e < global_bound * e_base,
                "{base:?} K={history}: {e} vs {e_base}"
            );
            let (sl, sb): (f64, f64) = (l.iter().sum(), l_base.iter().sum());
            assert!(
                sl < local_bound * sb,
                "{base:?} K={history}: local {l:?} vs {l_base:?}"
            );
            // Zero coefficients: the base solver, bit for bit, at every step.
            let zeroed = trajectory(&iia.zeroed(), &grid, held_out.clone());
            assert_eq!(
                zeroed, plain,
                "{base:?}: zeroed IIA differs from the base solver"
            );
        }
    }
}

#[test]
fn heun_base_on_a_grid_ending_at_sigma_zero() {
    // Heun's last step to sigma = 0 is Euler (one evaluation): the fit still has a term there
    // (from the previous step's evaluation), and zero coefficients stay Heun.
    let vp = VpLinear::default();
    let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 5, true).unwrap();
    let g = gmm();
    let iia = Iia::fit_base(
        IiaBase::Heun,
        1,
        &g.denoiser(&vp),
        &vp,
        &grid,
        starts(1000, 21, T0),
        16,
    )
    .unwrap();
    assert!(iia.gammas().iter().all(|g| g.len() == 1));
    let held_out = starts(256, 22, T0);
    let a = trajectory(&iia, &grid, held_out.clone()).pop().unwrap();
    let b = trajectory(&Heun, &grid, held_out.clone()).pop().unwrap();
    let fine = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 400, true).unwrap();
    let target = trajectory(&DpmSolver::new(3).unwrap(), &fine, held_out.clone())
        .pop()
        .unwrap();
    let (ea, eb) = (
        a.lincomb(1.0, &target, -1.0).rms(),
        b.lincomb(1.0, &target, -1.0).rms(),
    );
    eprintln!("karras 5 Heun steps: iia {ea:.3e} heun {eb:.3e}");
    assert!(ea < 0.7 * eb, "iia {ea} vs heun {eb}");
    let z = trajectory(&iia.zeroed(), &grid, held_out.clone())
        .pop()
        .unwrap();
    assert_eq!(z, b);
}
