//! Improved DDPM's learned variances (`losses::iddpm`) against closed forms: the Gaussian KL
//! against diffusion-core's and a Monte Carlo estimate, the decoder likelihoods, a zero KL when
//! the model is the true posterior, the whole bound of the exact model on 1-D Gaussian data
//! against the exact negative ELBO, the stop-gradient of the hybrid loss, and the ancestral
//! sampler's law.

use diffusion_core::metrics::gaussian_kl;
use diffusion_core::schedule::{BetaSchedule, DdpmDiscrete};
use diffusion_core::Prediction;
use diffusion_core::{Gaussian, HostNoise};
use diffusion_models::losses::iddpm::{
    discretized_gaussian_nll, gaussian_nll, normal_kl, Decoder, EpsHead, IddpmLoss, Variance,
};
use diffusion_models::{ModelError, Objective, Output, Parameterization, TchDenoiser, TimeNet};
use std::f64::consts::{LN_2, PI};
use tch::{Device, Kind, Tensor};

fn scalar(x: f64) -> Tensor {
    Tensor::from_slice(&[x])
}

fn linear(n: usize) -> DdpmDiscrete {
    let s = 1000.0 / n as f64;
    DdpmDiscrete::new(
        BetaSchedule::Linear {
            beta_start: 1e-4 * s,
            beta_end: 0.02 * s,
        },
        n,
        false,
    )
    .unwrap()
}

fn column(v: &[f64]) -> Tensor {
    Tensor::from_slice(v).reshape([v.len() as i64, 1])
}

#[test]
fn normal_kl_matches_core_and_monte_carlo() {
    tch::set_num_threads(1);
    let cases = [
        (0.0f64, 1.0f64, 0.0f64, 1.0f64),
        (0.3, 0.5, -0.2, 2.0),
        (1.5, 0.01, 1.4, 0.02),
        (-2.0, 3.0, 0.5, 0.7),
    ];
    for (m1, v1, m2, v2) in cases {
        let kl = normal_kl(&scalar(m1), &scalar(v1.ln()), &scalar(m2), &scalar(v2.ln()))
            .double_value(&[0]);
        let p = Gaussian::new(vec![m1], vec![vec![v1]]).unwrap();
        let q = Gaussian::new(vec![m2], vec![vec![v2]]).unwrap();
        let want = gaussian_kl(&p, &q).unwrap();
        assert!((kl - want).abs() < 1e-12, "KL {kl} vs core {want}");
        // Monte Carlo: E_p[ln p(x) - ln q(x)], with the Gaussian NLL of the module.
        let n = 100_000;
        let z = HostNoise::new(5).normals(n);
        let x: Vec<f64> = z.iter().map(|z| m1 + v1.sqrt() * z).collect();
        let x = Tensor::from_slice(&x);
        let lp = -gaussian_nll(&x, &scalar(m1), &scalar(v1.ln()));
        let lq = -gaussian_nll(&x, &scalar(m2), &scalar(v2.ln()));
        let d = lp - lq;
        let mc = d.mean(Kind::Double).double_value(&[]);
        let se = d.std(true).double_value(&[]) / (n as f64).sqrt();
        assert!(
            (mc - want).abs() < 4.0 * se + 1e-12,
            "KL {want} vs Monte Carlo {mc} (se {se})"
        );
    }
}

