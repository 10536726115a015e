//! The exponential-integrator and Adams families (DPM-Solver, DPM-Solver++ 2S/3M, UniPC, DEIS,
//! iPNDM, PLMS) against the exact Gaussian PF-ODE: fitted convergence slopes, identities with
//! DDIM and between solvers, and clear errors for bad parameters.
//!
//! Convergence is measured on log-SNR-uniform grids that start at the top of the schedule (where
//! sampling starts) and stop at a moderate noise level (VP t = 0.05, EDM sigma = 0.2). Ending at
//! a tiny noise level is avoided on purpose: for a Gaussian target the leading global error term
//! of the three-step multistep methods is the integral of an exact derivative whose boundary
//! values vanish as sigma -> 0, so those methods look fourth order there (measured slope ~4.0
//! for a declared 3) until step counts far beyond any test.

mod common;

use common::{fitted_slope, ode_error};
use diffusion_core::schedule::{Edm, VpLinear};
use diffusion_core::{NoiseSchedule, TimeGrid};
use diffusion_solvers::ode::{
    Ddim, Deis, DeisForm, DpmSolver, DpmSolverPp2M, DpmSolverPp2S, DpmSolverPp3M, Dpmpp3MWeight,
    Ipndm, Plms, UniPc, UniPcVariant,
};
use diffusion_solvers::{registry, Solver};
use ndarray::Array2;

type Boxed = Box<dyn Solver<Array2<f64>>>;

fn cases() -> Vec<(Box<dyn NoiseSchedule>, f64, f64)> {
    vec![
        (Box::new(VpLinear::default()), 1.0, 0.05),
        (Box::new(Edm::default()), 80.0, 0.2),
    ]
}

/// Fits the slope of each solver on both schedules and checks it is within 0.3 of `order()`.
fn check_orders(solvers: &[Boxed], ns: &[usize]) {
    for s in solvers {
        for (sch, t0, t1) in cases() {
            let errs: Vec<f64> = ns
                .iter()
                .map(|&n| ode_error(s.as_ref(), sch.as_ref(), t0, t1, n))
                .collect();
            let slope = fitted_slope(ns, &errs);
            let shown: Vec<String> = errs.iter().map(|e| format!("{e:.2e}")).collect();
            eprintln!(
                "{:45} {:22} slope {slope:.3} errors {shown:?}",
                s.name(),
                sch.name()
            );
            assert!(
                (slope - s.order()).abs() <= 0.3,
                "{} on {}: slope {slope:.3} vs declared {}, errors {errs:?}",
                s.name(),
                sch.name(),
                s.order()
            );
            assert!(
                errs.windows(2).all(|w| w[1] < w[0]),
                "{} on {}: errors not decreasing {errs:?}",
                s.name(),
                sch.name()
            );
        }
    }
}

#[test]
fn first_and_second_order_solvers_converge_at_their_declared_order() {
    let solvers: Vec<Boxed> = vec![
        Box::new(DpmSolver::new(1).unwrap()),
        Box::new(DpmSolver::new(2).unwrap()),
        Box::new(DpmSolverPp2S),
        Box::new(DpmSolverPp3M::new(Dpmpp3MWeight::Reference)),
        Box::new(UniPc::new(1, UniPcVariant::Bh2, false).unwrap()),
        Box::new(UniPc::new(2, UniPcVariant::Bh2, false).unwrap()),
        Box::new(UniPc::new(1, UniPcVariant::Bh1, true).unwrap()),
        Box::new(UniPc::new(1, UniPcVariant::Bh2, true).unwrap()),
        Box::new(Deis::new(1).unwrap()),
        Box::new(Deis::new(2).unwrap()),
        Box::new(Deis::with_form(1, DeisForm::LogRho).unwrap()),
        Box::new(Deis::with_form(2, DeisForm::LogRho).unwrap()),
        Box::new(Ipndm::new(2, true).unwrap()),
        Box::new(Ipndm::new(4, false).unwrap()),
        Box::new(Plms),
    ];
    check_orders(&solvers, &[32, 64, 128, 256]);
}

