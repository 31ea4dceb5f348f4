//! Image preprocessing against transformers 4.57.1's slow `Qwen2VLImageProcessor` and Pillow
//! (fixtures from `tests/fixtures/image_processing.py`).

use std::path::{Path, PathBuf};

use image::{DynamicImage, RgbImage};
use safetensors::{Dtype, SafeTensors};
use seethink_models::processing::image::{decode_image, load_image, resize_bicubic};
use seethink_models::qwen_vl::image::{smart_resize, ImageProcessor, ImageProcessorConfig};
use seethink_models::ModelError;

const FAMILIES: [&str; 2] = ["qwen2_5_vl", "qwen3_vl"];
/// Test images (file stems under `tests/fixtures/images`), with their file names.
const IMAGES: [(&str, &str); 7] = [
    ("square", "square.png"),
    ("wide", "wide.png"),
    ("tall", "tall.jpg"),
    ("rgba", "rgba.png"),
    ("gray", "gray.png"),
    ("photo", "photo.webp"),
    ("rotated", "rotated.png"),
];
/// Pixel values must match transformers within this (they match exactly in practice).
const PIXEL_TOLERANCE: f32 = 1e-4;
/// Largest difference (in `u8` levels) between the `image` crate's JPEG decoder (zune-jpeg) and
/// Pillow's libjpeg-turbo on `tall.jpg` (4:2:0, quality 90): their IDCT and chroma upsampling
/// round differently. PNG and WebP decode bit-exactly.
const JPEG_DECODE_TOLERANCE: u8 = 8;

