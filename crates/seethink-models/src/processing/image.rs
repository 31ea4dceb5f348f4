//! Image files to decoded images, and Pillow's bicubic resize: the family-independent part of
//! image preprocessing (each family's processor lives in its folder under `families/`).

use std::io::Cursor;
use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

pub use super::resize::resize_bicubic;

use crate::error::{ModelError, Result};

/// Pixel-count bounds applied to every image before the model's own processor, as EasyR1's
/// `process_image` does (defaults: its 262,144 and 4,194,304).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageBounds {
    pub min_pixels: Option<usize>,
    pub max_pixels: Option<usize>,
}

impl Default for ImageBounds {
    fn default() -> Self {
        Self { min_pixels: Some(262_144), max_pixels: Some(4_194_304) }
    }
}

impl ImageBounds {
    /// No bounds: images reach the processor as decoded.
    pub const NONE: ImageBounds = ImageBounds { min_pixels: None, max_pixels: None };

    /// `image` resized into the bounds keeping its aspect ratio: if `w·h > max`,
    /// `f = √(max / (w·h))` and the size becomes `(⌊w·f⌋, ⌊h·f⌋)`; then, if `w·h < min`, the same
    /// with `f = √(min / (w·h))`; each resize is Pillow's bicubic (`Image.resize`'s default).
    /// An image within the bounds is returned as it is. EasyR1 resizes before converting to
    /// RGB; here a resized image is converted first (the same for RGB and grayscale input;
    /// images with alpha may differ by a few levels).
    pub fn apply(&self, image: DynamicImage) -> Result<DynamicImage> {
        let mut image = image;
        for (bound, too_many) in [(self.max_pixels, true), (self.min_pixels, false)] {
            let Some(bound) = bound else { continue };
            let (w, h) = (image.width() as usize, image.height() as usize);
            let area = w * h;
            if (too_many && area > bound) || (!too_many && area < bound) {
                let f = (bound as f64 / area as f64).sqrt();
                let (new_w, new_h) = ((w as f64 * f) as usize, (h as f64 * f) as usize);
                image = DynamicImage::ImageRgb8(resize_bicubic(&image.to_rgb8(), new_h, new_w)?);
            }
        }
        Ok(image)
    }
}

/// The image in 8-bit RGB: converted if `convert` (alpha dropped, like Pillow's
/// `convert("RGB")`), an error for any other colour type otherwise.
pub fn to_rgb(image: &DynamicImage, convert: bool) -> Result<RgbImage> {
    match image {
        DynamicImage::ImageRgb8(rgb) => Ok(rgb.clone()),
        _ if convert => Ok(image.to_rgb8()),
        _ => Err(ModelError::Input(format!(
            "image is {:?}, not 8-bit RGB, and do_convert_rgb is false",
            image.color()
        ))),
    }
}

/// How 8-bit pixel values become model input, as transformers' numpy image transforms do:
/// `rescale` → `x = f32(f64(v)·factor)`, then `mean_std` → `(x − f32(mean)) / f32(std)` in f32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PixelNormalization {
    pub rescale: Option<f64>,
    pub mean_std: Option<([f64; 3], [f64; 3])>,
}

impl PixelNormalization {
    /// One value `v` of channel `channel`.
    pub fn value(&self, channel: usize, v: u8) -> f32 {
        let x = match self.rescale {
            Some(factor) => (f64::from(v) * factor) as f32,
            None => f32::from(v),
        };
        match self.mean_std {
            Some((mean, std)) => (x - mean[channel] as f32) / std[channel] as f32,
            None => x,
        }
    }

    /// The normalised channel planes `[3, h, w]` (row-major) of `rgb`.
    pub fn planes(&self, rgb: &RgbImage) -> Vec<f32> {
        let area = rgb.width() as usize * rgb.height() as usize;
        let mut planes = vec![0f32; 3 * area];
        for (i, pixel) in rgb.pixels().enumerate() {
            for (ch, &v) in pixel.0.iter().enumerate() {
                planes[ch * area + i] = self.value(ch, v);
            }
        }
        planes
    }
}

/// Reads and decodes an image file (PNG, JPEG or WebP; see [`decode_image`]).
pub fn load_image(path: impl AsRef<Path>) -> Result<DynamicImage> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
    decode_image(&bytes, &path.display().to_string())
}

/// The largest width or height decoded: a few kilobytes of PNG can declare 30,000 × 30,000
/// pixels (5 GB to decode); every model's processor downsizes far below this anyway.
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// The most memory one decode may allocate (a 16,384² RGBA image).
const MAX_DECODE_BYTES: u64 = 1 << 30;

/// Decodes an encoded image (PNG, JPEG or WebP, recognised by its content) and applies its EXIF
/// orientation, as transformers' `load_image` does (`PIL.ImageOps.exif_transpose`). `name` (a
/// file name or URL) only labels errors. An unreadable EXIF block counts as no orientation. An
/// image wider or higher than [`MAX_IMAGE_SIDE`] is an error before anything is decoded.
pub fn decode_image(bytes: &[u8], name: &str) -> Result<DynamicImage> {
    let error = |message: String| ModelError::Image { source_name: name.to_string(), message };
    if bytes.is_empty() {
        return Err(error("the input is empty (0 bytes)".into()));
    }
    let reader =
        ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| error(e.to_string()))?;
    if reader.format().is_none() {
        return Err(error("unrecognised image format (supported: PNG, JPEG, WebP)".into()));
    }
    let mut decoder = reader.into_decoder().map_err(|e| error(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(error(format!(
            "the image declares {width} × {height} pixels, more than the {MAX_IMAGE_SIDE} per side this \
             loader decodes"
        )));
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    decoder.set_limits(limits).map_err(|e| error(e.to_string()))?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| error(e.to_string()))?;
    image.apply_orientation(orientation);
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes computed with EasyR1's `process_image` in Python.
    #[test]
    fn bounds_resize_like_easyr1() {
        let size = |w: u32, h: u32| {
            let out = ImageBounds::default().apply(DynamicImage::new_rgb8(w, h)).unwrap();
            (out.width(), out.height())
        };
        assert_eq!(size(32, 24), (591, 443));
        assert_eq!(size(3000, 2000), (2508, 1672));
        assert_eq!(size(640, 480), (640, 480));
        assert_eq!(size(100, 1000), (161, 1619));
        let gray = DynamicImage::new_luma8(640, 480);
        assert_eq!(ImageBounds::default().apply(gray.clone()).unwrap(), gray, "within bounds: untouched");
        let tiny = DynamicImage::new_rgb8(4, 3);
        assert_eq!(ImageBounds::NONE.apply(tiny.clone()).unwrap(), tiny);
    }
}
