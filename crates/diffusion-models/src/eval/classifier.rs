//! A small CNN classifier of Fashion-MNIST, trained by a deterministic recipe and cached, whose
//! penultimate-layer features define the project's FMNIST-FD (see [`super::fd`]).
//!
//! Paper: Heusel, Ramsauer, Unterthiner, Nessler & Hochreiter (2017), "GANs Trained by a Two
//! Time-Scale Update Rule Converge to a Local Nash Equilibrium", arXiv:1706.08500, Sec. 4 (FID:
//! the Frechet distance between Gaussians fitted to a classifier's penultimate features); the
//! data set is Xiao, Rasul & Vollgraf (2017), "Fashion-MNIST", arXiv:1708.07747. The network is
//! the usual two-convolution CNN (LeCun et al. 1998 style): the PyTorch equivalent, whose
//! `state_dict` names the parameters, is
//!
//! ```text
//! class FmnistClassifier(nn.Module):
//!     def __init__(self, c1=16, c2=32, features=128):
//!         self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
//!         self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
//!         self.fc1 = nn.Linear(c2 * 7 * 7, features)
//!         self.fc2 = nn.Linear(features, 10)
//!     def features(self, x):                      # x: [N, 1, 28, 28] in [-1, 1]
//!         h = F.max_pool2d(F.relu(self.conv1(x)), 2)
//!         h = F.max_pool2d(F.relu(self.conv2(h)), 2)
//!         return F.relu(self.fc1(h.flatten(1)))   # the FD features
//!     def forward(self, x):
//!         return self.fc2(self.features(x))       # logits
//! ```
//!
//! # Recipe (deterministic)
//! Weights start as PyTorch's defaults (uniform on `+-1/sqrt(fan_in)`) drawn from
//! `HostNoise::new(seed)`; epoch `e` visits the training images in the order of a Fisher-Yates
//! permutation drawn from `HostNoise::with_stream(seed, e + 1)`, in mini-batches of
//! `batch_size` (the last partial batch is dropped); the loss is the cross-entropy, the
//! optimizer the crate's AdamW (no weight decay) with a cosine learning rate from `lr` to
//! `lr / 20` over all updates, on one CPU thread. The default recipe reaches about 90% test
//! accuracy (docs/results.md has the measured number and time).
//!
//! # Cache
//! [`Classifier::load_or_train`] keeps the weights in
//! `<cache>/fmnist-classifier-v1-<hash>.safetensors`, `<hash>` the FNV-1a hash of the recipe
//! ([`ClassifierRecipe::hash`]), next to `meta.test_accuracy`, `meta.recipe_hash` and a
//! `meta.checksum` over everything else. It is written atomically (temporary file, fsync,
//! rename). A cache file that cannot be read, fails its checksum or belongs to another recipe is
//! **retrained and overwritten**, and [`CacheStatus::Retrained`] says why (the CLI prints it).
//! The cache folder is `$DIFFUSION_CACHE_DIR`, else `$XDG_CACHE_HOME/diffusion-rs`, else
//! `~/.cache/diffusion-rs` ([`default_cache_dir`]), the folder xtask keeps libtorch in.

use crate::error::{ModelError, Result};
use crate::nets::{fill_from_host, uniform_values};
use crate::train::adamw::{AdamW, AdamWConfig};
use crate::train::checkpoint::{checksum, fnv1a, load_weights, save_weights, Named};
use crate::train::lr::WarmupCosine;
use diffusion_core::HostNoise;
use std::path::{Path, PathBuf};
use tch::{nn, Device, Kind, Tensor};

/// Number of Fashion-MNIST classes.
pub const NUM_CLASSES: i64 = 10;

/// The training recipe (every field enters the cache key).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierRecipe {
    /// Seed of the initial weights and the batch order.
    pub seed: u64,
    /// Channels of the first convolution.
    pub c1: usize,
    /// Channels of the second convolution.
    pub c2: usize,
    /// Width of the penultimate (feature) layer.
    pub features: usize,
    /// Passes over the training data.
    pub epochs: usize,
    /// Images per update.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Train on the first `n` training images only (`None`: all 60000); tests use small recipes.
    pub train_subset: Option<usize>,
}

