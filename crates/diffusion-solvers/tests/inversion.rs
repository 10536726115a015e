//! Inversion from data to noise: every deterministic solver inverts at its order (against the
//! exact Gaussian PF-ODE flow), inverting with N steps and sampling back with N steps returns
//! the data with an error falling at least like N^-order, reversible Heun's round trip is exact,
//! and stochastic solvers are refused.

mod common;

use common::{fitted_slope, init, rms_diff, target};
use diffusion_core::schedule::{Edm, VpLinear};
use diffusion_core::{
    BrownianTree, GaussianMixture, IndependentIncrements, NoiseSchedule, State, TimeGrid,
};
use diffusion_solvers::sde::ReversibleHeun;
use diffusion_solvers::{invert, registry, sample, NoObserver, SolverError};
use ndarray::Array2;

fn cases() -> [(Box<dyn NoiseSchedule>, f64, f64); 2] {
    [
        (Box::new(VpLinear::default()), 1e-3, 1.0),
        (Box::new(Edm::default()), 0.01, 80.0),
    ]
}

#[test]
fn round_trips_shrink_at_the_solvers_order() {
    let ns = [16, 32, 64, 128];
    for (spec, order) in [
        ("ddim", 1.0),
        ("euler", 1.0),
        ("heun", 2.0),
        ("dpmpp-2m", 2.0),
        ("res-multistep", 2.0),
        ("dpm-solver:order=3", 3.0),
    ] {
        let solver = registry::build::<Array2<f64>>(spec).unwrap();
        for (sch, t_min, t_max) in cases() {
            let sch = sch.as_ref();
            let gmm = GaussianMixture::from_gaussian(target());
            let den = gmm.denoiser(sch);
            let x0 = init(64, 2, sch, t_min);
            let mut errs = Vec::new();
            let mut flow_errs = Vec::new();
            for &n in &ns {
                let up = TimeGrid::log_snr_uniform(sch, t_min, t_max, n).unwrap();
                let z = invert(solver.as_ref(), &den, sch, &up, x0.clone()).unwrap();
                let exact = target().pf_ode_flow(sch, t_min, t_max, &x0.view()).unwrap();
                flow_errs.push(rms_diff(&z, &exact) / exact.rms());
                let back = sample(
                    solver.as_ref(),
                    &den,
                    sch,
                    &up.reversed(),
                    z,
                    &mut IndependentIncrements::seeded(0),
                    &mut NoObserver,
                )
                .unwrap();
                errs.push(rms_diff(&back, &x0));
            }
            let slope = fitted_slope(&ns, &errs);
            let flow_slope = fitted_slope(&ns, &flow_errs);
            eprintln!(
                "{spec} on {}: round-trip errors {errs:?}, slope {slope:.2}; inversion vs exact flow slope {flow_slope:.2}",
                sch.name()
            );
            // The inversion itself converges at the order; the round trip at least at the order
            // (one-step methods of even order gain one: the leading local errors of a step and
            // of the same step backwards cancel). Measured round-trip slopes on 16..128 steps:
            // ddim/euler 0.94, heun 2.99, dpmpp-2m 3.5, res-multistep 2.9, dpm-solver-3 3.0 (its
            // inversion itself 2.7 on these grids).
            assert!((flow_slope - order).abs() <= 0.35, "{spec}: {flow_slope}");
            assert!(
                slope >= order - 0.3,
                "{spec} on {}: slope {slope}",
                sch.name()
            );
        }
    }
}

#[test]
fn reversible_heun_round_trips_exactly() {
    // Data -> noise with the PF-ODE version, then back along the same grid: exact up to
    // rounding with 20 steps, where Heun's round trip is off by 1e-3.
    for (sch, t_min, t_max) in cases() {
        let sch = sch.as_ref();
        let gmm = GaussianMixture::from_gaussian(target());
        let den = gmm.denoiser(sch);
        let x0 = init(64, 3, sch, t_min);
        let up = TimeGrid::log_snr_uniform(sch, t_min, t_max, 20).unwrap();
        let rh = ReversibleHeun::ode();
        let mut unused = IndependentIncrements::seeded(0);
        let noise = rh
            .generate(&den, sch, &up, x0.clone(), &mut unused)
            .unwrap();
        let back = rh.invert(&den, sch, &up, noise, &mut unused).unwrap();
        let rel = rms_diff(&back.x, &x0) / x0.rms();
        let heun = registry::build::<Array2<f64>>("heun").unwrap();
        let z = invert(heun.as_ref(), &den, sch, &up, x0.clone()).unwrap();
        let heun_back = sample(
            heun.as_ref(),
            &den,
            sch,
            &up.reversed(),
            z,
            &mut unused,
            &mut NoObserver,
        )
        .unwrap();
        let heun_rel = rms_diff(&heun_back, &x0) / x0.rms();
        eprintln!(
            "{}: reversible Heun round trip {rel:.2e}, Heun {heun_rel:.2e}",
            sch.name()
        );
        assert!(rel < 1e-12 && heun_rel > 1e-5, "{rel:e} {heun_rel:e}");
    }
    // The SDE version round-trips along the Brownian tree too (noise -> data -> noise).
    let vp = VpLinear::default();
    let gmm = GaussianMixture::from_gaussian(target());
    let den = gmm.denoiser(&vp);
    let down = TimeGrid::karras(&vp, 0.01, vp.noise_ratio(1.0), 7.0, 50, false).unwrap();
    let z = init(64, 4, &vp, 1.0);
    let rh = ReversibleHeun::default();
    let mut tree = BrownianTree::new(5, 0.0, 1.0, 1e-9).unwrap();
    let data = rh.generate(&den, &vp, &down, z.clone(), &mut tree).unwrap();
    let back = rh.invert(&den, &vp, &down, data, &mut tree).unwrap();
    let rel = rms_diff(&back.x, &z) / z.rms();
    assert!(rel < 1e-10, "{rel:e}");
}

#[test]
fn stochastic_solvers_and_decreasing_grids_are_refused() {
    let vp = VpLinear::default();
    let gmm = GaussianMixture::from_gaussian(target());
    let den = gmm.denoiser(&vp);
    let x0 = init(4, 1, &vp, 1e-3);
    let up = TimeGrid::log_snr_uniform(&vp, 1e-3, 1.0, 8).unwrap();
    for spec in [
        "euler-maruyama",
        "ddim:eta=1",
        "dpmpp-2m-sde",
        "reversible-heun",
        "gotta-go-fast",
    ] {
        let s = registry::build::<Array2<f64>>(spec).unwrap();
        let e = invert(s.as_ref(), &den, &vp, &up, x0.clone()).unwrap_err();
        assert!(
            matches!(e, SolverError::NotDeterministic { .. }),
            "{spec}: {e}"
        );
        assert!(e.to_string().contains("deterministic"), "{e}");
    }
    // eta = 0 members are deterministic and invert.
    for spec in [
        "ddim:eta=0",
        "reversible-heun:eta=0",
        "dpmpp-2m-sde:eta=0",
        "rk45",
    ] {
        let s = registry::build::<Array2<f64>>(spec).unwrap();
        let z = invert(s.as_ref(), &den, &vp, &up, x0.clone()).unwrap();
        assert!(z.is_finite(), "{spec}");
    }
    let ddim = registry::build::<Array2<f64>>("ddim").unwrap();
    let e = invert(ddim.as_ref(), &den, &vp, &up.reversed(), x0.clone())
        .unwrap_err()
        .to_string();
    assert!(e.contains("must increase"), "{e}");
}
