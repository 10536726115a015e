//! The PF-ODE likelihood with the exact mixture denoiser (`GmmNet`) reproduces the exact
//! diffused log-density of `diffusion_core::GaussianMixture` on a 2-D and an 8-D mixture
//! (exact divergence, RK45 and RK4, raw and EDM parameterizations), and the Hutchinson estimate
//! is unbiased (its mean over probes is within 3 standard errors of the exact value).
//!
//! The change of log-density along the flow (`delta`) is several nats in every check, so a
//! flipped divergence sign (`prior - delta`) is off by `2 |delta|`, far outside the tolerances
//! (asserted explicitly below).

use diffusion_core::schedule::{Edm, VpLinear};
use diffusion_core::{GaussianMixture, HostNoise, NoiseSchedule};
use diffusion_models::eval::nll::{
    bits_per_dim, log_likelihood, Dequantization, Divergence, NllOptions, OdeMethod, Prior, Probe,
};
use diffusion_models::nets::GmmNet;
use diffusion_models::{EdmPrecond, Output, Parameterization, TchDenoiser};
use ndarray::Array2;
use tch::{Device, Kind, Tensor};

fn rows(x: &Array2<f64>) -> Tensor {
    Tensor::from_slice(x.as_slice().unwrap()).reshape([x.nrows() as i64, x.ncols() as i64])
}

fn mixture_2d() -> GaussianMixture {
    GaussianMixture::new(
        vec![0.5, 0.3, 0.2],
        vec![vec![1.5, 0.0], vec![-1.0, 1.0], vec![-0.5, -1.5]],
        vec![
            vec![vec![0.3, 0.1], vec![0.1, 0.2]],
            vec![vec![0.15, -0.05], vec![-0.05, 0.4]],
            vec![vec![0.25, 0.0], vec![0.0, 0.1]],
        ],
    )
    .unwrap()
}

/// Two components in 8-D with random SPD covariances `A A^T / 8 + 0.05 I`.
fn mixture_8d() -> GaussianMixture {
    let mut noise = HostNoise::new(11);
    let d = 8;
    let mut means = Vec::new();
    let mut covs = Vec::new();
    for k in 0..2 {
        means.push(
            noise
                .normals(d)
                .iter()
                .map(|v| 0.8 * v + if k == 0 { 1.0 } else { -1.0 })
                .collect(),
        );
        let a = noise.normals(d * d);
        let cov: Vec<Vec<f64>> = (0..d)
            .map(|i| {
                (0..d)
                    .map(|j| {
                        let s: f64 = (0..d).map(|l| a[i * d + l] * a[j * d + l]).sum();
                        0.3 * s / d as f64 + if i == j { 0.05 } else { 0.0 }
                    })
                    .collect()
            })
            .collect();
        covs.push(cov);
    }
    GaussianMixture::new(vec![0.4, 0.6], means, covs).unwrap()
}

/// The exact diffused mixture density at `t` as a prior (isolates the ODE and divergence).
fn exact_prior<'a>(net: &'a GmmNet, t: f64) -> Prior<'a> {
    Prior::Custom(Box::new(move |x: &Tensor| net.log_density_at(x, t)))
}

struct Check {
    nfe: usize,
    max_err: f64,
    min_abs_delta: f64,
    max_flipped_err: f64,
}

/// Runs the likelihood ODE on `x` and compares with the exact `log p_{t_start}(x)`.
fn check(
    gmm: &GaussianMixture,
    schedule: &dyn NoiseSchedule,
    param: Parameterization,
    net_schedule: Box<dyn NoiseSchedule>,
    x: &Array2<f64>,
    opts: &NllOptions,
) -> Check {
    let net = GmmNet::new(gmm, net_schedule, param).unwrap();
    let den = TchDenoiser::new(&net, param, schedule);
    let t_end = opts.t_end.unwrap_or(schedule.t_range().1);
    let exact_t_end = GmmNet::new(gmm, Box::new(VpLinear::default()), param).unwrap();
    let (a, s) = (schedule.alpha(t_end), schedule.sigma(t_end));
    let n = x.nrows();
    let prior = Prior::Custom(Box::new(move |y: &Tensor| {
        exact_t_end.log_density(y, &vec![a; n], &vec![s; n])
    }));
    let res = log_likelihood(&den, &rows(x), opts, &prior).unwrap();
    let exact = gmm
        .log_density_t(schedule, opts.t_start, &x.view())
        .unwrap();
    let mut c = Check {
        nfe: res.nfe,
        max_err: 0.0,
        min_abs_delta: f64::INFINITY,
        max_flipped_err: 0.0,
    };
    for i in 0..n {
        c.max_err = c.max_err.max((res.log_p[i] - exact[i]).abs());
        c.min_abs_delta = c.min_abs_delta.min(res.delta[i].abs());
        let flipped = res.prior_log_p[i] - res.delta[i];
        c.max_flipped_err = c.max_flipped_err.max((flipped - exact[i]).abs());
    }
    c
}