impl Default for ClassifierRecipe {
    fn default() -> Self {
        ClassifierRecipe {
            seed: 0,
            c1: 16,
            c2: 32,
            features: 128,
            epochs: 3,
            batch_size: 128,
            lr: 2e-3,
            train_subset: None,
        }
    }
}

impl ClassifierRecipe {
    /// A small, fast recipe for tests (8/16 channels, 32 features, 6000 images, 2 epochs).
    pub fn tiny() -> Self {
        ClassifierRecipe {
            seed: 0,
            c1: 8,
            c2: 16,
            features: 32,
            epochs: 2,
            batch_size: 100,
            lr: 3e-3,
            train_subset: Some(6000),
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("c1", self.c1),
            ("c2", self.c2),
            ("features", self.features),
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
        ] {
            if v == 0 {
                return Err(ModelError::invalid(name, "must be at least 1"));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(ModelError::invalid(
                "lr",
                format!("must be finite and positive, got {}", self.lr),
            ));
        }
        if self.train_subset == Some(0) {
            return Err(ModelError::invalid("train_subset", "must be at least 1"));
        }
        Ok(())
    }

    /// The cache key: FNV-1a (64 bit) of the format version and every field.
    pub fn hash(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        fnv1a(&mut h, format!("fmnist-classifier-v1 {self:?}").as_bytes());
        h
    }

    /// The cache file name, `fmnist-classifier-v1-<hash>.safetensors`.
    pub fn file_name(&self) -> String {
        format!("fmnist-classifier-v1-{:016x}.safetensors", self.hash())
    }
}

/// The cache folder: `$DIFFUSION_CACHE_DIR`, else `$XDG_CACHE_HOME/diffusion-rs`, else
/// `~/.cache/diffusion-rs`.
pub fn default_cache_dir() -> Result<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = nonempty("DIFFUSION_CACHE_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = nonempty("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(d).join("diffusion-rs"));
    }
    if let Some(h) = nonempty("HOME") {
        return Ok(PathBuf::from(h).join(".cache").join("diffusion-rs"));
    }
    Err(ModelError::invalid(
        "cache folder",
        "none of DIFFUSION_CACHE_DIR, XDG_CACHE_HOME, HOME is set",
    ))
}

/// How [`Classifier::load_or_train`] got its weights.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheStatus {
    /// Read from the cache.
    Loaded,
    /// Trained (there was no cache file) and saved.
    Trained,
    /// The cache file was unusable (the reason), so the classifier was retrained and saved.
    Retrained(String),
}

/// Fashion-MNIST images and labels for training and testing the classifier.
#[derive(Debug)]
pub struct LabeledImages {
    /// `[N, 1, 28, 28]` in `[-1, 1]`.
    pub images: Tensor,
    /// `[N]` class indices in `0..10` (`Int64`).
    pub labels: Tensor,
}

/// Checks `[N, 1, 28, 28]` images (and, when given, `[N]` labels in `0..10`).
pub fn check_images(images: &Tensor, labels: Option<&Tensor>, what: &str) -> Result<i64> {
    let s = images.size();
    if s.len() != 4 || s[1..] != [1, 28, 28] || s[0] == 0 {
        return Err(ModelError::Shape {
            context: format!("{what}: Fashion-MNIST images"),
            expected: vec![-1, 1, 28, 28],
            got: s,
        });
    }
    if let Some(l) = labels {
        if l.size() != [s[0]] {
            return Err(ModelError::Shape {
                context: format!("{what}: one label per image"),
                expected: vec![s[0]],
                got: l.size(),
            });
        }
        let l = l.to_kind(Kind::Int64);
        let (lo, hi) = (l.min().int64_value(&[]), l.max().int64_value(&[]));
        if lo < 0 || hi >= NUM_CLASSES {
            return Err(ModelError::invalid(
                "labels",
                format!("{what}: labels must be in 0..{NUM_CLASSES}, got {lo}..={hi}"),
            ));
        }
    }
    Ok(s[0])
}

