//! Gotta Go Fast against the Gaussian target: it reaches the target law with far fewer
//! evaluations than fixed-step Euler-Maruyama at the same W2, its pathwise error along a
//! Brownian tree falls as the tolerance tightens, and it reports its acceptance rate.

mod common;

use common::{fitted_w2, init, rms_diff, target};
use diffusion_core::schedule::{Edm, VpLinear};
use diffusion_core::{
    BrownianTree, Counted, GaussianMixture, IndependentIncrements, NoiseSchedule, TimeGrid,
};
use diffusion_solvers::adaptive::{gotta_go_fast, GottaGoFast, GottaGoFastOptions};
use diffusion_solvers::sde::EulerMaruyama;
use diffusion_solvers::{registry, sample, NoObserver};
use ndarray::Array2;

/// W2 and NFE of Euler-Maruyama with `steps` uniform steps from `t0` to `t_min`, then denoised.
/// Samples of the law tests: the W2 of a fitted Gaussian to exact samples (the noise floor) is
/// about 0.005 at this size, well below the Euler-Maruyama biases compared against.
const SAMPLES: usize = 80_000;

fn em_w2(sch: &dyn NoiseSchedule, t0: f64, t_min: f64, steps: usize, seed: u64) -> (f64, usize) {
    let gmm = GaussianMixture::from_gaussian(target());
    let den = gmm.denoiser(sch);
    let counted = Counted::new(&den);
    let mut times = TimeGrid::uniform(t0, t_min, steps)
        .unwrap()
        .times()
        .to_vec();
    times.push(0.0);
    let grid = TimeGrid::new(times).unwrap();
    let out = sample(
        &EulerMaruyama,
        &counted,
        sch,
        &grid,
        init(SAMPLES, seed, sch, t0),
        &mut IndependentIncrements::seeded(seed + 100),
        &mut NoObserver,
    )
    .unwrap();
    (fitted_w2(&out), counted.calls())
}

#[test]
fn it_reaches_the_target_law_with_far_fewer_evaluations_than_euler_maruyama() {
    // Measured (20k samples, W2 of the fitted Gaussian; sampling noise about 0.01):
    // EDM: gotta-go-fast (rtol 0.2) W2 0.007 with 98 NFE; EM on a uniform grid W2 1.3 / 0.24 /
    // 0.031 / 0.011 with 100 / 200 / 400 / 800 NFE. VP: gotta-go-fast W2 0.009 with 44 NFE;
    // EM 0.044 / 0.031 / 0.012 / 0.008 with 26 / 51 / 101 / 201 NFE. At 20k samples the VP
    // comparison sat within the sampling noise (EM 0.023 vs 0.012 on the FastNoise stream), so
    // the test runs 80k: VP 0.011 vs EM 0.028 (0.025 on the ChaCha stream), EDM 0.013 vs EM
    // 1.48 with as many NFE and 0.032 with four times as many.
    let vp = VpLinear::default();
    let edm = Edm::default();
    let cases: [(&dyn NoiseSchedule, f64, f64, usize); 2] =
        [(&vp, 1.0, 1e-3, 1), (&edm, 80.0, 0.002, 4)];
    for (sch, t0, t_min, factor) in cases {
        let gmm = GaussianMixture::from_gaussian(target());
        let den = gmm.denoiser(sch);
        let counted = Counted::new(&den);
        let opts = GottaGoFastOptions {
            rtol: 0.2,
            ..GottaGoFastOptions::default()
        };
        let (out, stats) = gotta_go_fast(
            &counted,
            sch,
            t0,
            t_min,
            init(SAMPLES, 3, sch, t0),
            &mut IndependentIncrements::seeded(103),
            &opts,
        )
        .unwrap();
        assert_eq!(stats.nfe, counted.calls());
        // Two evaluations per attempt, one per retry, one to denoise.
        assert_eq!(stats.nfe, 2 * stats.accepted + stats.rejected + 1);
        let w = fitted_w2(&out);
        // Euler-Maruyama with the same number of evaluations, and with `factor` times as many.
        let (w_same, _) = em_w2(sch, t0, t_min, stats.nfe - 1, 3);
        let (w_more, nfe_more) = em_w2(sch, t0, t_min, factor * stats.nfe - 1, 3);
        eprintln!(
            "{}: gotta-go-fast W2 {w:.4} with {} NFE ({} accepted, {} rejected, acceptance {:.2}); Euler-Maruyama W2 {w_same:.4} with as many, {w_more:.4} with {nfe_more}",
            sch.name(),
            stats.nfe,
            stats.accepted,
            stats.rejected,
            stats.acceptance_rate()
        );
        assert!(w < 0.02, "{}: W2 {w}", sch.name());
        assert!(w_same > 2.0 * w, "{}: EM W2 {w_same} vs {w}", sch.name());
        assert!(
            w_more > w,
            "{}: EM W2 {w_more} with {nfe_more} NFE vs {w}",
            sch.name()
        );
        assert!(stats.nfe < 120, "{}: {} NFE", sch.name(), stats.nfe);
        assert!(stats.acceptance_rate() > 0.5 && stats.acceptance_rate() <= 1.0);
    }
}

