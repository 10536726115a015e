//! `diffusion eval --fmnist-fd SAMPLES.npy [--labels LABELS.npy]`: FMNIST-FD of generated images
//! (`diffusion_models::eval::fd`) with the project's cached classifier.

use super::EvalArgs;
use anyhow::{bail, Context, Result};
use diffusion::io::{read_npy_finite, read_npy_labels};
use diffusion::models::data::fmnist::{FashionMnist, Split};
use diffusion::models::eval::classifier::{
    default_cache_dir, CacheStatus, Classifier, ClassifierRecipe, LabeledImages,
};
use diffusion::models::eval::fd::{reference_stats, sample_metrics, split_half_fds};
use diffusion::models::tch::{Kind, Tensor};
use std::time::Instant;

fn split(s: Split) -> diffusion::models::Result<LabeledImages> {
    let (images, labels) = FashionMnist::load_default(s)?.to_tensors();
    Ok(LabeledImages { images, labels })
}

pub fn run(a: &EvalArgs) -> Result<()> {
    let path = a.fmnist_fd.as_ref().expect("--fmnist-fd given");
    let recipe = match a.classifier.as_str() {
        "default" => ClassifierRecipe::default(),
        "tiny" => ClassifierRecipe::tiny(),
        other => bail!("--classifier {other}: expected `default` or `tiny`"),
    };
    let x = read_npy_finite(path).context("--fmnist-fd")?;
    let shape = x.shape().to_vec();
    let n = shape.first().copied().unwrap_or(0);
    let per: usize = shape.iter().skip(1).product();
    anyhow::ensure!(
        n >= 2 && per == 784 && matches!(shape.len(), 2..=4),
        "--fmnist-fd {}: expected images of shape (n, 1, 28, 28), (n, 28, 28) or (n, 784) with \
         n >= 2, got {shape:?}",
        path.display()
    );
    let (lo, hi) = x
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
            (l.min(v), h.max(v))
        });
    if lo < -1.5 || hi > 1.5 {
        eprintln!(
            "eval: warning: --fmnist-fd values span [{lo}, {hi}]; the classifier expects images in [-1, 1]"
        );
    }
    let images = Tensor::from_slice(x.as_slice().context("contiguous samples")?)
        .reshape([n as i64, 1, 28, 28])
        .to_kind(Kind::Float);
    let labels = match &a.labels {
        Some(p) => {
            let l = read_npy_labels(p)?;
            anyhow::ensure!(
                l.len() == n,
                "--labels {} has {} entries for {n} images",
                p.display(),
                l.len()
            );
            anyhow::ensure!(
                l.iter().all(|&c| (0..10).contains(&c)),
                "--labels {}: labels must be in 0..10",
                p.display()
            );
            Some(Tensor::from_slice(&l))
        }
        None => None,
    };
    let cache = default_cache_dir()?;
    let t0 = Instant::now();
    let (clf, status) = Classifier::load_or_train(&recipe, &cache, || {
        Ok((split(Split::Train)?, split(Split::Test)?))
    })?;
    match &status {
        CacheStatus::Loaded => {}
        CacheStatus::Trained => eprintln!(
            "eval: trained the FMNIST classifier in {:.1} s (cached in {})",
            t0.elapsed().as_secs_f64(),
            cache.display()
        ),
        CacheStatus::Retrained(why) => eprintln!(
            "eval: the cached FMNIST classifier was unusable ({why}); retrained it in {:.1} s",
            t0.elapsed().as_secs_f64()
        ),
    }
    let reference = reference_stats(&clf, &cache, || Ok(split(Split::Test)?.images))?;
    let m = sample_metrics(&clf, &reference, &images, labels.as_ref())?;
    println!(
        "classifier_test_accuracy={:.4} recipe={} recipe_hash={:016x}",
        clf.test_accuracy().unwrap_or(f64::NAN),
        a.classifier,
        recipe.hash()
    );
    let acc = m
        .accuracy
        .map_or(String::new(), |v| format!(" classifier_accuracy={v:.4}"));
    let shares: Vec<String> = m.class_shares.iter().map(|v| format!("{v:.4}")).collect();
    println!(
        "fmnist_fd={:.4} n={} reference_n={}{acc} classifier_entropy={:.4} class_shares={}",
        m.fd,
        m.n,
        reference.n,
        m.entropy,
        shares.join(",")
    );
    if a.fd_splits > 0 {
        let fds = split_half_fds(&clf, &reference, &images, a.fd_splits, a.seed)?;
        let k = fds.len() as f64;
        let mean = fds.iter().sum::<f64>() / k;
        let sd = (fds.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
        let (lo, hi) = fds
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        println!(
            "fmnist_fd_halves splits={} n_half={} mean={mean:.4} sd={sd:.4} min={lo:.4} max={hi:.4}",
            a.fd_splits,
            n / 2
        );
    }
    Ok(())
}