/// The CNN (see the module documentation).
pub struct Classifier {
    vs: nn::VarStore,
    recipe: ClassifierRecipe,
    params: Vec<Tensor>,
    test_accuracy: Option<f64>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("recipe", &self.recipe)
            .field("test_accuracy", &self.test_accuracy)
            .finish()
    }
}

/// Parameter names and shapes, in the order of `params`.
fn layout(r: &ClassifierRecipe) -> Vec<(&'static str, Vec<i64>, i64)> {
    let (c1, c2, f) = (r.c1 as i64, r.c2 as i64, r.features as i64);
    vec![
        ("conv1.weight", vec![c1, 1, 3, 3], 9),
        ("conv1.bias", vec![c1], 9),
        ("conv2.weight", vec![c2, c1, 3, 3], c1 * 9),
        ("conv2.bias", vec![c2], c1 * 9),
        ("fc1.weight", vec![f, c2 * 49], c2 * 49),
        ("fc1.bias", vec![f], c2 * 49),
        ("fc2.weight", vec![NUM_CLASSES, f], f),
        ("fc2.bias", vec![NUM_CLASSES], f),
    ]
}

impl Classifier {
    /// A fresh network for `recipe` with seeded initial weights (on the CPU).
    pub fn new(recipe: &ClassifierRecipe) -> Result<Self> {
        recipe.validate()?;
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let mut noise = HostNoise::new(recipe.seed);
        let mut params = Vec::new();
        for (name, shape, fan_in) in layout(recipe) {
            let (module, leaf) = name.split_once('.').expect("layout names are module.leaf");
            let t = (&root / module).var(leaf, &shape, nn::Init::Const(0.0));
            let bound = 1.0 / (fan_in as f64).sqrt();
            fill_from_host(&t, &uniform_values(&mut noise, t.numel(), bound));
            params.push(t);
        }
        Ok(Classifier {
            vs,
            recipe: recipe.clone(),
            params,
            test_accuracy: None,
        })
    }

    /// The recipe.
    pub fn recipe(&self) -> &ClassifierRecipe {
        &self.recipe
    }

    /// The accuracy on the Fashion-MNIST test set measured after training (`None` for an
    /// untrained network).
    pub fn test_accuracy(&self) -> Option<f64> {
        self.test_accuracy
    }

    /// Width of the feature layer.
    pub fn feature_dim(&self) -> usize {
        self.recipe.features
    }