fn exact_opts(t_start: f64, method: OdeMethod) -> NllOptions {
    NllOptions {
        t_start,
        t_end: None,
        divergence: Divergence::Exact,
        method,
        max_attempts: 10_000,
    }
}

#[test]
fn pf_ode_likelihood_matches_the_exact_mixture_density() {
    tch::set_num_threads(1);
    let vp = VpLinear::default();
    let rk45 = OdeMethod::Rk45 {
        rtol: 1e-7,
        atol: 1e-7,
    };
    let eps = Parameterization::Raw(Output::Epsilon);
    for (name, gmm, tol) in [("2-D", mixture_2d(), 1e-5), ("8-D", mixture_8d(), 1e-5)] {
        let x = gmm.sample(4, &mut HostNoise::new(4));
        let t0 = std::time::Instant::now();
        let c = check(&gmm, &vp, eps, Box::new(vp), &x, &exact_opts(1e-3, rk45));
        println!(
            "{name} VP eps RK45: max |log p - exact| = {:.2e}, min |delta| = {:.2}, flipped sign error {:.2}, nfe {} ({:.2} s)",
            c.max_err, c.min_abs_delta, c.max_flipped_err, c.nfe, t0.elapsed().as_secs_f64()
        );
        assert!(c.max_err < tol, "{name}: {}", c.max_err);
        assert!(c.min_abs_delta > 0.2, "{name}: {}", c.min_abs_delta);
        assert!(
            c.max_flipped_err > 1000.0 * tol,
            "{name}: {}",
            c.max_flipped_err
        );
    }
    // Fixed-step RK4 (order 4) on the 2-D mixture, x0 parameterization.
    let gmm = mixture_2d();
    let x = gmm.sample(6, &mut HostNoise::new(5));
    let x0 = Parameterization::Raw(Output::Sample);
    let t0 = std::time::Instant::now();
    let c = check(
        &gmm,
        &vp,
        x0,
        Box::new(vp),
        &x,
        &exact_opts(1e-2, OdeMethod::Rk4 { steps: 100 }),
    );
    println!(
        "2-D VP x0 RK4(100): max error {:.2e}, nfe {} ({:.2} s)",
        c.max_err,
        c.nfe,
        t0.elapsed().as_secs_f64()
    );
    assert!(c.max_err < 1e-4, "{}", c.max_err);
    // EDM schedule and preconditioning (t = sigma from 0.02 to 80).
    let edm = Edm::new(80.0).unwrap();
    let p = Parameterization::Edm(EdmPrecond::new(0.5).unwrap());
    let t0 = std::time::Instant::now();
    let c = check(&gmm, &edm, p, Box::new(edm), &x, &exact_opts(0.02, rk45));
    println!(
        "2-D EDM precond RK45: max error {:.2e}, nfe {} ({:.2} s)",
        c.max_err,
        c.nfe,
        t0.elapsed().as_secs_f64()
    );
    assert!(c.max_err < 1e-5, "{}", c.max_err);
}

#[test]
fn the_schedule_prior_is_close_and_bits_per_dim_follow() {
    tch::set_num_threads(1);
    // With the usual N(0, (alpha^2 + sigma^2) I) prior at T = 1 of VP (alpha(1) = 0.0066), the
    // answer is within the prior's small mismatch of the exact one.
    let vp = VpLinear::default();
    let gmm = mixture_2d();
    let x = gmm.sample(6, &mut HostNoise::new(6));
    let param = Parameterization::Raw(Output::Epsilon);
    let net = GmmNet::new(&gmm, Box::new(vp), param).unwrap();
    let den = TchDenoiser::new(&net, param, &vp);
    let opts = exact_opts(
        1e-3,
        OdeMethod::Rk45 {
            rtol: 1e-6,
            atol: 1e-6,
        },
    );
    let res = log_likelihood(&den, &rows(&x), &opts, &Prior::for_schedule(&vp, 1.0)).unwrap();
    let exact = gmm.log_density_t(&vp, 1e-3, &x.view()).unwrap();
    let exact_t1 = net.log_density_at(&res.x_end, 1.0).unwrap();
    let exact_t1 = Vec::<f64>::try_from(exact_t1).unwrap();
    for i in 0..x.nrows() {
        // The whole error is the prior's: log N(x_T) - log p_1(x_T).
        let prior_gap = res.prior_log_p[i] - exact_t1[i];
        assert!(prior_gap.abs() < 0.05, "{prior_gap}");
        assert!(
            (res.log_p[i] - exact[i] - prior_gap).abs() < 1e-4,
            "{} vs {} (prior gap {prior_gap})",
            res.log_p[i],
            exact[i]
        );
    }
    // bits/dim: -log p / (D ln 2), plus 7 for dequantized 8-bit data in [-1, 1].
    let nll = res.mean_nll();
    let bpd = res.mean_bits_per_dim(None);
    assert!((bpd - nll / (2.0 * std::f64::consts::LN_2)).abs() < 1e-12);
    let dq = Dequantization::eight_bit_symmetric();
    assert!((dq.offset_bits() - 7.0).abs() < 1e-12);
    assert!(
        (bits_per_dim(-1.0, 1, Some(&dq)) - (1.0 / std::f64::consts::LN_2 + 7.0)).abs() < 1e-12
    );
}