#[test]
fn pathwise_error_falls_as_the_tolerance_tightens() {
    let vp = VpLinear::default();
    let (t0, t1) = (1.0, 1e-2);
    let gmm = GaussianMixture::from_gaussian(target());
    let den = gmm.denoiser(&vp);
    let x = init(256, 9, &vp, t0);
    let tree = || BrownianTree::new(77, t1, t0, 1e-9).unwrap();
    // Reference: Euler-Maruyama with 4096 steps along the same tree.
    let reference = sample(
        &EulerMaruyama,
        &den,
        &vp,
        &TimeGrid::uniform(t0, t1, 4096).unwrap(),
        x.clone(),
        &mut tree(),
        &mut NoObserver,
    )
    .unwrap();
    let mut last = f64::INFINITY;
    for tol in [1e-1, 1e-2, 1e-3] {
        let opts = GottaGoFastOptions {
            rtol: tol,
            atol: tol,
            denoise: false,
            ..GottaGoFastOptions::default()
        };
        let (out, stats) = gotta_go_fast(&den, &vp, t0, t1, x.clone(), &mut tree(), &opts).unwrap();
        let err = rms_diff(&out, &reference);
        eprintln!(
            "tol {tol:e}: pathwise error {err:.3e}, nfe {}, acceptance {:.2}",
            stats.nfe,
            stats.acceptance_rate()
        );
        assert!(err < last, "tol {tol}: error {err} vs {last}");
        last = err;
    }
}

#[test]
fn the_grid_solver_denoises_at_sigma_zero_and_bad_inputs_are_errors() {
    let vp = VpLinear::default();
    let g = target();
    let gmm = GaussianMixture::from_gaussian(g.clone());
    let den = gmm.denoiser(&vp);
    let x = init(16, 5, &vp, 1.0);
    let opts = GottaGoFastOptions::default();
    let run = |grid: &TimeGrid| -> Array2<f64> {
        sample(
            &GottaGoFast::new(opts).unwrap(),
            &den,
            &vp,
            grid,
            x.clone(),
            &mut BrownianTree::new(1, 0.0, 1.0, 1e-9).unwrap(),
            &mut NoObserver,
        )
        .unwrap()
    };
    // On [T, t_min, 0] the grid solver is the paper's sampler with its final denoising.
    let a = run(&TimeGrid::new(vec![1.0, 1e-3, 0.0]).unwrap());
    let (b, _) = gotta_go_fast(
        &den,
        &vp,
        1.0,
        1e-3,
        x.clone(),
        &mut BrownianTree::new(1, 0.0, 1.0, 1e-9).unwrap(),
        &opts,
    )
    .unwrap();
    // alpha(0) = 1 vs alpha(1e-3): the same up to that factor.
    assert!(rms_diff(&a.mapv(|v| v * vp.alpha(1e-3)), &b) < 1e-12);
    let e = gotta_go_fast(
        &den,
        &vp,
        1.0,
        0.0,
        x.clone(),
        &mut IndependentIncrements::seeded(0),
        &opts,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("sigma > 0"), "{e}");
    for bad in [
        "gotta-go-fast:rtol=-1",
        "gotta-go-fast:atol=0",
        "gotta-go-fast:h_init=0",
        "gotta-go-fast:eta=1",
    ] {
        assert!(registry::build::<Array2<f64>>(bad).is_err(), "{bad}");
    }
    let bad_exp = GottaGoFastOptions {
        exponent: 0.0,
        ..opts
    };
    assert!(GottaGoFast::new(bad_exp)
        .unwrap_err()
        .to_string()
        .contains("`exponent`"));
    let bad_safety = GottaGoFastOptions {
        safety: 1.5,
        ..opts
    };
    assert!(GottaGoFast::new(bad_safety).is_err());
}
