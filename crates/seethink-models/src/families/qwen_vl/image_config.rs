//! The image processor settings of a checkpoint (`preprocessor_config.json`).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{ModelError, Result};
use crate::processing::image::PixelNormalization;

/// Hub-style image processor file.
pub const PREPROCESSOR_CONFIG: &str = "preprocessor_config.json";
/// transformers v5 processor file; the image processor settings sit under `image_processor`.
pub const PROCESSOR_CONFIG: &str = "processor_config.json";

/// `PILImageResampling.BICUBIC`, the only resampling filter implemented.
const BICUBIC: u64 = 3;

/// Settings of the Qwen2-VL image processor (shared by Qwen2.5-VL and Qwen3-VL).
///
/// Missing keys take transformers' `Qwen2VLImageProcessor` defaults ([`Default`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessorConfig {
    /// Side of a square patch in pixels.
    pub patch_size: usize,
    /// Frames per patch; a still image is repeated to fill them.
    pub temporal_patch_size: usize,
    /// Patches merged per side into one language-model token.
    pub merge_size: usize,
    /// Lower bound of the resized pixel count.
    pub min_pixels: usize,
    /// Upper bound of the resized pixel count.
    pub max_pixels: usize,
    /// Per-channel (R, G, B) mean, subtracted after rescaling.
    pub image_mean: [f64; 3],
    /// Per-channel (R, G, B) standard deviation, divided by after subtracting the mean.
    pub image_std: [f64; 3],
    /// Factor turning `u8` values into the `[0, 1]` range (`1/255`).
    pub rescale_factor: f64,
    pub do_resize: bool,
    pub do_rescale: bool,
    pub do_normalize: bool,
    pub do_convert_rgb: bool,
}

impl Default for ImageProcessorConfig {
    /// transformers' `Qwen2VLImageProcessor()` defaults (patch 14, pixels 56² ..= 28²·1280, CLIP
    /// mean and std).
    fn default() -> Self {
        Self {
            patch_size: 14,
            temporal_patch_size: 2,
            merge_size: 2,
            min_pixels: 56 * 56,
            max_pixels: 28 * 28 * 1280,
            image_mean: [0.48145466, 0.4578275, 0.40821073],
            image_std: [0.26862954, 0.26130258, 0.27577711],
            rescale_factor: 1.0 / 255.0,
            do_resize: true,
            do_rescale: true,
            do_normalize: true,
            do_convert_rgb: true,
        }
    }
}

/// The file holding checkpoint `dir`'s image processor settings: `preprocessor_config.json`,
/// or else `processor_config.json` (transformers loads them in that order; transformers 5's
/// `save_pretrained` of a processor writes only the latter, with the settings nested under
/// `image_processor`).
pub fn image_processor_file(dir: &Path) -> Result<PathBuf> {
    [PREPROCESSOR_CONFIG, PROCESSOR_CONFIG]
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| ModelError::Io {
            path: dir.join(PREPROCESSOR_CONFIG),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("neither {PREPROCESSOR_CONFIG} nor {PROCESSOR_CONFIG} exists"),
            ),
        })
}