#[test]
fn third_order_solvers_converge_at_their_declared_order() {
    let solvers: Vec<Boxed> = vec![
        Box::new(DpmSolver::new(3).unwrap()),
        Box::new(DpmSolverPp3M::default()),
        Box::new(UniPc::new(3, UniPcVariant::Bh2, false).unwrap()),
        Box::new(UniPc::new(2, UniPcVariant::Bh1, true).unwrap()),
        Box::new(UniPc::new(2, UniPcVariant::Bh2, true).unwrap()),
        Box::new(Deis::new(3).unwrap()),
        Box::new(Ipndm::new(3, true).unwrap()),
    ];
    check_orders(&solvers, &[32, 64, 128, 256]);
}

#[test]
fn log_rho_deis_3_converges_at_third_order() {
    // Lagrange interpolation in ln rho fits eps of the Gaussian flow so well that the leading
    // error term only dominates from 64 steps on (local slopes 4.0, 3.2, 2.9 over 32..256 on
    // VP), so the fit starts at 64 steps, as for the fourth-order solvers.
    let solvers: Vec<Boxed> = vec![Box::new(Deis::with_form(3, DeisForm::LogRho).unwrap())];
    check_orders(&solvers, &[64, 128, 256, 512]);
}

#[test]
fn fourth_order_solvers_converge_at_their_declared_order() {
    let solvers: Vec<Boxed> = vec![
        Box::new(UniPc::new(3, UniPcVariant::Bh1, true).unwrap()),
        Box::new(UniPc::new(3, UniPcVariant::Bh2, true).unwrap()),
        Box::new(Ipndm::new(4, true).unwrap()),
    ];
    check_orders(&solvers, &[64, 128, 256, 512]);
}

#[test]
fn the_reference_3m_weight_is_only_second_order() {
    // The D2 weight of dpm_solver_pytorch.py / diffusers halves the x0'' term: at 256 steps it
    // is more than 10x less accurate than the consistent weight, and its slope is about 2.
    let (sch, t0, t1) = (VpLinear::default(), 1.0, 0.05);
    let ours = ode_error(&DpmSolverPp3M::default(), &sch, t0, t1, 256);
    let reference = ode_error(
        &DpmSolverPp3M::new(Dpmpp3MWeight::Reference),
        &sch,
        t0,
        t1,
        256,
    );
    assert!(
        reference > 10.0 * ours,
        "reference {reference:e}, ours {ours:e}"
    );
}

/// The largest RMS difference of the final states of `a` and `b` over both schedules, on a
/// log-SNR grid and on a Karras grid ending at sigma = 0.
fn max_state_diff(a: &dyn Solver<Array2<f64>>, b: &dyn Solver<Array2<f64>>, steps: usize) -> f64 {
    let mut worst: f64 = 0.0;
    for (sch, t0, t1) in cases() {
        for grid in [
            TimeGrid::log_snr_uniform(sch.as_ref(), t0, t1, steps).unwrap(),
            TimeGrid::karras(sch.as_ref(), 0.002, sch.noise_ratio(t0), 7.0, steps, true).unwrap(),
        ] {
            let d = common::rms_diff(&run(a, sch.as_ref(), &grid), &run(b, sch.as_ref(), &grid));
            worst = worst.max(d);
        }
    }
    worst
}

#[test]
fn first_order_members_are_ddim() {
    let ddim = Ddim::new(0.0).unwrap();
    let firsts: Vec<Boxed> = vec![
        Box::new(DpmSolver::new(1).unwrap()),
        Box::new(Deis::new(1).unwrap()),
        Box::new(Deis::with_form(1, DeisForm::LogRho).unwrap()),
        Box::new(UniPc::new(1, UniPcVariant::Bh1, false).unwrap()),
        Box::new(UniPc::new(1, UniPcVariant::Bh2, false).unwrap()),
        Box::new(Ipndm::new(1, false).unwrap()),
    ];
    for s in &firsts {
        let d = max_state_diff(s.as_ref(), &ddim, 12);
        assert!(d < 1e-10, "{} differs from DDIM by {d:e}", s.name());
    }
    // The check can fail: a second-order method is far from DDIM on 12 steps.
    let d = max_state_diff(&DpmSolver::new(2).unwrap(), &ddim, 12);
    assert!(d > 1e-3, "dpm-solver-2 vs ddim only {d:e}");
}

