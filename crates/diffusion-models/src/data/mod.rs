//! Training data: the [`DataSource`] interface the trainer draws batches from, the 2-D toys
//! ([`ToyData`]), image data sets with augmentation ([`ImageData`]), Fashion-MNIST
//! ([`fmnist`]) and its IDX file format ([`idx`]).
//!
//! Determinism: a batch is a function of the update index `k`, the batch size, the data seed and
//! the [`HostNoise`] stream the trainer hands over for that update, never of earlier calls. So a
//! resumed run draws exactly the batches of an uninterrupted one (the trainer's exact-resume
//! property), on every device and for every thread count.
//!
//! Image batches ([`ImageData`]) come in one of two [`Sampling`] orders:
//! - `shuffle` (the default): epochs without replacement. Position `p = k * batch + i` of the
//!   stream is item `perm_e[p mod N]` of epoch `e = p div N`, where `perm_e` is a Fisher-Yates
//!   permutation drawn from `HostNoise::with_stream(seed ^ PERMUTATION_SALT, e)`. A batch may
//!   straddle two epochs. Every item is seen once per epoch (the usual PyTorch `DataLoader` with
//!   `shuffle=True, drop_last=False` concatenated over epochs).
//! - `replacement`: each item of a batch is drawn uniformly from the whole set, from the update's
//!   stream.
//!
//! Then, from the update's stream, one uniform per item decides a horizontal flip (probability
//! 1/2) when `flip` is on. Pixels `p` in `0..=255` become `p / 127.5 - 1` in `[-1, 1]`; `pad32`
//! centres the image in a 32x32 canvas filled with `-1` (the background), which U-Nets with three
//! down-samplings need.

pub mod fmnist;
pub mod grid;
pub mod idx;

use crate::error::{ModelError, Result};
use diffusion_core::{HostNoise, Toy2d};
use fmnist::FashionMnist;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use tch::{Kind, Tensor};

/// XORed into the data seed for the per-epoch permutation streams, so they never coincide with
/// the trainer's per-update streams of the same seed.
pub const PERMUTATION_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// One training batch on the CPU.
#[derive(Debug)]
pub struct Batch {
    /// The clean data, `[B, ...]`, `Float`.
    pub x: Tensor,
    /// Class labels `[B]` (`Int64`) when the data is class-labelled and labels are asked for.
    pub class: Option<Tensor>,
}

/// Where the trainer's batches come from.
pub trait DataSource: Send {
    /// A short description (name and options).
    fn name(&self) -> String;
    /// The shape of one item (`[2]` for the toys, `[1, 28, 28]` or `[1, 32, 32]` for
    /// Fashion-MNIST).
    fn item_shape(&self) -> Vec<i64>;
    /// Number of classes of the labels [`Batch::class`] carries (0: no labels).
    fn num_classes(&self) -> usize;
    /// The batch of update `k` (0-based) with `size` items; all randomness comes from `noise`
    /// (the update's own stream) and from the source's seed.
    fn batch(&self, k: u64, size: usize, noise: &mut HostNoise) -> Result<Batch>;
}

/// A 2-D toy: `size` fresh samples from the update's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToyData(pub Toy2d);

impl DataSource for ToyData {
    fn name(&self) -> String {
        self.0.to_string()
    }
    fn item_shape(&self) -> Vec<i64> {
        vec![2]
    }
    fn num_classes(&self) -> usize {
        0
    }
    fn batch(&self, _k: u64, size: usize, noise: &mut HostNoise) -> Result<Batch> {
        let x = self.0.sample(size, noise);
        let x = Tensor::from_slice(x.as_slice().expect("standard layout"))
            .reshape([x.nrows() as i64, x.ncols() as i64])
            .to_kind(Kind::Float);
        Ok(Batch { x, class: None })
    }
}

/// The order in which image batches visit the data set (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sampling {
    /// Epochs without replacement, each a fresh permutation.
    #[default]
    Shuffle,
    /// Independent uniform draws.
    Replacement,
}

/// Augmentation and shape options of [`ImageData`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageOptions {
    /// Random horizontal flips (probability 1/2).
    pub flip: bool,
    /// Return the class labels.
    pub classes: bool,
    /// Centre the images in a 32x32 canvas of background (`-1`).
    pub pad32: bool,
    /// Batch order.
    pub sampling: Sampling,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            flip: true,
            classes: false,
            pad32: false,
            sampling: Sampling::Shuffle,
        }
    }
}

/// A labelled grey-scale image set served in batches (see the module documentation).
#[derive(Debug)]
pub struct ImageData {
    set: FashionMnist,
    opts: ImageOptions,
    seed: u64,
    /// The permutation of the last epoch used (`shuffle`), a cache only.
    perm: Mutex<Option<(u64, Vec<u32>)>>,
}

