//! Image files to decoded images, and Pillow's bicubic resize: the family-independent part of
//! image preprocessing (each family's processor lives in its folder under `families/`).

use std::io::Cursor;
use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader};

pub use super::resize::resize_bicubic;

use crate::error::{ModelError, Result};

/// Reads and decodes an image file (PNG, JPEG or WebP; see [`decode_image`]).
pub fn load_image(path: impl AsRef<Path>) -> Result<DynamicImage> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
    decode_image(&bytes, &path.display().to_string())
}

/// Decodes an encoded image (PNG, JPEG or WebP, recognised by its content) and applies its EXIF
/// orientation, as transformers' `load_image` does (`PIL.ImageOps.exif_transpose`). `name` (a
/// file name or URL) only labels errors. An unreadable EXIF block counts as no orientation.
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
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| error(e.to_string()))?;
    image.apply_orientation(orientation);
    Ok(image)
}