#[test]
fn decoders_are_normalized_likelihoods() {
    tch::set_num_threads(1);
    // The continuous NLL at a point: the closed form.
    let nll = gaussian_nll(&scalar(0.7), &scalar(0.2), &scalar(0.3f64.ln())).double_value(&[0]);
    let want = 0.5 * (2.0 * PI * 0.3).ln() + 0.25 / (2.0 * 0.3);
    assert!((nll - want).abs() < 1e-12);
    // The discretized decoder puts probability 1 on the 256 bins, for any mean and scale, and
    // matches the Gaussian mass of an inner bin.
    let bins: Vec<f64> = (0..256).map(|i| i as f64 / 127.5 - 1.0).collect();
    let x = Tensor::from_slice(&bins);
    for (mean, scale) in [(0.0, 0.5), (0.9, 0.01), (-0.97, 0.003), (0.3, 2.0)] {
        let nll = discretized_gaussian_nll(
            &x,
            &Tensor::full([256], mean, (Kind::Double, Device::Cpu)),
            &Tensor::full([256], f64::ln(scale), (Kind::Double, Device::Cpu)),
        );
        let total = (-nll.shallow_clone())
            .exp()
            .sum(Kind::Double)
            .double_value(&[]);
        assert!(
            (total - 1.0).abs() < 1e-9,
            "mass {total} at {mean}, {scale}"
        );
    }
    // Inner bin: Phi((x + 1/255 - m) / s) - Phi((x - 1/255 - m) / s), by the midpoint rule on
    // a fine grid.
    let (m, s, xi) = (0.1, 0.05f64, bins[140]);
    let nll = discretized_gaussian_nll(&scalar(xi), &scalar(m), &scalar(s.ln())).double_value(&[0]);
    let (a, b, n) = (xi - 1.0 / 255.0, xi + 1.0 / 255.0, 20_000);
    let h = (b - a) / n as f64;
    let mass: f64 = (0..n)
        .map(|i| {
            let u = a + (i as f64 + 0.5) * h;
            (-(u - m).powi(2) / (2.0 * s * s)).exp() / (s * (2.0 * PI).sqrt()) * h
        })
        .sum();
    assert!((nll + mass.ln()).abs() < 1e-8, "{nll} vs {}", -mass.ln());
}

/// The exact reverse kernel of `N(mu, s2)` data as an iDDPM network: eps from `E[x0 | x_k]` and
/// `v` placing the variance at `Var(x_{k-1} | x_k)` inside the learned range (`s2 = 0`: a point
/// mass, whose reverse kernel is the forward posterior). Its tables are computed here from the
/// betas, independently of the module.
struct ExactGaussian {
    mu: f64,
    s2: f64,
    abar: Vec<f64>,
    betas: Vec<f64>,
}

impl ExactGaussian {
    fn new(schedule: &DdpmDiscrete, mu: f64, s2: f64) -> Self {
        let betas = schedule.betas().to_vec();
        let mut acc = 1.0;
        let abar = betas
            .iter()
            .map(|b| {
                acc *= 1.0 - b;
                acc
            })
            .collect();
        ExactGaussian {
            mu,
            s2,
            abar,
            betas,
        }
    }

    fn prev(&self, k: usize) -> f64 {
        if k == 0 {
            1.0
        } else {
            self.abar[k - 1]
        }
    }

    fn post_var(&self, k: usize) -> f64 {
        self.betas[k] * (1.0 - self.prev(k)) / (1.0 - self.abar[k])
    }

    /// `(E[x0 | x_k] = g x + h, Var(x0 | x_k))`.
    fn posterior_x0(&self, k: usize) -> (f64, f64, f64) {
        let a = self.abar[k];
        let den = a * self.s2 + 1.0 - a;
        let g = self.s2 * a.sqrt() / den;
        (
            g,
            self.mu - g * a.sqrt() * self.mu,
            self.s2 * (1.0 - a) / den,
        )
    }

    /// The true `Var(x_{k-1} | x_k)`.
    fn reverse_var(&self, k: usize) -> f64 {
        let c1 = self.betas[k] * self.prev(k).sqrt() / (1.0 - self.abar[k]);
        self.post_var(k) + c1 * c1 * self.posterior_x0(k).2
    }
}

impl TimeNet for ExactGaussian {
    fn forward_t(
        &self,
        x: &Tensor,
        t: &Tensor,
        _class: Option<&Tensor>,
    ) -> diffusion_models::Result<Tensor> {
        // Per-step host tables, gathered at each row's step.
        let n = self.abar.len();
        let table =
            |f: &dyn Fn(usize) -> f64| Tensor::from_slice(&(0..n).map(f).collect::<Vec<_>>());
        let k = t.to_kind(Kind::Double).round().to_kind(Kind::Int64);
        let at = |f: &dyn Fn(usize) -> f64| table(f).index_select(0, &k).reshape([-1, 1]);
        let x = x.to_kind(Kind::Double);
        let sa = at(&|k| self.abar[k].sqrt());
        let s1 = at(&|k| (1.0 - self.abar[k]).sqrt());
        let g = at(&|k| self.posterior_x0(k).0);
        let h = at(&|k| self.posterior_x0(k).1);
        let eps = (&x - &sa * (g * &x + h)) / s1;
        let v = at(&|k| {
            if self.s2 == 0.0 && k > 0 {
                return -1.0;
            }
            let min_log = self.post_var(k.max(1)).ln();
            let max_log = self.betas[k].ln();
            2.0 * (self.reverse_var(k).ln() - min_log) / (max_log - min_log) - 1.0
        });
        Ok(Tensor::cat(&[eps, v.expand_as(&x)], 1))
    }

