//! Backend parity: the same computation on ndarray and on tch with `HostNoise` agrees to 1e-6, and
//! the solvers run unchanged on `tch::Tensor`.

use diffusion_core::schedule::VpLinear;
use diffusion_core::{
    BrownianTree, GaussianMixture, HostNoise, IndependentIncrements, NoiseSchedule, NoiseSource,
    State, TimeGrid,
};
use diffusion_solvers::{registry, sample, NoObserver};
use ndarray::Array2;
use tch::{Device, Kind, Tensor};

fn to_array(t: &Tensor, rows: usize, cols: usize) -> Array2<f64> {
    Array2::from_shape_vec((rows, cols), t.to_host()).unwrap()
}

#[test]
fn state_ops_agree_between_ndarray_and_tch() {
    let like_nd = Array2::<f64>::zeros((5, 3));
    let like_t = Tensor::zeros([5, 3], (Kind::Double, Device::Cpu));
    let a_nd: Array2<f64> = HostNoise::new(1).standard_normal(&like_nd);
    let b_nd: Array2<f64> = HostNoise::new(2).standard_normal(&like_nd);
    let a_t: Tensor = HostNoise::new(1).standard_normal(&like_t);
    let b_t: Tensor = HostNoise::new(2).standard_normal(&like_t);
    assert_eq!(
        a_t.to_host(),
        a_nd.to_host(),
        "HostNoise must give identical numbers on both backends"
    );
    let pairs = [
        (
            a_nd.lincomb(0.3, &b_nd, -1.7).to_host(),
            a_t.lincomb(0.3, &b_t, -1.7).to_host(),
        ),
        (
            a_nd.lincomb3(0.5, &b_nd, 2.0, &a_nd, -0.25).to_host(),
            a_t.lincomb3(0.5, &b_t, 2.0, &a_t, -0.25).to_host(),
        ),
        (a_nd.scale(-3.0).to_host(), a_t.scale(-3.0).to_host()),
        (a_nd.zeros_like().to_host(), a_t.zeros_like().to_host()),
    ];
    for (x, y) in pairs {
        for (u, v) in x.iter().zip(&y) {
            assert!((u - v).abs() < 1e-12);
        }
    }
    assert!((a_nd.rms() - a_t.rms()).abs() < 1e-12);
    assert_eq!(a_t.numel(), 15);
    assert!(a_t.is_finite());
    let nan = a_t.from_host_like(&[f64::NAN; 15]);
    assert!(!nan.is_finite());
    // f32 tensors hold the rounded values.
    let f = Tensor::zeros([5, 3], (Kind::Float, Device::Cpu));
    let af: Tensor = HostNoise::new(1).standard_normal(&f);
    assert_eq!(af.kind(), Kind::Float);
    for (u, v) in af.to_host().iter().zip(a_nd.iter()) {
        assert_eq!(*u, (*v as f32) as f64);
    }
}

#[test]
fn every_solver_gives_the_same_samples_on_ndarray_and_tch() {
    let vp = VpLinear::default();
    let gmm = GaussianMixture::ring(4, 2.0, 0.3).unwrap();
    let den = gmm.denoiser(&vp);
    let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 12, true).unwrap();
    let x_nd: Array2<f64> = HostNoise::new(9).standard_normal(&Array2::<f64>::zeros((64, 2)));
    let x_t = Tensor::zeros([64, 2], (Kind::Double, Device::Cpu)).from_host_like(&x_nd.to_host());
    for info in registry::SOLVERS {
        let s_nd = registry::build::<Array2<f64>>(info.name).unwrap();
        let s_t = registry::build::<Tensor>(info.name).unwrap();
        let mut tree_nd = BrownianTree::with_default_tol(5, 0.0, 1.0).unwrap();
        let mut tree_t = BrownianTree::with_default_tol(5, 0.0, 1.0).unwrap();
        let out_nd = sample(
            s_nd.as_ref(),
            &den,
            &vp,
            &grid,
            x_nd.clone(),
            &mut tree_nd,
            &mut NoObserver,
        )
        .unwrap();
        let out_t = sample(
            s_t.as_ref(),
            &den,
            &vp,
            &grid,
            x_t.shallow_clone(),
            &mut tree_t,
            &mut NoObserver,
        )
        .unwrap();
        let diff = (&out_nd - &to_array(&out_t, 64, 2))
            .mapv(f64::abs)
            .fold(0.0_f64, |a, &b| a.max(b));
        assert!(diff < 1e-6, "{}: max difference {diff}", info.name);
    }
    // Independent increments drawn from HostNoise agree too.
    let s = registry::build::<Tensor>("euler-maruyama").unwrap();
    let s_nd = registry::build::<Array2<f64>>("euler-maruyama").unwrap();
    let a = sample(
        s.as_ref(),
        &den,
        &vp,
        &grid,
        x_t.shallow_clone(),
        &mut IndependentIncrements::seeded(3),
        &mut NoObserver,
    )
    .unwrap();
    let b = sample(
        s_nd.as_ref(),
        &den,
        &vp,
        &grid,
        x_nd,
        &mut IndependentIncrements::seeded(3),
        &mut NoObserver,
    )
    .unwrap();
    let diff = (&b - &to_array(&a, 64, 2))
        .mapv(f64::abs)
        .fold(0.0_f64, |x, &y| x.max(y));
    assert!(diff < 1e-6, "independent increments: {diff}");
}

