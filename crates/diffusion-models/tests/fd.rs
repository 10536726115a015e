//! FMNIST-FD: the Frechet distance equals `diffusion_core`'s closed-form Gaussian W2^2 on random
//! Gaussians; with a small classifier trained by the tiny recipe on Fashion-MNIST, FD(train
//! subset, test subset) is small, FD to corrupted test images grows with the corruption, and the
//! classifier's accuracy and entropy behave. The Fashion-MNIST parts are skipped, with a message,
//! when the data set is not installed (`cargo xtask setup --fmnist` installs it).

use diffusion_core::metrics::gaussian_w2;
use diffusion_core::{Gaussian, HostNoise};
use diffusion_models::data::fmnist::{FashionMnist, Split};
use diffusion_models::eval::classifier::{
    CacheStatus, Classifier, ClassifierRecipe, LabeledImages,
};
use diffusion_models::eval::fd::{
    frechet_distance, mean_entropy, reference_stats, sample_metrics, split_half_fds, FeatureStats,
};
use tch::{Device, Kind, Tensor};

fn random_gaussian(d: usize, noise: &mut HostNoise) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mean = noise.normals(d);
    let a = noise.normals(d * d);
    let cov = (0..d)
        .map(|i| {
            (0..d)
                .map(|j| {
                    (0..d).map(|l| a[i * d + l] * a[j * d + l]).sum::<f64>() / d as f64
                        + if i == j { 0.1 } else { 0.0 }
                })
                .collect()
        })
        .collect();
    (mean, cov)
}

fn stats(mean: &[f64], cov: &[Vec<f64>]) -> FeatureStats {
    let d = mean.len() as i64;
    let flat: Vec<f64> = cov.iter().flatten().copied().collect();
    FeatureStats::new(
        Tensor::from_slice(mean),
        Tensor::from_slice(&flat).reshape([d, d]),
        1000,
    )
    .unwrap()
}

#[test]
fn frechet_distance_is_the_closed_form_gaussian_w2_squared() {
    let mut noise = HostNoise::new(1);
    for d in [1, 3, 8, 20] {
        let (m1, c1) = random_gaussian(d, &mut noise);
        let (m2, c2) = random_gaussian(d, &mut noise);
        let w2 = gaussian_w2(
            &Gaussian::new(m1.clone(), c1.clone()).unwrap(),
            &Gaussian::new(m2.clone(), c2.clone()).unwrap(),
        );
        let fd = frechet_distance(&stats(&m1, &c1), &stats(&m2, &c2)).unwrap();
        assert!(
            (fd - w2 * w2).abs() < 1e-9 * (1.0 + fd),
            "d {d}: {fd} vs {}",
            w2 * w2
        );
        // Symmetric, zero on itself.
        let back = frechet_distance(&stats(&m2, &c2), &stats(&m1, &c1)).unwrap();
        assert!((back - fd).abs() < 1e-9 * (1.0 + fd));
        assert!(frechet_distance(&stats(&m1, &c1), &stats(&m1, &c1)).unwrap() < 1e-9);
    }
    // Moments of feature rows: the unbiased covariance.
    let f = Tensor::from_slice(&[1.0, 2.0, 3.0, 5.0, 5.0, 2.0]).reshape([3, 2]);
    let s = FeatureStats::from_features(&f).unwrap();
    let m = Vec::<f64>::try_from(&s.mean).unwrap();
    assert_eq!(m, vec![3.0, 3.0]);
    let c = Vec::<f64>::try_from(s.cov.flatten(0, -1)).unwrap();
    assert_eq!(c, vec![4.0, 0.0, 0.0, 3.0]);
    // Bad input is an error.
    assert!(
        FeatureStats::from_features(&Tensor::zeros([1, 2], (Kind::Double, Device::Cpu))).is_err()
    );
    let (m3, c3) = random_gaussian(3, &mut noise);
    let (m4, c4) = random_gaussian(4, &mut noise);
    assert!(frechet_distance(&stats(&m3, &c3), &stats(&m4, &c4)).is_err());
    // Entropy of uniform logits is ln 10; of a sure prediction, 0.
    let uniform = Tensor::zeros([4, 10], (Kind::Double, Device::Cpu));
    assert!((mean_entropy(&uniform) - 10f64.ln()).abs() < 1e-12);
    let mut sure = vec![0.0; 10];
    sure[3] = 100.0;
    assert!(mean_entropy(&Tensor::from_slice(&sure).reshape([1, 10])) < 1e-30);
}

