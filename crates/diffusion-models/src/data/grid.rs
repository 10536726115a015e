//! Sample pictures as PNG files: a grid of images (`[N, C, H, W]` in `[-1, 1]`) and a density
//! picture of 2-D points, written with the `png` crate (8-bit grey or RGB).

use crate::error::{ModelError, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Pixels between tiles (filled with mid-grey).
const GAP: usize = 2;

/// Writes an 8-bit PNG (`channels` = 1 grey or 3 RGB) atomically enough for a picture: the
/// folder is created, the file is written through a buffered writer.
pub fn write_png(
    path: &Path,
    width: usize,
    height: usize,
    channels: usize,
    data: &[u8],
) -> Result<()> {
    if width == 0 || height == 0 || !(channels == 1 || channels == 3) {
        return Err(ModelError::invalid(
            "png",
            format!("cannot write a {width}x{height} picture with {channels} channels"),
        ));
    }
    if data.len() != width * height * channels {
        return Err(ModelError::invalid(
            "png",
            format!("{} bytes for {width}x{height}x{channels}", data.len()),
        ));
    }
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let err = |e: String| ModelError::Io(std::io::Error::other(format!("{}: {e}", path.display())));
    let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    enc.set_color(if channels == 1 {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    });
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(|e| err(e.to_string()))?;
    w.write_image_data(data).map_err(|e| err(e.to_string()))?;
    w.finish().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// The bytes of a grid of `images` (`[N, C, H, W]`, C = 1 or 3, values in `[-1, 1]`, clamped),
/// `cols` tiles per row, `GAP` grey pixels between tiles: `(width, height, channels, bytes)`.
pub fn grid_bytes(images: &Tensor, cols: usize) -> Result<(usize, usize, usize, Vec<u8>)> {
    let size = images.size();
    if size.len() != 4 || !(size[1] == 1 || size[1] == 3) || size[0] == 0 {
        return Err(ModelError::Shape {
            context: "image grid: images [N, C (1 or 3), H, W]".into(),
            expected: vec![-1, 1, -1, -1],
            got: size,
        });
    }
    let (n, c, h, w) = (
        size[0] as usize,
        size[1] as usize,
        size[2] as usize,
        size[3] as usize,
    );
    let cols = cols.clamp(1, n);
    let rows = n.div_ceil(cols);
    let px: Vec<f32> = Vec::try_from(
        images
            .detach()
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .flatten(0, -1),
    )?;
    let (gw, gh) = (cols * w + (cols + 1) * GAP, rows * h + (rows + 1) * GAP);
    let mut out = vec![128u8; gw * gh * c];
    for i in 0..n {
        let (ty, tx) = (i / cols, i % cols);
        let (oy, ox) = (GAP + ty * (h + GAP), GAP + tx * (w + GAP));
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let v = px[((i * c + ch) * h + y) * w + x];
                    let v = if v.is_finite() {
                        v.clamp(-1.0, 1.0)
                    } else {
                        0.0
                    };
                    let b = ((v + 1.0) * 127.5).round() as u8;
                    out[((oy + y) * gw + ox + x) * c + ch] = b;
                }
            }
        }
    }
    Ok((gw, gh, c, out))
}

/// Writes `images` (`[N, C, H, W]` in `[-1, 1]`) as a PNG grid with `cols` tiles per row.
pub fn save_image_grid(path: &Path, images: &Tensor, cols: usize) -> Result<()> {
    let (w, h, c, bytes) = grid_bytes(images, cols)?;
    write_png(path, w, h, c, &bytes)
}

/// Writes 2-D points (`[N, 2]`) as a `size x size` grey density picture of the square
/// `[-lim, lim]^2` (white background, darker where more points fall; `y` up).
pub fn save_scatter(path: &Path, points: &Tensor, lim: f64, size: usize) -> Result<()> {
    if points.dim() != 2 || points.size()[1] != 2 {
        return Err(ModelError::Shape {
            context: "scatter picture: points [N, 2]".into(),
            expected: vec![-1, 2],
            got: points.size(),
        });
    }
    if !(lim.is_finite() && lim > 0.0) || size == 0 {
        return Err(ModelError::invalid(
            "scatter",
            format!("need lim > 0 and size >= 1, got {lim}, {size}"),
        ));
    }
    let v: Vec<f64> = Vec::try_from(
        points
            .detach()
            .to_device(Device::Cpu)
            .to_kind(Kind::Double)
            .flatten(0, -1),
    )?;
    let mut counts = vec![0u32; size * size];
    for p in v.chunks_exact(2) {
        let fx = (p[0] + lim) / (2.0 * lim) * size as f64;
        let fy = (lim - p[1]) / (2.0 * lim) * size as f64;
        if fx >= 0.0 && fy >= 0.0 && fx < size as f64 && fy < size as f64 {
            counts[fy as usize * size + fx as usize] += 1;
        }
    }
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bytes: Vec<u8> = counts
        .iter()
        .map(|&c| {
            if c == 0 {
                255
            } else {
                // Any point is visible; density on a square-root scale.
                (200.0 * (1.0 - (c as f64 / max).sqrt())) as u8
            }
        })
        .collect();
    write_png(path, size, size, 1, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_layout_and_png_round_trip() {
        // Three 2x2 grey images: all -1, all 1, and a ramp; two per row.
        let imgs = Tensor::from_slice(&[
            -1.0f32, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 0.0, 0.5, 2.0,
        ])
        .reshape([3, 1, 2, 2]);
        let (w, h, c, b) = grid_bytes(&imgs, 2).unwrap();
        assert_eq!((w, h, c), (2 * 2 + 3 * GAP, 2 * 2 + 3 * GAP, 1));
        let at = |y: usize, x: usize| b[y * w + x];
        assert_eq!(at(0, 0), 128);
        assert_eq!(at(GAP, GAP), 0);
        assert_eq!(at(GAP, GAP + 2 + GAP), 255);
        let (oy, ox) = (GAP + 2 + GAP, GAP);
        assert_eq!(
            [
                at(oy, ox),
                at(oy, ox + 1),
                at(oy + 1, ox),
                at(oy + 1, ox + 1)
            ],
            [0, 128, 191, 255]
        );
        // The empty fourth tile stays grey.
        assert_eq!(at(oy, GAP + 2 + GAP), 128);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/grid.png");
        save_image_grid(&p, &imgs, 2).unwrap();
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&p).unwrap()));
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!((info.width as usize, info.height as usize), (w, h));
        assert_eq!(&buf[..info.buffer_size()], &b[..]);
        assert!(
            save_image_grid(&p, &Tensor::zeros([2, 2], (Kind::Float, Device::Cpu)), 2).is_err()
        );
    }

    #[test]
    fn scatter_marks_the_cells_of_the_points() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.png");
        let pts =
            Tensor::from_slice(&[0.3f64, 0.3, 0.4, 0.4, -0.9, -0.9, 5.0, 0.0]).reshape([4, 2]);
        save_scatter(&p, &pts, 1.0, 4).unwrap();
        let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&p).unwrap()));
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size()];
        r.next_frame(&mut buf).unwrap();
        // (0.3, 0.3) and (0.4, 0.4) share the cell at row 1, column 2 (the darkest); (-0.9, -0.9)
        // is alone at row 3, column 0; the point outside the square is dropped.
        assert_eq!(buf[4 + 2], 0);
        assert_eq!(buf[3 * 4], (200.0 * (1.0 - 0.5f64.sqrt())) as u8);
        assert_eq!(buf.iter().filter(|&&v| v == 255).count(), 14);
    }
}
