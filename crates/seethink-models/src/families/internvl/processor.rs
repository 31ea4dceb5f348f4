//! The image half of the InternVL processor: dynamic tiling (transformers' `GotOcr2` image
//! processor with `crop_to_patches`, as `InternVLProcessor` calls it; the original release's
//! `dynamic_preprocess`), and each image placeholder of the rendered prompt expanded to
//! `<img>` + the context token × tokens per tile × tiles + `</img>`.

use std::path::Path;

use burn::tensor::{backend::Backend, Tensor, TensorData};
use image::{DynamicImage, RgbImage};
use serde_json::Value;

use super::config::{InternVlConfig, Style};
use crate::config::Keys;
use crate::error::{ModelError, Result};
use crate::families::qwen_vl::image::image_processor_file;
use crate::processing::image::{resize_bicubic, to_rgb, PixelNormalization};
use crate::processing::placeholders::{check_placeholders, replace_placeholders};
use crate::processing::TextTokenizer;
use crate::vlm::ImageInput;

/// ImageNet's per-channel mean and standard deviation, which InternVL normalises with.
const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];
/// `PILImageResampling.BICUBIC`, the only resampling filter implemented.
const BICUBIC: u64 = 3;

/// How images become tiles.
#[derive(Clone, Debug, PartialEq)]
pub struct Tiling {
    /// Side of a square tile in pixels.
    pub tile: usize,
    pub min_tiles: usize,
    pub max_tiles: usize,
    /// Whether a thumbnail (the whole image as one more tile) follows a grid of several tiles.
    pub thumbnail: bool,
    pub normalization: PixelNormalization,
    pub convert_rgb: bool,
}

/// The grid `(columns, rows)` an image of `width × height` is cut into (transformers'
/// `get_optimal_tiled_canvas`, the original's `find_closest_aspect_ratio`): among the grids with
/// `min ≤ columns·rows ≤ max`, ordered by tile count (then columns, then rows), the first whose
/// ratio `columns/rows` is closest to `width/height`; a later grid at the same distance wins
/// when the image has more than half the pixels of that grid, `w·h > ½·tile²·columns·rows`.
pub fn tile_grid(width: usize, height: usize, tile: usize, min: usize, max: usize) -> (usize, usize) {
    let mut grids: Vec<(usize, usize)> = (1..=max)
        .flat_map(|c| (1..=max).map(move |r| (c, r)))
        .filter(|(c, r)| (min..=max).contains(&(c * r)))
        .collect();
    grids.sort_by_key(|(c, r)| c * r);
    let aspect = width as f64 / height as f64;
    let area = (width * height) as f64;
    let mut best = (1, 1);
    let mut best_diff = f64::INFINITY;
    for (c, r) in grids {
        let diff = (aspect - c as f64 / r as f64).abs();
        if diff < best_diff {
            (best, best_diff) = ((c, r), diff);
        } else if diff == best_diff && area > 0.5 * (tile * tile * c * r) as f64 {
            best = (c, r);
        }
    }
    best
}

impl Tiling {
    /// The tiles of one image, each as channel planes `[3, tile, tile]`: the image resized
    /// (Pillow's bicubic) to the grid of [`tile_grid`] and cut row by row, plus the whole image
    /// resized to one tile when the grid has several tiles and `thumbnail` is set. With
    /// `max_tiles` 1 the image is resized to one tile.
    pub fn tiles(&self, image: &DynamicImage) -> Result<Vec<Vec<f32>>> {
        let rgb = to_rgb(image, self.convert_rgb)?;
        let (width, height) = (rgb.width() as usize, rgb.height() as usize);
        let t = self.tile;
        let (columns, rows) = if self.max_tiles > 1 {
            tile_grid(width, height, t, self.min_tiles, self.max_tiles)
        } else {
            (1, 1)
        };
        let canvas = resize_bicubic(&rgb, rows * t, columns * t)?;
        let mut tiles: Vec<RgbImage> = (0..rows * columns)
            .map(|i| {
                image::imageops::crop_imm(
                    &canvas,
                    ((i % columns) * t) as u32,
                    ((i / columns) * t) as u32,
                    t as u32,
                    t as u32,
                )
                .to_image()
            })
            .collect();
        if self.thumbnail && tiles.len() > 1 {
            tiles.push(resize_bicubic(&rgb, t, t)?);
        }
        Ok(tiles.iter().map(|tile| self.normalization.planes(tile)).collect())
    }
}

