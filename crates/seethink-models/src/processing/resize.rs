//! Pillow's `Image.resize(size, Image.BICUBIC)` for 8-bit RGB images, bit for bit.
//!
//! A port of `ImagingResample` (Pillow `src/libImaging/Resample.c`, 8 bits per channel): a
//! separable convolution along the width and along the height, each pass skipped when that side
//! keeps its length. Each pass rounds and clips to `u8`, so the intermediate image is 8-bit too
//! and the order of the passes changes the result: it is Pillow 13's.

use image::RgbImage;

use crate::error::{ModelError, Result};

const CHANNELS: usize = 3;

/// Fixed-point fraction bits of the 8-bit path: 32-bit accumulators, 8 bits of result and 2
/// bits of headroom for the negative lobes (`PRECISION_BITS = 32 - 8 - 2`).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Half-width of the bicubic kernel in input pixels at scale 1.
const BICUBIC_SUPPORT: f64 = 2.0;

/// Resizes `image` to `height` x `width` exactly as Pillow's bicubic `resize` does.
///
/// One pass per side that changes: the width first, unless the height loses more than twice as
/// many pixels as the width (Pillow 13's order); a same-size resize is a copy.
pub fn resize_bicubic(image: &RgbImage, height: usize, width: usize) -> Result<RgbImage> {
    let (in_height, in_width) = (image.height() as usize, image.width() as usize);
    if in_height == 0 || in_width == 0 || height == 0 || width == 0 {
        return Err(ModelError::Input(format!(
            "cannot resize a {in_height}x{in_width} image to {height}x{width}: sides must be positive"
        )));
    }
    let out_height = u32::try_from(height).map_err(|_| too_large(height, width))?;
    let out_width = u32::try_from(width).map_err(|_| too_large(height, width))?;

    let rows = |pixels: &[u8]| resample_rows(pixels, in_width, &filter_taps(in_width, width));
    let columns = |pixels: &[u8], row_width: usize| {
        resample_columns(pixels, row_width, &filter_taps(in_height, height))
    };
    let pixels = image.as_raw();
    let pixels = match (width != in_width, height != in_height) {
        (false, false) => pixels.clone(),
        (true, false) => rows(pixels),
        (false, true) => columns(pixels, in_width),
        (true, true) if vertical_first(in_height, in_width, height, width) => {
            rows(&columns(pixels, in_width))
        }
        (true, true) => columns(&rows(pixels), width),
    };
    RgbImage::from_raw(out_width, out_height, pixels).ok_or_else(|| too_large(height, width))
}

/// Whether Pillow 13 runs the vertical pass first: when the height shrinks by more than twice
/// as many pixels as the width, `in_h - out_h > max(0, 2·(in_w - out_w))` (so always when the
/// height shrinks and the width does not). Otherwise the horizontal pass runs first.
///
/// Pillow 13 introduced this (python-pillow/Pillow#9549; the rule was read off the 13.0.0
/// binary and checked on hundreds of random sizes). Pillow 12 ran the horizontal pass first,
/// except (from 12.2) for images over 100 times taller than wide whose height shrinks.
fn vertical_first(in_height: usize, in_width: usize, height: usize, width: usize) -> bool {
    let shrink_h = in_height as i64 - height as i64;
    let shrink_w = in_width as i64 - width as i64;
    shrink_h > 0 && shrink_h > 2 * shrink_w
}

fn too_large(height: usize, width: usize) -> ModelError {
    ModelError::Input(format!("cannot resize to {height}x{width}: image too large"))
}

/// The weights of one output sample: input indices `start..start + weights.len()`, each with a
/// fixed-point weight (`PRECISION_BITS` fraction bits).
#[derive(Debug, Clone, PartialEq)]
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

impl Taps {
    /// `clip8((1 << (PRECISION_BITS - 1) + Σ sample(i) · w_i) >> PRECISION_BITS)`: the weighted
    /// sum, rounded half up by the initial half unit, then clamped to `0..=255`.
    fn apply(&self, sample: impl Fn(usize) -> u8) -> u8 {
        let half = 1i64 << (PRECISION_BITS - 1);
        let sum = self
            .weights
            .iter()
            .enumerate()
            .fold(half, |acc, (i, &w)| acc + i64::from(sample(self.start + i)) * i64::from(w));
        (sum >> PRECISION_BITS).clamp(0, 255) as u8
    }
}

