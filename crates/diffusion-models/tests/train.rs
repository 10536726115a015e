//! The trainer: training lowers the loss, a resumed run reproduces an uninterrupted one bit for
//! bit on the CPU, and damaged checkpoints are clear errors.

use diffusion_core::schedule::build_ddpm;
use diffusion_core::HostNoise;
use diffusion_models::losses::{Decoder, IddpmLoss};
use diffusion_models::train::{
    Checkpoint, LogFormat, MetricsLog, RunOptions, TrainConfig, Trainer,
};
use diffusion_models::ModelError;

mod common;
use common::tiny;

#[test]
fn resume_continues_exactly() {
    let n = 24;
    let mut straight = Trainer::new(tiny(n)).unwrap();
    let a = straight.run(&mut RunOptions::default()).unwrap();
    assert_eq!(a.len(), n as usize);

    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("checkpoint.safetensors");
    let mut first = Trainer::new(tiny(n)).unwrap();
    let mut b: Vec<_> = (0..n / 2).map(|_| first.train_step().unwrap()).collect();
    first.save_checkpoint(&ck).unwrap();
    drop(first);
    let mut second = Trainer::resume(tiny(n), &ck).unwrap();
    assert_eq!(second.step(), n / 2);
    b.extend(second.run(&mut RunOptions::default()).unwrap());

    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.step, y.step);
        assert_eq!(
            x.loss.to_bits(),
            y.loss.to_bits(),
            "loss at step {}",
            x.step
        );
        assert_eq!(
            x.grad_norm.to_bits(),
            y.grad_norm.to_bits(),
            "grad norm at {}",
            x.step
        );
        assert_eq!(x.lr.to_bits(), y.lr.to_bits());
    }
    // Weights, optimizer moments and EMA averages are identical too.
    let (ca, cb) = (straight.checkpoint().unwrap(), second.checkpoint().unwrap());
    for (u, v) in ca.model.iter().zip(&cb.model) {
        assert!(u.1.equal(&v.1), "{}", u.0);
    }
    for (u, v) in ca.exp_avg_sq.iter().zip(&cb.exp_avg_sq) {
        assert!(u.1.equal(&v.1), "{}", u.0);
    }
    for (u, v) in ca.ema[1].1.iter().zip(&cb.ema[1].1) {
        assert!(u.1.equal(&v.1), "{}", u.0);
    }
    assert_eq!(ca.optim_step, cb.optim_step);
}

#[test]
fn training_lowers_the_loss_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("metrics.jsonl");
    let mut log = MetricsLog::open(&log_path, LogFormat::Jsonl, None).unwrap();
    let ck = dir.path().join("ck.safetensors");
    let mut t = Trainer::new(tiny(300)).unwrap();
    // A fixed evaluation: the same data, noise levels and noise before and after training.
    let x_eval = t.batch(10_000).repeat([16, 1]);
    let eval = |t: &Trainer| {
        let mut noise = diffusion_core::HostNoise::new(99);
        t.objective()
            .loss(t.net(), &x_eval, None, &mut noise)
            .unwrap()
            .double_value(&[])
    };
    let before = eval(&t);
    let stats = t
        .run(&mut RunOptions {
            log: Some(&mut log),
            checkpoint: Some(ck.clone()),
            progress: false,
        })
        .unwrap();
    let after = eval(&t);
    // (The EDM loss of a perfect denoiser is far from 0: it tends to 1 at both ends of the noise
    // levels by construction, so a few percent is a real gain; the evaluation is noise-free.)
    assert!(after < 0.97 * before, "evaluation loss {before} -> {after}");
    assert_eq!(stats.len(), 300);
    assert_eq!(
        std::fs::read_to_string(&log_path).unwrap().lines().count(),
        300
    );
    assert_eq!(Checkpoint::load(&ck).unwrap().step, 300);
    // The EMA model exists for each tracked decay and differs from the raw weights.
    let (_vs, _ema_net) = t.ema_model(0.99).unwrap();
    assert!(t.ema_model(0.5).is_err());
}

