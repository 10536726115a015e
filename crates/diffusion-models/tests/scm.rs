//! sCM (Lu & Song 2024): the JVP against finite differences, the tangent of the exact TrigFlow
//! consistency function of a Gaussian (zero for distillation with the exact teacher and, in
//! conditional expectation, for training), the sign of the gradient, and 1-/2-step sampling of
//! the exact consistency function with the `consistency` solver.

use diffusion_core::schedule::TrigFlow;
use diffusion_core::{GaussianMixture, HostNoise, NoiseSchedule, TimeGrid};
use diffusion_models::losses::{jvp, ScmConfig, ScmLoss, Teacher};
use diffusion_models::{GmmNet, Mlp, MlpConfig, Output, Parameterization, TchDenoiser, TimeNet};
use diffusion_solvers::{registry, sample, NoObserver};
use tch::{nn, Device, Kind, Tensor};

const SD: f64 = 0.5;

/// The data law: a rotated anisotropic Gaussian with `E|x0|^2` close to `sigma_d^2 d`.
fn gaussian() -> GaussianMixture {
    GaussianMixture::new(
        vec![1.0],
        vec![vec![0.3, -0.2]],
        vec![vec![vec![0.3, 0.12], vec![0.12, 0.15]]],
    )
    .unwrap()
}

/// The exact TrigFlow consistency network of [`gaussian`]: `F*(x / sigma_d, t) = (cos t x -
/// f*(x, t)) / (sigma_d sin t)` with `f*` the PF-ODE map to `t = 0`, in tensor ops of `t` (so
/// the JVP sees its time derivative), plus `theta x_hat` (a perturbation with a gradient).
struct ExactF {
    mean: Tensor,
    vecs: Tensor,
    vals: Tensor,
    theta: Tensor,
}

impl ExactF {
    fn new(theta: f64) -> Self {
        let mix = gaussian();
        let g = &mix.components()[0];
        let eig = g.cov().clone().symmetric_eigen();
        let v: Vec<f64> = (0..2)
            .flat_map(|i| (0..2).map(move |j| (i, j)))
            .map(|(i, j)| eig.eigenvectors[(i, j)])
            .collect();
        ExactF {
            mean: Tensor::from_slice(&g.mean().iter().copied().collect::<Vec<_>>()).reshape([1, 2]),
            vecs: Tensor::from_slice(&v).reshape([2, 2]),
            vals: Tensor::from_slice(&eig.eigenvalues.iter().copied().collect::<Vec<_>>())
                .reshape([1, 2]),
            theta: Tensor::from_slice(&[theta]).set_requires_grad(true),
        }
    }
}

impl TimeNet for ExactF {
    fn forward_t(
        &self,
        x: &Tensor,
        t: &Tensor,
        _c: Option<&Tensor>,
    ) -> diffusion_models::Result<Tensor> {
        let x = x.to_kind(Kind::Double);
        let t = t.to_kind(Kind::Double);
        let xt = &x * SD;
        let c = t.cos().unsqueeze(1);
        let s = t.sin().unsqueeze(1);
        let r = (&self.vals / (c.square() * &self.vals + s.square() * (SD * SD))).sqrt();
        let y = (&xt - &c * &self.mean).matmul(&self.vecs);
        let f = &self.mean + (y * r).matmul(&self.vecs.tr());
        Ok((c * &xt - f) / (s * SD) + &self.theta * x)
    }
    fn kind(&self) -> Kind {
        Kind::Double
    }
    fn device(&self) -> Device {
        Device::Cpu
    }
}

fn teacher() -> Teacher {
    Teacher::new(
        Box::new(GmmNet::trigflow(&gaussian(), SD, Device::Cpu).unwrap()),
        Parameterization::TrigFlow { sigma_d: SD },
        Box::new(TrigFlow::new(SD).unwrap()),
    )
}

fn config(c: Option<f64>) -> ScmConfig {
    ScmConfig {
        sigma_d: SD,
        tangent_c: c,
        adaptive: false,
        ..ScmConfig::default()
    }
}

