//! The adaptive DPM-Solver against the exact Gaussian PF-ODE: the error falls as the tolerance
//! falls while the number of evaluations grows, steps land exactly on `t_end`, evaluations are
//! counted right, and bad inputs are clear errors.

mod common;

use common::{counted_flow_error, init_of, rms_diff, target};
use diffusion_core::schedule::{Edm, VpLinear};
use diffusion_core::{GaussianMixture, IndependentIncrements, NoiseSchedule, TimeGrid};
use diffusion_solvers::adaptive::{
    dpm_solver_adaptive, dpm_solver_adaptive_with, AdaptiveOptions, AdaptiveStats,
    DpmSolverAdaptive, PidController,
};
use diffusion_solvers::{sample, NoObserver};
use ndarray::Array2;

fn solve(
    schedule: &dyn NoiseSchedule,
    (t0, t1): (f64, f64),
    opts: &AdaptiveOptions,
    controller: Option<PidController>,
) -> (f64, AdaptiveStats, usize) {
    counted_flow_error(schedule, (t0, t1), |den, x| match controller {
        None => dpm_solver_adaptive(den, schedule, t0, t1, x, opts).unwrap(),
        Some(mut c) => dpm_solver_adaptive_with(den, schedule, t0, t1, x, opts, &mut c).unwrap(),
    })
}

#[test]
fn error_falls_and_nfe_grows_as_the_tolerance_tightens() {
    let vp = VpLinear::default();
    let edm = Edm::default();
    let cases: [(&dyn NoiseSchedule, f64, f64); 2] = [(&vp, 1.0, 1e-3), (&edm, 80.0, 0.01)];
    for order in [2, 3] {
        for &(sch, t0, t1) in &cases {
            let mut last: Option<(f64, usize)> = None;
            for rtol in [0.05, 5e-3, 5e-4, 5e-5] {
                let opts = AdaptiveOptions {
                    order,
                    rtol,
                    atol: rtol / 5.0,
                    ..AdaptiveOptions::default()
                };
                let (err, stats, calls) = solve(sch, (t0, t1), &opts, None);
                eprintln!(
                    "order {order} {} rtol {rtol:e}: error {err:.2e}, nfe {}, accepted {}, rejected {}",
                    sch.name(),
                    stats.nfe,
                    stats.accepted,
                    stats.rejected
                );
                assert_eq!(stats.nfe, calls, "NFE bookkeeping");
                assert_eq!(
                    *stats.times.last().unwrap(),
                    t1,
                    "must land exactly on t_end"
                );
                assert!(stats.times.windows(2).all(|w| w[1] < w[0]));
                if let Some((prev_err, prev_nfe)) = last {
                    // A 10x tighter tolerance: clearly smaller error, clearly more evaluations.
                    assert!(
                        err < 0.5 * prev_err,
                        "error {err:e} vs {prev_err:e} at rtol {rtol}"
                    );
                    assert!(stats.nfe > prev_nfe, "nfe {} vs {prev_nfe}", stats.nfe);
                }
                last = Some((err, stats.nfe));
            }
            let (err, _) = last.unwrap();
            assert!(
                err < 1e-3,
                "order {order} on {}: final error {err:e}",
                sch.name()
            );
        }
    }
}

#[test]
fn rejected_steps_reuse_the_current_evaluation_and_still_converge() {
    let vp = VpLinear::default();
    // A far too large first step forces rejections.
    let opts = AdaptiveOptions {
        h_init: 8.0,
        rtol: 1e-3,
        atol: 1e-4,
        ..AdaptiveOptions::default()
    };
    let (err, stats, calls) = solve(&vp, (1.0, 1e-3), &opts, None);
    assert!(stats.rejected > 0, "{stats:?}");
    // Order 3: 3 evaluations per accepted step from a new point, 2 per retry.
    assert_eq!(calls, 3 * stats.accepted + 2 * stats.rejected);
    assert!(err < 5e-3, "{err:e}");
    // The PI controller also converges, and differs from the standard one.
    let (err_pi, stats_pi, _) = solve(
        &vp,
        (1.0, 1e-3),
        &opts,
        Some(PidController::pi(3.0).unwrap()),
    );
    assert!(err_pi < 5e-3, "{err_pi:e}");
    assert_ne!(stats_pi.times, stats.times);
    // k-diffusion's arctan controller as well.
    let kd = PidController::k_diffusion(3.0, (0.0, 1.0, 0.0)).unwrap();
    let (err_kd, _, _) = solve(&vp, (1.0, 1e-3), &opts, Some(kd));
    assert!(err_kd < 5e-3, "{err_kd:e}");
}

