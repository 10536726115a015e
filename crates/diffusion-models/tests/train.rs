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
    wider.model.hidden = 32;
    assert!(reason(Trainer::resume(wider, &ck)).contains("shape"));
    let mut other_ema = tiny(4);
    other_ema.train.ema_decays = vec![0.9];
    assert!(reason(Trainer::resume(other_ema, &ck)).contains("EMA decays"));
    assert!(Trainer::resume(tiny(4), &ck).is_ok());
}