fn is_jpeg(file: &str) -> bool {
    file.ends_with(".jpg")
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn image_path(file: &str) -> PathBuf {
    fixtures().join("images").join(file)
}

fn checkpoint(family: &str) -> PathBuf {
    fixtures().join(family).join("checkpoint")
}

fn processor(family: &str) -> ImageProcessor {
    ImageProcessor::new(ImageProcessorConfig::from_dir(checkpoint(family)).unwrap())
}

/// The tensors of one safetensors fixture file.
struct Tensors(Vec<u8>);

impl Tensors {
    fn open(path: &Path) -> Self {
        Self(std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    fn raw(&self, name: &str, dtype: Dtype) -> (Vec<u8>, Vec<usize>) {
        let st = SafeTensors::deserialize(&self.0).unwrap();
        let t = st.tensor(name).unwrap_or_else(|_| panic!("fixture tensor {name} missing"));
        assert_eq!(t.dtype(), dtype, "{name}");
        (t.data().to_vec(), t.shape().to_vec())
    }

    fn names(&self) -> Vec<String> {
        SafeTensors::deserialize(&self.0).unwrap().names().into_iter().map(String::from).collect()
    }

    /// A `[h, w, 3]` u8 tensor as an RGB image.
    fn rgb(&self, name: &str) -> RgbImage {
        let (data, shape) = self.raw(name, Dtype::U8);
        assert_eq!((shape.len(), shape[2]), (3, 3), "{name}");
        RgbImage::from_raw(shape[1] as u32, shape[0] as u32, data).unwrap()
    }

    fn f32(&self, name: &str) -> (Vec<f32>, Vec<usize>) {
        let (data, shape) = self.raw(name, Dtype::F32);
        (data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(), shape)
    }

    fn i64(&self, name: &str) -> Vec<i64> {
        let (data, _) = self.raw(name, Dtype::I64);
        data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
    }
}

fn pillow_reference() -> Tensors {
    Tensors::open(&fixtures().join("images/pillow_reference.safetensors"))
}

fn processor_reference(family: &str) -> Tensors {
    Tensors::open(&fixtures().join(family).join("processor_reference.safetensors"))
}

/// Number of differing bytes and the largest difference.
fn byte_diff(a: &RgbImage, b: &RgbImage) -> (usize, u8) {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .filter(|(x, y)| x != y)
        .fold((0, 0), |(n, m), (x, y)| (n + 1, m.max(x.abs_diff(*y))))
}

// ---------------------------------------------------------------------------------------------
// Pillow bicubic resize

#[test]
fn resize_matches_pillow_bit_for_bit() {
    let pillow = pillow_reference();
    let square = pillow.rgb("square.decoded");
    let cases: Vec<String> = pillow.names().into_iter().filter(|n| n.starts_with("resize.")).collect();
    assert!(cases.len() >= 6, "{cases:?}");
    for name in cases {
        let expected = pillow.rgb(&name);
        let out = resize_bicubic(&square, expected.height() as usize, expected.width() as usize).unwrap();
        assert_eq!(byte_diff(&out, &expected), (0, 0), "{name}: (differing bytes, max diff)");
    }
}

#[test]
fn processor_resize_matches_transformers_on_every_test_image() {
    let pillow = pillow_reference();
    for family in FAMILIES {
        let processor = processor(family);
        let reference = processor_reference(family);
        for (name, _) in IMAGES {
            let decoded = DynamicImage::ImageRgb8(pillow.rgb(&format!("{name}.decoded")));
            let out = processor.resized_rgb(&decoded).unwrap();
            let expected = reference.rgb(&format!("{name}.resized"));
            assert_eq!(byte_diff(&out, &expected), (0, 0), "{family} {name}: (differing bytes, max diff)");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

#[test]
fn decoding_matches_pillow() {
    let pillow = pillow_reference();
    for (name, file) in IMAGES {
        let decoded = load_image(image_path(file)).unwrap().to_rgb8();
        let expected = pillow.rgb(&format!("{name}.decoded"));
        let (differing, max) = byte_diff(&decoded, &expected);
        println!("{file}: {differing} differing bytes of {}, max |diff| {max}", expected.len());
        let tolerance = if is_jpeg(file) { JPEG_DECODE_TOLERANCE } else { 0 };
        assert!(max <= tolerance, "{file}: max |diff| {max} > {tolerance}");
    }
}

#[test]
fn exif_orientation_is_applied() {
    let image = load_image(image_path("rotated.png")).unwrap();
    // stored 52 wide x 30 high, EXIF orientation 6 (rotate 90 degrees clockwise)
    assert_eq!((image.width(), image.height()), (30, 52));
}

#[test]
fn empty_input_is_an_error_naming_the_source() {
    let err = decode_image(&[], "empty.png").unwrap_err();
    assert!(matches!(err, ModelError::Image { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("empty.png") && msg.contains("empty"), "{msg}");
}

#[test]
fn corrupt_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let png = std::fs::read(image_path("square.png")).unwrap();
    let jpeg = std::fs::read(image_path("tall.jpg")).unwrap();
    let cases: [(&str, Vec<u8>); 4] = [
        ("truncated.png", png[..png.len() / 2].to_vec()),
        ("truncated.jpg", jpeg[..40].to_vec()),
        ("garbage.webp", b"this is not an image at all".to_vec()),
        ("empty.jpg", Vec::new()),
    ];
    for (file, bytes) in cases {
        let path = dir.path().join(file);
        std::fs::write(&path, bytes).unwrap();
        let err = load_image(&path).unwrap_err();
        assert!(matches!(err, ModelError::Image { .. }), "{file}: {err:?}");
        assert!(err.to_string().contains(&path.display().to_string()), "{file}: {err}");
    }
}

/// CRC-32 (IEEE) of `bytes`, as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn an_image_declaring_huge_dimensions_is_refused_before_decoding() {
    // a real PNG whose header (IHDR, with a valid CRC) claims 30,000 × 30,000 pixels
    let mut png = std::fs::read(image_path("square.png")).unwrap();
    png[16..20].copy_from_slice(&30_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&30_000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let started = std::time::Instant::now();
    let err = decode_image(&png, "bomb.png").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bomb.png") && msg.contains("30000 × 30000") && msg.contains("16384"), "{msg}");
    assert!(started.elapsed().as_secs() < 2, "refused without decoding");
}

#[test]
fn missing_file_is_an_io_error_naming_the_file() {
    let err = load_image("/nonexistent/dir/cat.png").unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/dir/cat.png"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Full preprocessing against transformers

/// Largest |difference| between the processor's output for `image` and the reference of
/// `name`, after checking the grid and shape.
fn max_pixel_diff(family: &str, name: &str, image: DynamicImage) -> f32 {
    let reference = processor_reference(family);
    let out = processor(family).preprocess(&[image]).unwrap();
    let grid = reference.i64(&format!("{name}.image_grid_thw"));
    let grid = [grid[0] as usize, grid[1] as usize, grid[2] as usize];
    assert_eq!(out.grid_thw, [grid], "{family} {name}");
    let (expected, shape) = reference.f32(&format!("{name}.pixel_values"));
    assert_eq!([out.patches, out.patch_dim], [shape[0], shape[1]], "{family} {name}");
    out.pixel_values.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max)
}

/// The whole processor (resize, rescale, normalise, patch order) on Pillow's decoded pixels.
#[test]
fn pixel_values_and_grids_match_transformers() {
    let pillow = pillow_reference();
    for family in FAMILIES {
        for (name, _) in IMAGES {
            let decoded = DynamicImage::ImageRgb8(pillow.rgb(&format!("{name}.decoded")));
            let max = max_pixel_diff(family, name, decoded);
            println!("{family} {name}: max |Δ pixel_values| = {max:e}");
            assert!(max <= PIXEL_TOLERANCE, "{family} {name}: max |diff| {max}");
        }
    }
}

/// From the files: exact but for JPEG, whose decoding differs by a few levels.
#[test]
fn pixel_values_from_files_match_transformers() {
    for family in FAMILIES {
        let min_std = processor(family).config().image_std.iter().copied().fold(f64::INFINITY, f64::min);
        for (name, file) in IMAGES {
            let max = max_pixel_diff(family, name, load_image(image_path(file)).unwrap());
            println!("{family} {file}: max |Δ pixel_values| = {max:e}");
            let tolerance = if is_jpeg(file) {
                (f64::from(JPEG_DECODE_TOLERANCE) / 255.0 / min_std) as f32
            } else {
                PIXEL_TOLERANCE
            };
            assert!(max <= tolerance, "{family} {file}: max |diff| {max} > {tolerance}");
        }
    }
}

#[test]
fn batch_concatenates_single_images() {
    let processor = processor("qwen2_5_vl");
    let images: Vec<DynamicImage> =
        IMAGES.iter().map(|(_, file)| load_image(image_path(file)).unwrap()).collect();
    let batch = processor.preprocess(&images).unwrap();
    let mut pixel_values = Vec::new();
    let mut grids = Vec::new();
    for image in &images {
        let single = processor.preprocess(std::slice::from_ref(image)).unwrap();
        pixel_values.extend(single.pixel_values);
        grids.extend(single.grid_thw);
    }
    assert_eq!(batch.grid_thw, grids);
    assert_eq!(batch.pixel_values, pixel_values);
    assert_eq!(batch.patches * batch.patch_dim, batch.pixel_values.len());
    assert_eq!(batch.patches, grids.iter().map(|g| g[0] * g[1] * g[2]).sum::<usize>());
}

#[test]
fn tokens_per_image_divides_by_merge_squared() {
    let processor = processor("qwen3_vl");
    assert_eq!(processor.tokens_per_image([1, 8, 12]), 24);
    assert_eq!(processor.tokens_per_image([2, 4, 6]), 12);
    assert_eq!(processor.patch_dim(), 96);
}

#[test]
fn non_rgb_input_without_conversion_is_an_error() {
    let config = ImageProcessorConfig {
        do_convert_rgb: false,
        ..ImageProcessorConfig::from_dir(checkpoint("qwen3_vl")).unwrap()
    };
    let rgba = load_image(image_path("rgba.png")).unwrap();
    let err = ImageProcessor::new(config).preprocess(&[rgba]).unwrap_err();
    assert!(err.to_string().contains("do_convert_rgb"), "{err}");
}

#[test]
fn unusable_hand_built_config_is_an_error() {
    for config in [
        ImageProcessorConfig { merge_size: 0, ..Default::default() },
        ImageProcessorConfig { image_std: [0.5, 0.0, 0.5], ..Default::default() },
    ] {
        let err = ImageProcessor::new(config).preprocess(&[DynamicImage::new_rgb8(56, 56)]).unwrap_err();
        assert!(matches!(err, ModelError::Input(_)), "{err:?}");
    }
}

#[test]
fn unresized_input_must_fit_the_patch_grid() {
    let config = ImageProcessorConfig {
        do_resize: false,
        ..ImageProcessorConfig::from_dir(checkpoint("qwen3_vl")).unwrap()
    };
    let processor = ImageProcessor::new(config);
    let err = processor.preprocess(&[DynamicImage::new_rgb8(20, 16)]).unwrap_err();
    assert!(err.to_string().contains("20"), "{err}");
    let ok = processor.preprocess(&[DynamicImage::new_rgb8(24, 16)]).unwrap();
    assert_eq!(ok.grid_thw, [[1, 4, 6]]);
}

// ---------------------------------------------------------------------------------------------
// smart_resize (expected values from transformers' smart_resize)

#[test]
fn smart_resize_matches_transformers() {
    let cases = [
        // (height, width, factor, min_pixels, max_pixels) -> (height, width)
        ((36, 44, 8, 512, 1536), (32, 48)), // 4.5 -> 4, 5.5 -> 6 (half to even)
        ((20, 28, 8, 0, 1_000_000_000), (16, 32)), // 2.5 -> 2, 3.5 -> 4
        ((70, 98, 28, 3136, 1_003_520), (56, 112)), // 2.5 -> 2, 3.5 -> 4
        ((42, 42, 28, 3136, 1_003_520), (56, 56)), // 1.5 -> 2
        ((12, 60, 4, 0, 1_000_000_000), (12, 60)), // already multiples
        ((60, 60, 8, 512, 1536), (32, 32)), // beta floor
        ((100, 40, 8, 384, 2048), (64, 24)), // beta floor
        ((1080, 1920, 28, 3136, 1_003_520), (728, 1316)), // beta floor
        ((20, 3000, 28, 0, 5000), (28, 840)), // beta floor clamped to factor
        ((14, 20, 8, 512, 1536), (24, 32)), // beta ceil
        ((10, 10, 28, 3136, 1_003_520), (56, 56)), // beta ceil
        ((1, 200, 28, 3136, 1_003_520), (28, 812)), // aspect ratio 200 is allowed
        ((1080, 1920, 28, 3136, 12_845_056), (1092, 1932)), // Qwen2.5-VL hub bounds
        ((4000, 3000, 32, 65_536, 16_777_216), (4000, 3008)), // Qwen3-VL hub bounds
        ((2000, 30, 14, 3136, 200_000), (2002, 28)),
    ];
    for ((h, w, f, min, max), expected) in cases {
        assert_eq!(smart_resize(h, w, f, min, max).unwrap(), expected, "{h}x{w} factor {f} [{min}, {max}]");
    }
}

#[test]
fn smart_resize_rejects_extreme_aspect_ratios() {
    for (h, w) in [(1, 201), (201, 1), (10, 2001)] {
        let err = smart_resize(h, w, 28, 3136, 1_003_520).unwrap_err();
        assert!(err.to_string().contains("aspect ratio must be smaller than 200"), "{err}");
    }
}

#[test]
fn smart_resize_rejects_empty_sizes() {
    assert!(smart_resize(0, 10, 28, 3136, 1_003_520).is_err());
    assert!(smart_resize(10, 0, 28, 3136, 1_003_520).is_err());
    assert!(smart_resize(10, 10, 0, 3136, 1_003_520).is_err());
    // transformers returns (0, 196) here, which no image can be resized to
    assert!(smart_resize(1, 200, 28, 0, 1000).is_err());
}

// ---------------------------------------------------------------------------------------------
// Configuration

fn write_json(dir: &Path, file: &str, json: &serde_json::Value) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, serde_json::to_string_pretty(json).unwrap()).unwrap();
    path
}

fn fixture_json(family: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(checkpoint(family).join("preprocessor_config.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn fixture_configs_parse() {
    let c = ImageProcessorConfig::from_dir(checkpoint("qwen2_5_vl")).unwrap();
    assert_eq!((c.patch_size, c.temporal_patch_size, c.merge_size), (4, 2, 2));
    assert_eq!((c.min_pixels, c.max_pixels), (512, 1536));
    assert_eq!(c.image_mean, [0.48145466, 0.4578275, 0.40821073]);
    assert_eq!(c.image_std, [0.26862954, 0.26130258, 0.27577711]);
    assert_eq!(c.rescale_factor, 1.0 / 255.0);
    assert!(c.do_resize && c.do_rescale && c.do_normalize && c.do_convert_rgb);

    let c = ImageProcessorConfig::from_dir(checkpoint("qwen3_vl")).unwrap();
    assert_eq!((c.min_pixels, c.max_pixels), (384, 2048));
    assert_eq!((c.image_mean, c.image_std), ([0.5; 3], [0.5; 3]));
}

#[test]
fn v5_processor_config_parses_to_the_same_config() {
    for family in FAMILIES {
        let dir = tempfile::tempdir().unwrap();
        let json = serde_json::json!({
            "image_processor": fixture_json(family),
            "processor_class": "Qwen2_5_VLProcessor",
        });
        write_json(dir.path(), "processor_config.json", &json);
        assert_eq!(
            ImageProcessorConfig::from_dir(dir.path()).unwrap(),
            ImageProcessorConfig::from_dir(checkpoint(family)).unwrap(),
            "{family}"
        );
    }
}

#[test]
fn pixel_bounds_come_from_size_when_min_max_pixels_are_absent() {
    let dir = tempfile::tempdir().unwrap();
    let mut json = fixture_json("qwen3_vl");
    let map = json.as_object_mut().unwrap();
    map.remove("min_pixels");
    map.remove("max_pixels");
    map.insert("size".into(), serde_json::json!({"shortest_edge": 100, "longest_edge": 5000}));
    write_json(dir.path(), "preprocessor_config.json", &json);
    let c = ImageProcessorConfig::from_dir(dir.path()).unwrap();
    assert_eq!((c.min_pixels, c.max_pixels), (100, 5000));

    // min_pixels / max_pixels win over size
    json["min_pixels"] = 200.into();
    json["max_pixels"] = 3000.into();
    write_json(dir.path(), "preprocessor_config.json", &json);
    let c = ImageProcessorConfig::from_dir(dir.path()).unwrap();
    assert_eq!((c.min_pixels, c.max_pixels), (200, 3000));
}

#[test]
fn missing_keys_take_transformers_defaults() {
    let dir = tempfile::tempdir().unwrap();
    write_json(dir.path(), "preprocessor_config.json", &serde_json::json!({"image_mean": 0.5}));
    let c = ImageProcessorConfig::from_dir(dir.path()).unwrap();
    assert_eq!(c, ImageProcessorConfig { image_mean: [0.5; 3], ..Default::default() });
    assert_eq!((c.patch_size, c.min_pixels, c.max_pixels), (14, 3136, 1_003_520));
}

/// The error of loading a config dir holding `file` with `json`; checks it names file and key.
fn config_error(file: &str, json: serde_json::Value, key: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write_json(dir.path(), file, &json);
    let err = ImageProcessorConfig::from_dir(dir.path()).unwrap_err();
    match &err {
        ModelError::Config { path: p, key: k, .. } => {
            assert_eq!((p, k.as_str()), (&path, key), "{err}");
        }
        other => panic!("expected a config error for {key}, got {other:?}"),
    }
    err.to_string()
}

#[test]
fn config_errors_name_file_and_key() {
    use serde_json::json;
    let pre = "preprocessor_config.json";
    config_error(pre, json!({"patch_size": "14"}), "patch_size");
    config_error(pre, json!({"patch_size": -1}), "patch_size");
    config_error(pre, json!({"merge_size": 0}), "merge_size");
    config_error(pre, json!({"do_resize": 1}), "do_resize");
    config_error(pre, json!({"image_mean": [0.5, 0.5]}), "image_mean");
    config_error(pre, json!({"image_std": [0.5, 0.0, 0.5]}), "image_std");
    config_error(pre, json!({"resample": 2}), "resample");
    config_error(pre, json!({"size": {"shortest_edge": 10}}), "size.longest_edge");
    config_error(pre, json!({"size": 224}), "size");
    config_error(pre, json!([1, 2]), "<root>");
    let msg = config_error(
        "processor_config.json",
        json!({"image_processor": {"rescale_factor": "x"}}),
        "image_processor.rescale_factor",
    );
    assert!(msg.contains("processor_config.json") && msg.contains("image_processor.rescale_factor"), "{msg}");
}

#[test]
fn missing_or_malformed_config_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = ImageProcessorConfig::from_dir(dir.path()).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("preprocessor_config.json"), "{err}");

    std::fs::write(dir.path().join("preprocessor_config.json"), "{ not json").unwrap();
    let err = ImageProcessorConfig::from_dir(dir.path()).unwrap_err();
    assert!(matches!(err, ModelError::Json { .. }), "{err:?}");
    assert!(err.to_string().contains("preprocessor_config.json"), "{err}");
}
