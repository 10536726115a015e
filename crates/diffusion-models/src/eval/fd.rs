//! FMNIST-FD: the Frechet distance between Gaussians fitted to the penultimate-layer features of
//! the project's Fashion-MNIST classifier, plus that classifier's accuracy and mean predictive
//! entropy on class-conditional samples.
//!
//! Paper: Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter (2017), "GANs Trained by a Two
//! Time-Scale Update Rule Converge to a Local Nash Equilibrium", arXiv:1706.08500, Eq. (6):
//! `FD = |m1 - m2|^2 + tr(C1 + C2 - 2 (C1 C2)^{1/2})`, the squared 2-Wasserstein distance between
//! `N(m1, C1)` and `N(m2, C2)` (Dowson & Landau 1982), computed here as
//! `tr((C1^{1/2} C2 C1^{1/2})^{1/2})` with symmetric eigendecompositions in `f64` (negative
//! round-off eigenvalues clamped to 0); the covariances are unbiased (`n - 1`), as in FID's
//! reference code. The same formula as `diffusion_core::metrics::gaussian_w2` (squared), which
//! the tests check it against. Accuracy and mean entropy `-sum_c p_c ln p_c` of the
//! classifier's softmax on class-conditional samples follow the "classification accuracy
//! score"-style checks of Ravuri & Vinyals (2019), arXiv:1905.10887, and the Inception Score's
//! confidence term (Salimans et al. 2016, arXiv:1606.03498).
//!
//! The features of the numbers reported by `diffusion eval --fmnist-fd` are those of the
//! default [`ClassifierRecipe`]; an FD is only comparable with FDs of the same recipe hash.
//! Reference statistics of the test set are cached next to the classifier as
//! `fmnist-test-stats-v1-<recipe hash>.safetensors` (mean, covariance, count, checksum; written
//! atomically; an unusable file is recomputed).

use super::classifier::{check_images, Classifier, ClassifierRecipe};
use crate::error::{ModelError, Result};
use crate::train::checkpoint::{checksum, load_weights, save_weights, Named};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Mean and covariance of a set of feature vectors.
#[derive(Debug)]
pub struct FeatureStats {
    /// `[F]` mean (`f64`).
    pub mean: Tensor,
    /// `[F, F]` unbiased covariance (`f64`).
    pub cov: Tensor,
    /// Number of feature vectors.
    pub n: usize,
}

impl FeatureStats {
    /// Statistics of given moments (`mean [F]`, symmetric `cov [F, F]`).
    pub fn new(mean: Tensor, cov: Tensor, n: usize) -> Result<Self> {
        let f = mean.size();
        if f.len() != 1 || cov.size() != [f[0], f[0]] {
            return Err(ModelError::Shape {
                context: "feature statistics (mean [F], covariance [F, F])".into(),
                expected: vec![f.first().copied().unwrap_or(-1); 2],
                got: cov.size(),
            });
        }
        Ok(FeatureStats {
            mean: mean.to_kind(Kind::Double).to_device(Device::Cpu),
            cov: cov.to_kind(Kind::Double).to_device(Device::Cpu),
            n,
        })
    }

    /// Mean and unbiased covariance of the rows of `features` (`[N, F]`, `N >= 2`).
    pub fn from_features(features: &Tensor) -> Result<Self> {
        let s = features.size();
        if s.len() != 2 || s[0] < 2 {
            return Err(ModelError::Shape {
                context: "features for statistics (need at least 2 rows)".into(),
                expected: vec![-1, -1],
                got: s,
            });
        }
        let x = features.to_kind(Kind::Double).to_device(Device::Cpu);
        if !bool::try_from(x.isfinite().all())? {
            return Err(ModelError::NonFinite("the features".into()));
        }
        let mean = x.mean_dim(0, false, Kind::Double);
        let c = &x - mean.unsqueeze(0);
        let cov = c.transpose(0, 1).matmul(&c) / (s[0] - 1) as f64;
        Ok(FeatureStats {
            mean,
            cov,
            n: s[0] as usize,
        })
    }