#[test]
fn it_integrates_backwards_for_inversion() {
    // From data-level noise back to t = 1 (DDIM inversion direction).
    let vp = VpLinear::default();
    let opts = AdaptiveOptions {
        rtol: 1e-4,
        atol: 1e-5,
        ..AdaptiveOptions::default()
    };
    let (err, stats, _) = solve(&vp, (0.05, 1.0), &opts, None);
    assert_eq!(*stats.times.last().unwrap(), 1.0);
    assert!(stats.times.windows(2).all(|w| w[1] > w[0]));
    assert!(err < 1e-3, "{err:e}");
}

#[test]
fn as_a_grid_solver_it_matches_the_function_and_denoises_at_sigma_zero() {
    let vp = VpLinear::default();
    let g = target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(&vp);
    let x = init_of(&g, 16, 5, &vp, 1.0);
    let opts = AdaptiveOptions::default();
    let solver = DpmSolverAdaptive::new(opts).unwrap();
    let one_step = TimeGrid::new(vec![1.0, 1e-3]).unwrap();
    let a: Array2<f64> = sample(
        &solver,
        &den,
        &vp,
        &one_step,
        x.clone(),
        &mut IndependentIncrements::seeded(0),
        &mut NoObserver,
    )
    .unwrap();
    let (b, _) = dpm_solver_adaptive(&den, &vp, 1.0, 1e-3, x.clone(), &opts).unwrap();
    assert_eq!(a, b);
    // With a final step to sigma = 0 the output is alpha(0) x0_hat: the exact flow to t = 0
    // up to the tolerance.
    let to_zero = TimeGrid::new(vec![1.0, 1e-3, 0.0]).unwrap();
    let c: Array2<f64> = sample(
        &solver,
        &den,
        &vp,
        &to_zero,
        x.clone(),
        &mut IndependentIncrements::seeded(0),
        &mut NoObserver,
    )
    .unwrap();
    let exact = g.pf_ode_flow(&vp, 1.0, 0.0, &x.view()).unwrap();
    assert!(rms_diff(&c, &exact) < 0.05, "{}", rms_diff(&c, &exact));
}

#[test]
fn bad_inputs_are_clear_errors() {
    let vp = VpLinear::default();
    let g = target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(&vp);
    let x = init_of(&g, 4, 1, &vp, 1.0);
    let opts = AdaptiveOptions::default();
    let e = dpm_solver_adaptive(&den, &vp, 1.0, 0.0, x.clone(), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("finite lambda"), "{e}");
    let e = dpm_solver_adaptive(&den, &vp, 2.0, 0.5, x.clone(), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("grid") || e.contains("range"), "{e}");
    for (bad, name) in [
        (AdaptiveOptions { order: 4, ..opts }, "`order`"),
        (
            AdaptiveOptions {
                rtol: f64::NAN,
                ..opts
            },
            "`rtol`",
        ),
        (AdaptiveOptions { atol: 0.0, ..opts }, "`atol`"),
        (
            AdaptiveOptions {
                h_init: -1.0,
                ..opts
            },
            "`h_init`",
        ),
        (
            AdaptiveOptions {
                max_attempts: 0,
                ..opts
            },
            "`max_attempts`",
        ),
    ] {
        let e = dpm_solver_adaptive(&den, &vp, 1.0, 0.01, x.clone(), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains(name), "{e}");
    }
    // Running out of attempts is an error, not an endless loop.
    let tight = AdaptiveOptions {
        rtol: 1e-12,
        atol: 1e-12,
        max_attempts: 20,
        ..opts
    };
    let e = dpm_solver_adaptive(&den, &vp, 1.0, 0.01, x.clone(), &tight)
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_attempts"), "{e}");
    // Equal ends: nothing to do.
    let (same, stats) = dpm_solver_adaptive(&den, &vp, 0.5, 0.5, x.clone(), &opts).unwrap();
    assert_eq!(same, x);
    assert_eq!(stats.nfe, 0);
}