#[test]
fn damaged_or_mismatched_checkpoints_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck.safetensors");
    let mut t = Trainer::new(tiny(4)).unwrap();
    t.train_step().unwrap();
    t.save_checkpoint(&ck).unwrap();
    let bytes = std::fs::read(&ck).unwrap();
    let reason = |r: Result<Trainer, ModelError>| match r {
        Err(ModelError::Checkpoint { reason, .. }) => reason,
        Err(e) => panic!("expected a checkpoint error, got {e}"),
        Ok(_) => panic!("expected a checkpoint error, got a trainer"),
    };
    std::fs::write(&ck, &bytes[..bytes.len() * 2 / 3]).unwrap();
    assert!(reason(Trainer::resume(tiny(4), &ck)).contains("truncated"));
    let mut corrupt = bytes.clone();
    let i = corrupt.len() - 3;
    corrupt[i] = corrupt[i].wrapping_add(1);
    std::fs::write(&ck, &corrupt).unwrap();
    assert!(reason(Trainer::resume(tiny(4), &ck)).contains("checksum"));
    // A different network or EMA set does not fit.
    std::fs::write(&ck, &bytes).unwrap();
    let mut wider = tiny(4);
    wider.model.mlp_mut().unwrap().hidden = 32;
    assert!(reason(Trainer::resume(wider, &ck)).contains("shape"));
    let mut other_ema = tiny(4);
    other_ema.train.ema_decays = vec![0.9];
    assert!(reason(Trainer::resume(other_ema, &ck)).contains("EMA decays"));
    assert!(Trainer::resume(tiny(4), &ck).is_ok());
}

#[test]
fn sample_pictures_are_written_every_sample_every_updates() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = tiny(20);
    cfg.train.sample_every = 10;
    cfg.sample.grid_n = 50;
    cfg.sample.steps = 4;
    let mut t = Trainer::new(cfg).unwrap();
    t.set_samples_dir(Some(dir.path().join("samples")));
    t.run(&mut RunOptions::default()).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("samples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["step_0000010.png", "step_0000020.png"]);
    let bytes = std::fs::read(dir.path().join("samples/step_0000020.png")).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // The samples behind the picture: 50 points of the configured shape, the same each time.
    let (a, labels) = t.sample(50, 7).unwrap();
    assert!(labels.is_none());
    assert_eq!(a.size(), [50, 2]);
    assert!(a.equal(&t.sample(50, 7).unwrap().0));
}

/// Writes `n` synthetic 28x28 "Fashion-MNIST" training images into `dir`: image `i` has label
/// `i % 10` and every pixel `20 * label` (so a batch's labels can be read off its pixels).
fn synthetic_fmnist(dir: &std::path::Path, n: usize) {
    use diffusion_models::data::idx::write_idx;
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let px: Vec<u8> = labels
        .iter()
        .flat_map(|&l| std::iter::repeat_n(20 * l, 784))
        .collect();
    write_idx(&dir.join("train-images-idx3-ubyte.gz"), &[n, 28, 28], &px).unwrap();
    write_idx(&dir.join("train-labels-idx1-ubyte.gz"), &[n], &labels).unwrap();
}

fn tiny_unet(dir: &std::path::Path, steps: u64) -> TrainConfig {
    TrainConfig::from_toml_str(&format!(
        r#"
seed = 5
[data]
fmnist = {{ dir = {dir:?}, classes = true, p_uncond = 0.5, flip = true }}
[model]
kind = "unet"
model_channels = 8
channel_mult = [1, 2]
num_res_blocks = 1
attention_resolutions = [14]
num_heads = 2
groups = 4
dropout = 0.2
num_classes = 10
embedding = {{ kind = "fourier", dim = 16, scale = 16.0 }}
[loss]
kind = "edm"
[train]
steps = {steps}
batch_size = 8
lr = 1e-3
warmup_steps = 2
ema_decays = [0.9]
log_every = 1
checkpoint_every = 0
[sample]
steps = 3
grid_n = 10
"#,
        dir = dir.to_string_lossy()
    ))
    .unwrap()
}