impl ImageProcessorConfig {
    /// Reads [`image_processor_file`] of `dir`, taking the `image_processor` object when the
    /// file nests one.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_file(image_processor_file(dir.as_ref())?)
    }

    /// Reads one JSON file holding the image processor settings (possibly nested under
    /// `image_processor`).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ModelError::Io { path: path.to_path_buf(), source })?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|source| ModelError::Json { path: path.to_path_buf(), source })?;
        let fields = Fields::root(path, &json)?;
        match json.get("image_processor") {
            Some(nested) => Self::from_fields(&fields.object("image_processor", nested)?),
            None => Self::from_fields(&fields),
        }
    }

    /// Resolves every setting, falling back to the defaults.
    ///
    /// Pixel bounds: `min_pixels` / `max_pixels` win over `size.shortest_edge` /
    /// `size.longest_edge`, as in transformers' fast processor and v5. (The slow 4.57.1
    /// processor ignores a `size` given without `min_pixels` / `max_pixels` and falls back to
    /// the defaults, a bug this does not reproduce.)
    fn from_fields(fields: &Fields) -> Result<Self> {
        let default = Self::default();
        let size = fields.get("size").map(|size| fields.object("size", size)).transpose()?;
        let bound = |key: &str, size_key: &str, default: usize| -> Result<usize> {
            match (fields.usize(key)?, &size) {
                (Some(value), _) => Ok(value),
                (None, Some(size)) => size.usize(size_key)?.ok_or_else(|| size.error(size_key, "missing")),
                (None, None) => Ok(default),
            }
        };
        let config = Self {
            patch_size: fields.usize("patch_size")?.unwrap_or(default.patch_size),
            temporal_patch_size: fields.usize("temporal_patch_size")?.unwrap_or(default.temporal_patch_size),
            merge_size: fields.usize("merge_size")?.unwrap_or(default.merge_size),
            min_pixels: bound("min_pixels", "shortest_edge", default.min_pixels)?,
            max_pixels: bound("max_pixels", "longest_edge", default.max_pixels)?,
            image_mean: fields.channels("image_mean")?.unwrap_or(default.image_mean),
            image_std: fields.channels("image_std")?.unwrap_or(default.image_std),
            rescale_factor: fields.f64("rescale_factor")?.unwrap_or(default.rescale_factor),
            do_resize: fields.bool("do_resize")?.unwrap_or(default.do_resize),
            do_rescale: fields.bool("do_rescale")?.unwrap_or(default.do_rescale),
            do_normalize: fields.bool("do_normalize")?.unwrap_or(default.do_normalize),
            do_convert_rgb: fields.bool("do_convert_rgb")?.unwrap_or(default.do_convert_rgb),
        };
        if let Some((key, problem)) = config.invalid_setting() {
            return Err(fields.error(key, problem));
        }
        match fields.get("resample").map(Value::as_u64) {
            None | Some(Some(BICUBIC)) => Ok(config),
            Some(_) => Err(fields.error("resample", "only 3 (bicubic) is supported")),
        }
    }

    /// How pixel values are rescaled and normalised.
    pub fn normalization(&self) -> PixelNormalization {
        PixelNormalization {
            rescale: self.do_rescale.then_some(self.rescale_factor),
            mean_std: self.do_normalize.then_some((self.image_mean, self.image_std)),
        }
    }

    /// The first setting that cannot work, as `(key, problem)`: patch sizes must be positive,
    /// standard deviations non-zero and `min_pixels ≤ max_pixels`.
    pub(super) fn invalid_setting(&self) -> Option<(&'static str, &'static str)> {
        let sizes = [
            ("patch_size", self.patch_size),
            ("temporal_patch_size", self.temporal_patch_size),
            ("merge_size", self.merge_size),
        ];
        sizes
            .into_iter()
            .find(|&(_, size)| size == 0)
            .map(|(key, _)| (key, "must be positive"))
            .or_else(|| self.image_std.contains(&0.0).then_some(("image_std", "must not contain 0")))
            .or_else(|| {
                (self.min_pixels > self.max_pixels).then_some(("min_pixels", "must not exceed max_pixels"))
            })
    }
}

/// The keys of one JSON object of a config file, with errors naming the file and the dotted
/// key path (`image_processor.size.shortest_edge`).
struct Fields<'a> {
    path: &'a Path,
    prefix: String,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn root(path: &'a Path, json: &'a Value) -> Result<Self> {
        let map = json.as_object().ok_or_else(|| ModelError::Config {
            path: PathBuf::from(path),
            key: "<root>".into(),
            message: "expected a JSON object".into(),
        })?;
        Ok(Self { path, prefix: String::new(), map })
    }

    fn object(&self, key: &str, value: &'a Value) -> Result<Fields<'a>> {
        let map = value.as_object().ok_or_else(|| self.error(key, "expected an object"))?;
        Ok(Fields { path: self.path, prefix: format!("{}.", self.dotted(key)), map })
    }

    /// `key` with the path of the enclosing objects (`image_processor.size.longest_edge`).
    fn dotted(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn error(&self, key: &str, message: &str) -> ModelError {
        ModelError::Config { path: self.path.to_path_buf(), key: self.dotted(key), message: message.into() }
    }

    /// The value of `key`, treating JSON `null` as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    fn typed<T>(&self, key: &str, expected: &str, read: impl Fn(&Value) -> Option<T>) -> Result<Option<T>> {
        self.get(key)
            .map(|value| {
                read(value).ok_or_else(|| self.error(key, &format!("expected {expected}, found {value}")))
            })
            .transpose()
    }

    fn usize(&self, key: &str) -> Result<Option<usize>> {
        self.typed(key, "a non-negative integer", |v| v.as_u64().and_then(|v| usize::try_from(v).ok()))
    }

    fn f64(&self, key: &str) -> Result<Option<f64>> {
        self.typed(key, "a number", Value::as_f64)
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "a boolean", Value::as_bool)
    }

    /// A per-channel value: three numbers, or one number for all channels (as transformers
    /// accepts).
    fn channels(&self, key: &str) -> Result<Option<[f64; 3]>> {
        self.typed(key, "a number or a list of 3 numbers", |value| match value {
            Value::Array(items) => {
                let numbers: Option<Vec<f64>> = items.iter().map(Value::as_f64).collect();
                numbers?.try_into().ok()
            }
            _ => value.as_f64().map(|v| [v; 3]),
        })
    }
}