#[test]
fn hutchinson_is_unbiased() {
    tch::set_num_threads(1);
    // One point replicated over 256 rows, each with its own probe: the mean of the estimates is
    // within 3 standard errors of the exact log-density, for Rademacher and Gaussian probes,
    // and the estimates do vary (the test could fail).
    let vp = VpLinear::default();
    let gmm = mixture_8d();
    let x1 = gmm.sample(1, &mut HostNoise::new(9));
    let m = 256;
    let x = Array2::from_shape_fn((m, 8), |(_, j)| x1[[0, j]]);
    let param = Parameterization::Raw(Output::Epsilon);
    let net = GmmNet::new(&gmm, Box::new(vp), param).unwrap();
    let den = TchDenoiser::new(&net, param, &vp);
    let exact = gmm.log_density_t(&vp, 1e-3, &x1.view()).unwrap()[0];
    for (probe, seed) in [(Probe::Rademacher, 1), (Probe::Gaussian, 2)] {
        let opts = NllOptions {
            t_start: 1e-3,
            t_end: None,
            divergence: Divergence::Hutchinson { probe, seed },
            method: OdeMethod::Rk45 {
                rtol: 1e-6,
                atol: 1e-6,
            },
            max_attempts: 10_000,
        };
        let res = log_likelihood(&den, &rows(&x), &opts, &exact_prior(&net, 1.0)).unwrap();
        let mean = res.log_p.iter().sum::<f64>() / m as f64;
        let var = res.log_p.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1) as f64;
        let se = (var / m as f64).sqrt();
        println!(
            "{probe:?}: mean {mean:.4} exact {exact:.4} se {se:.4} sd {:.3}",
            var.sqrt()
        );
        assert!(se > 1e-3, "the estimates do not vary: se {se}");
        assert!(
            (mean - exact).abs() < 3.0 * se,
            "{mean} vs {exact} (se {se})"
        );
        // Seeded: the same seed gives the same estimates.
        let again = log_likelihood(&den, &rows(&x), &opts, &exact_prior(&net, 1.0)).unwrap();
        assert_eq!(again.log_p, res.log_p);
    }
}

#[test]
fn bad_input_is_an_error() {
    let vp = VpLinear::default();
    let gmm = mixture_2d();
    let param = Parameterization::Raw(Output::Epsilon);
    let net = GmmNet::new(&gmm, Box::new(vp), param).unwrap();
    let den = TchDenoiser::new(&net, param, &vp);
    let x = Tensor::zeros([3, 2], (Kind::Double, Device::Cpu));
    let prior = Prior::for_schedule(&vp, 1.0);
    let bad_t = NllOptions {
        t_start: 0.0,
        ..NllOptions::default()
    };
    assert!(log_likelihood(&den, &x, &bad_t, &prior).is_err());
    let bad_range = NllOptions {
        t_start: 0.5,
        t_end: Some(0.4),
        ..NllOptions::default()
    };
    assert!(log_likelihood(&den, &x, &bad_range, &prior).is_err());
    let zero_steps = NllOptions {
        method: OdeMethod::Rk4 { steps: 0 },
        ..NllOptions::default()
    };
    assert!(log_likelihood(&den, &x, &zero_steps, &prior).is_err());
    let wrong_dim = Tensor::zeros([3, 5], (Kind::Double, Device::Cpu));
    assert!(log_likelihood(&den, &wrong_dim, &NllOptions::default(), &prior).is_err());
    assert!(log_likelihood(
        &den,
        &x,
        &NllOptions::default(),
        &Prior::Isotropic { std: 0.0 }
    )
    .is_err());
    // Dequantization: values off the range are errors; on-grid values stay in their cells.
    let dq = Dequantization::eight_bit_symmetric();
    assert!(dq
        .dequantize(&Tensor::from_slice(&[1.5f32]), &mut HostNoise::new(0))
        .is_err());
    let k: Vec<f64> = (0..256).map(|k| k as f64 / 127.5 - 1.0).collect();
    let y = dq
        .dequantize(&Tensor::from_slice(&k), &mut HostNoise::new(0))
        .unwrap();
    let y = Vec::<f64>::try_from(y).unwrap();
    for (i, v) in y.iter().enumerate() {
        let cell = (v + 1.0) / 2.0 * 256.0;
        assert!(cell >= i as f64 && cell < i as f64 + 1.0, "{i}: {v}");
    }
}