#[test]
fn a_class_conditional_unet_on_images_resumes_exactly_with_dropout_and_label_dropout() {
    let data = tempfile::tempdir().unwrap();
    synthetic_fmnist(data.path(), 40);
    let n = 6;
    let mut straight = Trainer::new(tiny_unet(data.path(), n)).unwrap();
    // Labels: the item's own (readable from its pixels) or the null class 10, about half each.
    let mut dropped = 0;
    for k in 0..8 {
        let b = straight.labelled_batch(k).unwrap();
        assert_eq!(b.x.size(), [8, 1, 28, 28]);
        let labels: Vec<i64> = Vec::try_from(b.class.unwrap()).unwrap();
        let first_px: Vec<f32> = Vec::try_from(b.x.select(1, 0).select(1, 0).select(1, 0)).unwrap();
        for (l, p) in labels.iter().zip(first_px) {
            let own = ((p + 1.0) * 127.5 / 20.0).round() as i64;
            assert!(
                *l == own || *l == 10,
                "label {l} for an image of class {own}"
            );
            dropped += (*l == 10) as usize;
        }
    }
    assert!(
        (16..=48).contains(&dropped),
        "{dropped} of 64 labels dropped at p = 0.5"
    );
    let a = straight.run(&mut RunOptions::default()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck.safetensors");
    let mut first = Trainer::new(tiny_unet(data.path(), n)).unwrap();
    let mut b: Vec<_> = (0..n / 2).map(|_| first.train_step().unwrap()).collect();
    first.save_checkpoint(&ck).unwrap();
    drop(first);
    let mut second = Trainer::resume(tiny_unet(data.path(), n), &ck).unwrap();
    b.extend(second.run(&mut RunOptions::default()).unwrap());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            x.loss.to_bits(),
            y.loss.to_bits(),
            "loss at step {}",
            x.step
        );
        assert_eq!(x.grad_norm.to_bits(), y.grad_norm.to_bits());
    }
    // Class-conditional samples of the image shape, labels i mod 10, with guidance too.
    let (s, labels) = second.sample(10, 1).unwrap();
    assert_eq!(s.size(), [10, 1, 28, 28]);
    let labels: Vec<i64> = Vec::try_from(labels.unwrap()).unwrap();
    assert_eq!(labels, (0..10).collect::<Vec<i64>>());
    second.config_mut().sample.guidance = 2.0;
    let (g, _) = second.sample(10, 1).unwrap();
    assert!(!g.equal(&s));
    let png = dir.path().join("grid.png");
    second.save_sample_picture(&png).unwrap();
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    // bf16 on the CPU falls back to fp32.
    let mut cfg = tiny_unet(data.path(), 1);
    cfg.train.precision = diffusion_models::train::Precision::Bf16;
    let t = Trainer::new(cfg).unwrap();
    assert_eq!(t.precision(), diffusion_models::train::Precision::Fp32);
}