/// Keys' cubic convolution kernel with `a = -0.5` (Pillow's `bicubic_filter`):
/// `((a + 2)|x| - (a + 3))x² + 1` for `|x| < 1`, `a(((|x| - 5)|x| + 8)|x| - 4)` for `|x| < 2`,
/// else 0. Evaluated in the same operation order as the C code.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for resampling `in_size` samples to
/// `out_size`.
///
/// With `scale = in/out` and `filterscale = max(scale, 1)` (the kernel is stretched when
/// downscaling, which antialiases), output `i` is centred at `c = (i + 0.5)·scale`, reads inputs
/// `trunc(c - support + 0.5) ..< trunc(c + support + 0.5)` (clamped to the image) with
/// `support = 2·filterscale`, weights `bicubic((x - c + 0.5) / filterscale)` normalised to sum
/// to 1, then converted to fixed point as `trunc(w·2^22 ± 0.5)` (rounded away from zero).
fn filter_taps(in_size: usize, out_size: usize) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = BICUBIC_SUPPORT * filterscale;
    let inv_filterscale = 1.0 / filterscale;
    (0..out_size)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            // `as` truncates toward zero like C's (int) cast; negatives then clamp to 0.
            let start = ((center - support + 0.5) as i64).max(0) as usize;
            let end = ((center + support + 0.5) as i64).clamp(0, in_size as i64) as usize;
            let weights: Vec<f64> =
                (start..end).map(|x| bicubic((x as f64 - center + 0.5) * inv_filterscale)).collect();
            let total: f64 = weights.iter().sum();
            let weights = weights.iter().map(|&w| to_fixed_point(normalized(w, total))).collect();
            Taps { start, weights }
        })
        .collect()
}

/// `w / total`, left unchanged when the total is zero (as Pillow does).
fn normalized(w: f64, total: f64) -> f64 {
    if total != 0.0 {
        w / total
    } else {
        w
    }
}

/// `(int)(w·2^PRECISION_BITS ± 0.5)`: rounds half away from zero by truncating.
fn to_fixed_point(w: f64) -> i32 {
    let scaled = w * f64::from(1u32 << PRECISION_BITS);
    (if w < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
}

/// Horizontal pass: each row of `in_width` RGB pixels becomes `taps.len()` pixels.
fn resample_rows(pixels: &[u8], in_width: usize, taps: &[Taps]) -> Vec<u8> {
    let row_len = in_width * CHANNELS;
    let rows = pixels.len() / row_len;
    let mut out = Vec::with_capacity(rows * taps.len() * CHANNELS);
    for row in pixels.chunks_exact(row_len) {
        for tap in taps {
            for c in 0..CHANNELS {
                out.push(tap.apply(|x| row[x * CHANNELS + c]));
            }
        }
    }
    out
}

/// Vertical pass: the image of rows `width` RGB pixels long becomes `taps.len()` rows.
fn resample_columns(pixels: &[u8], width: usize, taps: &[Taps]) -> Vec<u8> {
    let row_len = width * CHANNELS;
    let mut out = Vec::with_capacity(taps.len() * row_len);
    for tap in taps {
        for i in 0..row_len {
            out.push(tap.apply(|y| pixels[y * row_len + i]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bicubic_kernel_values() {
        assert_eq!(bicubic(0.0), 1.0);
        assert_eq!(bicubic(1.0), 0.0);
        assert_eq!(bicubic(-0.5), 0.5625);
        assert_eq!(bicubic(1.5), -0.0625);
        assert_eq!(bicubic(2.0), 0.0);
    }

    #[test]
    fn fixed_point_weights_sum_to_about_one() {
        for (from, to) in [(60, 24), (24, 60), (7, 200), (200, 7)] {
            for tap in filter_taps(from, to) {
                let sum: i32 = tap.weights.iter().sum();
                assert!((sum - (1 << PRECISION_BITS)).abs() <= tap.weights.len() as i32, "{from}->{to}");
                assert!(tap.start + tap.weights.len() <= from);
            }
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let image = RgbImage::from_pixel(13, 9, image::Rgb([7, 128, 255]));
        let out = resize_bicubic(&image, 20, 5).unwrap();
        assert_eq!((out.width(), out.height()), (5, 20));
        assert!(out.pixels().all(|p| p.0 == [7, 128, 255]));
    }

    #[test]
    fn zero_sizes_are_errors() {
        let image = RgbImage::new(4, 4);
        assert!(resize_bicubic(&image, 0, 4).is_err());
        assert!(resize_bicubic(&RgbImage::new(0, 4), 4, 4).is_err());
    }
}