/// Gaussian blur of `[N, 1, 28, 28]` images in `[-1, 1]` (on `(x + 1) / 2`, background 0, zero
/// padding), standard deviation `s` pixels.
fn blur(x: &Tensor, s: f64) -> Tensor {
    let r = (3.0 * s).ceil() as i64;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * s * s)).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    let k1 =
        Tensor::from_slice(&k.iter().map(|v| v / sum).collect::<Vec<_>>()).to_kind(Kind::Float);
    let k2 = k1
        .unsqueeze(1)
        .matmul(&k1.unsqueeze(0))
        .reshape([1, 1, 2 * r + 1, 2 * r + 1]);
    let y = (x + 1.0) * 0.5;
    y.conv2d(&k2, None::<Tensor>, [1, 1], [r, r], [1, 1], 1) * 2.0 - 1.0
}

#[test]
fn fmnist_fd_ranks_corruptions_with_a_tiny_classifier() {
    let dir = FashionMnist::default_dir();
    if !(FashionMnist::is_installed(&dir, Split::Train)
        && FashionMnist::is_installed(&dir, Split::Test))
    {
        eprintln!(
            "SKIPPED fmnist_fd_ranks_corruptions_with_a_tiny_classifier: Fashion-MNIST is not in {} \
             (run `cargo xtask setup --fmnist` or set DIFFUSION_FMNIST_DIR)",
            dir.display()
        );
        return;
    }
    let load = |s: Split| {
        let (images, labels) = FashionMnist::load(&dir, s).unwrap().to_tensors();
        LabeledImages { images, labels }
    };
    let (train, test) = (load(Split::Train), load(Split::Test));
    let cache = tempfile::tempdir().unwrap();
    let recipe = ClassifierRecipe::tiny();
    let t0 = std::time::Instant::now();
    let (clf, status) = Classifier::load_or_train(&recipe, cache.path(), || {
        Ok((
            LabeledImages {
                images: train.images.shallow_clone(),
                labels: train.labels.shallow_clone(),
            },
            LabeledImages {
                images: test.images.shallow_clone(),
                labels: test.labels.shallow_clone(),
            },
        ))
    })
    .unwrap();
    let acc = clf.test_accuracy().unwrap();
    println!(
        "tiny classifier: test accuracy {acc:.4}, {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(status, CacheStatus::Trained);
    assert!(acc > 0.7, "{acc}");
    // Cached: the second call loads the same network without data.
    let (again, status) =
        Classifier::load_or_train(&recipe, cache.path(), || panic!("the cache must be used"))
            .unwrap();
    assert_eq!(status, CacheStatus::Loaded);
    assert_eq!(again.test_accuracy(), Some(acc));

    let n = 2000;
    let test_imgs = test.images.narrow(0, 0, n);
    let reference = reference_stats(&clf, cache.path(), || Ok(test_imgs.shallow_clone())).unwrap();
    assert_eq!(reference.n, n as usize);
    let fd_of = |x: &Tensor| sample_metrics(&clf, &reference, x, None).unwrap().fd;
    let fd_train = fd_of(&train.images.narrow(0, 30_000, n));
    let fd_blur1 = fd_of(&blur(&test_imgs, 1.0));
    let fd_blur2 = fd_of(&blur(&test_imgs, 2.0));
    let mut noise = HostNoise::new(5);
    let z = Tensor::from_slice(&noise.normals((n * 784) as usize))
        .reshape([n, 1, 28, 28])
        .to_kind(Kind::Float);
    let fd_noisy = fd_of(&(&test_imgs + &z * 0.5).clamp(-1.0, 1.0));
    let fd_noise = fd_of(&(&z * 0.5).clamp(-1.0, 1.0));
    println!(
        "FD: train-vs-test {fd_train:.3}, blur1 {fd_blur1:.3}, blur2 {fd_blur2:.3}, noisy {fd_noisy:.3}, pure noise {fd_noise:.3}"
    );
    assert!(fd_train < 0.2 * fd_blur1, "{fd_train} vs {fd_blur1}");
    assert!(fd_blur1 < fd_blur2, "{fd_blur1} vs {fd_blur2}");
    assert!(
        fd_blur2 < fd_noise && fd_noisy < fd_noise,
        "{fd_blur2} {fd_noisy} {fd_noise}"
    );

    // Class-conditional checks: true labels give about the test accuracy, shifted labels
    // almost nothing; noise is classified with more uncertainty than real images.
    let labels = test.labels.narrow(0, 0, n);
    let real = sample_metrics(&clf, &reference, &test_imgs, Some(&labels)).unwrap();
    let shifted = (&labels + 1).remainder(10);
    let wrong = sample_metrics(&clf, &reference, &test_imgs, Some(&shifted)).unwrap();
    let noisy = sample_metrics(&clf, &reference, &(&z * 0.5).clamp(-1.0, 1.0), None).unwrap();
    println!(
        "accuracy {:.3} (shifted labels {:.3}); entropy real {:.3}, noise {:.3}",
        real.accuracy.unwrap(),
        wrong.accuracy.unwrap(),
        real.entropy,
        noisy.entropy
    );
    assert!((real.accuracy.unwrap() - acc).abs() < 0.05);
    assert!(wrong.accuracy.unwrap() < 0.2);
    assert!(real.fd < 1e-9, "the reference set itself: {}", real.fd);
    assert!(real.entropy > 0.0 && real.entropy < 10f64.ln());

    // Class shares: the argmax mix, summing to 1; on the test images each class's share is
    // within 0.06 of its true share (the tiny classifier's confusions move them: at most 0.042
    // measured, shirts taken for other tops).
    assert_eq!(real.class_shares.len(), 10);
    assert!((real.class_shares.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    let true_shares: Vec<f64> = (0..10)
        .map(|c| {
            labels
                .eq(c)
                .to_kind(Kind::Double)
                .mean(Kind::Double)
                .double_value(&[])
        })
        .collect();
    println!(
        "class shares {:?} (true {:?})",
        real.class_shares, true_shares
    );
    for (c, (got, want)) in real.class_shares.iter().zip(&true_shares).enumerate() {
        assert!(
            (got - want).abs() < 0.06,
            "class {c}: share {got} vs {want}"
        );
    }
    // Split halves mix the rows: half real images and half noise in row order give halves
    // that each hold both (their FDs agree), where the ordered halves would give the real FD
    // and the noise FD; the values depend only on the seed.
    let half = n / 2;
    let mixed = Tensor::cat(
        &[
            test_imgs.narrow(0, 0, half),
            (&z * 0.5).clamp(-1.0, 1.0).narrow(0, 0, half),
        ],
        0,
    );
    let fds = split_half_fds(&clf, &reference, &mixed, 3, 11).unwrap();
    assert_eq!(fds.len(), 6);
    assert_eq!(
        fds,
        split_half_fds(&clf, &reference, &mixed, 3, 11).unwrap()
    );
    assert_ne!(
        fds,
        split_half_fds(&clf, &reference, &mixed, 3, 12).unwrap()
    );
    let ordered = [
        fd_of(&test_imgs.narrow(0, 0, half)),
        fd_of(&(&z * 0.5).clamp(-1.0, 1.0).narrow(0, 0, half)),
    ];
    let (lo, hi) = fds
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    println!("split halves of real + noise: {fds:?}; ordered halves {ordered:?}");
    assert!(
        hi - lo < 0.2 * (ordered[1] - ordered[0]),
        "{fds:?} vs {ordered:?}"
    );
    assert!(lo > ordered[0] && hi < ordered[1]);
    assert!(split_half_fds(&clf, &reference, &mixed.narrow(0, 0, 3), 1, 0).is_err());
}