    fn kind(&self) -> Kind {
        Kind::Double
    }

    fn device(&self) -> Device {
        Device::Cpu
    }
}

#[test]
fn kl_terms_vanish_when_the_model_is_the_true_posterior() {
    tch::set_num_threads(1);
    let s = linear(40);
    let net = ExactGaussian::new(&s, 0.3, 0.0);
    let loss = IddpmLoss::new(s, 1e-3, Decoder::Gaussian).unwrap();
    let n = 64;
    let x0 = Tensor::full([n, 1], 0.3, (Kind::Double, Device::Cpu));
    let mut noise = HostNoise::new(1);
    for k in 1..40 {
        let ks = vec![k; n as usize];
        let eps = Tensor::from_slice(&noise.normals(n as usize)).reshape([n, 1]);
        let x_t = loss.q_sample(&x0, &ks, &eps).unwrap();
        let l = loss.vb_terms(&net, &x0, &x_t, &ks, None).unwrap();
        let worst = l.abs().max().double_value(&[]);
        assert!(worst < 1e-9, "KL at k = {k}: {worst}");
    }
    // A wrong variance (the fixed large one) or a wrong mean gives a positive KL.
    let s = linear(40);
    let big = IddpmLoss::new(s, 1e-3, Decoder::Gaussian)
        .unwrap()
        .with_variance(Variance::FixedLarge);
    let ks = vec![10; n as usize];
    let eps = Tensor::from_slice(&noise.normals(n as usize)).reshape([n, 1]);
    let x_t = big.q_sample(&x0, &ks, &eps).unwrap();
    let l = big.vb_terms(&net, &x0, &x_t, &ks, None).unwrap();
    assert!(l.min().double_value(&[]) > 1e-6);
    let l = big.vb_terms(&net, &(&x0 + 0.1), &x_t, &ks, None).unwrap();
    assert!(l.min().double_value(&[]) > 1e-6);
}

#[test]
fn bound_of_the_exact_model_on_gaussian_data_is_the_exact_negative_elbo() {
    tch::set_num_threads(1);
    // With p(x_{k-1} | x_k) = q(x_{k-1} | x_k) for every k, -ELBO = H(q(x0)) + KL(q(x_{T-1}) ||
    // N(0, 1)) (the joint KL reduces to the prior's), whatever the intermediate tables.
    let t_steps = 50;
    let (mu, s2) = (0.7, 0.25);
    for schedule in [
        linear(t_steps),
        DdpmDiscrete::new(
            BetaSchedule::SquaredCosCapV2 { max_beta: 0.999 },
            t_steps,
            false,
        )
        .unwrap(),
    ] {
        let net = ExactGaussian::new(&schedule, mu, s2);
        let a_last = *schedule.alphas_cumprod().last().unwrap();
        let loss = IddpmLoss::new(schedule, 1e-3, Decoder::Gaussian).unwrap();
        let n = 100_000;
        let z = HostNoise::new(11).normals(n);
        let x0 = column(&z.iter().map(|z| mu + s2.sqrt() * z).collect::<Vec<_>>());
        let b = loss
            .nll_bound(&net, &x0, None, &mut HostNoise::new(12))
            .unwrap();
        let got = b.total.mean(Kind::Double).double_value(&[]);
        let se = b.total.std(true).double_value(&[]) / (n as f64).sqrt();
        let entropy = 0.5 * (2.0 * PI * std::f64::consts::E * s2).ln();
        let (m_t, v_t) = (a_last.sqrt() * mu, a_last * s2 + 1.0 - a_last);
        let prior = 0.5 * (v_t + m_t * m_t - 1.0 - v_t.ln());
        let want = (entropy + prior) / LN_2;
        println!("bound {got:.5} bits (se {se:.1e}) vs exact -ELBO {want:.5}");
        assert!(
            (got - want).abs() < 4.0 * se,
            "bound {got} vs exact {want} (se {se})"
        );
        // The prior term is exact too.
        let pr = b.prior.mean(Kind::Double).double_value(&[]);
        let m2 = x0.square().mean(Kind::Double).double_value(&[]);
        let pr_want = 0.5 * (a_last * m2 + (1.0 - a_last) - 1.0 - (1.0 - a_last).ln()) / LN_2;
        assert!((pr - pr_want).abs() < 1e-12, "prior {pr} vs {pr_want}");
        assert_eq!(b.terms.len(), t_steps);
    }
}

