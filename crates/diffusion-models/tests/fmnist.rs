//! The Fashion-MNIST loader on the installed data set (skipped, with a note, where it is not
//! installed): sizes, class balance and pixel statistics published with the data set.

use diffusion_models::data::fmnist::{FashionMnist, Split};
use diffusion_models::tch::Kind;

#[test]
fn the_installed_data_set_has_the_published_sizes_and_statistics() {
    let dir = FashionMnist::default_dir();
    if !FashionMnist::is_installed(&dir, Split::Train)
        || !FashionMnist::is_installed(&dir, Split::Test)
    {
        eprintln!(
            "skipped: Fashion-MNIST is not installed in {} (cargo xtask setup --fmnist)",
            dir.display()
        );
        return;
    }
    let t0 = std::time::Instant::now();
    let train = FashionMnist::load(&dir, Split::Train).unwrap();
    let test = FashionMnist::load(&dir, Split::Test).unwrap();
    eprintln!("loaded both splits in {:.2} s", t0.elapsed().as_secs_f64());
    // Xiao et al. 2017: 60 000 + 10 000 images of 28x28, 6 000 / 1 000 per class.
    assert_eq!((train.len(), train.rows(), train.cols()), (60_000, 28, 28));
    assert_eq!(test.len(), 10_000);
    for (set, per_class) in [(&train, 6_000), (&test, 1_000)] {
        let mut counts = [0usize; 10];
        for &l in set.labels() {
            counts[l as usize] += 1;
        }
        assert_eq!(counts, [per_class; 10]);
    }
    // The first items of each file (Ankle boot first in both).
    assert_eq!(&train.labels()[..5], &[9, 0, 0, 3, 0]);
    assert_eq!(&test.labels()[..5], &[9, 2, 1, 1, 6]);
    // The usual normalisation constants of the training images: mean 0.2860, std 0.3530 (on
    // pixels / 255).
    let px = train.pixels();
    let n = px.len() as f64;
    let mean = px.iter().map(|&p| p as f64 / 255.0).sum::<f64>() / n;
    let var = px
        .iter()
        .map(|&p| (p as f64 / 255.0 - mean).powi(2))
        .sum::<f64>()
        / n;
    assert!((mean - 0.2860).abs() < 5e-4, "mean {mean}");
    assert!((var.sqrt() - 0.3530).abs() < 5e-4, "std {}", var.sqrt());
    // The tensor view: [N, 1, 28, 28] in [-1, 1], labels as i64.
    let (x, y) = test.to_tensors();
    assert_eq!(x.size(), [10_000, 1, 28, 28]);
    assert_eq!(y.size(), [10_000]);
    assert_eq!(y.kind(), Kind::Int64);
    let tmean = x.mean(Kind::Double).double_value(&[]);
    let want = test
        .pixels()
        .iter()
        .map(|&p| p as f64 / 127.5 - 1.0)
        .sum::<f64>()
        / (10_000.0 * 784.0);
    assert!((tmean - want).abs() < 1e-6);
    assert_eq!(x.min().double_value(&[]), -1.0);
    assert_eq!(x.max().double_value(&[]), 1.0);
}
