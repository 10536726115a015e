//! What `diffusion train` and `diffusion generate` write and print after sampling a network:
//! `samples.npy` (`[n, ...]`, float32 for images; `labels.npy` for class-conditional networks),
//! `samples.png` (a grid of the first `sample.grid_n` of these samples, or a density picture of
//! all of them for 2-D points), a line naming the sampler, and the metric line: the sliced W2 to held-out data next
//! to the noise floor (the distance between two data sets of the same size), against exact
//! samples of a 2-D toy (with the mean NLL under its density where it has one) or the
//! Fashion-MNIST test images (as 784-D vectors).

#![cfg(feature = "tch")]

use anyhow::Result;
use diffusion::core::metrics::{mean_nll, sliced_w2};
use diffusion::core::HostNoise;
use diffusion::io::write_npy;
use diffusion::models::data::fmnist::{FashionMnist, Split};
use diffusion::models::tch::{Kind, Tensor};
use diffusion::models::train::Trainer;
use ndarray::{Array2, ArrayD, IxDyn};
use std::path::Path;

/// Samples of a trained network and where they came from.
pub(super) struct Sampled {
    /// The samples, `[n, ...]` on the training device.
    pub x: Tensor,
    /// Their labels (class-conditional networks).
    pub labels: Option<Tensor>,
    /// Seconds the sampling took.
    pub secs: f64,
    /// Which weights were sampled, for the printed line (`EMA 0.999`, a file name).
    pub source: String,
}

/// Writes `samples.npy` (and `labels.npy`) and `samples.png` into `out`, prints the sampler's
/// line and the metric line (`train_s=` with the training time when there is one).
pub(super) fn write_and_report(
    trainer: &Trainer,
    out: &Path,
    sampled: &Sampled,
    train_secs: Option<f64>,
) -> Result<()> {
    let cfg = trainer.config();
    let seed = cfg.seed;
    let shape: Vec<usize> = sampled.x.size().iter().map(|&d| d as usize).collect();
    let n = shape.first().copied().unwrap_or(0);
    let values: Vec<f64> = Vec::try_from(sampled.x.to_kind(Kind::Double).flatten(0, -1))?;
    let host = ArrayD::from_shape_vec(IxDyn(&shape), values)?;
    let images = shape.len() == 4;
    let npy = out.join("samples.npy");
    write_npy(&npy, &host, images)?;
    if let Some(l) = &sampled.labels {
        let l: Vec<f64> = Vec::try_from(l.to_kind(Kind::Double))?;
        write_npy(
            &out.join("labels.npy"),
            &ArrayD::from_shape_vec(IxDyn(&[l.len()]), l)?,
            false,
        )?;
    }
    let png = out.join("samples.png");
    trainer.save_picture(&sampled.x, &png)?;
    println!(
        "sample: {} with {} steps{} ({}{}), n = {n}, {:.1} s; samples {}, picture {}",
        cfg.sample.solver,
        cfg.sample.steps,
        // A registry solver runs on the configured grid; an objective's own sampler
        // (`iddpm-ancestral`) on its own chain.
        if diffusion_solvers::registry::build::<ndarray::ArrayD<f64>>(&cfg.sample.solver).is_ok() {
            format!(" on `{}`", cfg.sample.grid)
        } else {
            String::new()
        },
        sampled.source,
        if sampled.labels.is_some() {
            format!(", guidance {}", cfg.sample.guidance)
        } else {
            String::new()
        },
        sampled.secs,
        npy.display(),
        png.display()
    );
    let train_s = train_secs.map_or(String::new(), |s| format!(" train_s={s:.1}"));
    let flat = |a: &ArrayD<f64>| -> Result<Array2<f64>> {
        let rows = a.shape()[0];
        Ok(a.to_shape((rows, a.len() / rows.max(1)))?.to_owned())
    };
    if let Some(toy) = trainer.toy() {
        let host = flat(&host)?;
        let exact = toy.sample(n, &mut HostNoise::new(seed ^ 0xe4ac_7000));
        let exact2 = toy.sample(n, &mut HostNoise::new(seed ^ 0xf100_2000));
        let sw = sliced_w2(&host.view(), &exact.view(), 256, seed)?;
        let floor = sliced_w2(&exact2.view(), &exact.view(), 256, seed)?;
        // Where the toy has an exact density: the samples' mean NLL under it (the cross-entropy
        // H(model, toy) = H(model) + KL(model || toy)) next to the NLL of exact samples (the
        // toy's entropy). Close to it is good; well below it means over-concentrated samples.
        let nll = match toy.as_mixture() {
            Some(gmm) => format!(
                " nll={:.4} nll_exact={:.4}",
                mean_nll(&gmm, &host.view())?,
                mean_nll(&gmm, &exact.view())?
            ),
            None => String::new(),
        };
        println!("sliced_w2={sw:.4} sliced_w2_floor={floor:.4}{nll}{train_s}");
    } else if let Some(f) = &cfg.data.fmnist {
        // Held-out reference: test images against the samples, and against training images
        // (the floor), all as flat vectors in [-1, 1] (unpadded 28x28 for both sides).
        let dir = f.resolved_dir();
        let test = FashionMnist::load(&dir, Split::Test)?;
        let train = FashionMnist::load(&dir, Split::Train)?;
        let m = n.min(test.len()).min(train.len());
        let as_rows = |set: &FashionMnist| -> Array2<f64> {
            Array2::from_shape_fn((m, 784), |(i, j)| set.image(i)[j] as f64 / 127.5 - 1.0)
        };
        let mut host = flat(&host)?;
        if f.pad32 {
            // Crop the 32x32 samples back to the 28x28 centre.
            host = Array2::from_shape_fn((host.nrows(), 784), |(i, j)| {
                host[[i, (j / 28 + 2) * 32 + j % 28 + 2]]
            });
        }
        let host = Array2::from_shape_fn((m, 784), |(i, j)| host[[i, j]]);
        let (te, tr) = (as_rows(&test), as_rows(&train));
        let sw = sliced_w2(&host.view(), &te.view(), 256, seed)?;
        let floor = sliced_w2(&tr.view(), &te.view(), 256, seed)?;
        println!("sliced_w2_test={sw:.4} sliced_w2_floor={floor:.4} n={m}{train_s}");
    }
    Ok(())
}
