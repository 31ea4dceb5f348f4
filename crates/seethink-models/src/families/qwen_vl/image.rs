//! Image preprocessing of Qwen2.5-VL / Qwen3-VL: from image files to the flattened patches and
//! `(t, h, w)` grids the vision tower takes, matching transformers' (slow, Pillow-based)
//! `Qwen2VLImageProcessor`.
//!
//! Per image: decode (applying the EXIF orientation, like transformers' `load_image`), convert to
//! RGB, [`smart_resize`] to multiples of `patch_size · merge_size` within the pixel bounds,
//! resize with Pillow's bicubic filter (bit-exact, [`resize_bicubic`]), rescale by `1/255`,
//! normalise per channel, repeat the still frame `temporal_patch_size` times and cut into
//! patches.
//!
//! ```no_run
//! use seethink_models::families::qwen_vl::image::{ImageProcessor, ImageProcessorConfig};
//! use seethink_models::processing::image::load_image;
//!
//! let processor = ImageProcessor::new(ImageProcessorConfig::from_dir("path/to/Qwen3-VL-2B-Instruct")?);
//! let processed = processor.preprocess(&[load_image("cat.jpg")?])?;
//! let tokens = processor.tokens_per_image(processed.grid_thw[0]);
//! # Ok::<(), seethink_models::ModelError>(())
//! ```

use image::{DynamicImage, RgbImage};

pub use super::image_config::{
    image_processor_file, ImageProcessorConfig, PREPROCESSOR_CONFIG, PROCESSOR_CONFIG,
};
use crate::processing::image::{resize_bicubic, to_rgb};

use crate::error::{ModelError, Result};

/// Largest accepted ratio between the long and the short side of an image.
pub const MAX_ASPECT_RATIO: f64 = 200.0;

/// transformers' `smart_resize`: the `(height, width)` an image is resized to.
///
/// Both sides become multiples of `factor`, the pixel count (roughly) within
/// `[min_pixels, max_pixels]`, and the aspect ratio is kept as well as possible:
/// `h = round(height / factor)·factor` (Python `round`: half to even), likewise `w`; if
/// `h·w > max_pixels`, with `β = √(height·width / max_pixels)`,
/// `h = max(factor, ⌊height / β / factor⌋·factor)`; else if `h·w < min_pixels`, with
/// `β = √(min_pixels / (height·width))`, `h = ⌈height·β / factor⌉·factor`; likewise `w`.
///
/// The float steps are Python's (exact for `height·width < 2^53`). Errors: a side or `factor`
/// of 0, an aspect ratio above [`MAX_ASPECT_RATIO`], or a result with a side of 0 (possible only
/// with `min_pixels = 0`).
pub fn smart_resize(
    height: usize,
    width: usize,
    factor: usize,
    min_pixels: usize,
    max_pixels: usize,
) -> Result<(usize, usize)> {
    if height == 0 || width == 0 || factor == 0 {
        return Err(ModelError::Input(format!(
            "smart_resize: height {height}, width {width} and factor {factor} must be positive"
        )));
    }
    let ratio = height.max(width) as f64 / height.min(width) as f64;
    if ratio > MAX_ASPECT_RATIO {
        return Err(ModelError::Input(format!(
            "absolute aspect ratio must be smaller than {MAX_ASPECT_RATIO}, got {ratio} ({height}x{width})"
        )));
    }
    let area = height as f64 * width as f64;
    let f = factor as f64;
    let round_to_factor = |side: usize| ((side as f64 / f).round_ties_even() as usize).saturating_mul(factor);
    let (mut h, mut w) = (round_to_factor(height), round_to_factor(width));
    if h.saturating_mul(w) > max_pixels {
        let beta = (area / max_pixels as f64).sqrt();
        let shrink =
            |side: usize| factor.max(((side as f64 / beta / f).floor() as usize).saturating_mul(factor));
        (h, w) = (shrink(height), shrink(width));
    } else if h.saturating_mul(w) < min_pixels {
        let beta = (min_pixels as f64 / area).sqrt();
        let grow = |side: usize| ((side as f64 * beta / f).ceil() as usize).saturating_mul(factor);
        (h, w) = (grow(height), grow(width));
    }
    if h == 0 || w == 0 {
        return Err(ModelError::Input(format!(
            "smart_resize: {height}x{width} rounds to {h}x{w} with factor {factor} and min_pixels {min_pixels}"
        )));
    }
    Ok((h, w))
}

/// Images turned into vision-tower input.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedImages {
    /// Row-major `[patches, patch_dim]`, the images' patches one after the other.
    pub pixel_values: Vec<f32>,
    /// Number of rows of `pixel_values`: the sum of `t·h·w` over `grid_thw`.
    pub patches: usize,
    /// Values per patch: `3 · temporal_patch_size · patch_size²`.
    pub patch_dim: usize,
    /// Each image's grid in patches: `[t, h, w]`.
    pub grid_thw: Vec<[usize; 3]>,
}

/// The Qwen2-VL image processor (Qwen2.5-VL and Qwen3-VL differ only in their settings).
#[derive(Debug, Clone)]
pub struct ImageProcessor {
    config: ImageProcessorConfig,
}

