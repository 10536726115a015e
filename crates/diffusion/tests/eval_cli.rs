//! `diffusion eval --nll` and `diffusion eval --fmnist-fd` as black boxes: parseable lines with
//! sensible values, and clear errors with a non-zero exit on bad input.

#![cfg(feature = "tch")]

mod common;

use common::{metric, TINY};
use diffusion::io::write_npy;
use diffusion::models::data::fmnist::{FashionMnist, Split};
use ndarray::{Array1, ArrayD, IxDyn};
use ndarray_npy::WriteNpyExt;
use std::path::Path;
use std::process::{Command, Output};

fn diffusion(args: &[&str], cache: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_diffusion"));
    c.args(args);
    if let Some(d) = cache {
        c.env("DIFFUSION_CACHE_DIR", d);
    }
    c.output().expect("the program runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// [`TINY`] with another seed and 300 updates.
fn tiny_run() -> String {
    TINY.replace("seed = 1", "seed = 3")
        .replace("steps = 400", "steps = 300")
}

#[test]
fn nll_of_a_trained_run_is_near_the_data_entropy() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tiny.toml");
    std::fs::write(&cfg, tiny_run()).unwrap();
    let run = dir.path().join("run");
    let o = diffusion(
        &[
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ],
        None,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = diffusion(
        &[
            "eval",
            "--nll",
            run.to_str().unwrap(),
            "--n",
            "64",
            "--tol",
            "1e-4",
        ],
        None,
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    println!("{t}");
    // The toy's own entropy (mean -log p_data of the same points) is about 2.8 nats; a model
    // trained for 300 updates is worse but close; bits/dim = nats / (2 ln 2).
    let nll = metric(&t, "nll_nats");
    let floor = metric(&t, "nll_data_density");
    assert!(nll > floor - 0.5 && nll < floor + 1.5, "{nll} vs {floor}");
    let bpd = metric(&t, "bits_per_dim");
    assert!((bpd - nll / (2.0 * std::f64::consts::LN_2)).abs() < 1e-3);
    // Hutchinson agrees with the exact divergence within its noise.
    let o = diffusion(
        &[
            "eval",
            "--nll",
            run.to_str().unwrap(),
            "--n",
            "64",
            "--tol",
            "1e-4",
            "--divergence",
            "hutchinson",
        ],
        None,
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!((metric(&t, "nll_nats") - nll).abs() < 0.3, "{t}");
    // Errors: a folder without a run, an unknown divergence, data of the wrong width.
    let o = diffusion(&["eval", "--nll", dir.path().to_str().unwrap()], None);
    assert!(
        !o.status.success() && text(&o).contains("config.toml"),
        "{}",
        text(&o)
    );
    let o = diffusion(
        &[
            "eval",
            "--nll",
            run.to_str().unwrap(),
            "--divergence",
            "magic",
        ],
        None,
    );
    assert!(
        !o.status.success() && text(&o).contains("--divergence"),
        "{}",
        text(&o)
    );
    let bad = dir.path().join("bad.npy");
    write_npy(&bad, &ArrayD::zeros(IxDyn(&[4, 3])), false).unwrap();
    let o = diffusion(
        &[
            "eval",
            "--nll",
            run.to_str().unwrap(),
            "--data",
            bad.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        !o.status.success() && text(&o).contains("items of shape"),
        "{}",
        text(&o)
    );
}

#[test]
fn fmnist_fd_of_real_and_noise_images() {
    let data = FashionMnist::default_dir();
    if !FashionMnist::is_installed(&data, Split::Test) {
        eprintln!(
            "SKIPPED fmnist_fd_of_real_and_noise_images: Fashion-MNIST is not in {} (run `cargo \
             xtask setup --fmnist`)",
            data.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let test = FashionMnist::load(&data, Split::Test).unwrap();
    let n = 500;
    let px: Vec<f64> = test.pixels()[..n * 784]
        .iter()
        .map(|&p| p as f64 / 127.5 - 1.0)
        .collect();
    let real = dir.path().join("real.npy");
    write_npy(
        &real,
        &ArrayD::from_shape_vec(IxDyn(&[n, 1, 28, 28]), px).unwrap(),
        true,
    )
    .unwrap();
    let labels = dir.path().join("labels.npy");
    let l: Array1<i64> = test.labels()[..n].iter().map(|&c| c as i64).collect();
    l.write_npy(std::fs::File::create(&labels).unwrap())
        .unwrap();
    let args = |x: &Path| {
        vec![
            "eval".to_string(),
            "--fmnist-fd".into(),
            x.to_string_lossy().into_owned(),
            "--labels".into(),
            labels.to_string_lossy().into_owned(),
            "--classifier".into(),
            "tiny".into(),
        ]
    };
    let a: Vec<String> = args(&real);
    let o = diffusion(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        Some(&cache),
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    println!("{t}");
    let test_acc = metric(&t, "classifier_test_accuracy");
    assert!(test_acc > 0.7, "{t}");
    let acc = metric(&t, "classifier_accuracy");
    assert!((acc - test_acc).abs() < 0.08, "{t}");
    let fd_real = metric(&t, "fmnist_fd");
    assert!(t.contains("trained the FMNIST classifier"), "{t}");
    // The class mix: ten shares summing to 1.
    let shares: Vec<f64> = t
        .split("class_shares=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(|v| v.split(',').map(|x| x.parse().unwrap()).collect())
        .unwrap_or_default();
    assert_eq!(shares.len(), 10, "{t}");
    assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-3, "{t}");
    // Split halves: the FD of 250 images each, above the FD of all 500 (its bias grows as the
    // sets shrink), spread by the sampling noise.
    let mut a = args(&real);
    a.extend(["--fd-splits".into(), "3".into()]);
    let o = diffusion(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        Some(&cache),
    );
    let th = text(&o);
    assert!(o.status.success(), "{th}");
    assert!(th.contains("fmnist_fd_halves splits=3 n_half=250"), "{th}");
    let (mean, sd) = (metric(&th, "mean"), metric(&th, "sd"));
    assert!(mean > fd_real && sd > 0.0 && sd < mean, "{th}");
    // Noise images (as a flat (n, 784) array): far away, and the cached classifier is reused.
    let noise: Vec<f64> = diffusion::core::HostNoise::new(1)
        .normals(n * 784)
        .iter()
        .map(|v| (0.5 * v).clamp(-1.0, 1.0))
        .collect();
    let noisy = dir.path().join("noise.npy");
    write_npy(
        &noisy,
        &ArrayD::from_shape_vec(IxDyn(&[n, 784]), noise).unwrap(),
        false,
    )
    .unwrap();
    let a: Vec<String> = args(&noisy);
    let o = diffusion(
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
        Some(&cache),
    );
    let t2 = text(&o);
    assert!(o.status.success(), "{t2}");
    assert!(!t2.contains("trained the FMNIST classifier"), "{t2}");
    assert_eq!(metric(&t2, "classifier_test_accuracy"), test_acc);
    let fd_noise = metric(&t2, "fmnist_fd");
    assert!(fd_noise > 20.0 * fd_real, "{fd_noise} vs {fd_real}");
    // Errors: wrong image shape, labels of the wrong length, labels out of range.
    let bad = dir.path().join("bad.npy");
    write_npy(&bad, &ArrayD::zeros(IxDyn(&[5, 27, 28])), false).unwrap();
    let o = diffusion(
        &[
            "eval",
            "--fmnist-fd",
            bad.to_str().unwrap(),
            "--classifier",
            "tiny",
        ],
        Some(&cache),
    );
    assert!(
        !o.status.success() && text(&o).contains("28, 28"),
        "{}",
        text(&o)
    );
    let short = dir.path().join("short.npy");
    Array1::<i64>::zeros(3)
        .write_npy(std::fs::File::create(&short).unwrap())
        .unwrap();
    let o = diffusion(
        &[
            "eval",
            "--fmnist-fd",
            real.to_str().unwrap(),
            "--labels",
            short.to_str().unwrap(),
            "--classifier",
            "tiny",
        ],
        Some(&cache),
    );
    assert!(
        !o.status.success() && text(&o).contains("entries"),
        "{}",
        text(&o)
    );
    let o = diffusion(
        &[
            "eval",
            "--fmnist-fd",
            real.to_str().unwrap(),
            "--classifier",
            "huge",
        ],
        Some(&cache),
    );
    assert!(
        !o.status.success() && text(&o).contains("--classifier"),
        "{}",
        text(&o)
    );
}
