//! The IDX file format of MNIST and Fashion-MNIST, plain or gzip-compressed.
//!
//! Paper: LeCun, Bottou, Bengio & Haffner (1998), "Gradient-based learning applied to document
//! recognition", Proc. IEEE 86(11); the format is documented on the MNIST page
//! (<http://yann.lecun.com/exdb/mnist/>, "FILE FORMATS FOR THE MNIST DATABASE") and reused by
//! Xiao, Rasul & Vollgraf (2017), "Fashion-MNIST", arXiv:1708.07747.
//!
//! Layout: two zero bytes, a type byte (`0x08` = unsigned byte, the only type read here), the
//! number of dimensions `d`, then `d` big-endian `u32` sizes, then the values in row-major order.
//! A file whose name ends in `.gz`, or that starts with the gzip magic bytes `1f 8b`, is
//! decompressed first. Every defect (missing file, bad magic, unsupported type, truncated or
//! trailing data, broken gzip stream) is a [`ModelError::Data`] naming the file.

use crate::error::{ModelError, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// The IDX type byte of unsigned 8-bit values.
pub const IDX_U8: u8 = 0x08;

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The sizes of the dimensions (the first is the number of items).
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes (gzip-compressed or not).
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw =
        std::fs::read(path).map_err(|e| ModelError::data(path, format!("cannot read: {e}")))?;
    let gz = raw.starts_with(&[0x1f, 0x8b])
        || path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let bytes = if gz {
        let mut out = Vec::with_capacity(raw.len() * 4);
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| {
                ModelError::data(
                    path,
                    format!("not a valid gzip stream (truncated or corrupt?): {e}"),
                )
            })?;
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|reason| ModelError::data(path, reason))
}

/// Parses the bytes of an (uncompressed) IDX file; the error says what is wrong.
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!(
            "truncated: {} bytes, an IDX header needs at least 4",
            bytes.len()
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "bad magic number {:02x} {:02x} {:02x} {:02x} (an IDX file starts with 00 00)",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ));
    }
    if bytes[2] != IDX_U8 {
        return Err(format!(
            "unsupported IDX value type 0x{:02x} (only 0x08, unsigned byte, is read)",
            bytes[2]
        ));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err("the header declares 0 dimensions".into());
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(format!(
            "truncated header: {} bytes, {ndim} dimensions need {header}",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let o = 4 + 4 * i;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("dimensions {dims:?} overflow"))?;
    let body = bytes.len() - header;
    if body < count {
        return Err(format!(
            "truncated: dimensions {dims:?} need {count} values, the file holds {body}"
        ));
    }
    if body > count {
        return Err(format!(
            "{} trailing bytes after the {count} values of dimensions {dims:?}",
            body - count
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// The bytes of an IDX file of unsigned bytes with dimensions `dims` (for tests and tools).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, IDX_U8, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Writes an IDX file of unsigned bytes, gzip-compressed when `path` ends in `.gz`.
pub fn write_idx(path: &Path, dims: &[usize], data: &[u8]) -> Result<()> {
    let count: usize = dims.iter().product();
    if count != data.len() {
        return Err(ModelError::invalid(
            "data",
            format!(
                "dimensions {dims:?} hold {count} values, {} given",
                data.len()
            ),
        ));
    }
    let bytes = encode_idx(dims, data);
    let io = |e: std::io::Error| ModelError::data(path, format!("cannot write: {e}"));
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
    {
        use std::io::Write;
        let f = std::fs::File::create(path).map_err(io)?;
        let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        enc.write_all(&bytes).map_err(io)?;
        enc.finish().map_err(io)?;
    } else {
        std::fs::write(path, bytes).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_plain_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..24).collect();
        for name in ["a-idx3-ubyte", "a-idx3-ubyte.gz"] {
            let p = dir.path().join(name);
            write_idx(&p, &[2, 3, 4], &data).unwrap();
            let a = read_idx(&p).unwrap();
            assert_eq!(a.dims, [2, 3, 4]);
            assert_eq!(a.data, data);
        }
        // The gzip magic is recognised without the extension too.
        let gz = std::fs::read(dir.path().join("a-idx3-ubyte.gz")).unwrap();
        let p = dir.path().join("renamed");
        std::fs::write(&p, &gz).unwrap();
        assert_eq!(read_idx(&p).unwrap().dims, [2, 3, 4]);
        // The header is the documented big-endian layout.
        assert_eq!(
            &encode_idx(&[60000, 28, 28], &[])[..],
            &[0, 0, 8, 3, 0, 0, 0xea, 0x60, 0, 0, 0, 28, 0, 0, 0, 28]
        );
    }

    #[test]
    fn defects_are_errors_naming_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let good = encode_idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let reason = |bytes: &[u8], name: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            match read_idx(&p) {
                Err(ModelError::Data { path, reason }) => {
                    assert_eq!(path, p);
                    reason
                }
                other => panic!("expected a data error, got {other:?}"),
            }
        };
        assert!(reason(&good[..good.len() - 1], "t").contains("truncated"));
        assert!(reason(&good[..6], "h").contains("truncated header"));
        assert!(reason(&good[..2], "s").contains("truncated"));
        let mut trailing = good.clone();
        trailing.push(9);
        assert!(reason(&trailing, "x").contains("trailing"));
        let mut magic = good.clone();
        magic[1] = 7;
        assert!(reason(&magic, "m").contains("magic"));
        let mut kind = good.clone();
        kind[2] = 0x0d;
        assert!(reason(&kind, "k").contains("unsupported IDX value type 0x0d"));
        // A cut gzip stream.
        write_idx(&dir.path().join("z.gz"), &[2, 3], &[1, 2, 3, 4, 5, 6]).unwrap();
        let gz = std::fs::read(dir.path().join("z.gz")).unwrap();
        assert!(reason(&gz[..gz.len() / 2], "cut.gz").contains("gzip"));
        match read_idx(&dir.path().join("missing.gz")) {
            Err(ModelError::Data { reason, .. }) => assert!(reason.contains("cannot read")),
            other => panic!("{other:?}"),
        }
    }
}