    /// Writes the statistics atomically with a checksum.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut e: Named = vec![
            ("cov".into(), self.cov.shallow_clone()),
            ("mean".into(), self.mean.shallow_clone()),
            ("n".into(), Tensor::from_slice(&[self.n as i64])),
        ];
        let sum = checksum(&e)?;
        e.push(("checksum".into(), Tensor::from_slice(&[sum as i64])));
        save_weights(path, &e)
    }

    /// Reads statistics written by [`FeatureStats::save`], verifying the checksum.
    pub fn load(path: &Path) -> Result<Self> {
        let mut e = load_weights(path)?;
        let bad = |reason: &str| ModelError::checkpoint(path, reason.to_string());
        let pos = e
            .iter()
            .position(|(n, _)| n == "checksum")
            .ok_or_else(|| bad("no `checksum` entry"))?;
        let stored = e.remove(pos).1.int64_value(&[0]) as u64;
        if checksum(&e)? != stored {
            return Err(bad("checksum mismatch: the file is corrupted"));
        }
        let take = |name: &str| -> Result<Tensor> {
            e.iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.shallow_clone())
                .ok_or_else(|| bad(&format!("no `{name}` entry")))
        };
        let n = take("n")?.int64_value(&[0]) as usize;
        FeatureStats::new(take("mean")?, take("cov")?, n)
    }
}

/// The symmetric eigenvalues of `a` (symmetrized first).
fn sym_eigvals(a: &Tensor) -> Result<Tensor> {
    let s = (a + a.transpose(0, 1)) * 0.5;
    Ok(s.f_linalg_eigvalsh("L")?)
}

/// The Frechet distance `|m1 - m2|^2 + tr(C1 + C2 - 2 (C1^{1/2} C2 C1^{1/2})^{1/2})` (the
/// squared 2-Wasserstein distance of the fitted Gaussians).
pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> Result<f64> {
    if a.mean.size() != b.mean.size() {
        return Err(ModelError::Shape {
            context: "Frechet distance (both sets need the same feature width)".into(),
            expected: a.mean.size(),
            got: b.mean.size(),
        });
    }
    let dm = (&a.mean - &b.mean)
        .square()
        .sum(Kind::Double)
        .double_value(&[]);
    let s = (&a.cov + a.cov.transpose(0, 1)) * 0.5;
    let (vals, vecs) = s.f_linalg_eigh("L")?;
    let root = vecs
        .matmul(&Tensor::diag_embed(&vals.clamp_min(0.0).sqrt(), 0, -2, -1))
        .matmul(&vecs.transpose(0, 1));
    let inner = root.matmul(&b.cov).matmul(&root);
    let tr_sqrt = sym_eigvals(&inner)?
        .clamp_min(0.0)
        .sqrt()
        .sum(Kind::Double)
        .double_value(&[]);
    let tr = a.cov.trace().double_value(&[]) + b.cov.trace().double_value(&[]);
    Ok((dm + tr - 2.0 * tr_sqrt).max(0.0))
}

/// The classifier's view of a set of images.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleMetrics {
    /// The FMNIST-FD to the reference statistics.
    pub fd: f64,
    /// The fraction classified as their label (`None` without labels).
    pub accuracy: Option<f64>,
    /// Mean predictive entropy of the softmax, in nats (0: confident; `ln 10 = 2.30`: uniform).
    pub entropy: f64,
    /// The share of the images the classifier puts in each class (its argmax), classes in order:
    /// the class mix of the samples (a model that drops or favours a class shows it here).
    pub class_shares: Vec<f64>,
    /// Number of images.
    pub n: usize,
}

/// Mean entropy (nats) of the softmax of `logits` (`[N, C]`).
pub fn mean_entropy(logits: &Tensor) -> f64 {
    let logp = logits.to_kind(Kind::Double).log_softmax(-1, Kind::Double);
    -(logp.exp() * &logp)
        .sum_dim_intlist(-1, false, Kind::Double)
        .mean(Kind::Double)
        .double_value(&[])
}