#[test]
fn doctor_reports_a_working_cpu_libtorch() {
    let r = diffusion_models::doctor();
    assert!(r.healthy(), "{r}");
    assert!(r.libtorch_version.starts_with("2.11"), "{r}");
    assert!(diffusion_models::parse_device("cpu").is_ok());
    assert!(diffusion_models::parse_device("tpu").is_err());
    if !tch::Cuda::is_available() {
        assert!(diffusion_models::parse_device("cuda:0").is_err());
    }
}

/// On tensors the sampler does not wait for the device after every step
/// (`State::finiteness` answers `Pending`; the answers are read every
/// `diffusion_solvers::PENDING_CHECKS` steps and at the end), yet the error still names the first
/// non-finite step: for a model that turns NaN at grid index 3, 40 or 69 of a 70-step run (inside
/// the first batch of answers, the second, and the last), and when a later step fails for another
/// reason (the model errs from index 10 on), the earlier non-finite state is what is reported.
#[test]
fn tensor_runs_name_the_first_non_finite_step_without_waiting_every_step() {
    use diffusion_core::{CoreError, Prediction};
    use diffusion_solvers::{SolverError, PENDING_CHECKS};
    const { assert!(70 > 2 * PENDING_CHECKS) };
    let vp = VpLinear::default();
    let grid = TimeGrid::uniform(0.9, 0.05, 70).unwrap();
    let times = grid.times().to_vec();
    let euler = registry::build::<Tensor>("euler").unwrap();
    let run = |den: &dyn diffusion_core::Denoiser<Tensor>| {
        let x = Tensor::ones([5, 3], (Kind::Double, Device::Cpu));
        let mut noise = IndependentIncrements::seeded(0);
        sample(
            euler.as_ref(),
            den,
            &vp,
            &grid,
            x,
            &mut noise,
            &mut NoObserver,
        )
    };
    for bad in [3usize, 40, 69] {
        let t_bad = times[bad];
        let calls = std::cell::Cell::new(0usize);
        let den = |x: &Tensor, t: f64| -> diffusion_core::Result<Prediction<Tensor>> {
            calls.set(calls.get() + 1);
            let v = if t <= t_bad { f64::NAN } else { 0.25 };
            Ok(Prediction::Sample(x * v))
        };
        match run(&den).unwrap_err() {
            SolverError::NonFinite { step, t, .. } => {
                assert_eq!(step, bad, "NaN from index {bad}");
                assert_eq!(t, times[bad + 1]);
            }
            other => panic!("NaN from index {bad}: unexpected error {other}"),
        }
        // The answers were read in batches: the run went on to the end of the NaN's batch (one
        // Euler evaluation per step), where a check after every step would have stopped at once.
        let read_at = ((bad / PENDING_CHECKS + 1) * PENDING_CHECKS).min(70);
        assert_eq!(calls.get(), read_at, "NaN from index {bad}");
    }
    let (t_nan, t_err) = (times[3], times[10]);
    let den = |x: &Tensor, t: f64| -> diffusion_core::Result<Prediction<Tensor>> {
        if t <= t_err {
            return Err(CoreError::invalid("model", "fails after the NaN"));
        }
        let v = if t <= t_nan { f64::NAN } else { 0.25 };
        Ok(Prediction::Sample(x * v))
    };
    match run(&den).unwrap_err() {
        SolverError::NonFinite { step, .. } => assert_eq!(step, 3),
        other => panic!("unexpected error {other}"),
    }
    // A finite run is untouched.
    let den = |x: &Tensor, _t: f64| -> diffusion_core::Result<Prediction<Tensor>> {
        Ok(Prediction::Sample(x * 0.25))
    };
    assert!(run(&den).unwrap().is_finite());
}