/// A network whose output is a fixed leaf tensor (to read gradients with respect to it).
struct Leaf(Tensor);

impl TimeNet for Leaf {
    fn forward_t(
        &self,
        _x: &Tensor,
        _t: &Tensor,
        _class: Option<&Tensor>,
    ) -> diffusion_models::Result<Tensor> {
        Ok(self.0.shallow_clone())
    }
    fn kind(&self) -> Kind {
        Kind::Double
    }
    fn device(&self) -> Device {
        Device::Cpu
    }
}

fn grads(out: &Tensor, f: impl Fn(&Leaf) -> Tensor) -> Tensor {
    let w = out.detach().set_requires_grad(true);
    let net = Leaf(w.shallow_clone());
    f(&net).sum(Kind::Double).backward();
    w.grad()
}

#[test]
fn the_vlb_term_does_not_train_the_mean() {
    tch::set_num_threads(1);
    let s = linear(100);
    let t_steps = 100.0;
    let lambda = 1e-3;
    let loss = IddpmLoss::new(s, lambda, Decoder::Gaussian).unwrap();
    let (n, d) = (16i64, 3i64);
    let mut noise = HostNoise::new(3);
    let x0 = Tensor::from_slice(&noise.normals((n * d) as usize)).reshape([n, d]);
    let eps = Tensor::from_slice(&noise.normals((n * d) as usize)).reshape([n, d]);
    let out = Tensor::from_slice(&noise.normals((2 * n * d) as usize)).reshape([n, 2 * d]) * 0.5;
    let k: Vec<usize> = (0..n as usize).map(|i| (i * 7) % 100).collect();
    assert!(k.contains(&0));
    let hybrid = grads(&out, |net| {
        loss.per_sample(net, &x0, &k, &eps, None).unwrap()
    });
    let simple = grads(&out, |net| {
        loss.clone()
            .with_variance(Variance::FixedSmall)
            .per_sample(net, &x0, &k, &eps, None)
            .unwrap()
    });
    let x_t = loss.q_sample(&x0, &k, &eps).unwrap();
    let vb = grads(&out, |net| loss.vb_terms(net, &x0, &x_t, &k, None).unwrap());
    // The eps half of the hybrid gradient is exactly L_simple's; the v half is lambda T times
    // the bound's.
    let (he, hv) = (hybrid.narrow(1, 0, d), hybrid.narrow(1, d, d));
    let e = (he - simple.narrow(1, 0, d)).abs().max().double_value(&[]);
    assert!(e < 1e-15, "eps gradient differs from L_simple's by {e}");
    assert_eq!(simple.narrow(1, d, d).abs().max().double_value(&[]), 0.0);
    let e = (hv - vb.narrow(1, d, d) * (lambda * t_steps))
        .abs()
        .max()
        .double_value(&[]);
    assert!(e < 1e-12, "v gradient off by {e}");
    assert!(vb.narrow(1, d, d).abs().max().double_value(&[]) > 1e-3);
    // Without the stop-gradient the bound does reach the eps output.
    assert!(vb.narrow(1, 0, d).abs().max().double_value(&[]) > 1e-3);
}