    /// `(features, logits)` of a batch, with autograd.
    fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let p = &self.params;
        let h = x
            .conv2d(&p[0], Some(&p[1]), [1, 1], [1, 1], [1, 1], 1)
            .relu()
            .max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        let h = h
            .conv2d(&p[2], Some(&p[3]), [1, 1], [1, 1], [1, 1], 1)
            .relu()
            .max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
        let f = h.flatten(1, -1).linear(&p[4], Some(&p[5])).relu();
        let logits = f.linear(&p[6], Some(&p[7]));
        (f, logits)
    }

    /// Features and logits of `images` (`[N, 1, 28, 28]`, any float kind) in chunks of 1000,
    /// without gradients, as `f64` CPU tensors `[N, features]` and `[N, 10]`.
    pub fn features_and_logits(&self, images: &Tensor) -> Result<(Tensor, Tensor)> {
        let n = check_images(images, None, "classifier input")?;
        tch::no_grad(|| {
            let mut fs = Vec::new();
            let mut ls = Vec::new();
            let mut start = 0;
            while start < n {
                let len = 1000.min(n - start);
                let x = images
                    .narrow(0, start, len)
                    .to_kind(Kind::Float)
                    .to_device(Device::Cpu);
                let (f, l) = self.forward(&x);
                fs.push(f.to_kind(Kind::Double));
                ls.push(l.to_kind(Kind::Double));
                start += len;
            }
            Ok((Tensor::cat(&fs, 0), Tensor::cat(&ls, 0)))
        })
    }

    /// The fraction of `images` whose most likely class is `labels`.
    pub fn accuracy(&self, images: &Tensor, labels: &Tensor) -> Result<f64> {
        check_images(images, Some(labels), "classifier accuracy")?;
        let (_, logits) = self.features_and_logits(images)?;
        Ok(logits
            .argmax(1, false)
            .eq_tensor(&labels.to_kind(Kind::Int64).to_device(Device::Cpu))
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[]))
    }

    /// Trains a fresh network by `recipe` on `train` (see the module documentation), then
    /// measures its accuracy on `test`. Sets libtorch to one CPU thread.
    pub fn train(
        recipe: &ClassifierRecipe,
        train: &LabeledImages,
        test: &LabeledImages,
    ) -> Result<Self> {
        let mut clf = Classifier::new(recipe)?;
        let n_all = check_images(&train.images, Some(&train.labels), "training set")?;
        check_images(&test.images, Some(&test.labels), "test set")?;
        let n = recipe.train_subset.map_or(n_all, |s| (s as i64).min(n_all));
        let bs = recipe.batch_size as i64;
        let per_epoch = n / bs;
        if per_epoch == 0 {
            return Err(ModelError::invalid(
                "batch_size",
                format!("{bs} is larger than the {n} training images"),
            ));
        }
        tch::set_num_threads(1);
        let images = train
            .images
            .narrow(0, 0, n)
            .to_kind(Kind::Float)
            .to_device(Device::Cpu);
        let labels = train
            .labels
            .narrow(0, 0, n)
            .to_kind(Kind::Int64)
            .to_device(Device::Cpu);
        let total = per_epoch as u64 * recipe.epochs as u64;
        let lr = WarmupCosine::new(recipe.lr, 0, total, 0.05)?;
        let mut opt = AdamW::new(
            &clf.params,
            AdamWConfig {
                weight_decay: 0.0,
                ..AdamWConfig::default()
            },
        )?;
        let mut k = 0u64;
        for epoch in 0..recipe.epochs {
            let perm = permutation(
                n as usize,
                &mut HostNoise::with_stream(recipe.seed, epoch as u64 + 1),
            );
            let perm = Tensor::from_slice(&perm);
            for b in 0..per_epoch {
                let idx = perm.narrow(0, b * bs, bs);
                let x = images.index_select(0, &idx);
                let y = labels.index_select(0, &idx);
                for p in &mut clf.params {
                    p.zero_grad();
                }
                let (_, logits) = clf.forward(&x);
                let loss = logits.cross_entropy_for_logits(&y);
                let value = loss.double_value(&[]);
                if !value.is_finite() {
                    return Err(ModelError::NonFinite(format!(
                        "the classifier loss at update {} ({value})",
                        k + 1
                    )));
                }
                loss.f_backward()?;
                opt.step(&clf.params, lr.at(k))?;
                k += 1;
            }
        }
        clf.test_accuracy = Some(clf.accuracy(&test.images, &test.labels)?);
        Ok(clf)
    }

    /// The weights by PyTorch name, with `meta.test_accuracy`, `meta.recipe_hash` and
    /// `meta.checksum`.
    fn entries(&self) -> Result<Named> {
        let mut e: Named = self
            .vs
            .variables()
            .into_iter()
            .map(|(n, t)| (n, t.detach().contiguous()))
            .collect();
        e.push((
            "meta.test_accuracy".into(),
            Tensor::from_slice(&[self.test_accuracy.unwrap_or(f64::NAN)]),
        ));
        e.push((
            "meta.recipe_hash".into(),
            Tensor::from_slice(&[self.recipe.hash() as i64]),
        ));
        let sum = checksum(&e)?;
        e.push(("meta.checksum".into(), Tensor::from_slice(&[sum as i64])));
        Ok(e)
    }

    /// Writes the weights and metadata atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        save_weights(path, &self.entries()?)
    }

    /// Reads a classifier of `recipe` from `path`; errors name what is wrong (unreadable,
    /// checksum mismatch, another recipe, missing or misshapen weights).
    pub fn load(recipe: &ClassifierRecipe, path: &Path) -> Result<Self> {
        let entries = load_weights(path)?;
        let bad = |reason: String| ModelError::checkpoint(path, reason);
        let mut stored = None;
        let mut rest: Named = Vec::new();
        for (n, t) in entries {
            if n == "meta.checksum" {
                stored = Some(t.int64_value(&[0]) as u64);
            } else {
                rest.push((n, t));
            }
        }
        let stored = stored.ok_or_else(|| bad("no `meta.checksum` entry".into()))?;
        let sum = checksum(&rest)?;
        if sum != stored {
            return Err(bad(format!(
                "checksum mismatch (stored {stored:016x}, computed {sum:016x}): the file is corrupted"
            )));
        }
        let get = |name: &str| -> Result<&Tensor> {
            rest.iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| bad(format!("no `{name}` entry")))
        };
        let hash = get("meta.recipe_hash")?.int64_value(&[0]) as u64;
        if hash != recipe.hash() {
            return Err(bad(format!(
                "made by another recipe (hash {hash:016x}, wanted {:016x})",
                recipe.hash()
            )));
        }
        let acc = get("meta.test_accuracy")?.double_value(&[0]);
        let mut clf = Classifier::new(recipe)?;
        for ((name, shape, _), dst) in layout(recipe).iter().zip(&clf.params) {
            let src = get(name)?;
            if src.size() != *shape {
                return Err(bad(format!(
                    "`{name}` has shape {:?}, the recipe needs {shape:?}",
                    src.size()
                )));
            }
            let src = src.to_kind(Kind::Float);
            tch::no_grad(|| dst.shallow_clone().copy_(&src));
        }
        clf.test_accuracy = acc.is_finite().then_some(acc);
        Ok(clf)
    }

    /// The classifier of `recipe` from `cache_dir` ([`ClassifierRecipe::file_name`]), or trained
    /// on the data `data` returns (train, test) and saved there when the file is missing or
    /// unusable (see the module documentation).
    pub fn load_or_train(
        recipe: &ClassifierRecipe,
        cache_dir: &Path,
        data: impl FnOnce() -> Result<(LabeledImages, LabeledImages)>,
    ) -> Result<(Self, CacheStatus)> {
        let path = cache_dir.join(recipe.file_name());
        let status = if path.exists() {
            match Classifier::load(recipe, &path) {
                Ok(c) if c.test_accuracy.is_some() => return Ok((c, CacheStatus::Loaded)),
                Ok(_) => CacheStatus::Retrained("no test accuracy stored".into()),
                Err(e) => CacheStatus::Retrained(e.to_string()),
            }
        } else {
            CacheStatus::Trained
        };
        let (train, test) = data()?;
        let clf = Classifier::train(recipe, &train, &test)?;
        std::fs::create_dir_all(cache_dir)?;
        clf.save(&path)?;
        Ok((clf, status))
    }
}