fn batch(n: usize, seed: u64) -> (Tensor, Vec<f64>, Tensor) {
    let mut noise = HostNoise::new(seed);
    let x0 = gaussian().sample(n, &mut noise);
    let x0 = Tensor::from_slice(x0.as_slice().unwrap()).reshape([n as i64, 2]);
    let t: Vec<f64> = (0..n).map(|_| 0.05 + 1.45 * noise.uniform()).collect();
    let eps = Tensor::from_slice(&noise.normals(2 * n)).reshape([n as i64, 2]);
    (x0, t, eps)
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

fn rms(t: &Tensor) -> f64 {
    t.square().mean(Kind::Double).sqrt().double_value(&[])
}

#[test]
fn jvp_matches_central_finite_differences() {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    let net = Mlp::new(&vs.root(), &MlpConfig::default(), 3).unwrap();
    // The output layer starts at zero: give it values so the map is not constant.
    let mut noise = HostNoise::new(11);
    for (name, v) in vs.variables() {
        if name.starts_with("out.") {
            let vals = noise.normals(v.numel());
            let src = Tensor::from_slice(&vals).reshape(v.size());
            tch::no_grad(|| v.shallow_clone().copy_(&src));
        }
    }
    let n = 16;
    let x = Tensor::from_slice(&noise.normals(2 * n)).reshape([n as i64, 2]);
    let t = Tensor::from_slice(&(0..n).map(|i| 0.1 + 0.09 * i as f64).collect::<Vec<_>>());
    let vx = Tensor::from_slice(&noise.normals(2 * n)).reshape([n as i64, 2]);
    let vt = Tensor::from_slice(&noise.normals(n));
    let f = |x: &Tensor, t: &Tensor| net.forward_t(x, t, None);
    let (y, jv) = jvp(&f, &x, &t, &vx, &vt).unwrap();
    let h = 1e-5;
    let fd = tch::no_grad(|| {
        let up = net
            .forward_t(&(&x + &vx * h), &(&t + &vt * h), None)
            .unwrap();
        let dn = net
            .forward_t(&(&x - &vx * h), &(&t - &vt * h), None)
            .unwrap();
        (up - dn) / (2.0 * h)
    });
    let err = max_abs(&(&jv - &fd));
    assert!(rms(&jv) > 0.1, "a non-trivial JVP: {}", rms(&jv));
    assert!(err < 1e-6, "JVP vs finite differences: {err}");
    assert!(max_abs(&(y - net.forward_t(&x, &t, None).unwrap())) < 1e-12);
    // The time direction alone and the state direction alone add up (linearity).
    let (_, jx) = jvp(&f, &x, &t, &vx, &vt.zeros_like()).unwrap();
    let (_, jt) = jvp(&f, &x, &t, &vx.zeros_like(), &vt).unwrap();
    assert!(max_abs(&(jx + jt - &jv)) < 1e-10);
    // No parameter received a gradient.
    assert!(vs.trainable_variables().iter().all(|p| !p.grad().defined()));
}

#[test]
fn exact_consistency_function_has_zero_tangent_under_distillation() {
    let loss = ScmLoss::distillation(config(None), teacher(), Device::Cpu).unwrap();
    let (x0, t, eps) = batch(256, 1);
    let exact = ExactF::new(0.0);
    // Its one-step map is the PF-ODE map of the data law: f(x_t, t) equals the map computed
    // by the core Gaussian for each row.
    let cos = Tensor::from_slice(&t.iter().map(|v| v.cos()).collect::<Vec<_>>()).unsqueeze(1);
    let sin = Tensor::from_slice(&t.iter().map(|v| v.sin()).collect::<Vec<_>>()).unsqueeze(1);
    let x_t = &cos * &x0 + &sin * &eps * SD;
    let f = loss.consistency(&exact, &x_t, &t, None).unwrap();
    let mix = gaussian();
    let g0 = &mix.components()[0];
    let sch = TrigFlow::new(SD).unwrap();
    let xh: Vec<f64> = Vec::try_from(x_t.reshape([-1])).unwrap();
    for (i, &ti) in t.iter().enumerate().take(32) {
        let row = ndarray::Array2::from_shape_vec((1, 2), xh[2 * i..2 * i + 2].to_vec()).unwrap();
        let want = g0.pf_ode_flow(&sch, ti, 0.0, &row.view()).unwrap();
        for j in 0..2usize {
            let got = f.double_value(&[i as i64, j as i64]);
            assert!(
                (got - want[[0, j]]).abs() < 1e-9,
                "row {i}: {got} vs {}",
                want[[0, j]]
            );
        }
    }
    let zero = |net: &dyn TimeNet| {
        let dxdt = loss.velocity(&x0, &x_t, &t, &eps, None).unwrap();
        let (_, g) = loss.tangent(net, &x_t, &t, &dxdt, 1.0, None).unwrap();
        rms(&g)
    };
    let exact_g = zero(&exact);
    let perturbed_g = zero(&ExactF::new(0.05));
    assert!(exact_g < 1e-9, "tangent at the exact function: {exact_g}");
    assert!(
        perturbed_g > 1e-3,
        "tangent of a perturbed function: {perturbed_g}"
    );
    // The loss itself (squared normalized tangent at theta = theta_-) vanishes likewise.
    let l = loss.per_sample(&exact, &x0, &t, &eps, 1.0, None).unwrap();
    assert!(max_abs(&l) < 1e-15);
}

#[test]
fn training_tangent_vanishes_in_conditional_expectation() {
    // sCT's one-sample tangent is affine in (x0, z) at fixed x_t: the average over an
    // antithetic pair x0 = m +- delta around the posterior mean m = E[x0 | x_t] is the tangent
    // along the exact velocity, i.e. zero at the exact consistency function.
    let loss = ScmLoss::training(config(None), Device::Cpu).unwrap();
    let (x0, t, eps) = batch(128, 2);
    let cos = Tensor::from_slice(&t.iter().map(|v| v.cos()).collect::<Vec<_>>()).unsqueeze(1);
    let sin = Tensor::from_slice(&t.iter().map(|v| v.sin()).collect::<Vec<_>>()).unsqueeze(1);
    let x_t = &cos * &x0 + &sin * &eps * SD;
    let gmm = GmmNet::new(
        &gaussian(),
        Box::new(TrigFlow::new(SD).unwrap()),
        Output::Sample,
        Device::Cpu,
    )
    .unwrap();
    let m = gmm.x0(&x_t, &t).unwrap();
    let delta = &x0 - &m;
    let exact = ExactF::new(0.0);
    let tangent = |x0: &Tensor| {
        let e = (&x_t - &cos * x0) / (&sin * SD);
        let dxdt = loss.velocity(x0, &x_t, &t, &e, None).unwrap();
        loss.tangent(&exact, &x_t, &t, &dxdt, 1.0, None).unwrap().1
    };
    let (gp, gm) = (tangent(&(&m + &delta)), tangent(&(&m - &delta)));
    assert!(
        rms(&gp) > 1e-2,
        "one-sample tangents are not zero: {}",
        rms(&gp)
    );
    let avg = (&gp + &gm) / 2.0;
    assert!(rms(&avg) < 1e-9, "antithetic average: {}", rms(&avg));
}

#[test]
fn the_gradient_moves_a_perturbed_function_back_to_the_exact_one() {
    // F = F* + theta x_hat: descent on the sCM loss must shrink |theta|, with or without tangent
    // normalization, in training and in distillation (a flipped tangent sign would grow it).
    for c in [None, Some(0.1)] {
        for distil in [false, true] {
            for theta in [0.1, -0.1] {
                let loss = if distil {
                    ScmLoss::distillation(config(c), teacher(), Device::Cpu).unwrap()
                } else {
                    ScmLoss::training(config(c), Device::Cpu).unwrap()
                };
                let net = ExactF::new(theta);
                let (x0, t, eps) = batch(2048, 3);
                let l = loss
                    .per_sample(&net, &x0, &t, &eps, 1.0, None)
                    .unwrap()
                    .mean(Kind::Double);
                l.backward();
                let grad = net.theta.grad().double_value(&[0]);
                assert!(
                    grad * theta > 0.0,
                    "c {c:?}, distillation {distil}, theta {theta}: gradient {grad}"
                );
            }
        }
    }
}

#[test]
fn consistency_sampler_with_the_exact_function_samples_the_data_law_in_one_and_two_steps() {
    let sch = TrigFlow::new(SD).unwrap();
    let exact = ExactF::new(0.0);
    let den = TchDenoiser::new(&exact, Parameterization::TrigFlow { sigma_d: SD }, &sch);
    let solver = registry::build::<Tensor>("consistency").unwrap();
    let n = 4000;
    let mut noise = HostNoise::new(5);
    let target = gaussian().sample(n, &mut HostNoise::new(6));
    for times in [
        vec![std::f64::consts::FRAC_PI_2, 0.0],
        vec![std::f64::consts::FRAC_PI_2, 1.1, 0.0],
    ] {
        let grid = TimeGrid::new(times.clone()).unwrap();
        let x_t = Tensor::from_slice(&noise.normals(2 * n)).reshape([n as i64, 2]) * SD;
        let mut path = diffusion_core::IndependentIncrements::seeded(8);
        let x = sample(
            solver.as_ref(),
            &den,
            &sch,
            &grid,
            x_t,
            &mut path,
            &mut NoObserver,
        )
        .unwrap();
        let xs: Vec<f64> = Vec::try_from(x.reshape([-1])).unwrap();
        let xs = ndarray::Array2::from_shape_vec((n, 2), xs).unwrap();
        let w = diffusion_core::metrics::sliced_w2(&xs.view(), &target.view(), 64, 1).unwrap();
        assert!(w < 0.05, "{times:?}: sliced W2 {w}");
        assert!(sch.alpha(std::f64::consts::FRAC_PI_2) == 0.0);
    }
}

/// A short sCM run on the eight-Gaussians toy (`sigma_d = 2`, `P_mean = -0.4`, tangent
/// normalization and warmup, no adaptive weighting, AdamW at 1e-3): `(one-step W2, two-step W2,
/// W2 of an isotropic Gaussian of the data's scale)`. The time embedding uses low frequencies
/// (Fourier scale 0.2): with the MLP's default scale 4 the `sin(t) dF/dt` term of the tangent
/// makes training diverge, the instability Lu & Song (2024, Sec. 4.1) attribute to large
/// time-embedding frequencies.
fn short_run(distil: bool, steps: u64) -> (f64, f64, f64) {
    use diffusion_core::metrics::sliced_w2;
    use diffusion_core::Toy2d;
    use diffusion_models::train::{AdamW, AdamWConfig};
    tch::set_num_threads(1);
    let sd = 2.0;
    let toy = Toy2d::EightGaussians;
    let mix = toy.as_mixture().unwrap();
    let cfg = ScmConfig {
        sigma_d: sd,
        p_mean: -0.4,
        p_std: 1.4,
        warmup_steps: steps / 10,
        adaptive: false,
        ..ScmConfig::default()
    };
    let lr = 1e-3;
    let loss = if distil {
        let teacher = Teacher::new(
            Box::new(GmmNet::trigflow(&mix, sd, Device::Cpu).unwrap()),
            Parameterization::TrigFlow { sigma_d: sd },
            Box::new(TrigFlow::new(sd).unwrap()),
        );
        ScmLoss::distillation(cfg, teacher, Device::Cpu).unwrap()
    } else {
        ScmLoss::training(cfg, Device::Cpu).unwrap()
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let mcfg = MlpConfig {
        hidden: 64,
        depth: 2,
        embedding: diffusion_models::TimeEmbedding::Fourier {
            dim: 32,
            scale: 0.2,
        },
        ..MlpConfig::default()
    };
    let net = Mlp::new(&vs.root(), &mcfg, 0).unwrap();
    let params = vs.trainable_variables();
    let mut opt = AdamW::new(
        &params,
        AdamWConfig {
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
    )
    .unwrap();
    use diffusion_models::Objective;
    for k in 0..steps {
        let mut noise = HostNoise::with_stream(1, k);
        let x0 = toy.sample(256, &mut noise);
        let x0 = Tensor::from_slice(x0.as_slice().unwrap())
            .reshape([256, 2])
            .to_kind(Kind::Float);
        for p in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        let l = loss.loss(&net, &x0, None, &mut noise).unwrap();
        l.backward();
        opt.step(&params, lr).unwrap();
    }
    let sch = TrigFlow::new(sd).unwrap();
    let den = TchDenoiser::new(&net, loss.parameterization(), &sch);
    let solver = registry::build::<Tensor>("consistency").unwrap();
    let n = 2000;
    let data = toy.sample(n, &mut HostNoise::new(99));
    let w = |times: Vec<f64>| {
        let grid = TimeGrid::new(times).unwrap();
        let x_t = Tensor::from_slice(&HostNoise::new(5).normals(2 * n))
            .reshape([n as i64, 2])
            .to_kind(Kind::Float)
            * sd;
        let mut path = diffusion_core::IndependentIncrements::seeded(8);
        let x = sample(
            solver.as_ref(),
            &den,
            &sch,
            &grid,
            x_t,
            &mut path,
            &mut NoObserver,
        )
        .unwrap();
        let xs: Vec<f64> = Vec::try_from(x.to_kind(Kind::Double).reshape([-1])).unwrap();
        let xs = ndarray::Array2::from_shape_vec((n, 2), xs).unwrap();
        sliced_w2(&xs.view(), &data.view(), 64, 1).unwrap()
    };
    let g = ndarray::Array2::from_shape_vec((n, 2), HostNoise::new(6).normals(2 * n))
        .unwrap()
        .mapv(|v| v * 2.03);
    let base = sliced_w2(&g.view(), &data.view(), 64, 1).unwrap();
    (
        w(vec![std::f64::consts::FRAC_PI_2, 0.0]),
        w(vec![std::f64::consts::FRAC_PI_2, 1.1, 0.0]),
        base,
    )
}

#[test]
fn short_distillation_gives_one_step_samples_well_below_the_gaussian_baseline() {
    let (one, two, base) = short_run(true, 500);
    eprintln!("sCD: one-step W2 {one:.4}, two-step {two:.4}, Gaussian baseline {base:.4}");
    assert!(one < 0.5 * base, "one-step {one} vs baseline {base}");
}