impl ImageProcessor {
    pub fn new(config: ImageProcessorConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &ImageProcessorConfig {
        &self.config
    }

    /// Values per patch: `3 · temporal_patch_size · patch_size²`.
    pub fn patch_dim(&self) -> usize {
        let c = &self.config;
        3 * c.temporal_patch_size * c.patch_size * c.patch_size
    }

    /// Language-model placeholder tokens of an image with grid `[t, h, w]`: `t·h·w / merge²`
    /// (a merge size of 0, which [`preprocess`](Self::preprocess) rejects, counts as 1).
    pub fn tokens_per_image(&self, grid: [usize; 3]) -> usize {
        grid.iter().product::<usize>() / (self.config.merge_size * self.config.merge_size).max(1)
    }

    /// Preprocesses each image independently (as `Qwen2VLImageProcessor.preprocess` does) and
    /// concatenates their patches. Errors on an unusable configuration (zero patch sizes or
    /// standard deviations) and on images [`resized_rgb`](Self::resized_rgb) rejects.
    pub fn preprocess(&self, images: &[DynamicImage]) -> Result<ProcessedImages> {
        if let Some((key, problem)) = self.config.invalid_setting() {
            return Err(ModelError::Input(format!("image processor setting `{key}` {problem}")));
        }
        let mut pixel_values = Vec::new();
        let mut grid_thw = Vec::with_capacity(images.len());
        for image in images {
            let (planes, height, width) = self.normalized_planes(&self.resized_rgb(image)?)?;
            grid_thw.push(self.push_patches(&planes, height, width, &mut pixel_values));
        }
        let patches = grid_thw.iter().map(|g| g.iter().product::<usize>()).sum();
        Ok(ProcessedImages { pixel_values, patches, patch_dim: self.patch_dim(), grid_thw })
    }

    /// The image in RGB (converted if `do_convert_rgb`, alpha dropped like Pillow's
    /// `convert("RGB")`), resized to [`smart_resize`]'s size with Pillow's bicubic filter if
    /// `do_resize`.
    pub fn resized_rgb(&self, image: &DynamicImage) -> Result<RgbImage> {
        let c = &self.config;
        let rgb = to_rgb(image, c.do_convert_rgb)?;
        if !c.do_resize {
            return Ok(rgb);
        }
        let (height, width) = (rgb.height() as usize, rgb.width() as usize);
        let factor = c.patch_size * c.merge_size;
        let (new_height, new_width) = smart_resize(height, width, factor, c.min_pixels, c.max_pixels)?;
        resize_bicubic(&rgb, new_height, new_width)
    }

    /// Channel planes `[3, h, w]` of `x = (v·rescale_factor − mean) / std` (see
    /// [`PixelNormalization`](crate::processing::image::PixelNormalization)).
    /// Errors if a side is not a multiple of `patch_size · merge_size` (only when not resizing).
    fn normalized_planes(&self, rgb: &RgbImage) -> Result<(Vec<f32>, usize, usize)> {
        let c = &self.config;
        let (height, width) = (rgb.height() as usize, rgb.width() as usize);
        let factor = c.patch_size * c.merge_size;
        if height % factor != 0 || width % factor != 0 {
            return Err(ModelError::Input(format!(
                "image of {height}x{width} is not a multiple of patch_size x merge_size = {factor} (do_resize is false)"
            )));
        }
        Ok((c.normalization().planes(rgb), height, width))
    }

    /// Appends the patches of one image (channel planes `[3, height, width]`) in transformers'
    /// order and returns its grid `[1, height / patch, width / patch]`.
    ///
    /// Rows run over (merge-block row, merge-block column, row in block, column in block); each
    /// row holds (channel, frame, y, x) of a `patch × patch` square, the still frame repeated
    /// `temporal_patch_size` times (`grid_t = 1`). That is `_preprocess`'s reshape to
    /// `(t, T, C, h/m, m, p, w/m, m, p)` and transpose `(0, 3, 6, 4, 7, 2, 1, 5, 8)`.
    fn push_patches(&self, planes: &[f32], height: usize, width: usize, out: &mut Vec<f32>) -> [usize; 3] {
        let c = &self.config;
        let (p, m) = (c.patch_size, c.merge_size);
        let (grid_h, grid_w) = (height / p, width / p);
        out.reserve(grid_h * grid_w * self.patch_dim());
        for (row, col) in merge_order(grid_h / m, grid_w / m, m) {
            for plane in planes.chunks_exact(height * width) {
                for _ in 0..c.temporal_patch_size {
                    for y in row * p..(row + 1) * p {
                        out.extend_from_slice(&plane[y * width + col * p..][..p]);
                    }
                }
            }
        }
        [1, grid_h, grid_w]
    }
}

/// Patch coordinates `(row, column)` in the order the vision tower expects: merge blocks of
/// `merge × merge` patches row by row, and row by row inside each block.
fn merge_order(blocks_h: usize, blocks_w: usize, merge: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..blocks_h).flat_map(move |bh| {
        (0..blocks_w).flat_map(move |bw| {
            (0..merge).flat_map(move |mh| (0..merge).map(move |mw| (bh * merge + mh, bw * merge + mw)))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_order_walks_blocks_then_cells() {
        let order: Vec<_> = merge_order(1, 2, 2).collect();
        assert_eq!(order, [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (0, 3), (1, 2), (1, 3)]);
    }

    #[test]
    fn patches_follow_channel_frame_y_x() {
        let config = ImageProcessorConfig {
            patch_size: 1,
            merge_size: 1,
            do_resize: false,
            do_rescale: false,
            do_normalize: false,
            ..Default::default()
        };
        let processor = ImageProcessor::new(config);
        let image = RgbImage::from_fn(2, 1, |x, _| image::Rgb([x as u8, 10 + x as u8, 20 + x as u8]));
        let out = processor.preprocess(&[DynamicImage::ImageRgb8(image)]).unwrap();
        assert_eq!(out.grid_thw, [[1, 1, 2]]);
        assert_eq!((out.patches, out.patch_dim), (2, 6));
        assert_eq!(out.pixel_values, [0., 0., 10., 10., 20., 20., 1., 1., 11., 11., 21., 21.]);
    }
}