/// FD of `images` to `reference`, with accuracy against `labels` when given and the mean
/// predictive entropy.
pub fn sample_metrics(
    clf: &Classifier,
    reference: &FeatureStats,
    images: &Tensor,
    labels: Option<&Tensor>,
) -> Result<SampleMetrics> {
    let n = check_images(images, labels, "samples")?;
    if !bool::try_from(images.isfinite().all())? {
        return Err(ModelError::NonFinite("the sample images".into()));
    }
    let (f, logits) = clf.features_and_logits(images)?;
    let stats = FeatureStats::from_features(&f)?;
    let accuracy = labels.map(|l| {
        logits
            .argmax(1, false)
            .eq_tensor(&l.to_kind(Kind::Int64).to_device(Device::Cpu))
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[])
    });
    let predicted: Vec<i64> = Vec::try_from(logits.argmax(1, false))?;
    let classes = *logits.size().last().unwrap_or(&0) as usize;
    let mut class_shares = vec![0.0; classes];
    for &c in &predicted {
        class_shares[c as usize] += 1.0 / predicted.len() as f64;
    }
    Ok(SampleMetrics {
        fd: frechet_distance(&stats, reference)?,
        accuracy,
        entropy: mean_entropy(&logits),
        class_shares,
        n: n as usize,
    })
}

/// The FDs of random halves of `images`: for each of `splits` seeded permutations (stream `k`
/// of `HostNoise::with_stream(seed, k)`, Fisher-Yates), the FD of the first `n / 2` images and
/// of the rest, `2 * splits` values in all. Their spread is the sampling noise of an FD of `n / 2`
/// images, the scale to compare two sample sets' FDs against (the FD of all `n` images is
/// biased upwards less and varies less, but by the same mechanism). The features are computed
/// once.
pub fn split_half_fds(
    clf: &Classifier,
    reference: &FeatureStats,
    images: &Tensor,
    splits: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let n = check_images(images, None, "samples")? as usize;
    if n < 4 {
        return Err(ModelError::invalid(
            "images",
            format!("split halves need at least 4 images, got {n}"),
        ));
    }
    let (f, _) = clf.features_and_logits(images)?;
    let mut out = Vec::with_capacity(2 * splits);
    for k in 0..splits {
        let mut noise = diffusion_core::HostNoise::with_stream(seed, k as u64);
        let mut perm: Vec<i64> = (0..n as i64).collect();
        for i in (1..n).rev() {
            let j = ((noise.uniform() * (i + 1) as f64) as usize).min(i);
            perm.swap(i, j);
        }
        let (a, b) = perm.split_at(n / 2);
        for half in [a, b] {
            let rows = f.index_select(0, &Tensor::from_slice(half).to_device(f.device()));
            out.push(frechet_distance(
                &FeatureStats::from_features(&rows)?,
                reference,
            )?);
        }
    }
    Ok(out)
}

/// File name of the cached test-set statistics for `recipe`.
pub fn test_stats_file_name(recipe: &ClassifierRecipe) -> String {
    format!("fmnist-test-stats-v1-{:016x}.safetensors", recipe.hash())
}

/// The feature statistics of the test images `test` under `clf`, from
/// `cache_dir/`[`test_stats_file_name`] when present and valid, else computed and saved there.
/// The file is keyed by the classifier recipe only, so a cache folder must always be given the
/// same reference images (the CLI: the whole Fashion-MNIST test set).
pub fn reference_stats(
    clf: &Classifier,
    cache_dir: &Path,
    test: impl FnOnce() -> Result<Tensor>,
) -> Result<FeatureStats> {
    let path = cache_dir.join(test_stats_file_name(clf.recipe()));
    if let Ok(s) = FeatureStats::load(&path) {
        if s.mean.size() == [clf.feature_dim() as i64] {
            return Ok(s);
        }
    }
    let images = test()?;
    let (f, _) = clf.features_and_logits(&images)?;
    let s = FeatureStats::from_features(&f)?;
    std::fs::create_dir_all(cache_dir)?;
    s.save(&path)?;
    Ok(s)
}
