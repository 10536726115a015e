//! Dynamic thresholding: exact values on a hand-checked example, per-sample behaviour, no effect
//! when the data prediction stays in [-1, 1], and a visible effect when it does not.

mod common;

use diffusion_core::schedule::VpLinear;
use diffusion_core::{
    Denoiser, Gaussian, GaussianMixture, IndependentIncrements, NoiseSchedule, Prediction, State,
    TimeGrid,
};
use diffusion_solvers::adapters::{dynamic_threshold, DynamicThresholding};
use diffusion_solvers::{registry, sample, NoObserver};
use ndarray::{array, Array2};

#[test]
fn threshold_values_match_a_hand_computation() {
    // |v| sorted: 0.5, 1.2, 2, 3; the 0.5-quantile interpolates at position 1.5: 1.6.
    let mut v = [0.5, -3.0, 2.0, 1.2];
    let s = dynamic_threshold(&mut v, 0.5, 2.5);
    assert!((s - 1.6).abs() < 1e-15);
    let want = [0.5 / 1.6, -1.0, 1.0, 1.2 / 1.6];
    assert!(
        v.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-15),
        "{v:?}"
    );
    // max_value caps the threshold.
    let mut v = [0.5, -3.0, 2.0, 1.2];
    assert_eq!(dynamic_threshold(&mut v, 0.5, 1.2), 1.2);
    assert_eq!(v[1], -1.0);
    // Nothing above 1: untouched, s = 1.
    let mut v = [0.5, -0.9, 1.0];
    assert_eq!(dynamic_threshold(&mut v, 0.995, 3.0), 1.0);
    assert_eq!(v, [0.5, -0.9, 1.0]);
}

#[test]
fn the_adapter_thresholds_each_sample_separately() {
    let vp = VpLinear::default();
    // A model that predicts x0 = x: row 0 in range, row 1 out of range.
    let identity = |x: &Array2<f64>, _t: f64| -> diffusion_core::Result<Prediction<Array2<f64>>> {
        Ok(Prediction::Sample(x.clone()))
    };
    let th = DynamicThresholding::new(&identity, &vp, 0.5, 10.0, 2).unwrap();
    let x = array![[0.3, -0.8], [4.0, 2.0]];
    let Prediction::Sample(x0) = th.predict(&x, 0.5).unwrap() else {
        panic!("expected a data prediction")
    };
    assert_eq!(x0.row(0), x.row(0));
    // Row 1: quantile 0.5 of (2, 4) = 3: clip to [-3, 3] and divide by 3.
    assert!((x0[[1, 0]] - 1.0).abs() < 1e-15 && (x0[[1, 1]] - 2.0 / 3.0).abs() < 1e-15);
    // An eps-predicting model is resolved through the schedule first.
    let t = 0.5;
    let (a, s) = (vp.alpha(t), vp.sigma(t));
    let eps_model =
        move |x: &Array2<f64>, _t: f64| -> diffusion_core::Result<Prediction<Array2<f64>>> {
            // eps such that x0 = x / a * 3 (all far outside [-1, 1]).
            Ok(Prediction::Epsilon(x.scale((1.0 - 3.0) / s)))
        };
    let th = DynamicThresholding::new(&eps_model, &vp, 1.0, 1.5, 2).unwrap();
    let x = array![[a, -a]];
    let Prediction::Sample(x0) = th.predict(&x, t).unwrap() else {
        panic!("expected a data prediction")
    };
    // x0 = (3, -3): s = min(3, 1.5) = 1.5, so (1.5, -1.5) / 1.5.
    assert!(
        (x0[[0, 0]] - 1.0).abs() < 1e-12 && (x0[[0, 1]] + 1.0).abs() < 1e-12,
        "{x0:?}"
    );
}

fn run(target: &Gaussian, threshold: Option<(f64, f64)>, solver: &str) -> Array2<f64> {
    let vp = VpLinear::default();
    let gmm = GaussianMixture::from_gaussian(target.clone());
    let den = gmm.denoiser(&vp);
    let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 25, true).unwrap();
    let x = common::init_of(target, 2000, 11, &vp, grid.times()[0]);
    let s = registry::build::<Array2<f64>>(solver).unwrap();
    let mut noise = IndependentIncrements::seeded(1);
    match threshold {
        None => sample(s.as_ref(), &den, &vp, &grid, x, &mut noise, &mut NoObserver).unwrap(),
        Some((p, max)) => {
            let th = DynamicThresholding::new(&den, &vp, p, max, 2).unwrap();
            sample(s.as_ref(), &th, &vp, &grid, x, &mut noise, &mut NoObserver).unwrap()
        }
    }
}

#[test]
fn data_inside_the_unit_box_is_not_changed() {
    // Target well inside [-1, 1]^2 (8 standard deviations of margin): x0_hat never leaves it.
    let inside = Gaussian::new(vec![0.2, -0.1], vec![vec![0.01, 0.0], vec![0.0, 0.01]]).unwrap();
    for solver in ["dpmpp-2m", "unipc", "dpm-solver"] {
        let plain = run(&inside, None, solver);
        let thresholded = run(&inside, Some((0.995, 1.0)), solver);
        assert_eq!(plain, thresholded, "{solver}");
    }
}

#[test]
fn data_outside_the_unit_box_is_thresholded() {
    let outside = common::target(); // mean (1.5, -0.5)
    let plain = run(&outside, None, "dpmpp-2m");
    let max_plain = plain.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(max_plain > 2.0, "{max_plain}");
    // max_value = 1: static clipping; the last step returns alpha(0) x0_hat = x0_hat.
    let clipped = run(&outside, Some((0.995, 1.0)), "dpmpp-2m");
    let max_clipped = clipped.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(max_clipped <= 1.0 + 1e-12, "{max_clipped}");
    // A larger max_value: every sample is scaled into [-1, 1] by its own threshold.
    let dynamic = run(&outside, Some((0.995, 4.0)), "dpmpp-2m");
    assert!(dynamic.iter().all(|v| v.abs() <= 1.0 + 1e-12));
    assert!(common::rms_diff(&dynamic, &clipped) > 0.05);
}

#[test]
fn bad_thresholding_parameters_are_errors() {
    let vp = VpLinear::default();
    let gmm = GaussianMixture::from_gaussian(common::target());
    let den = gmm.denoiser(&vp);
    let new = |p, m, n| DynamicThresholding::<Array2<f64>>::new(&den, &vp, p, m, n).is_err();
    assert!(new(0.0, 1.0, 2));
    assert!(new(1.5, 1.0, 2));
    assert!(new(0.9, 0.5, 2));
    assert!(new(0.9, f64::NAN, 2));
    assert!(new(0.9, 1.0, 0));
    let th = DynamicThresholding::new(&den, &vp, 0.9, 1.0, 3).unwrap();
    let e = th
        .predict(&array![[5.0, 1.0]], 0.5)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("sample_size"), "{e}");
}
