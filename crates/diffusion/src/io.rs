//! Array files: `.npy` in and out, written atomically (temporary file, fsync, rename) so an
//! interrupted run never leaves a truncated output behind.

use anyhow::{bail, Context, Result};
use ndarray::{Array1, Array2, ArrayD};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create folder {}", dir.display()))?;
    let name = path
        .file_name()
        .context("output path has no file name")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let result = (|| {
        let mut w = BufWriter::new(&file);
        write(&mut w)?;
        w.flush()?;
        drop(w);
        file.sync_all()?;
        Ok::<(), anyhow::Error>(())
    })();
    if let Err(e) = result {
        std::fs::remove_file(&tmp).ok();
        return Err(e.context(format!("cannot write {}", path.display())));
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} into place", path.display()))?;
    Ok(())
}

/// Writes an f64 array of any dimension as `.npy` (as f32 when `as_f32`).
pub fn write_npy(path: &Path, a: &ArrayD<f64>, as_f32: bool) -> Result<()> {
    write_atomic(path, |w| {
        if as_f32 {
            a.mapv(|v| v as f32).write_npy(w)?;
        } else {
            a.write_npy(w)?;
        }
        Ok(())
    })
}

/// Reads a 2-D `.npy` array of f64 or f32 as f64, with a clear error on anything else.
pub fn read_npy_2d(path: &Path) -> Result<Array2<f64>> {
    let open = || -> Result<BufReader<File>> {
        Ok(BufReader::new(File::open(path).with_context(|| {
            format!("cannot open {}", path.display())
        })?))
    };
    match Array2::<f64>::read_npy(open()?) {
        Ok(a) => Ok(a),
        Err(e64) => match Array2::<f32>::read_npy(open()?) {
            Ok(a) => Ok(a.mapv(f64::from)),
            Err(_) => bail!(
                "{} is not a 2-D f64 or f32 .npy array: {e64}",
                path.display()
            ),
        },
    }
}

/// Reads a `.npy` array of any dimension of f64 or f32 as f64.
pub fn read_npy_dyn(path: &Path) -> Result<ArrayD<f64>> {
    let open = || -> Result<BufReader<File>> {
        Ok(BufReader::new(File::open(path).with_context(|| {
            format!("cannot open {}", path.display())
        })?))
    };
    match ArrayD::<f64>::read_npy(open()?) {
        Ok(a) => Ok(a),
        Err(e64) => match ArrayD::<f32>::read_npy(open()?) {
            Ok(a) => Ok(a.mapv(f64::from)),
            Err(_) => bail!("{} is not an f64 or f32 .npy array: {e64}", path.display()),
        },
    }
}

/// [`read_npy_dyn`] for inputs that must be finite: a NaN or infinite entry is an error naming
/// the file.
pub fn read_npy_finite(path: &Path) -> Result<ArrayD<f64>> {
    let a = read_npy_dyn(path)?;
    if let Some(v) = a.iter().find(|v| !v.is_finite()) {
        bail!("{}: contains NaN or infinite values ({v})", path.display());
    }
    Ok(a)
}

/// Reads a 1-D `.npy` array of integer labels (i64, i32, u8, or whole-valued f64/f32) as i64.
pub fn read_npy_labels(path: &Path) -> Result<Vec<i64>> {
    let open = || -> Result<BufReader<File>> {
        Ok(BufReader::new(File::open(path).with_context(|| {
            format!("cannot open {}", path.display())
        })?))
    };
    if let Ok(a) = Array1::<i64>::read_npy(open()?) {
        return Ok(a.to_vec());
    }
    if let Ok(a) = Array1::<i32>::read_npy(open()?) {
        return Ok(a.iter().map(|&v| v as i64).collect());
    }
    if let Ok(a) = Array1::<u8>::read_npy(open()?) {
        return Ok(a.iter().map(|&v| v as i64).collect());
    }
    let f = match Array1::<f64>::read_npy(open()?) {
        Ok(a) => a,
        Err(_) => match Array1::<f32>::read_npy(open()?) {
            Ok(a) => a.mapv(f64::from),
            Err(e) => bail!(
                "{} is not a 1-D integer (i64, i32, u8) or float .npy array: {e}",
                path.display()
            ),
        },
    };
    if f.iter().any(|v| v.fract() != 0.0 || !v.is_finite()) {
        bail!("{} holds labels that are not whole numbers", path.display());
    }
    Ok(f.iter().map(|&v| v as i64).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trips_and_bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let a = ndarray::array![[1.0, 2.0], [3.0, 4.5]];
        write_npy(&p, &a.clone().into_dyn(), false).unwrap();
        assert_eq!(read_npy_2d(&p).unwrap(), a);
        write_npy(&p, &a.clone().into_dyn(), true).unwrap();
        assert_eq!(read_npy_2d(&p).unwrap(), a);
        std::fs::write(&p, b"\x93NUMPY garbage").unwrap();
        assert!(read_npy_2d(&p).is_err());
        let bytes = {
            let q = dir.path().join("b.npy");
            write_npy(&q, &a.clone().into_dyn(), false).unwrap();
            std::fs::read(&q).unwrap()
        };
        std::fs::write(&p, &bytes[..bytes.len() - 5]).unwrap();
        assert!(
            read_npy_2d(&p).is_err(),
            "a truncated file must be an error"
        );
        assert!(read_npy_2d(&dir.path().join("missing.npy")).is_err());
        // No temporary files are left behind.
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(left.is_empty());
    }
}
