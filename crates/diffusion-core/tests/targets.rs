//! Oracle checks of the analytic targets: the score is the gradient of the log-density, the
//! denoiser satisfies Tweedie's formula, and the Gaussian PF-ODE map solves the PF-ODE.

use diffusion_core::schedule::{Edm, VpLinear};
use diffusion_core::target::{Gaussian, GaussianMixture};
use diffusion_core::{HostNoise, NoiseSchedule};
use ndarray::{array, Array2};

fn mixture_3d() -> GaussianMixture {
    GaussianMixture::new(
        vec![0.2, 0.5, 0.3],
        vec![
            vec![1.0, -2.0, 0.5],
            vec![-1.5, 0.5, 2.0],
            vec![0.0, 3.0, -1.0],
        ],
        vec![
            vec![
                vec![0.5, 0.1, 0.0],
                vec![0.1, 0.3, 0.05],
                vec![0.0, 0.05, 0.2],
            ],
            vec![
                vec![0.2, 0.0, 0.0],
                vec![0.0, 0.8, -0.3],
                vec![0.0, -0.3, 0.4],
            ],
            vec![
                vec![0.1, 0.0, 0.0],
                vec![0.0, 0.1, 0.0],
                vec![0.0, 0.0, 0.1],
            ],
        ],
    )
    .unwrap()
}

#[test]
fn score_is_the_gradient_of_the_log_density() {
    let g = mixture_3d();
    let schedules: [&dyn NoiseSchedule; 2] = [&VpLinear::default(), &Edm::default()];
    let x = HostNoise::new(3).normals(5 * 3);
    let x = Array2::from_shape_vec((5, 3), x).unwrap() * 2.0;
    for s in schedules {
        for &t in &[0.05, 0.3, 0.9] {
            let score = g.score_t(s, t, &x.view()).unwrap();
            let h = 1e-5;
            for j in 0..3 {
                let mut xp = x.clone();
                let mut xm = x.clone();
                xp.column_mut(j).mapv_inplace(|v| v + h);
                xm.column_mut(j).mapv_inplace(|v| v - h);
                let lp = g.log_density_t(s, t, &xp.view()).unwrap();
                let lm = g.log_density_t(s, t, &xm.view()).unwrap();
                for i in 0..5 {
                    let fd = (lp[i] - lm[i]) / (2.0 * h);
                    assert!(
                        (score[[i, j]] - fd).abs() < 1e-5 * (1.0 + fd.abs()),
                        "{} t={t}: {} vs {fd}",
                        s.name(),
                        score[[i, j]]
                    );
                }
            }
        }
    }
}

#[test]
fn denoiser_satisfies_tweedie() {
    // E[x0 | x_t] = (x + sigma^2 grad log p_t(x)) / alpha.
    let g = mixture_3d();
    let s = VpLinear::default();
    let x = Array2::from_shape_vec((4, 3), HostNoise::new(5).normals(12)).unwrap();
    for &t in &[0.01, 0.2, 0.7, 1.0] {
        let den = g.denoise_t(&s, t, &x.view()).unwrap();
        let score = g.score_t(&s, t, &x.view()).unwrap();
        let (a, sg) = (s.alpha(t), s.sigma(t));
        let tweedie = (&x + &(score * (sg * sg))) / a;
        for (u, v) in den.iter().zip(tweedie.iter()) {
            assert!((u - v).abs() < 1e-9 * (1.0 + v.abs()), "t={t}: {u} vs {v}");
        }
    }
}

#[test]
fn denoiser_is_exact_for_a_gaussian_by_monte_carlo() {
    // For x0 ~ N(mu, S) and x_t = a x0 + s eps, the posterior mean is linear; check the mixture
    // code against the regression E[x0 | x_t] estimated from samples in 1-D.
    let g = GaussianMixture::from_gaussian(Gaussian::new(vec![2.0], vec![vec![0.25]]).unwrap());
    let s = Edm::default();
    let t = 0.5;
    let x = array![[0.0], [2.0], [3.0]];
    let den = g.denoise_t(&s, t, &x.view()).unwrap();
    // Closed form: mu + S/(S + t^2) (x - mu) = 2 + 0.5 (x - 2).
    for (i, &xi) in [0.0, 2.0, 3.0].iter().enumerate() {
        assert!((den[[i, 0]] - (2.0 + 0.5 * (xi - 2.0))).abs() < 1e-12);
    }
}

#[test]
fn gaussian_pf_ode_map_solves_the_pf_ode_and_transports_marginals() {
    let gauss = Gaussian::new(vec![1.0, -1.0], vec![vec![0.6, 0.25], vec![0.25, 0.3]]).unwrap();
    let gmm = GaussianMixture::from_gaussian(gauss.clone());
    let s = VpLinear::default();
    let x = Array2::from_shape_vec((3, 2), HostNoise::new(8).normals(6)).unwrap();
    let (t0, t1) = (0.8, 0.3);
    let y = gauss.pf_ode_flow(&s, t0, t1, &x.view()).unwrap();
    // Derivative along the flow equals the PF-ODE right-hand side f x - g^2/2 score.
    let h = 1e-6;
    let yp = gauss.pf_ode_flow(&s, t0, t1 + h, &x.view()).unwrap();
    let ym = gauss.pf_ode_flow(&s, t0, t1 - h, &x.view()).unwrap();
    let score = gmm.score_t(&s, t1, &y.view()).unwrap();
    for i in 0..3 {
        for j in 0..2 {
            let dydt = (yp[[i, j]] - ym[[i, j]]) / (2.0 * h);
            let rhs = s.drift(t1) * y[[i, j]] - 0.5 * s.diffusion_sq(t1) * score[[i, j]];
            assert!(
                (dydt - rhs).abs() < 1e-5 * (1.0 + rhs.abs()),
                "{dydt} vs {rhs}"
            );
        }
    }
    // Round trip t0 -> t1 -> t0 is the identity.
    let back = gauss.pf_ode_flow(&s, t1, t0, &y.view()).unwrap();
    for (u, v) in back.iter().zip(x.iter()) {
        assert!((u - v).abs() < 1e-12);
    }
    // Shape errors are typed errors, not panics.
    let bad = Array2::<f64>::zeros((2, 3));
    assert!(gauss.pf_ode_flow(&s, t0, t1, &bad.view()).is_err());
    assert!(gmm.denoise_t(&s, 0.5, &bad.view()).is_err());
}

