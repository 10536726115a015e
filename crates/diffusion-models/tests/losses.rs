//! Every loss is minimized by the exact optimal predictor of a Gaussian target: its value equals
//! the closed-form irreducible error (the posterior variance, weighted), up to Monte-Carlo noise,
//! and a predictor shifted by `delta` pays exactly the expected excess `E[m(t)] delta^2`. A wrong
//! target (sign, scale or parameterization) breaks the first equality by a wide margin.

mod common;

use common::*;
use diffusion_core::schedule::VpLinear;
use diffusion_core::{Coeffs, HostNoise};
use diffusion_models::losses::dsm::error_ratio;
use diffusion_models::{
    DsmLoss, EdmLoss, EdmPrecond, FlowMatchingLoss, Objective, Output, TimeSampling, Weighting,
};
use tch::{Kind, Tensor};

const N: usize = 40_000;

fn eps_like(x0: &Tensor, seed: u64) -> Tensor {
    let v = HostNoise::new(seed).normals(x0.numel());
    Tensor::from_slice(&v).reshape(x0.size())
}

fn mean(t: &Tensor) -> f64 {
    t.mean(Kind::Double).double_value(&[])
}

#[test]
fn dsm_is_minimized_by_the_optimal_predictor_for_every_target_and_weighting() {
    let g = target();
    let vp = VpLinear::default();
    let x0 = data(&g, N, 1);
    let eps = eps_like(&x0, 2);
    let mut tn = HostNoise::new(3);
    let t: Vec<f64> = (0..N).map(|_| 0.05 + 0.9 * tn.uniform()).collect();
    let weightings = [
        Weighting::Simple,
        Weighting::X0,
        Weighting::Snr,
        Weighting::MinSnr { gamma: 5.0 },
        Weighting::TruncatedSnr,
    ];
    let targets = [
        Output::Epsilon,
        Output::Sample,
        Output::V,
        Output::Score,
        Output::Velocity,
    ];
    for target in targets {
        for w in weightings {
            let loss = DsmLoss::new(Box::new(vp), target, w, 0.05, 0.95).unwrap();
            let cs: Vec<Coeffs> = t.iter().map(|&ti| Coeffs::at(&vp, ti)).collect();
            let m: Vec<f64> = cs.iter().map(|c| w.multiplier(target, c)).collect();
            let expected: f64 = cs
                .iter()
                .zip(&m)
                .map(|(c, mi)| mi * error_ratio(target, c) * posterior_var(&g, c.alpha, c.sigma))
                .sum::<f64>()
                / N as f64;
            let net = |offset| OptimalRaw {
                g: g.clone(),
                schedule: &vp,
                out: target,
                offset,
            };
            let opt = mean(&loss.per_sample(&net(0.0), &x0, &t, &eps, None).unwrap());
            let rel = (opt - expected).abs() / expected;
            assert!(
                rel < 0.03,
                "{target:?} {w:?}: loss {opt} vs closed-form minimum {expected} ({rel})"
            );
            let delta = 0.3;
            let bad = mean(&loss.per_sample(&net(delta), &x0, &t, &eps, None).unwrap());
            let excess = delta * delta * m.iter().sum::<f64>() / N as f64;
            assert!(bad > opt, "{target:?} {w:?}");
            assert!(
                ((bad - opt) - excess).abs() < 0.1 * excess,
                "{target:?} {w:?}: excess {} vs {excess}",
                bad - opt
            );
            // The sampling interface draws its own times and noise; still near the minimum scale.
            let drawn = loss
                .loss(
                    &net(0.0),
                    &x0.narrow(0, 0, 4000),
                    None,
                    &mut HostNoise::new(5),
                )
                .unwrap();
            assert!(drawn.double_value(&[]).is_finite());
        }
    }
}

#[test]
fn a_wrong_target_is_caught() {
    // A network that answers eps where v is trained (or with the sign of v flipped) sits far
    // above the minimum.
    let g = target();
    let vp = VpLinear::default();
    let x0 = data(&g, 20_000, 11);
    let eps = eps_like(&x0, 12);
    let t: Vec<f64> = {
        let mut n = HostNoise::new(13);
        (0..20_000).map(|_| 0.05 + 0.9 * n.uniform()).collect()
    };
    let loss = DsmLoss::new(Box::new(vp), Output::V, Weighting::Simple, 0.05, 0.95).unwrap();
    let right = OptimalRaw {
        g: g.clone(),
        schedule: &vp,
        out: Output::V,
        offset: 0.0,
    };
    let wrong = OptimalRaw {
        g: g.clone(),
        schedule: &vp,
        out: Output::Epsilon,
        offset: 0.0,
    };
    let a = mean(&loss.per_sample(&right, &x0, &t, &eps, None).unwrap());
    let b = mean(&loss.per_sample(&wrong, &x0, &t, &eps, None).unwrap());
    assert!(b > 2.0 * a, "{a} vs {b}");
}