/// A blow-up (learning rate 1e30) makes a loss non-finite within a few updates: the batched
/// read-back names that update, and the trainer is left exactly at the update before it (the
/// device-side gate turned it and every later launched update into no-ops), so it can be saved.
#[test]
fn a_non_finite_update_is_an_error_naming_it_and_leaves_the_state_before_it() {
    let mut cfg = tiny(50);
    cfg.train.lr = 1e30;
    cfg.train.warmup_steps = 0;
    cfg.train.grad_clip = 0.0;
    let mut t = Trainer::new(cfg.clone()).unwrap();
    let err = t.train_steps(10).unwrap_err();
    let bad = t.step() + 1;
    assert!(bad <= 10, "the blow-up should show within 10 updates");
    let text = err.to_string();
    assert!(
        matches!(err, ModelError::NonFinite(_)) && text.contains(&format!("update {bad} ")),
        "{text}"
    );
    let mut reference = Trainer::new(cfg).unwrap();
    for _ in 1..bad {
        reference.train_step().unwrap();
    }
    assert!(
        reference.train_step().is_err(),
        "update {bad} blows up alone too"
    );
    let (a, b) = (t.named_variables(), reference.named_variables());
    for ((n, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(
            Vec::<f32>::try_from(x.flatten(0, -1)).unwrap(),
            Vec::<f32>::try_from(y.flatten(0, -1)).unwrap(),
            "{n}"
        );
    }
    let c = t.checkpoint().unwrap();
    assert_eq!(c.step, bad - 1);
    assert_eq!(c.optim_step, bad - 1);
}

/// sCM keeps state outside the network (the tangent-warmup clock and the adaptive weighting
/// head with its AdamW and pending gradients); checkpoints carry it, so a resumed sCM run
/// computes exactly the losses of an uninterrupted one.
#[test]
fn an_scm_run_with_adaptive_weighting_resumes_exactly() {
    let cfg = |steps: u64| {
        TrainConfig::from_toml_str(&format!(
            r#"
seed = 5
[data]
toy = "8gaussians"
[model]
hidden = 16
depth = 2
embedding = {{ kind = "fourier", dim = 8, scale = 0.2 }}
[loss]
kind = "scm"
sigma_d = 2.0
warmup_steps = 10
adaptive = true
[train]
steps = {steps}
batch_size = 32
lr = 1e-3
warmup_steps = 0
ema_decays = [0.9]
log_every = 1
checkpoint_every = 0
"#
        ))
        .unwrap()
    };
    let n = 12;
    let mut straight = Trainer::new(cfg(n)).unwrap();
    let a = straight.run(&mut RunOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("scm.safetensors");
    let mut first = Trainer::new(cfg(n)).unwrap();
    let mut b = first.train_steps(n as usize / 2).unwrap();
    first.save_checkpoint(&ck).unwrap();
    drop(first);
    let stored = Checkpoint::load(&ck).unwrap();
    assert!(
        stored
            .objective
            .iter()
            .any(|(k, _)| k == "head.exp_avg.weight"),
        "{:?}",
        stored.objective.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    let mut second = Trainer::resume(cfg(n), &ck).unwrap();
    b.extend(second.run(&mut RunOptions::default()).unwrap());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.loss.to_bits(), y.loss.to_bits(), "loss at {}", x.step);
    }
}

/// `[loss] kind = "iddpm"`: the trainer trains a learned-variance MLP (twice the data's
/// outputs) with the hybrid loss, and samples it through the eps half with a registry solver;
/// a network without the variance outputs is a clear error at the first update.
#[test]
fn the_trainer_runs_improved_ddpm_with_learned_variances() {
    let cfg = |out_dim: &str| {
        TrainConfig::from_toml_str(&format!(
            r#"
seed = 2
[data]
toy = "8gaussians"
[model]
hidden = 32
depth = 2
{out_dim}
[loss]
kind = "iddpm"
schedule = "ddpm-cosine:n=100"
[train]
steps = 40
batch_size = 64
lr = 2e-3
warmup_steps = 0
ema_decays = [0.9]
log_every = 10
checkpoint_every = 0
[sample]
solver = "ddim"
grid = "uniform"
steps = 10
n = 256
"#
        ))
        .unwrap()
    };
    let mut t = Trainer::new(cfg("out_dim = 4")).unwrap();
    let stats = t.run(&mut RunOptions::default()).unwrap();
    assert_eq!(stats.len(), 40);
    assert!(stats.iter().all(|s| s.loss.is_finite()));
    let (x, _) = t.sample(256, 7).unwrap();
    assert_eq!(x.size(), vec![256, 2]);
    assert!(x.isfinite().all().int64_value(&[]) != 0);
    let mut wrong = Trainer::new(cfg("")).unwrap();
    let err = wrong.train_step().unwrap_err().to_string();
    assert!(err.contains("2C") || err.contains("channels"), "{err}");

    // `sample.solver = "iddpm-ancestral"`: the objective's own ancestral chain with the learned
    // variances, respaced to `sample.steps` entries: the same numbers as calling it directly on
    // the EMA network with the same seeded noise. The discretized decoder turns on the x0_hat
    // clipping to [-1, 1] (without it, the cosine table's last entry, alpha_bar = 2e-7 here,
    // multiplies a briefly trained network's eps error by 2000 and the chain diverges).
    let mut own = cfg("out_dim = 4");
    own.set("sample.solver = \"iddpm-ancestral\"").unwrap();
    own.set("loss.decoder = \"discretized\"").unwrap();
    own.set("train.steps = 100").unwrap();
    own.set("model.time_scale = 0.01").unwrap();
    let mut t2 = Trainer::new(own).unwrap();
    let st = t2.run(&mut RunOptions::default()).unwrap();
    assert_eq!(st.len(), 100);
    let (x, _) = t2.sample(256, 7).unwrap();
    let loss = IddpmLoss::new(
        build_ddpm("ddpm-cosine:n=100").unwrap(),
        0.001,
        Decoder::Discretized,
    )
    .unwrap()
    .with_clip(true);
    let (_, ema) = t2.ema_model(0.9).unwrap();
    let chain = loss.respaced(10).unwrap();
    let want = loss
        .sample(
            ema.as_ref(),
            &chain,
            &[256, 2],
            None,
            &mut HostNoise::new(7),
        )
        .unwrap();
    assert_eq!(x.size(), vec![256, 2]);
    {
        let c = loss.respaced(10).unwrap();
        let mut y = tch::Tensor::randn([256, 2], (tch::Kind::Float, tch::Device::Cpu));
        for k in (0..c.len()).rev() {
            let p = loss
                .reverse_step(&c, ema.as_ref(), &y, &vec![k; 256], None)
                .unwrap();
            eprintln!(
                "DBG k {k}: |x| {} |mean| {} lv [{}, {}] |x0| {}",
                y.abs().max().double_value(&[]),
                p.mean.abs().max().double_value(&[]),
                p.log_variance.min().double_value(&[]),
                p.log_variance.max().double_value(&[]),
                p.x0.abs().max().double_value(&[])
            );
            y = p.mean + (p.log_variance * 0.5).exp() * y.randn_like();
        }
    }
    assert!(x.isfinite().all().int64_value(&[]) != 0);
    assert!(
        x.equal(&want),
        "the trainer's iddpm-ancestral differs from IddpmLoss::sample"
    );
    // And it is not the ODE path through the eps half.
    let (ode, _) = t.sample(256, 7).unwrap();
    assert!(!x.allclose(&ode, 1e-3, 1e-3, false));
    // An unknown solver name is still the registry's error.
    let mut bad = cfg("out_dim = 4");
    bad.set("sample.solver = \"iddpm-ancestrall\"").unwrap();
    let tb = Trainer::new(bad).unwrap();
    assert!(tb.sample(8, 0).is_err());
}