/// The final state of `solver` from the same start on `grid`.
fn run(solver: &dyn Solver<Array2<f64>>, sch: &dyn NoiseSchedule, grid: &TimeGrid) -> Array2<f64> {
    use diffusion_core::{GaussianMixture, IndependentIncrements};
    let g = common::target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(sch);
    let x = common::init_of(&g, 16, 7, sch, grid.times()[0]);
    diffusion_solvers::sample(
        solver,
        &den,
        sch,
        grid,
        x,
        &mut IndependentIncrements::seeded(0),
        &mut diffusion_solvers::NoObserver,
    )
    .unwrap()
}

#[test]
fn independent_derivations_agree() {
    // UniP-k without corrector solves the same order conditions as the Lagrange-based
    // DPM-Solver++(kM): both are the exact integral of the interpolating polynomial. (B(h)
    // cancels in the solved UniP-3 predictor; the fixed rho = 1/2 of UniP-2, used for the
    // warm-up step, matches DPM-Solver++(2M) only with bh2.)
    let vp = VpLinear::default();
    let grid = TimeGrid::log_snr_uniform(&vp, 1.0, 0.01, 15).unwrap();
    let pairs: Vec<(Boxed, Boxed)> = vec![
        (
            Box::new(UniPc::new(2, UniPcVariant::Bh2, false).unwrap()),
            Box::new(DpmSolverPp2M),
        ),
        (
            Box::new(UniPc::new(3, UniPcVariant::Bh2, false).unwrap()),
            Box::new(DpmSolverPp3M::default()),
        ),
    ];
    for (a, b) in &pairs {
        let d = common::rms_diff(&run(a.as_ref(), &vp, &grid), &run(b.as_ref(), &vp, &grid));
        assert!(d < 1e-10, "{} vs {}: {d:e}", a.name(), b.name());
    }
    // Variable-step iPNDM equals the classical weights on a grid uniform in rho.
    let edm = Edm::default();
    let rhos: Vec<f64> = (0..=20).map(|i| 10.0 - 0.45 * i as f64).collect();
    let grid = TimeGrid::from_noise_ratios(&edm, rhos, false).unwrap();
    let a = run(&Ipndm::new(4, true).unwrap(), &edm, &grid);
    let b = run(&Ipndm::new(4, false).unwrap(), &edm, &grid);
    assert!(common::rms_diff(&a, &b) < 1e-10);
    // ... and differs from it on a non-uniform grid (the check can fail).
    let grid = TimeGrid::karras(&edm, 0.5, 10.0, 7.0, 20, false).unwrap();
    let a = run(&Ipndm::new(4, true).unwrap(), &edm, &grid);
    let b = run(&Ipndm::new(4, false).unwrap(), &edm, &grid);
    assert!(common::rms_diff(&a, &b) > 1e-4);
}

#[test]
fn unipc_reuses_the_corrector_evaluation() {
    use diffusion_core::{Counted, GaussianMixture, IndependentIncrements};
    let vp = VpLinear::default();
    let g = common::target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(&vp);
    let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 12, true).unwrap();
    for (solver, nfe) in [
        (UniPc::new(3, UniPcVariant::Bh2, true).unwrap(), 12),
        (UniPc::new(3, UniPcVariant::Bh2, false).unwrap(), 12),
    ] {
        let counted = Counted::new(&den);
        let x = common::init_of(&g, 8, 1, &vp, grid.times()[0]);
        diffusion_solvers::sample(
            &solver,
            &counted,
            &vp,
            &grid,
            x,
            &mut IndependentIncrements::seeded(0),
            &mut diffusion_solvers::NoObserver,
        )
        .unwrap();
        assert_eq!(
            counted.calls(),
            nfe,
            "{}",
            Solver::<Array2<f64>>::name(&solver)
        );
    }
    // The corrector changes the result (the flag is not ignored).
    let with = run(&UniPc::new(2, UniPcVariant::Bh2, true).unwrap(), &vp, &grid);
    let without = run(
        &UniPc::new(2, UniPcVariant::Bh2, false).unwrap(),
        &vp,
        &grid,
    );
    assert!(common::rms_diff(&with, &without) > 1e-6);
}

