//! The bf16 training path on the CPU (`DIFFUSION_BF16_ON_CPU=1`), in a test binary of its own
//! because the switch is a process-wide environment variable.

use diffusion_models::train::{RunOptions, Trainer};

mod common;
use common::tiny;

/// The bf16 path (a bfloat16 compute copy with flat parameter and gradient buffers, float32
/// master weights), forced onto the CPU: its losses follow the float32 run's to bfloat16
/// accuracy, it trains, and it resumes exactly.
#[test]
fn the_bf16_path_tracks_fp32_and_resumes_exactly() {
    std::env::set_var("DIFFUSION_BF16_ON_CPU", "1");
    let n = 16;
    let mut fp32 = Trainer::new(tiny(n)).unwrap();
    let a = fp32.run(&mut RunOptions::default()).unwrap();
    let bf16 = |steps: u64| {
        let mut c = tiny(steps);
        c.train.precision = diffusion_models::train::Precision::Bf16;
        c
    };
    let mut low = Trainer::new(bf16(n)).unwrap();
    assert_eq!(low.precision(), diffusion_models::train::Precision::Bf16);
    let b = low.run(&mut RunOptions::default()).unwrap();
    for (x, y) in a.iter().zip(&b) {
        let rel = (x.loss - y.loss).abs() / x.loss.abs();
        assert!(
            rel < 0.01,
            "update {}: fp32 {} vs bf16 {}",
            x.step,
            x.loss,
            y.loss
        );
    }
    // The passes really ran in bfloat16 (the first loss agrees: the zero-initialised output
    // layer makes it independent of the network).
    assert!(a.iter().zip(&b).skip(1).all(|(x, y)| x.loss != y.loss));
    // The master weights are float32.
    let named = low.named_variables();
    assert!(named.iter().all(|(_, t)| t.kind() == tch::Kind::Float));
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("bf16.safetensors");
    let mut first = Trainer::new(bf16(n)).unwrap();
    let mut c = first.train_steps(n as usize / 2).unwrap();
    first.save_checkpoint(&ck).unwrap();
    let mut second = Trainer::resume(bf16(n), &ck).unwrap();
    c.extend(second.run(&mut RunOptions::default()).unwrap());
    for (x, y) in b.iter().zip(&c) {
        assert_eq!(x.loss.to_bits(), y.loss.to_bits(), "loss at {}", x.step);
    }
}
