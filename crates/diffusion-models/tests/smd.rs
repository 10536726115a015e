//! Soft Mixture Denoising (Li et al. 2023) on a 1-D bimodal target with 4 steps: the best
//! Gaussian reverse kernel (DDPM with the exact posterior mean, i.e. the exact mixture
//! denoiser) cannot represent the bimodal posterior of a large step; a briefly trained SMD model
//! (latent-conditioned mixture kernel) gets closer to the data law at the same 4 steps; the
//! authors' code's single-draw eps objective, trained the same way, does not.

use diffusion_core::metrics::w2_1d;
use diffusion_core::schedule::VpLinear;
use diffusion_core::{GaussianMixture, HostNoise, NoiseSchedule};
use diffusion_models::losses::SmdLoss;
use diffusion_models::train::{AdamW, AdamWConfig};
use diffusion_models::{
    GmmNet, Mlp, MlpConfig, Objective, Output, Parameterization, TimeEmbedding, TimeNet,
};
use tch::{nn, Device, Kind, Tensor};

const T_END: f64 = 0.02;

fn bimodal() -> GaussianMixture {
    GaussianMixture::new(
        vec![0.5, 0.5],
        vec![vec![-1.0], vec![1.0]],
        vec![vec![vec![0.01]], vec![vec![0.01]]],
    )
    .unwrap()
}

fn loss(latent: usize, draws: usize) -> SmdLoss {
    SmdLoss::new(Box::new(VpLinear::default()), 4, 1.0, T_END, latent, draws).unwrap()
}

/// W2 between samples and the data law diffused to `T_END` (the sampler's last time).
fn w2_to_target(x: &Tensor, seed: u64) -> f64 {
    let sch = VpLinear::default();
    let n = x.size()[0] as usize;
    let mut noise = HostNoise::new(seed);
    let x0 = bimodal().sample(n, &mut noise);
    let z = noise.normals(n);
    let want: Vec<f64> = x0
        .iter()
        .zip(&z)
        .map(|(a, e)| sch.alpha(T_END) * a + sch.sigma(T_END) * e)
        .collect();
    let got: Vec<f64> = Vec::try_from(x.to_kind(Kind::Double).reshape([-1])).unwrap();
    w2_1d(got, want).unwrap()
}