/// The InternVL image processor with the strings of its placeholder tokens.
pub struct InternVlImages {
    pub tiling: Tiling,
    pub tokens_per_tile: usize,
    /// What the chat template writes for an image: the context token (`-hf`) or `<image>`
    /// (the original release's `chat()`).
    pub placeholder: String,
    pub context_token: String,
    pub start_token: String,
    pub end_token: String,
}

impl InternVlImages {
    /// The processor of checkpoint `dir` with config `config`: tiling from the image processor
    /// file (`-hf`: [`image_processor_file`]) or `config.json` (original), placeholder strings
    /// as `tokenizer` spells them.
    pub fn from_dir(dir: &Path, config: &InternVlConfig, tokenizer: &TextTokenizer) -> Result<Self> {
        let id = config.image_token_id as u32;
        let context_token = tokenizer.id_to_token(id).ok_or_else(|| ModelError::Tokenizer {
            path: dir.join("tokenizer.json"),
            message: format!("image token id {id} is not in the vocabulary"),
        })?;
        for token in ["<img>", "</img>"] {
            if tokenizer.token_to_id(token).is_none() {
                return Err(ModelError::Tokenizer {
                    path: dir.join("tokenizer.json"),
                    message: format!("InternVL's image delimiter {token} is not in the vocabulary"),
                });
            }
        }
        let tile = config.vision.image_size;
        let (tiling, placeholder) = match (&config.tiling, config.style) {
            (Some(t), Style::Original) => (
                Tiling {
                    tile,
                    min_tiles: t.min_tiles,
                    max_tiles: if t.dynamic { t.max_tiles } else { 1 },
                    thumbnail: t.thumbnail,
                    normalization: PixelNormalization {
                        rescale: Some(1.0 / 255.0),
                        mean_std: Some((IMAGENET_MEAN, IMAGENET_STD)),
                    },
                    convert_rgb: true,
                },
                "<image>".to_string(),
            ),
            _ => (hf_tiling(&image_processor_file(dir)?, tile)?, context_token.clone()),
        };
        if tiling.min_tiles == 0 || tiling.min_tiles > tiling.max_tiles {
            return Err(ModelError::Input(format!(
                "InternVL tiling needs 1 <= min tiles <= max tiles, got {} and {}",
                tiling.min_tiles, tiling.max_tiles
            )));
        }
        Ok(Self {
            tiling,
            tokens_per_tile: config.tokens_per_tile(),
            placeholder,
            context_token,
            start_token: "<img>".into(),
            end_token: "</img>".into(),
        })
    }

    /// `text` with the k-th image placeholder replaced by image k's `<img>…</img>` run, and
    /// the images' tiles (`None` without images). Errors when placeholders and images differ
    /// in number.
    pub fn expand<B: Backend>(
        &self,
        text: &str,
        images: &[DynamicImage],
        device: &B::Device,
    ) -> Result<(String, Option<ImageInput<B>>)> {
        check_placeholders(text, &self.placeholder, images.len())?;
        if images.is_empty() {
            return Ok((text.to_string(), None));
        }
        let mut values = Vec::new();
        let mut counts = Vec::with_capacity(images.len());
        for image in images {
            let tiles = self.tiling.tiles(image)?;
            counts.push(tiles.len());
            values.extend(tiles.into_iter().flatten());
        }
        let runs = counts.iter().map(|&tiles| {
            format!(
                "{}{}{}",
                self.start_token,
                self.context_token.repeat(self.tokens_per_tile * tiles),
                self.end_token
            )
        });
        let expanded = replace_placeholders(text, &self.placeholder, runs);
        let total: usize = counts.iter().sum();
        let per_tile = values.len() / total;
        let pixel_values = Tensor::from_data(TensorData::new(values, [total, per_tile]), device);
        Ok((expanded, Some(ImageInput::tiles(pixel_values, counts))))
    }
}