#[test]
fn bad_outputs_and_steps_are_errors() {
    tch::set_num_threads(1);
    let loss = IddpmLoss::new(linear(50), 1e-3, Decoder::Gaussian).unwrap();
    let x0 = Tensor::zeros([4, 2], (Kind::Double, Device::Cpu));
    let eps = x0.ones_like();
    // Learned variance needs 2C outputs.
    let net = Leaf(Tensor::zeros([4, 2], (Kind::Double, Device::Cpu)));
    let e = loss.per_sample(&net, &x0, &[0, 1, 2, 3], &eps, None);
    assert!(matches!(e, Err(ModelError::Shape { .. })), "{e:?}");
    let net = Leaf(Tensor::zeros([4, 4], (Kind::Double, Device::Cpu)));
    assert!(loss
        .per_sample(&net, &x0, &[0, 1, 2, 50], &eps, None)
        .is_err());
    assert!(loss.per_sample(&net, &x0, &[0, 1, 2], &eps, None).is_err());
    assert!(loss
        .per_sample(&net, &x0, &[0, 1, 2, 3], &eps, None)
        .is_ok());
    assert!(loss
        .sample(&net, loss.chain(), &[4], None, &mut HostNoise::new(0))
        .is_err());
    // The objective draws steps in range and gives a finite loss.
    let l = loss.loss(&net, &x0, None, &mut HostNoise::new(1)).unwrap();
    assert!(l.double_value(&[]).is_finite());
}

#[test]
fn ancestral_sampling_of_the_exact_model_gives_the_data_law() {
    tch::set_num_threads(1);
    let schedule = DdpmDiscrete::new(
        BetaSchedule::SquaredCosCapV2 { max_beta: 0.999 },
        200,
        false,
    )
    .unwrap();
    let (mu, s2) = (0.7, 0.25);
    let net = ExactGaussian::new(&schedule, mu, s2);
    let loss = IddpmLoss::new(schedule, 1e-3, Decoder::Gaussian).unwrap();
    let n = 20_000;
    let x = loss
        .sample(&net, loss.chain(), &[n, 1], None, &mut HostNoise::new(4))
        .unwrap();
    let m = x.mean(Kind::Double).double_value(&[]);
    let v = x.var(true).double_value(&[]);
    println!("exact model: mean {m:.4} (want {mu}), var {v:.4} (want {s2})");
    // Standard errors: sqrt(s2 / n) = 0.0035 for the mean, s2 sqrt(2 / n) = 0.0025 for the var.
    assert!((m - mu).abs() < 0.015, "mean {m}");
    assert!((v - s2).abs() < 0.012, "var {v}");
    // The fixed small variance with the same (exact) mean underestimates the spread.
    let small = IddpmLoss::new(
        DdpmDiscrete::new(
            BetaSchedule::SquaredCosCapV2 { max_beta: 0.999 },
            200,
            false,
        )
        .unwrap(),
        1e-3,
        Decoder::Gaussian,
    )
    .unwrap()
    .with_variance(Variance::FixedSmall);
    // (on 10 respaced steps, where beta~ is far from the true reverse variance)
    let xs = small
        .sample(
            &net,
            &small.respaced(10).unwrap(),
            &[n, 1],
            None,
            &mut HostNoise::new(4),
        )
        .unwrap();
    let vs = xs.var(true).double_value(&[]);
    println!("fixed beta~: var {vs:.4}");
    assert!(vs < s2 - 0.02, "fixed-small variance {vs}");
}

#[test]
fn eps_head_reads_the_first_half_for_the_solvers() {
    tch::set_num_threads(1);
    let schedule = linear(50);
    let net = ExactGaussian::new(&schedule, 0.7, 0.25);
    let head = EpsHead(&net);
    let x = column(&[0.1, -0.4, 1.3]);
    let t = Tensor::from_slice(&[3.0, 17.0, 42.0]);
    let full = net.forward_t(&x, &t, None).unwrap();
    let eps = head.forward_t(&x, &t, None).unwrap();
    assert!(eps.equal(&full.narrow(1, 0, 1)));
    // Through the solvers' denoiser, under the table's own schedule (eps at t = 17).
    let den = TchDenoiser::new(&head, Parameterization::Raw(Output::Epsilon), &schedule);
    match den.predict_tensor(&x, 17.0).unwrap() {
        Prediction::Epsilon(e) => {
            let want = net
                .forward_t(
                    &x,
                    &Tensor::full([3], 17.0, (Kind::Double, Device::Cpu)),
                    None,
                )
                .unwrap()
                .narrow(1, 0, 1);
            assert!(e.equal(&want));
        }
        _ => panic!("expected an eps prediction"),
    }
    // An odd number of output channels is an error.
    let odd = Leaf(Tensor::zeros([3, 3], (Kind::Double, Device::Cpu)));
    assert!(EpsHead(&odd).forward_t(&x, &t, None).is_err());
}
