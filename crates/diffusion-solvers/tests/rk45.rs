//! Adaptive Dormand-Prince 5(4) on the PF-ODE against the exact Gaussian flow: the error falls in
//! proportion to the tolerance (local extrapolation of an order-5 method) while the number of
//! evaluations grows like `tol^(-1/5)`, in EDM coordinates and in `t`, in both directions.

mod common;

use common::{counted_flow_error, fitted_slope, init_of, rms_diff, target};
use diffusion_core::schedule::{Edm, VpLinear};
use diffusion_core::{GaussianMixture, IndependentIncrements, NoiseSchedule, TimeGrid};
use diffusion_solvers::adaptive::{
    pf_ode_rk45, pf_ode_rk45_with, AdaptiveStats, OdeCoordinates, PidController, Rk45, Rk45Options,
};
use diffusion_solvers::{registry, sample, NoObserver};
use ndarray::Array2;

fn solve(
    schedule: &dyn NoiseSchedule,
    (t0, t1): (f64, f64),
    opts: &Rk45Options,
) -> (f64, AdaptiveStats, usize) {
    counted_flow_error(schedule, (t0, t1), |den, x| {
        pf_ode_rk45(den, schedule, t0, t1, x, opts).unwrap()
    })
}

#[test]
fn error_is_proportional_to_the_tolerance_and_nfe_grows_slowly() {
    let vp = VpLinear::default();
    let edm = Edm::default();
    let cases: [(&dyn NoiseSchedule, f64, f64); 2] = [(&vp, 1.0, 1e-3), (&edm, 80.0, 0.01)];
    let tols = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7];
    for coordinates in [OdeCoordinates::Edm, OdeCoordinates::Time] {
        for &(sch, t0, t1) in &cases {
            let mut errs = Vec::new();
            let mut nfes = Vec::new();
            for &tol in &tols {
                let opts = Rk45Options {
                    rtol: tol,
                    atol: tol,
                    coordinates,
                    ..Rk45Options::default()
                };
                let (err, stats, calls) = solve(sch, (t0, t1), &opts);
                assert_eq!(stats.nfe, calls, "NFE bookkeeping");
                // FSAL: one evaluation at the start, one for the first step size, six per attempt.
                assert_eq!(calls, 2 + 6 * (stats.accepted + stats.rejected));
                assert_eq!(
                    *stats.times.last().unwrap(),
                    t1,
                    "must land exactly on t_end"
                );
                assert!(stats.times.windows(2).all(|w| w[1] < w[0]));
                errs.push(err);
                nfes.push(stats.nfe);
            }
            // Slope of -ln(error) against ln(1/tol): 1 for tolerance-proportional error.
            let inv: Vec<usize> = tols.iter().map(|&t| (1.0 / t) as usize).collect();
            let tol_slope = fitted_slope(&inv, &errs);
            // Slope of -ln(error) against ln(NFE): the order of the method.
            let order_slope = fitted_slope(&nfes, &errs);
            eprintln!(
                "{coordinates:?} {}: errors {errs:?}, nfe {nfes:?}, d(-ln err)/d(ln 1/tol) = {tol_slope:.2}, d(-ln err)/d(ln nfe) = {order_slope:.2}",
                sch.name()
            );
            assert!(
                (0.7..=1.3).contains(&tol_slope),
                "{coordinates:?} {}: tolerance slope {tol_slope}, errors {errs:?}",
                sch.name()
            );
            assert!(
                order_slope > 3.5,
                "{coordinates:?} {}: error vs NFE slope {order_slope}",
                sch.name()
            );
            assert!(nfes.windows(2).all(|w| w[1] > w[0]), "{nfes:?}");
            assert!(errs[4] < 1e-5, "{errs:?}");
        }
    }
}

