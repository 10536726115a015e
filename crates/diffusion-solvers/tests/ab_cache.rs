//! AB-Cache on the Gaussian-mixture oracle: the error it adds (against the same sampler without
//! skipping) falls like h^k for extrapolation order k, grows with the fraction of calls skipped,
//! and the model really is called less often.

mod common;

use common::{fitted_slope, rms_diff};
use diffusion_core::schedule::{Edm, VpLinear};
use diffusion_core::{
    Counted, Denoiser, GaussianMixture, HostNoise, IndependentIncrements, NoiseSchedule,
    NoiseSource, TimeGrid,
};
use diffusion_solvers::adapters::{AbCache, SkipPattern};
use diffusion_solvers::{registry, sample, NoObserver};
use ndarray::Array2;

fn start(sch: &dyn NoiseSchedule, t: f64) -> Array2<f64> {
    let z: Array2<f64> = HostNoise::new(7).standard_normal(&Array2::zeros((64, 2)));
    z.mapv(|v| v * (sch.alpha(t).powi(2) * 4.0 + sch.sigma(t).powi(2)).sqrt())
}

fn run_with(
    spec: &str,
    model: &dyn Denoiser<Array2<f64>>,
    sch: &dyn NoiseSchedule,
    grid: &TimeGrid,
    x: &Array2<f64>,
) -> Array2<f64> {
    let s = registry::build::<Array2<f64>>(spec).unwrap();
    sample(
        s.as_ref(),
        model,
        sch,
        grid,
        x.clone(),
        &mut IndependentIncrements::seeded(0),
        &mut NoObserver,
    )
    .unwrap()
}

#[test]
fn the_added_error_falls_with_the_extrapolation_order() {
    let gmm = GaussianMixture::ring(4, 2.0, 0.3).unwrap();
    let vp = VpLinear::default();
    let edm = Edm::default();
    let cases: [(&dyn NoiseSchedule, f64, f64); 2] = [(&vp, 1.0, 1e-3), (&edm, 80.0, 0.01)];
    let ns = [64, 128, 256, 512];
    for (sch, t0, t1) in cases {
        let den = gmm.denoiser(sch);
        let x = start(sch, t0);
        for spec in ["ddim", "dpmpp-2m"] {
            for k in 1..=3 {
                let errs: Vec<f64> = ns
                    .iter()
                    .map(|&n| {
                        let grid = TimeGrid::log_snr_uniform(sch, t0, t1, n).unwrap();
                        let plain = run_with(spec, &den, sch, &grid, &x);
                        let cached =
                            AbCache::new(&den, sch, k, SkipPattern::every_other(4)).unwrap();
                        let out = run_with(spec, &cached, sch, &grid, &x);
                        let st = cached.stats();
                        assert_eq!(st.calls, n);
                        assert_eq!(st.skipped, (n - 4) / 2);
                        rms_diff(&out, &plain)
                    })
                    .collect();
                let slope = fitted_slope(&ns, &errs);
                eprintln!(
                    "{spec} on {}, order {k}: added errors {errs:?}, slope {slope:.2}",
                    sch.name()
                );
                assert!(
                    (slope - k as f64).abs() <= 0.35,
                    "{spec} on {} order {k}: slope {slope}, errors {errs:?}",
                    sch.name()
                );
            }
        }
    }
}

#[test]
fn the_error_grows_with_the_fraction_skipped_and_the_model_is_called_less() {
    let gmm = GaussianMixture::ring(4, 2.0, 0.3).unwrap();
    let vp = VpLinear::default();
    let den = gmm.denoiser(&vp);
    let x = start(&vp, 1.0);
    let n = 64;
    let grid = TimeGrid::log_snr_uniform(&vp, 1.0, 1e-3, n).unwrap();
    let plain = run_with("dpmpp-2m", &den, &vp, &grid, &x);
    let mut last = 0.0;
    for skip in 0..=3 {
        let pattern = SkipPattern {
            warmup: 4,
            period: 4,
            skip,
        };
        let counted = Counted::new(&den);
        let cached = AbCache::new(&counted, &vp, 2, pattern).unwrap();
        let out = run_with("dpmpp-2m", &cached, &vp, &grid, &x);
        let err = rms_diff(&out, &plain);
        let st = cached.stats();
        eprintln!(
            "fraction skipped {:.2}: added error {err:.3e}, model calls {} of {}",
            pattern.fraction(),
            counted.calls(),
            st.calls
        );
        assert_eq!(counted.calls(), st.computed);
        assert_eq!(st.computed + st.skipped, n);
        assert_eq!(st.skipped, (n - 4) / 4 * skip);
        if skip == 0 {
            assert_eq!(err, 0.0);
        } else {
            assert!(err > last, "skip {skip}: {err} vs {last}");
        }
        last = err;
    }
    // A fresh trajectory needs a reset; then it repeats exactly.
    let cached = AbCache::new(&den, &vp, 2, SkipPattern::every_other(4)).unwrap();
    let a = run_with("dpmpp-2m", &cached, &vp, &grid, &x);
    cached.reset();
    let b = run_with("dpmpp-2m", &cached, &vp, &grid, &x);
    assert_eq!(a, b);
    // Heun evaluates twice at the same time: those calls are computed, the others may skip.
    let cached = AbCache::new(&den, &vp, 2, SkipPattern::every_other(4)).unwrap();
    let out = run_with("heun", &cached, &vp, &grid, &x);
    assert!(out.iter().all(|v| v.is_finite()));
    assert!(cached.stats().skipped > 0);
}

#[test]
fn bad_settings_are_clear_errors() {
    let gmm = GaussianMixture::ring(4, 2.0, 0.3).unwrap();
    let vp = VpLinear::default();
    let den = gmm.denoiser(&vp);
    let every = SkipPattern::every_other(4);
    for (order, pattern, needle) in [
        (0, every, "`order`"),
        (5, every, "`order`"),
        (3, SkipPattern::every_other(2), "`warmup`"),
        (
            2,
            SkipPattern {
                warmup: 4,
                period: 2,
                skip: 2,
            },
            "`pattern`",
        ),
        (
            2,
            SkipPattern {
                warmup: 4,
                period: 0,
                skip: 0,
            },
            "`pattern`",
        ),
    ] {
        let e = AbCache::<Array2<f64>>::new(&den, &vp, order, pattern)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(needle), "{e}");
    }
}
