//! `TchDenoiser` lets every solver sample a network: with the exact optimal network of a Gaussian
//! target, the tch samples equal the ndarray samples of the analytic denoiser, for a raw eps
//! network and for an EDM-preconditioned one under a VP schedule (alpha != 1).

mod common;

use common::*;
use diffusion_core::schedule::{Edm, VpLinear};
use diffusion_core::{
    GaussianMixture, HostNoise, IndependentIncrements, NoiseSchedule, NoiseSource, State, TimeGrid,
};
use diffusion_models::{EdmPrecond, Guided, Mlp, MlpConfig, Output, Parameterization, TchDenoiser};
use diffusion_solvers::{registry, sample, NoObserver};
use ndarray::Array2;
use tch::{nn, Device, Kind, Tensor};

fn run_both(
    schedule: &dyn NoiseSchedule,
    grid: &TimeGrid,
    den: &TchDenoiser<'_>,
    exact: &GaussianMixture,
    solver: &str,
) -> f64 {
    let x_nd: Array2<f64> = HostNoise::new(5).standard_normal(&Array2::zeros((256, 3)));
    let x_nd = x_nd.scale(
        (schedule.alpha(grid.times()[0]).powi(2) + schedule.sigma(grid.times()[0]).powi(2)).sqrt(),
    );
    let x_t = Tensor::zeros([256, 3], (Kind::Double, Device::Cpu)).from_host_like(&x_nd.to_host());
    let s_t = registry::build::<Tensor>(solver).unwrap();
    let s_nd = registry::build::<Array2<f64>>(solver).unwrap();
    let a = sample(
        s_t.as_ref(),
        den,
        schedule,
        grid,
        x_t,
        &mut IndependentIncrements::seeded(1),
        &mut NoObserver,
    )
    .unwrap();
    let b = sample(
        s_nd.as_ref(),
        &exact.denoiser(schedule),
        schedule,
        grid,
        x_nd,
        &mut IndependentIncrements::seeded(1),
        &mut NoObserver,
    )
    .unwrap();
    a.to_host()
        .iter()
        .zip(b.iter())
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f64::max)
}

#[test]
fn raw_eps_network_samples_like_the_analytic_denoiser() {
    let g = target();
    let exact = GaussianMixture::from_gaussian(g.clone());
    let vp = VpLinear::default();
    let net = OptimalRaw {
        g,
        schedule: &vp,
        out: Output::Epsilon,
        offset: 0.0,
    };
    let den = TchDenoiser::new(&net, Parameterization::Raw(Output::Epsilon), &vp);
    let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 15, true).unwrap();
    for solver in ["dpmpp-2m", "heun", "euler-ancestral"] {
        let err = run_both(&vp, &grid, &den, &exact, solver);
        assert!(err < 1e-8, "{solver}: {err}");
    }
}

#[test]
fn edm_preconditioned_network_samples_under_any_schedule() {
    let g = target();
    let exact = GaussianMixture::from_gaussian(g.clone());
    let net = OptimalEdm {
        g,
        sigma_data: 0.7,
        offset: 0.0,
    };
    let p = Parameterization::Edm(EdmPrecond::new(0.7).unwrap());
    let vp = VpLinear::default();
    let den = TchDenoiser::new(&net, p, &vp);
    let grid = TimeGrid::karras(&vp, 0.002, vp.noise_ratio(1.0), 7.0, 12, true).unwrap();
    let err = run_both(&vp, &grid, &den, &exact, "dpmpp-2m");
    assert!(err < 1e-8, "vp: {err}");
    let edm = Edm::default();
    let den = TchDenoiser::new(&net, p, &edm);
    let grid = TimeGrid::karras(&edm, 0.002, 80.0, 7.0, 12, true).unwrap();
    let err = run_both(&edm, &grid, &den, &exact, "heun");
    assert!(err < 1e-8, "edm: {err}");
    // At sigma = 0 the preconditioned denoiser is the identity.
    let x = Tensor::from_slice(&[1.0f64, 2.0, 3.0]).reshape([1, 3]);
    match den.predict_tensor(&x, 0.0).unwrap() {
        diffusion_core::Prediction::Sample(y) => assert!(y.equal(&x)),
        other => panic!("{}", other.kind()),
    }
}

#[test]
fn an_mlp_samples_in_f32_and_guidance_runs_on_tensors() {
    let vs = nn::VarStore::new(Device::Cpu);
    let cfg = MlpConfig {
        hidden: 16,
        depth: 1,
        num_classes: 2,
        ..MlpConfig::default()
    };
    let net = Mlp::new(&vs.root(), &cfg, 0).unwrap();
    let edm = Edm::default();
    let p = Parameterization::Edm(EdmPrecond::new(1.0).unwrap());
    let labels = Tensor::from_slice(&[0i64, 1, 0, 1]);
    let cond = TchDenoiser::new(&net, p, &edm).with_class(labels);
    let uncond = TchDenoiser::new(&net, p, &edm);
    let guided = Guided::new(&cond, &uncond, 2.0, &edm).unwrap();
    let grid = TimeGrid::karras(&edm, 0.002, 80.0, 7.0, 5, true).unwrap();
    // Seeded host noise: the test must not depend on torch's global generator.
    let x: Tensor =
        HostNoise::new(3).standard_normal(&Tensor::zeros([4, 2], (Kind::Float, Device::Cpu)));
    let x = x * 80.0;
    let x_start = x.shallow_clone();
    let solver = registry::build::<Tensor>("euler").unwrap();
    let out = sample(
        solver.as_ref(),
        &guided,
        &edm,
        &grid,
        x,
        &mut IndependentIncrements::seeded(0),
        &mut NoObserver,
    )
    .unwrap();
    assert_eq!(out.size(), [4, 2]);
    assert_eq!(out.kind(), Kind::Float);
    // An untrained network (zero output layer) is D(x) = c_skip(sigma) x, guided or not, so Euler
    // is linear: each step multiplies by 1 + (s1 - s0) (1 - c_skip(s0)) / s0 (the step to 0 by
    // c_skip(s0)). The sampler must reproduce that factor exactly (up to f32 rounding).
    let pre = EdmPrecond::new(1.0).unwrap();
    let mut k = 1.0f64;
    for w in grid.times().windows(2) {
        let (s0, s1) = (w[0], w[1]);
        k *= 1.0 + (s1 - s0) * (1.0 - pre.c_skip(s0)) / s0;
    }
    let want = &x_start * k;
    let err = (&out - &want).abs().max().double_value(&[]);
    assert!(
        err < 1e-4 * (1.0 + want.abs().max().double_value(&[])),
        "err {err}, factor {k}"
    );
    // Shape errors surface as errors, not panics.
    let bad = Tensor::zeros([4, 3], (Kind::Float, Device::Cpu));
    assert!(uncond.predict_tensor(&bad, 1.0).is_err());
}