#[test]
fn edm_loss_is_minimized_by_the_optimal_denoiser() {
    let g = target();
    let x0 = data(&g, N, 21);
    let n = eps_like(&x0, 22);
    let (p_mean, p_std) = (-1.2, 1.2);
    let sigma: Vec<f64> = HostNoise::new(23)
        .normals(N)
        .iter()
        .map(|z| (p_mean + p_std * z).exp())
        .collect();
    for sd in [0.5, 1.0] {
        let loss = EdmLoss::new(EdmPrecond::new(sd).unwrap(), p_mean, p_std, 80.0).unwrap();
        let p = loss.precond();
        let expected: f64 = sigma
            .iter()
            .map(|&s| p.loss_weight(s) * posterior_var(&g, 1.0, s))
            .sum::<f64>()
            / N as f64;
        let net = |offset| OptimalEdm {
            g: g.clone(),
            sigma_data: sd,
            offset,
        };
        let opt = mean(&loss.per_sample(&net(0.0), &x0, &sigma, &n, None).unwrap());
        let rel = (opt - expected).abs() / expected;
        assert!(rel < 0.03, "sigma_data {sd}: {opt} vs {expected}");
        // lambda = 1 / c_out^2, so an offset delta on F costs exactly delta^2.
        let delta = 0.2;
        let bad = mean(&loss.per_sample(&net(delta), &x0, &sigma, &n, None).unwrap());
        assert!(
            ((bad - opt) - delta * delta).abs() < 0.1 * delta * delta,
            "excess {} vs {}",
            bad - opt,
            delta * delta
        );
        // A precond with the wrong sigma_data does not reach the minimum.
        let other = EdmLoss::new(EdmPrecond::new(sd * 3.0).unwrap(), p_mean, p_std, 80.0).unwrap();
        let mis = mean(&other.per_sample(&net(0.0), &x0, &sigma, &n, None).unwrap());
        let other_min: f64 = sigma
            .iter()
            .map(|&s| other.precond().loss_weight(s) * posterior_var(&g, 1.0, s))
            .sum::<f64>()
            / N as f64;
        assert!(mis > 1.2 * other_min, "{mis} vs {other_min}");
    }
    assert!(EdmLoss::new(EdmPrecond::default(), 0.0, -1.0, 80.0).is_err());
}

#[test]
fn flow_matching_is_minimized_by_the_optimal_velocity() {
    let g = target();
    let flow = diffusion_core::schedule::RectifiedFlow::new();
    let x0 = data(&g, N, 31);
    let eps = eps_like(&x0, 32);
    let t: Vec<f64> = {
        let mut n = HostNoise::new(33);
        (0..N).map(|_| 0.05 + 0.9 * n.uniform()).collect()
    };
    let loss = FlowMatchingLoss::new(TimeSampling::Uniform).unwrap();
    assert_eq!(loss.schedule().name(), "flow");
    // Var(eps - x0 | x_t) = Var(x0 | x_t) / t^2 with alpha = 1 - t, sigma = t.
    let expected: f64 = t
        .iter()
        .map(|&ti| posterior_var(&g, 1.0 - ti, ti) / (ti * ti))
        .sum::<f64>()
        / N as f64;
    let net = |offset| OptimalRaw {
        g: g.clone(),
        schedule: &flow,
        out: Output::Velocity,
        offset,
    };
    let opt = mean(&loss.per_sample(&net(0.0), &x0, &t, &eps, None).unwrap());
    assert!(
        (opt - expected).abs() < 0.03 * expected,
        "{opt} vs {expected}"
    );
    let bad = mean(&loss.per_sample(&net(0.25), &x0, &t, &eps, None).unwrap());
    assert!(((bad - opt) - 0.0625).abs() < 0.1 * 0.0625, "{}", bad - opt);
    // The velocity of the time-reversed convention (x0 - eps) is far off.
    let reversed = mean(
        &loss
            .per_sample(&Negated(net(0.0)), &x0, &t, &eps, None)
            .unwrap(),
    );
    assert!(reversed > 3.0 * opt, "{reversed} vs {opt}");
    assert!(FlowMatchingLoss::new(TimeSampling::LogitNormal {
        mean: 0.0,
        std: 0.0
    })
    .is_err());
    assert!(loss
        .per_sample(
            &net(0.0),
            &x0.narrow(0, 0, 2),
            &[0.5, 1.5],
            &eps.narrow(0, 0, 2),
            None
        )
        .is_err());
}

/// A network with its output negated.
struct Negated<N>(N);

impl<N: diffusion_models::TimeNet> diffusion_models::TimeNet for Negated<N> {
    fn forward_t(
        &self,
        x: &Tensor,
        t: &Tensor,
        class: Option<&Tensor>,
    ) -> diffusion_models::Result<Tensor> {
        Ok(-self.0.forward_t(x, t, class)?)
    }
    fn kind(&self) -> Kind {
        self.0.kind()
    }
    fn device(&self) -> tch::Device {
        self.0.device()
    }
}
