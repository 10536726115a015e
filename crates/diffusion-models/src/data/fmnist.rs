//! Fashion-MNIST: 70 000 grey-scale 28x28 images of clothing in 10 classes (60 000 for
//! training, 10 000 for testing), read from the four IDX files of the distribution.
//!
//! Paper: Xiao, Rasul & Vollgraf (2017), "Fashion-MNIST: a Novel Image Dataset for Benchmarking
//! Machine Learning Algorithms", arXiv:1708.07747 (Sec. 2: the files, their format and the
//! classes).
//!
//! Where the files are: the `dir` argument of [`FashionMnist::load`]; [`FashionMnist::default_dir`]
//! is `$DIFFUSION_FMNIST_DIR` when set, else `/usr/share/datasets/fashion-mnist` (where the
//! Debian/Ubuntu package `dataset-fashion-mnist` installs them). The files may be gzip-compressed
//! (`train-images-idx3-ubyte.gz`, the distributed form) or not (`train-images-idx3-ubyte`). When
//! they are missing, the error says how to install them.

use super::idx::read_idx;
use crate::error::{ModelError, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The folder the Debian package `dataset-fashion-mnist` installs into.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The environment variable that overrides [`SYSTEM_DIR`].
pub const DIR_ENV: &str = "DIFFUSION_FMNIST_DIR";

/// How to install the data set (part of the error when it is missing).
pub const INSTALL_HINT: &str = "install it with `sudo apt-get install dataset-fashion-mnist` \
     (Debian/Ubuntu; or `cargo xtask setup --fmnist`), or point $DIFFUSION_FMNIST_DIR or the \
     config key `data.fmnist.dir` at a folder holding train-images-idx3-ubyte.gz, \
     train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz";

/// The class names, by label.
pub const CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Which part of the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The 60 000 training images (`train-*`).
    #[default]
    Train,
    /// The 10 000 test images (`t10k-*`).
    Test,
}

impl Split {
    /// The file-name prefix: `train` or `t10k`.
    pub fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// A split of Fashion-MNIST in memory: `u8` pixels (0 = background) and labels `0..10`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FashionMnist {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
}

/// The path of `{prefix}-{kind}` in `dir`, compressed (`.gz`) or not; `None` when neither exists.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Some(gz);
    }
    let plain = dir.join(name);
    plain.is_file().then_some(plain)
}

impl FashionMnist {
    /// `$DIFFUSION_FMNIST_DIR` when set and not empty, else [`SYSTEM_DIR`].
    pub fn default_dir() -> PathBuf {
        match std::env::var_os(DIR_ENV) {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => PathBuf::from(SYSTEM_DIR),
        }
    }

    /// Whether both files of `split` are present in `dir`.
    pub fn is_installed(dir: &Path, split: Split) -> bool {
        let p = split.prefix();
        find(dir, &format!("{p}-images-idx3-ubyte")).is_some()
            && find(dir, &format!("{p}-labels-idx1-ubyte")).is_some()
    }

    /// Reads `split` from `dir` (see the module documentation). Missing files are an error that
    /// says how to install the data set; damaged ones an error naming the file.
    pub fn load(dir: &Path, split: Split) -> Result<Self> {
        let p = split.prefix();
        let locate = |name: String| {
            find(dir, &name).ok_or_else(|| {
                ModelError::data(
                    dir.join(format!("{name}.gz")),
                    format!("Fashion-MNIST is not installed here; {INSTALL_HINT}"),
                )
            })
        };
        let img_path = locate(format!("{p}-images-idx3-ubyte"))?;
        let lab_path = locate(format!("{p}-labels-idx1-ubyte"))?;
        let img = read_idx(&img_path)?;
        let lab = read_idx(&lab_path)?;
        if img.dims.len() != 3 {
            return Err(ModelError::data(
                &img_path,
                format!(
                    "images need 3 dimensions (N, rows, cols), got {:?}",
                    img.dims
                ),
            ));
        }
        if lab.dims.len() != 1 {
            return Err(ModelError::data(
                &lab_path,
                format!("labels need 1 dimension (N), got {:?}", lab.dims),
            ));
        }
        if lab.dims[0] != img.dims[0] {
            return Err(ModelError::data(
                &lab_path,
                format!(
                    "{} labels for {} images in {}",
                    lab.dims[0],
                    img.dims[0],
                    img_path.display()
                ),
            ));
        }
        Self::from_raw(img.data, lab.data, img.dims[1], img.dims[2])
            .map_err(|e| ModelError::data(&lab_path, e.to_string()))
    }

    /// [`FashionMnist::load`] from [`FashionMnist::default_dir`].
    pub fn load_default(split: Split) -> Result<Self> {
        Self::load(&Self::default_dir(), split)
    }

    /// A data set from raw pixels (`n * rows * cols` bytes, row-major) and labels (`n`, each
    /// below 10): synthetic data for tests, or other IDX image sets of the same form.
    pub fn from_raw(images: Vec<u8>, labels: Vec<u8>, rows: usize, cols: usize) -> Result<Self> {
        if rows == 0 || cols == 0 {
            return Err(ModelError::invalid(
                "images",
                format!("images must be at least 1x1, got {rows}x{cols}"),
            ));
        }
        if images.len() != labels.len() * rows * cols {
            return Err(ModelError::invalid(
                "images",
                format!(
                    "{} pixel bytes for {} labels of {rows}x{cols} images (need {})",
                    images.len(),
                    labels.len(),
                    labels.len() * rows * cols
                ),
            ));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l >= 10) {
            return Err(ModelError::invalid(
                "labels",
                format!("label {l} of item {i} is not a class 0..10"),
            ));
        }
        Ok(FashionMnist {
            images,
            labels,
            rows,
            cols,
        })
    }