/// The tiling of a `-hf` checkpoint from its image processor file (transformers'
/// `GotOcr2ImageProcessor`, nested under `image_processor` in transformers 5's
/// `processor_config.json`; missing keys take its defaults, `min_patches` 1, `max_patches` 12,
/// CLIP's mean and std). `InternVLProcessor` always crops to patches (its call passes
/// `crop_to_patches=True`), so the file's `crop_to_patches` is not read; the tile size must be
/// the vision tower's.
fn hf_tiling(path: &Path, tower_side: usize) -> Result<Tiling> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|source| ModelError::Json { path: path.to_path_buf(), source })?;
    let keys = Keys::root(&value, path)?;
    let keys = keys.child("image_processor")?.unwrap_or(keys);
    if let Some(size) = keys.child("size")? {
        let (h, w) = (size.usize("height")?, size.usize("width")?);
        if h != tower_side || w != tower_side {
            return Err(size.invalid(
                "height",
                format!("tiles of {h}x{w}, but the vision tower takes {tower_side}x{tower_side}"),
            ));
        }
    }
    if keys.get("resample").is_some_and(|r| r.as_u64() != Some(BICUBIC)) {
        return Err(keys.invalid("resample", "only 3 (bicubic) is supported"));
    }
    let clip = crate::families::qwen_vl::image::ImageProcessorConfig::default();
    let mean = keys.opt_channels("image_mean")?.unwrap_or(clip.image_mean);
    let std = keys.opt_channels("image_std")?.unwrap_or(clip.image_std);
    if std.contains(&0.0) {
        return Err(keys.invalid("image_std", "must not contain 0"));
    }
    Ok(Tiling {
        tile: tower_side,
        min_tiles: keys.opt_usize("min_patches")?.unwrap_or(1),
        max_tiles: keys.opt_usize("max_patches")?.unwrap_or(12),
        thumbnail: true,
        normalization: PixelNormalization {
            rescale: keys
                .opt_bool("do_rescale")?
                .unwrap_or(true)
                .then_some(keys.opt_f64("rescale_factor")?.unwrap_or(1.0 / 255.0)),
            mean_std: keys.opt_bool("do_normalize")?.unwrap_or(true).then_some((mean, std)),
        },
        convert_rgb: keys.opt_bool("do_convert_rgb")?.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_follow_the_aspect_ratio_within_the_tile_budget() {
        assert_eq!(tile_grid(120, 40, 32, 1, 6), (3, 1));
        // 1x1 and 2x2 fit a square alike; 60² pixels are more than half of 2x2 tiles of 32²
        assert_eq!(tile_grid(60, 60, 32, 1, 6), (2, 2));
        assert_eq!(tile_grid(40, 40, 32, 1, 6), (1, 1));
        assert_eq!(tile_grid(40, 100, 32, 1, 6), (1, 3));
        assert_eq!(tile_grid(1000, 10, 448, 1, 12), (12, 1));
        // 2:1 is also 4x2 and 6x3 away; a large image takes the later, finer grid
        assert_eq!(tile_grid(200, 100, 448, 1, 12), (2, 1));
        assert_eq!(tile_grid(2000, 1000, 448, 1, 12), (4, 2));
    }

    #[test]
    fn a_min_above_one_excludes_single_tiles() {
        assert_eq!(tile_grid(60, 60, 32, 2, 6), (2, 2));
    }
}