impl ImageData {
    /// Serves `set` with `opts`; `seed` draws the epoch permutations.
    pub fn new(set: FashionMnist, opts: ImageOptions, seed: u64) -> Result<Self> {
        if set.is_empty() {
            return Err(ModelError::invalid("data", "the image set is empty"));
        }
        if set.len() > u32::MAX as usize {
            return Err(ModelError::invalid("data", "more than 2^32 images"));
        }
        if opts.pad32 && (set.rows() > 32 || set.cols() > 32) {
            return Err(ModelError::invalid(
                "data.pad32",
                format!(
                    "images of {}x{} do not fit a 32x32 canvas",
                    set.rows(),
                    set.cols()
                ),
            ));
        }
        Ok(ImageData {
            set,
            opts,
            seed,
            perm: Mutex::new(None),
        })
    }

    /// The underlying image set.
    pub fn set(&self) -> &FashionMnist {
        &self.set
    }

    /// The options.
    pub fn options(&self) -> ImageOptions {
        self.opts
    }

    /// `(height, width)` of a served image (after padding).
    pub fn served_size(&self) -> (usize, usize) {
        if self.opts.pad32 {
            (32, 32)
        } else {
            (self.set.rows(), self.set.cols())
        }
    }

    /// The Fisher-Yates permutation of epoch `e`.
    pub fn permutation(&self, epoch: u64) -> Vec<u32> {
        let n = self.set.len();
        let mut p: Vec<u32> = (0..n as u32).collect();
        let mut noise = HostNoise::with_stream(self.seed ^ PERMUTATION_SALT, epoch);
        for i in (1..n).rev() {
            let j = ((noise.uniform() * (i + 1) as f64) as usize).min(i);
            p.swap(i, j);
        }
        p
    }

    /// The item indices of update `k`'s batch (before augmentation).
    pub fn indices(&self, k: u64, size: usize, noise: &mut HostNoise) -> Vec<usize> {
        let n = self.set.len();
        match self.opts.sampling {
            Sampling::Replacement => (0..size)
                .map(|_| ((noise.uniform() * n as f64) as usize).min(n - 1))
                .collect(),
            Sampling::Shuffle => {
                let mut cache = self.perm.lock().unwrap_or_else(|e| e.into_inner());
                let start = k as u128 * size as u128;
                (0..size as u128)
                    .map(|i| {
                        let p = start + i;
                        let epoch = (p / n as u128) as u64;
                        if cache.as_ref().is_none_or(|c| c.0 != epoch) {
                            *cache = Some((epoch, self.permutation(epoch)));
                        }
                        let perm = &cache.as_ref().expect("just filled").1;
                        perm[(p % n as u128) as usize] as usize
                    })
                    .collect()
            }
        }
    }

    /// Items `indices` as a `[B, 1, H, W]` `Float` tensor in `[-1, 1]` (padded if configured),
    /// flipping item `i` horizontally where `flips[i]`.
    pub fn gather(&self, indices: &[usize], flips: &[bool]) -> Tensor {
        let (r, c) = (self.set.rows(), self.set.cols());
        let (h, w) = self.served_size();
        let (top, left) = ((h - r) / 2, (w - c) / 2);
        let mut out = vec![-1.0f32; indices.len() * h * w];
        for (b, &i) in indices.iter().enumerate() {
            let img = self.set.image(i);
            let flip = flips.get(b).copied().unwrap_or(false);
            let base = b * h * w;
            for y in 0..r {
                let row = &img[y * c..(y + 1) * c];
                let dst = &mut out[base + (top + y) * w + left..base + (top + y) * w + left + c];
                for x in 0..c {
                    let v = row[if flip { c - 1 - x } else { x }];
                    dst[x] = v as f32 / 127.5 - 1.0;
                }
            }
        }
        Tensor::from_slice(&out).reshape([indices.len() as i64, 1, h as i64, w as i64])
    }
}