/// An eps MLP of `[x_t, z]` (1-D latent) trained for 350 updates on `smd`'s objective, then
/// sampled: its W2 to the target.
fn trained_w2(smd: &SmdLoss) -> f64 {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Mlp::new(&vs.root(), &mlp_config(), 0).unwrap();
    let params = vs.trainable_variables();
    let mut opt = AdamW::new(
        &params,
        AdamWConfig {
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
    )
    .unwrap();
    for k in 0..350u64 {
        let mut noise = HostNoise::with_stream(7, k);
        let x0 = bimodal().sample(256, &mut noise);
        let x0 = Tensor::from_slice(x0.as_slice().unwrap())
            .reshape([256, 1])
            .to_kind(Kind::Float);
        for p in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
        let l = smd.loss(&net, &x0, None, &mut noise).unwrap();
        l.backward();
        let lr = if k < 250 { 5e-3 } else { 2e-3 };
        opt.step(&params, lr).unwrap();
    }
    let x = smd.sample(&net, 4000, 1, &mut HostNoise::new(1)).unwrap();
    w2_to_target(&x, 2)
}

fn mlp_config() -> MlpConfig {
    MlpConfig {
        data_dim: 2,
        hidden: 64,
        depth: 2,
        embedding: TimeEmbedding::Fourier {
            dim: 16,
            scale: 1.0,
        },
        ..MlpConfig::default()
    }
}

/// W2 of the best Gaussian kernel (the exact denoiser, no latent) at 4 steps.
fn gaussian_kernel_w2() -> f64 {
    let exact = GmmNet::new(
        &bimodal(),
        Box::new(VpLinear::default()),
        Parameterization::Raw(Output::Epsilon),
    )
    .unwrap();
    let ddpm = loss(0, 1)
        .sample(&exact, 4000, 1, &mut HostNoise::new(1))
        .unwrap();
    w2_to_target(&ddpm, 2)
}

#[test]
fn smd_beats_the_best_gaussian_kernel_at_four_steps() {
    tch::set_num_threads(1);
    let w_ddpm = gaussian_kernel_w2();
    // SMD trained on the 8-draw bound.
    let w_smd = trained_w2(&loss(1, 8));
    eprintln!("W2 at 4 steps: exact Gaussian kernel {w_ddpm:.4}, SMD {w_smd:.4}");
    assert!(
        w_ddpm > 0.1,
        "the Gaussian kernel should miss at 4 steps: {w_ddpm}"
    );
    assert!(
        w_smd < 0.7 * w_ddpm,
        "SMD {w_smd} vs Gaussian kernel {w_ddpm}"
    );
}

/// The authors' code's objective (one draw, eps MSE) has the latent-free optimum `E[eps | x_t]`:
/// trained the same way it stays at (or above) the Gaussian kernel's error.
#[test]
fn the_single_draw_eps_objective_learns_no_mixture() {
    tch::set_num_threads(1);
    let w_ddpm = gaussian_kernel_w2();
    let w_mse = trained_w2(&loss(1, 8).eps_mse());
    eprintln!("W2 at 4 steps: exact Gaussian kernel {w_ddpm:.4}, SMD eps-MSE {w_mse:.4}");
    assert!(
        w_mse > 0.85 * w_ddpm,
        "eps-MSE {w_mse} vs Gaussian kernel {w_ddpm}"
    );
}

/// `eps_mse` is the per-sample mean of `(eps_hat([x_t, z], t_i) - eps)^2`, `x_t = alpha x0 +
/// sigma eps`, at the grid time `t_i = t_end + (t_start - t_end) i / N`.
#[test]
fn eps_mse_is_the_per_sample_eps_error() {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Mlp::new(&vs.root(), &mlp_config(), 3).unwrap();
    let smd = loss(1, 3).eps_mse();
    let mut noise = HostNoise::new(5);
    let b = 6;
    let x0 = Tensor::from_slice(&noise.normals(b)).reshape([b as i64, 1]);
    let eps = Tensor::from_slice(&noise.normals(b)).reshape([b as i64, 1]);
    let xi = Tensor::from_slice(&noise.normals(b)).reshape([b as i64, 1]);
    let z = Tensor::from_slice(&noise.normals(b)).reshape([1, b as i64, 1]);
    let i = [1usize, 2, 3, 4, 2, 1];
    let got = smd.per_sample(&net, &x0, &i, &eps, &xi, &z, None).unwrap();
    let sch = VpLinear::default();
    let t: Vec<f64> = i
        .iter()
        .map(|&k| T_END + (1.0 - T_END) * k as f64 / 4.0)
        .collect();
    let col = |v: Vec<f64>| Tensor::from_slice(&v).reshape([b as i64, 1]);
    let x_t = col(t.iter().map(|&s| sch.alpha(s)).collect()) * &x0
        + col(t.iter().map(|&s| sch.sigma(s)).collect()) * &eps;
    let out = net
        .forward_t(
            &Tensor::cat(&[x_t, z.get(0)], 1).to_kind(Kind::Float),
            &Tensor::from_slice(&t).to_kind(Kind::Float),
            None,
        )
        .unwrap()
        .narrow(1, 0, 1)
        .to_kind(Kind::Double);
    let want = (out - &eps).square().reshape([-1]);
    let diff = (got - &want).abs().max().double_value(&[]);
    assert!(diff < 1e-6, "eps-MSE differs from its definition by {diff}");
    // The bound (the default) is a different quantity on the same inputs.
    let bound = loss(1, 1)
        .per_sample(&net, &x0, &i, &eps, &xi, &z, None)
        .unwrap();
    assert!((bound - want).abs().max().double_value(&[]) > 1e-3);
}

#[test]
fn bad_inputs_are_errors() {
    assert!(SmdLoss::new(Box::new(VpLinear::default()), 0, 1.0, T_END, 1, 4).is_err());
    assert!(SmdLoss::new(Box::new(VpLinear::default()), 4, 1.0, 0.0, 1, 4).is_err());
    assert!(SmdLoss::new(Box::new(VpLinear::default()), 4, 1.0, T_END, 1, 0).is_err());
}
