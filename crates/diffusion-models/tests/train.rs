//! The trainer: training lowers the loss, a resumed run reproduces an uninterrupted one bit for
//! bit on the CPU, and damaged checkpoints are clear errors.

use diffusion_models::train::{
    Checkpoint, LogFormat, MetricsLog, RunOptions, TrainConfig, Trainer,
};
use diffusion_models::ModelError;

fn tiny(steps: u64) -> TrainConfig {
    TrainConfig::from_toml_str(&format!(
        r#"
seed = 3
[data]
toy = "8gaussians"
[model]
hidden = 16
depth = 2
embedding = {{ kind = "fourier", dim = 8, scale = 2.0 }}
[loss]
kind = "edm"
sigma_data = 2.0
p_mean = 0.0
[train]
steps = {steps}
batch_size = 64
lr = 5e-3
warmup_steps = 5
weight_decay = 0.01
grad_clip = 0.5
ema_decays = [0.9, 0.99]
log_every = 1
checkpoint_every = 0
"#
    ))
    .unwrap()
}

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