impl DataSource for ImageData {
    fn name(&self) -> String {
        let (h, w) = self.served_size();
        format!(
            "{} images of {h}x{w} ({:?}{}{})",
            self.set.len(),
            self.opts.sampling,
            if self.opts.flip { ", flips" } else { "" },
            if self.opts.classes { ", labels" } else { "" }
        )
    }
    fn item_shape(&self) -> Vec<i64> {
        let (h, w) = self.served_size();
        vec![1, h as i64, w as i64]
    }
    fn num_classes(&self) -> usize {
        if self.opts.classes {
            10
        } else {
            0
        }
    }
    fn batch(&self, k: u64, size: usize, noise: &mut HostNoise) -> Result<Batch> {
        let idx = self.indices(k, size, noise);
        let flips: Vec<bool> = if self.opts.flip {
            (0..size).map(|_| noise.uniform() < 0.5).collect()
        } else {
            Vec::new()
        };
        let x = self.gather(&idx, &flips);
        let class = self.opts.classes.then(|| {
            let l: Vec<i64> = idx.iter().map(|&i| self.set.label(i) as i64).collect();
            Tensor::from_slice(&l)
        });
        Ok(Batch { x, class })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` 3x2 images whose pixels encode the item and the position: `10 * item + pos`.
    fn set(n: usize) -> FashionMnist {
        let px: Vec<u8> = (0..n)
            .flat_map(|i| (0..6).map(move |p| (10 * i + p) as u8))
            .collect();
        let lab: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        FashionMnist::from_raw(px, lab, 3, 2).unwrap()
    }

    fn pixels(t: &Tensor) -> Vec<f32> {
        Vec::try_from(t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn shuffled_epochs_visit_every_item_once_and_batches_depend_only_on_k() {
        let opts = ImageOptions {
            flip: false,
            classes: true,
            ..Default::default()
        };
        let d = ImageData::new(set(7), opts, 5).unwrap();
        // Batches of 3 over 4 updates: 12 positions = epoch 0 (7) + 5 of epoch 1.
        let seen: Vec<usize> = (0..4)
            .flat_map(|k| d.indices(k, 3, &mut HostNoise::new(k)))
            .collect();
        let mut e0 = seen[..7].to_vec();
        e0.sort();
        assert_eq!(e0, (0..7).collect::<Vec<_>>());
        assert_eq!(
            &seen[..7],
            &d.permutation(0)
                .iter()
                .map(|&i| i as usize)
                .collect::<Vec<_>>()[..]
        );
        assert_eq!(
            &seen[7..],
            &d.permutation(1)[..5]
                .iter()
                .map(|&i| i as usize)
                .collect::<Vec<_>>()[..]
        );
        assert_ne!(d.permutation(0), d.permutation(1));
        // Asking out of order (as a resumed run does) gives the same batch.
        let fresh = ImageData::new(set(7), opts, 5).unwrap();
        assert_eq!(fresh.indices(2, 3, &mut HostNoise::new(0)), seen[6..9]);
        // Labels follow the items; pixels are scaled to [-1, 1].
        let b = d.batch(0, 3, &mut HostNoise::new(0)).unwrap();
        assert_eq!(b.x.size(), [3, 1, 3, 2]);
        let labels: Vec<i64> = Vec::try_from(b.class.unwrap()).unwrap();
        let px = pixels(&b.x);
        for (j, &i) in seen[..3].iter().enumerate() {
            assert_eq!(labels[j], (i % 10) as i64);
            for p in 0..6 {
                assert_eq!(px[j * 6 + p], (10 * i + p) as f32 / 127.5 - 1.0);
            }
        }
    }

    #[test]
    fn replacement_flips_and_padding() {
        let opts = ImageOptions {
            flip: true,
            classes: false,
            pad32: true,
            sampling: Sampling::Replacement,
        };
        let d = ImageData::new(set(4), opts, 0).unwrap();
        assert_eq!(d.item_shape(), [1, 32, 32]);
        let b = d.batch(0, 64, &mut HostNoise::new(11)).unwrap();
        assert!(b.class.is_none());
        assert_eq!(b.x.size(), [64, 1, 32, 32]);
        // Re-derive the draws: indices, then one flip decision per item, from the same stream.
        let mut noise = HostNoise::new(11);
        let idx = d.indices(0, 64, &mut noise);
        let flips: Vec<bool> = (0..64).map(|_| noise.uniform() < 0.5).collect();
        assert!(idx.iter().all(|&i| i < 4));
        assert!(flips.iter().any(|&f| f) && flips.iter().any(|&f| !f));
        let px = pixels(&b.x);
        for j in 0..64 {
            let img = &px[j * 1024..(j + 1) * 1024];
            // The 3x2 image sits at rows 14..17, columns 15..17; the rest is background.
            let inside = |y: usize, x: usize| (14..17).contains(&y) && (15..17).contains(&x);
            for y in 0..32 {
                for x in 0..32 {
                    let v = img[y * 32 + x];
                    if inside(y, x) {
                        let (r, c) = (y - 14, x - 15);
                        let c = if flips[j] { 1 - c } else { c };
                        assert_eq!(v, (10 * idx[j] + 2 * r + c) as f32 / 127.5 - 1.0);
                    } else {
                        assert_eq!(v, -1.0);
                    }
                }
            }
        }
        let too_big = FashionMnist::from_raw(vec![0; 33 * 2], vec![0], 33, 2).unwrap();
        assert!(ImageData::new(too_big, opts, 0).is_err());
    }
}