#[test]
fn mixture_sampling_matches_its_moments_and_json_round_trips() {
    let g = mixture_3d();
    let x = g.sample(40_000, &mut HostNoise::new(1));
    let (mean, cov) = g.moments();
    for j in 0..3 {
        let m = x.column(j).mean().unwrap();
        // Per-coordinate std of the mixture is below 2.2: 6 standard errors < 0.07.
        assert!((m - mean[j]).abs() < 0.07, "mean {j}: {m} vs {}", mean[j]);
        let v = x.column(j).mapv(|v| (v - m).powi(2)).mean().unwrap();
        assert!(
            (v / cov[(j, j)] - 1.0).abs() < 0.05,
            "var {j}: {v} vs {}",
            cov[(j, j)]
        );
    }
    let text = serde_json::to_string(&g.to_spec()).unwrap();
    let h = GaussianMixture::from_json(&text).unwrap();
    assert_eq!(h.weights(), g.weights());
    assert!(GaussianMixture::from_json("{\"weights\": [0.5]}").is_err());
    assert!(GaussianMixture::new(
        vec![0.5, 0.6],
        vec![vec![0.0], vec![1.0]],
        vec![vec![vec![1.0]], vec![vec![1.0]]]
    )
    .is_err());
    assert!(Gaussian::new(vec![0.0, 0.0], vec![vec![1.0, 2.0], vec![2.0, 1.0]]).is_err());
}

#[test]
fn data_level_mixture_log_density_integrates_to_one_and_matches_the_components() {
    // 1-D mixture, trapezoid rule on [-20, 25] with step 1e-3: the tails beyond are below
    // e^{-40} and the rule's error is below 1e-9 for these smooth densities.
    let g = GaussianMixture::new(
        vec![0.3, 0.7],
        vec![vec![-1.0], vec![2.0]],
        vec![vec![vec![0.25]], vec![vec![2.25]]],
    )
    .unwrap();
    let (lo, hi, h) = (-20.0, 25.0, 1e-3);
    let k = ((hi - lo) / h) as usize;
    let xs = Array2::from_shape_fn((k + 1, 1), |(i, _)| lo + i as f64 * h);
    let lp = g.log_density(&xs.view()).unwrap();
    let mass: f64 = lp
        .iter()
        .enumerate()
        .map(|(i, l)| if i == 0 || i == k { 0.5 } else { 1.0 } * l.exp() * h)
        .sum();
    assert!((mass - 1.0).abs() < 1e-9, "{mass}");
    // Pointwise: the weighted sum of the 1-D normal densities.
    let pdf = |x: f64, m: f64, s: f64| {
        (-(x - m).powi(2) / (2.0 * s * s)).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
    };
    for &x in &[-3.0, -1.0, 0.5, 2.0, 7.0] {
        let want = (0.3 * pdf(x, -1.0, 0.5) + 0.7 * pdf(x, 2.0, 1.5)).ln();
        let got = g.log_density(&array![[x]].view()).unwrap()[0];
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
}

#[test]
fn data_level_log_density_of_one_component_is_the_gaussian_one() {
    let gauss = Gaussian::new(vec![1.0, -1.0], vec![vec![0.6, 0.25], vec![0.25, 0.3]]).unwrap();
    let gmm = GaussianMixture::from_gaussian(gauss.clone());
    let x = Array2::from_shape_vec((5, 2), HostNoise::new(12).normals(10)).unwrap() * 3.0;
    let a = gmm.log_density(&x.view()).unwrap();
    let b = gauss.log_density(&x.view()).unwrap();
    for (u, v) in a.iter().zip(&b) {
        assert!((u - v).abs() < 1e-12, "{u} vs {v}");
    }
    // It is the sigma -> 0 limit of the diffused density (EDM: x_t = x_0 + t eps).
    let s = Edm::default();
    let c = gmm.log_density_t(&s, 1e-7, &x.view()).unwrap();
    for (u, v) in a.iter().zip(&c) {
        assert!((u - v).abs() < 1e-6 * (1.0 + v.abs()), "{u} vs {v}");
    }
    // Far from every component the log-sum-exp keeps it finite; wrong shapes and singular
    // components are typed errors.
    let ring = GaussianMixture::ring(8, 2.0, 0.1).unwrap();
    let far = ring.log_density(&array![[500.0, 0.0]].view()).unwrap()[0];
    assert!(far.is_finite() && far < -1e6, "{far}");
    assert!(gmm.log_density(&Array2::zeros((2, 3)).view()).is_err());
    let point = GaussianMixture::new(vec![1.0], vec![vec![0.0]], vec![vec![vec![0.0]]]).unwrap();
    assert!(point.log_density(&array![[0.0]].view()).is_err());
}