#[test]
fn evaluation_counts_match_the_registry() {
    use diffusion_core::{Counted, GaussianMixture, IndependentIncrements};
    let vp = VpLinear::default();
    let g = common::target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(&vp);
    // 10 steps, the last one to sigma = 0 (one evaluation for every solver).
    let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 10, true).unwrap();
    for (spec, nfe) in [
        ("dpm-solver:order=1", 10),
        ("dpm-solver:order=2", 19),
        ("dpm-solver:order=3", 28),
        ("dpmpp-2s", 19),
        ("dpmpp-3m", 10),
        ("deis", 10),
        ("deis:form=1", 10),
        ("ipndm", 10),
        ("plms", 11),
    ] {
        let s = registry::build::<Array2<f64>>(spec).unwrap();
        let counted = Counted::new(&den);
        let x = common::init_of(&g, 4, 1, &vp, grid.times()[0]);
        diffusion_solvers::sample(
            s.as_ref(),
            &counted,
            &vp,
            &grid,
            x,
            &mut IndependentIncrements::seeded(0),
            &mut diffusion_solvers::NoObserver,
        )
        .unwrap();
        assert_eq!(counted.calls(), nfe, "{spec}");
    }
}

#[test]
fn few_step_grids_work_for_every_multistep_solver() {
    // Warm-up and lower-order-final on grids of 1 to 4 steps ending at sigma = 0.
    let vp = VpLinear::default();
    for spec in [
        "dpmpp-3m",
        "unipc:order=3",
        "deis",
        "deis:form=1",
        "ipndm",
        "plms",
        "dpm-solver",
        "dpmpp-2s",
    ] {
        let s = registry::build::<Array2<f64>>(spec).unwrap();
        for steps in 1..=4 {
            let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, steps, true).unwrap();
            let out = run(s.as_ref(), &vp, &grid);
            assert!(
                out.iter().all(|v| v.is_finite()),
                "{spec} with {steps} steps"
            );
        }
    }
}

#[test]
fn bad_parameters_are_clear_errors() {
    for (spec, needle) in [
        ("dpm-solver:order=4", "`order`"),
        ("dpm-solver:order=1.5", "`order`"),
        ("dpm-solver:r=1", "no parameter `r`"),
        ("dpmpp-3m:reference=2", "`reference`"),
        ("unipc:order=0", "`order`"),
        ("unipc:variant=3", "`variant`"),
        ("unipc:corrector=0.5", "`corrector`"),
        ("deis:order=4", "`order`"),
        ("deis:form=2", "`form`"),
        ("deis:form=0.5", "`form`"),
        ("ipndm:order=5", "`order`"),
        ("ipndm:variable=2", "`variable`"),
        ("plms:order=4", "no parameter `order`"),
        ("dpmpp-2s:r=1", "no parameter `r`"),
        ("dpm-solver-adaptive:order=1", "`order`"),
        ("dpm-solver-adaptive:rtol=-1", "`rtol`"),
        ("dpm-solver-adaptive:atol=0", "`atol`"),
        ("dpm-solver-adaptive:h_init=0", "`h_init`"),
    ] {
        let e = registry::build::<Array2<f64>>(spec)
            .err()
            .unwrap_or_else(|| panic!("{spec} should be rejected"))
            .to_string();
        assert!(e.contains(needle), "{spec}: {e}");
    }
    assert!(DpmSolver::new(0).is_err());
    assert!(UniPc::new(4, UniPcVariant::Bh1, true).is_err());
    assert!(Deis::new(0).is_err());
    assert!(Ipndm::new(0, true).is_err());
}

#[test]
fn the_deis_form_flag_is_not_ignored() {
    // The interpolation variable (t or ln rho) changes the result.
    let vp = VpLinear::default();
    let grid = TimeGrid::log_snr_uniform(&vp, 1.0, 0.05, 12).unwrap();
    let t_ab = run(&Deis::new(3).unwrap(), &vp, &grid);
    let log_rho = run(&Deis::with_form(3, DeisForm::LogRho).unwrap(), &vp, &grid);
    let d = common::rms_diff(&t_ab, &log_rho);
    assert!(d > 1e-6, "tAB vs log-rho DEIS only {d:e}");
}