    /// Keeps the first `n` items (all when `n` is larger).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.images.truncate(n * self.rows * self.cols);
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image height (28).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image width (28).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The pixels of image `i` (row-major, 0 = background, 255 = full intensity).
    pub fn image(&self, i: usize) -> &[u8] {
        let s = self.rows * self.cols;
        &self.images[i * s..(i + 1) * s]
    }

    /// The label of image `i` (`0..10`, see [`CLASS_NAMES`]).
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// Every label.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Every pixel, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.images
    }

    /// The whole split as tensors on the CPU: images `[N, 1, rows, cols]` (`Float`, scaled to
    /// `[-1, 1]` as `p / 127.5 - 1`) and labels `[N]` (`Int64`).
    pub fn to_tensors(&self) -> (Tensor, Tensor) {
        let n = self.len() as i64;
        let x = Tensor::from_slice(&self.images)
            .to_kind(Kind::Float)
            .reshape([n, 1, self.rows as i64, self.cols as i64])
            / 127.5
            - 1.0;
        let y = Tensor::from_slice(&self.labels).to_kind(Kind::Int64);
        (x, y)
    }
}

#[cfg(test)]
mod tests {
    use super::super::idx::write_idx;
    use super::*;

    /// A synthetic split of `n` 4x3 images in `dir`.
    fn write_split(dir: &Path, split: Split, n: usize) -> (Vec<u8>, Vec<u8>) {
        let px: Vec<u8> = (0..n * 12).map(|i| (i * 37 % 256) as u8).collect();
        let lab: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let p = split.prefix();
        write_idx(
            &dir.join(format!("{p}-images-idx3-ubyte.gz")),
            &[n, 4, 3],
            &px,
        )
        .unwrap();
        write_idx(&dir.join(format!("{p}-labels-idx1-ubyte")), &[n], &lab).unwrap();
        (px, lab)
    }

    #[test]
    fn loads_a_split_and_scales_to_plus_minus_one() {
        let dir = tempfile::tempdir().unwrap();
        let (px, lab) = write_split(dir.path(), Split::Test, 13);
        assert!(FashionMnist::is_installed(dir.path(), Split::Test));
        assert!(!FashionMnist::is_installed(dir.path(), Split::Train));
        let d = FashionMnist::load(dir.path(), Split::Test).unwrap();
        assert_eq!((d.len(), d.rows(), d.cols()), (13, 4, 3));
        assert_eq!(d.image(2), &px[24..36]);
        assert_eq!(d.label(12), 2);
        let (x, y) = d.to_tensors();
        assert_eq!(x.size(), [13, 1, 4, 3]);
        assert_eq!(x.kind(), Kind::Float);
        assert_eq!(y.kind(), Kind::Int64);
        let xs: Vec<f32> = Vec::try_from(x.flatten(0, -1)).unwrap();
        for (v, &p) in xs.iter().zip(&px) {
            assert_eq!(*v, p as f32 / 127.5 - 1.0);
        }
        assert_eq!(xs.iter().cloned().fold(f32::MAX, f32::min), -1.0);
        let ys: Vec<i64> = Vec::try_from(y).unwrap();
        assert_eq!(ys, lab.iter().map(|&l| l as i64).collect::<Vec<_>>());
        let mut d = d;
        d.truncate(5);
        assert_eq!(d.len(), 5);
        assert_eq!(d.pixels().len(), 60);
    }

    #[test]
    fn missing_mismatched_and_bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let msg = |r: Result<FashionMnist>| match r {
            Err(e @ ModelError::Data { .. }) => e.to_string(),
            other => panic!("expected a data error, got {other:?}"),
        };
        let m = msg(FashionMnist::load(dir.path(), Split::Train));
        assert!(m.contains("apt-get install dataset-fashion-mnist"), "{m}");
        assert!(m.contains("cargo xtask setup --fmnist"), "{m}");
        assert!(m.contains("train-images-idx3-ubyte.gz"), "{m}");
        write_split(dir.path(), Split::Train, 5);
        // 4 labels for 5 images.
        write_idx(
            &dir.path().join("train-labels-idx1-ubyte"),
            &[4],
            &[0, 1, 2, 3],
        )
        .unwrap();
        let m = msg(FashionMnist::load(dir.path(), Split::Train));
        assert!(m.contains("4 labels for 5 images"), "{m}");
        // A label outside 0..10.
        write_idx(
            &dir.path().join("train-labels-idx1-ubyte"),
            &[5],
            &[0, 1, 2, 3, 10],
        )
        .unwrap();
        let m = msg(FashionMnist::load(dir.path(), Split::Train));
        assert!(m.contains("label 10 of item 4"), "{m}");
        // A truncated image file names that file.
        let img = dir.path().join("train-images-idx3-ubyte.gz");
        let bytes = std::fs::read(&img).unwrap();
        std::fs::write(&img, &bytes[..bytes.len() - 12]).unwrap();
        let m = msg(FashionMnist::load(dir.path(), Split::Train));
        assert!(m.contains("train-images-idx3-ubyte.gz"), "{m}");
        assert!(FashionMnist::from_raw(vec![0; 11], vec![0], 4, 3).is_err());
    }
}