#[test]
fn it_integrates_backwards_from_data_to_noise() {
    let vp = VpLinear::default();
    let edm = Edm::default();
    let cases: [(&dyn NoiseSchedule, f64, f64); 2] = [(&vp, 1e-3, 1.0), (&edm, 0.01, 80.0)];
    for (sch, t0, t1) in cases {
        for coordinates in [OdeCoordinates::Edm, OdeCoordinates::Time] {
            let opts = Rk45Options {
                rtol: 1e-6,
                atol: 1e-6,
                coordinates,
                ..Rk45Options::default()
            };
            let (err, stats, _) = solve(sch, (t0, t1), &opts);
            eprintln!(
                "backwards {coordinates:?} {}: error {err:.2e}, nfe {}",
                sch.name(),
                stats.nfe
            );
            assert_eq!(*stats.times.last().unwrap(), t1);
            assert!(stats.times.windows(2).all(|w| w[1] > w[0]));
            // The exact flow from data to noise grows like rho: compare relative to it.
            assert!(err < 1e-5 * sch.noise_ratio(t1).max(1.0), "{err:e}");
        }
    }
}

#[test]
fn the_grid_solver_matches_the_function_and_denoises_at_sigma_zero() {
    let vp = VpLinear::default();
    let g = target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(&vp);
    let x = init_of(&g, 16, 5, &vp, 1.0);
    let opts = Rk45Options::default();
    let run = |grid: &TimeGrid| -> Array2<f64> {
        sample(
            &Rk45::new(opts).unwrap(),
            &den,
            &vp,
            grid,
            x.clone(),
            &mut IndependentIncrements::seeded(0),
            &mut NoObserver,
        )
        .unwrap()
    };
    let a = run(&TimeGrid::new(vec![1.0, 1e-3]).unwrap());
    let (b, _) = pf_ode_rk45(&den, &vp, 1.0, 1e-3, x.clone(), &opts).unwrap();
    assert_eq!(a, b);
    let c = run(&TimeGrid::new(vec![1.0, 1e-3, 0.0]).unwrap());
    let exact = g.pf_ode_flow(&vp, 1.0, 0.0, &x.view()).unwrap();
    assert!(rms_diff(&c, &exact) < 0.05, "{}", rms_diff(&c, &exact));
    // Another controller gives other steps and the same accuracy.
    let mut standard = PidController::standard(5.0).unwrap();
    let (d, stats) =
        pf_ode_rk45_with(&den, &vp, 1.0, 1e-3, x.clone(), &opts, &mut standard).unwrap();
    let exact = g.pf_ode_flow(&vp, 1.0, 1e-3, &x.view()).unwrap();
    assert!(rms_diff(&d, &exact) < 1e-4, "{}", rms_diff(&d, &exact));
    assert!(stats.accepted > 0);
    // The registry builds it with its parameters.
    let s = registry::build::<Array2<f64>>("rk45:rtol=1e-4,atol=1e-4,time=1").unwrap();
    assert!(s.name().contains("Time"), "{}", s.name());
}

#[test]
fn bad_inputs_are_clear_errors() {
    let vp = VpLinear::default();
    let g = target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(&vp);
    let x = init_of(&g, 4, 1, &vp, 1.0);
    let opts = Rk45Options::default();
    let e = pf_ode_rk45(&den, &vp, 1.0, 0.0, x.clone(), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sigma > 0"), "{e}");
    for (bad, name) in [
        (Rk45Options { rtol: -1.0, ..opts }, "`rtol`"),
        (Rk45Options { atol: 0.0, ..opts }, "`atol`"),
        (
            Rk45Options {
                h_init: Some(0.0),
                ..opts
            },
            "`h_init`",
        ),
        (
            Rk45Options {
                max_attempts: 3,
                rtol: 1e-12,
                atol: 1e-12,
                ..opts
            },
            "`max_attempts`",
        ),
    ] {
        let e = pf_ode_rk45(&den, &vp, 1.0, 0.01, x.clone(), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains(name), "{e}");
    }
    assert!(registry::build::<Array2<f64>>("rk45:time=2").is_err());
    let (same, stats) = pf_ode_rk45(&den, &vp, 0.5, 0.5, x.clone(), &opts).unwrap();
    assert_eq!(same, x);
    assert_eq!(stats.nfe, 0);
}