/// A uniformly random permutation of `0..n` (Fisher-Yates with `HostNoise` uniforms).
fn permutation(n: usize, noise: &mut HostNoise) -> Vec<i64> {
    let mut p: Vec<i64> = (0..n as i64).collect();
    for i in (1..n).rev() {
        let j = ((noise.uniform() * (i + 1) as f64) as usize).min(i);
        p.swap(i, j);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_hash_names_every_field_and_permutations_are_seeded() {
        let a = ClassifierRecipe::default();
        let mut b = a.clone();
        b.epochs += 1;
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.hash(), ClassifierRecipe::default().hash());
        assert!(a.file_name().starts_with("fmnist-classifier-v1-"));
        let p = permutation(100, &mut HostNoise::new(1));
        let mut s = p.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<i64>>());
        assert_eq!(p, permutation(100, &mut HostNoise::new(1)));
        assert_ne!(p, permutation(100, &mut HostNoise::new(2)));
        assert!(ClassifierRecipe {
            lr: 0.0,
            ..ClassifierRecipe::tiny()
        }
        .validate()
        .is_err());
    }

    /// 200 synthetic images whose class is the brightness of a stripe (learnable in a few
    /// updates), as (train, test).
    fn synthetic() -> Result<(LabeledImages, LabeledImages)> {
        let mut noise = HostNoise::new(7);
        let make = |noise: &mut HostNoise, n: usize| {
            let labels: Vec<i64> = (0..n).map(|i| (i % 10) as i64).collect();
            let mut px = noise.normals(n * 784);
            for (i, &l) in labels.iter().enumerate() {
                for v in &mut px[i * 784 + 28 * 10..i * 784 + 28 * 12] {
                    *v = l as f64 / 5.0 - 1.0;
                }
            }
            LabeledImages {
                images: Tensor::from_slice(&px)
                    .reshape([n as i64, 1, 28, 28])
                    .to_kind(Kind::Float)
                    .clamp(-1.0, 1.0),
                labels: Tensor::from_slice(&labels),
            }
        };
        Ok((make(&mut noise, 200), make(&mut noise, 100)))
    }

    #[test]
    fn load_or_train_caches_and_retrains_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let r = ClassifierRecipe::tiny();
        let (clf, status) = Classifier::load_or_train(&r, dir.path(), synthetic).unwrap();
        assert_eq!(status, CacheStatus::Trained);
        let acc = clf.test_accuracy().unwrap();
        let (again, status) =
            Classifier::load_or_train(&r, dir.path(), || panic!("the cache must be used")).unwrap();
        assert_eq!(status, CacheStatus::Loaded);
        assert_eq!(again.test_accuracy(), Some(acc));
        // Deterministic: a second training from scratch gives the same weights.
        let (train, test) = synthetic().unwrap();
        let twin = Classifier::train(&r, &train, &test).unwrap();
        let (f1, _) = clf.features_and_logits(&test.images).unwrap();
        let (f2, _) = twin.features_and_logits(&test.images).unwrap();
        assert!(f1.equal(&f2));
        // One flipped bit: retrained, saying why.
        let path = dir.path().join(r.file_name());
        let mut bytes = std::fs::read(&path).unwrap();
        let k = bytes.len() - 100;
        bytes[k] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let (_, status) = Classifier::load_or_train(&r, dir.path(), synthetic).unwrap();
        assert!(
            matches!(status, CacheStatus::Retrained(ref why) if why.contains("checksum")),
            "{status:?}"
        );
        assert!(
            Classifier::load(&r, &path).is_ok(),
            "the retrained file replaced it"
        );
        // Too few images for one batch is an error.
        let small = ClassifierRecipe {
            batch_size: 1000,
            ..r
        };
        assert!(Classifier::train(&small, &train, &test).is_err());
    }

    #[test]
    fn saves_loads_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let r = ClassifierRecipe::tiny();
        let mut clf = Classifier::new(&r).unwrap();
        clf.test_accuracy = Some(0.5);
        let path = dir.path().join(r.file_name());
        clf.save(&path).unwrap();
        let back = Classifier::load(&r, &path).unwrap();
        assert_eq!(back.test_accuracy(), Some(0.5));
        let x = Tensor::from_slice(&HostNoise::new(3).normals(2 * 784))
            .reshape([2, 1, 28, 28])
            .to_kind(Kind::Float);
        let (f1, l1) = clf.features_and_logits(&x).unwrap();
        let (f2, l2) = back.features_and_logits(&x).unwrap();
        assert_eq!(f1.size(), [2, 32]);
        assert!(f1.equal(&f2) && l1.equal(&l2));
        // Another recipe's file is refused.
        let other = ClassifierRecipe {
            seed: 1,
            ..r.clone()
        };
        assert!(Classifier::load(&other, &path).is_err());
        // Flipped bytes in the data fail the checksum; a truncated file is unreadable.
        let mut bytes = std::fs::read(&path).unwrap();
        let k = bytes.len() - 10;
        bytes[k] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let e = Classifier::load(&r, &path).unwrap_err().to_string();
        assert!(e.contains("checksum") || e.contains("safetensors"), "{e}");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(Classifier::load(&r, &path).is_err());
        // Bad shapes are errors.
        assert!(clf
            .features_and_logits(&Tensor::zeros([2, 28, 28], (Kind::Float, Device::Cpu)))
            .is_err());
        let labels = Tensor::from_slice(&[0i64, 10]);
        assert!(clf.accuracy(&x, &labels).is_err());
    }
}
