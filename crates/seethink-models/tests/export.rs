//! Exporting models back to HuggingFace checkpoints: byte-identical round trips, identical
//! logits after reloading, layout/dtype conversion, sharding and atomic replacement.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{fixture_dir, read_tensors, Reference, B};
use safetensors::Dtype as StDtype;
use seethink_models::checkpoint::{Dtype, ExportOptions, Layout};
use seethink_models::qwen_vl::KEYS;
use seethink_models::{Checkpoint, ModelError, QwenVl, Vlm};

const FAMILIES: [&str; 2] = ["qwen2_5_vl", "qwen3_vl"];

/// Stored tensors of a checkpoint: name → (dtype, shape, bytes).
type Stored = BTreeMap<String, (StDtype, Vec<usize>, Vec<u8>)>;

fn source(family: &str) -> PathBuf {
    fixture_dir(family).join("checkpoint")
}

fn load(dir: &Path) -> QwenVl<B> {
    QwenVl::<B>::load(dir, &Default::default()).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// Exports `family`'s fixture model with `options` to `<tmp>/out`.
fn export(family: &str, options: ExportOptions) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    load(&source(family)).save_pretrained(source(family), &out, options).unwrap();
    (tmp, out)
}

/// Every tensor of every `.safetensors` file in `dir`.
fn stored_tensors(dir: &Path) -> Stored {
    let mut all = Stored::new();
    for file in files_with_suffix(dir, ".safetensors") {
        for (name, dtype, shape, bytes) in read_tensors(&dir.join(file)) {
            assert!(all.insert(name.clone(), (dtype, shape, bytes)).is_none(), "{name} stored twice");
        }
    }
    all
}

/// Sorted names of the entries of `dir` ending in `suffix`.
fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// Logits of reference case `case` (`text`, `image` or the left-padded `batch`).
fn logits(model: &QwenVl<B>, family: &str, case: &str) -> Vec<f32> {
    let (tokens, images) = Reference::open(family).case_inputs(case);
    model.forward(&tokens, images.as_ref()).unwrap().into_data().to_vec::<f32>().unwrap()
}

/// The export at `out` loads to a model with exactly the logits of the fixture model.
fn assert_same_logits(family: &str, out: &Path, cases: &[&str]) {
    let (original, exported) = (load(&source(family)), load(out));
    for case in cases {
        let (a, b) = (logits(&original, family, case), logits(&exported, family, case));
        assert!(a == b, "{family}/{case}: logits of the export differ");
    }
}

#[test]
fn checkpoints_report_their_layout_and_dtype() {
    let legacy = Checkpoint::open(source("qwen2_5_vl"), &KEYS).unwrap();
    assert_eq!((legacy.layout(), legacy.dtype()), (Layout::Legacy, Dtype::F32));
    let current = Checkpoint::open(source("qwen3_vl"), &KEYS).unwrap();
    assert_eq!((current.layout(), current.dtype()), (Layout::Current, Dtype::BF16));
}

#[test]
fn hf_tensors_cover_exactly_the_stored_tensors() {
    for family in FAMILIES {
        let stored = stored_tensors(&source(family));
        let expected: BTreeMap<String, Vec<usize>> =
            stored.iter().map(|(name, (_, shape, _))| (KEYS.canonical_name(name), shape.clone())).collect();
        let exported = load(&source(family)).hf_tensors().unwrap();
        let names: BTreeMap<String, Vec<usize>> =
            exported.iter().map(|(name, shape, _)| (name.clone(), shape.clone())).collect();
        assert_eq!(names.len(), exported.len(), "{family}: duplicate names");
        assert_eq!(names, expected, "{family}");
    }
}

#[test]
fn export_is_byte_identical_to_the_source() {
    for family in FAMILIES {
        let (_tmp, out) = export(family, ExportOptions::default());
        assert_eq!(files_with_suffix(&out, ".safetensors"), ["model.safetensors"], "{family}");
        assert!(!out.join("model.safetensors.index.json").exists(), "{family}");
        assert!(stored_tensors(&out) == stored_tensors(&source(family)), "{family}: tensors differ");
    }
}

#[test]
fn reloaded_export_gives_identical_logits() {
    for family in FAMILIES {
        let (_tmp, out) = export(family, ExportOptions::default());
        assert_same_logits(family, &out, &["text", "image", "batch"]);
    }
}

#[test]
fn layout_conversion_loads_to_the_same_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let (current, legacy) = (tmp.path().join("current"), tmp.path().join("legacy"));
    let model = load(&source("qwen2_5_vl"));
    model.save_pretrained(source("qwen2_5_vl"), &current, layout(Layout::Current)).unwrap();
    let stored = stored_tensors(&current);
    let expected: Vec<String> =
        stored_tensors(&source("qwen2_5_vl")).into_keys().map(|n| KEYS.canonical_name(&n)).collect();
    assert_eq!(stored.keys().cloned().collect::<Vec<_>>(), sorted(expected));
    assert_eq!(Checkpoint::open(&current, &KEYS).unwrap().layout(), Layout::Current);
    assert_same_logits("qwen2_5_vl", &current, &["text", "image"]);
    // And back: current → legacy reproduces the fixture file.
    load(&current).save_pretrained(&current, &legacy, layout(Layout::Legacy)).unwrap();
    assert!(stored_tensors(&legacy) == stored_tensors(&source("qwen2_5_vl")));
}

#[test]
fn qwen3_vl_is_exported_in_the_current_layout_only() {
    let tmp = tempfile::tempdir().unwrap();
    let model = load(&source("qwen3_vl"));
    let err = model
        .save_pretrained(source("qwen3_vl"), tmp.path().join("out"), layout(Layout::Legacy))
        .unwrap_err();
    assert!(matches!(err, ModelError::Export(_)), "{err:?}");
    assert!(!tmp.path().join("out").exists());
    // A legacy-layout Qwen3-VL source (readable by our loader) is written in the current layout.
    let legacy = tmp.path().join("legacy");
    std::fs::create_dir(&legacy).unwrap();
    let renamed: Vec<_> = stored_tensors(&source("qwen3_vl"))
        .into_iter()
        .map(|(name, (dtype, shape, bytes))| (KEYS.stored_name(Layout::Legacy, &name), dtype, shape, bytes))
        .collect();
    common::write_tensors(&legacy.join("model.safetensors"), &renamed);
    std::fs::copy(source("qwen3_vl").join("config.json"), legacy.join("config.json")).unwrap();
    let out = tmp.path().join("out");
    load(&legacy).save_pretrained(&legacy, &out, ExportOptions::default()).unwrap();
    assert!(stored_tensors(&out) == stored_tensors(&source("qwen3_vl")));
}

fn layout(layout: Layout) -> ExportOptions {
    ExportOptions { layout: Some(layout), ..Default::default() }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn dtype_conversion_rounds_to_nearest_even() {
    for (dtype, st, encode) in [
        (Dtype::BF16, StDtype::BF16, (|v: f32| half::bf16::from_f32(v).to_le_bytes()) as fn(f32) -> [u8; 2]),
        (Dtype::F16, StDtype::F16, |v: f32| half::f16::from_f32(v).to_le_bytes()),
    ] {
        let (_tmp, out) = export("qwen2_5_vl", ExportOptions { dtype: Some(dtype), ..Default::default() });
        assert_eq!(Checkpoint::open(&out, &KEYS).unwrap().dtype(), dtype);
        let exported = stored_tensors(&out);
        for (name, (src_dtype, shape, bytes)) in stored_tensors(&source("qwen2_5_vl")) {
            assert_eq!(src_dtype, StDtype::F32);
            let expected: Vec<u8> = bytes
                .chunks_exact(4)
                .flat_map(|b| encode(f32::from_le_bytes(b.try_into().unwrap())))
                .collect();
            assert_eq!(exported[&name], (st, shape, expected), "{name}");
        }
        load(&out);
    }
}

#[test]
fn small_max_shard_bytes_writes_an_index_and_shards() {
    for family in FAMILIES {
        let (_tmp, out) = export(family, ExportOptions { max_shard_bytes: 60_000, ..Default::default() });
        let shards = files_with_suffix(&out, ".safetensors");
        assert!(shards.len() >= 3, "{family}: {shards:?}");
        let n = shards.len();
        let expected: Vec<String> = (1..=n).map(|i| format!("model-{i:05}-of-{n:05}.safetensors")).collect();
        assert_eq!(shards, expected, "{family}");
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("model.safetensors.index.json")).unwrap())
                .unwrap();
        let stored = stored_tensors(&out);
        let total: usize = stored.values().map(|(_, _, bytes)| bytes.len()).sum();
        assert_eq!(index["metadata"]["total_size"], total, "{family}");
        let weight_map = index["weight_map"].as_object().unwrap();
        assert_eq!(weight_map.len(), stored.len(), "{family}");
        for (name, file) in weight_map {
            let tensors = read_tensors(&out.join(file.as_str().unwrap()));
            assert!(tensors.iter().any(|t| &t.0 == name), "{family}: {name} not in {file}");
        }
        assert!(stored == stored_tensors(&source(family)), "{family}: tensors differ");
        assert_same_logits(family, &out, &["image"]);
    }
}

#[test]
fn exporting_over_a_directory_replaces_it_completely() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    load(&source("qwen3_vl")).save_pretrained(source("qwen3_vl"), &out, shards_of(60_000)).unwrap();
    std::fs::write(out.join("stale.txt"), "old").unwrap();
    std::fs::create_dir(out.join("nested")).unwrap();
    load(&source("qwen2_5_vl"))
        .save_pretrained(source("qwen2_5_vl"), &out, ExportOptions::default())
        .unwrap();
    let mut expected = files_with_suffix(&source("qwen2_5_vl"), "");
    expected.sort();
    assert_eq!(files_with_suffix(&out, ""), expected);
    assert_eq!(files_with_suffix(tmp.path(), ""), ["out"], "staging or aside directories left behind");
    assert_same_logits("qwen2_5_vl", &out, &["image"]);
}

fn shards_of(max_shard_bytes: usize) -> ExportOptions {
    ExportOptions { max_shard_bytes, ..Default::default() }
}

#[test]
fn exporting_into_the_source_directory_works() {
    let dir = common::copy_checkpoint("qwen3_vl");
    load(dir.path()).save_pretrained(dir.path(), dir.path(), ExportOptions::default()).unwrap();
    assert!(stored_tensors(dir.path()) == stored_tensors(&source("qwen3_vl")));
    assert!(!dir.path().join("model.safetensors.index.json").exists());
    assert_same_logits("qwen3_vl", dir.path(), &["image"]);
}

#[test]
fn failed_export_names_the_path_and_keeps_the_previous_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let model = load(&source("qwen2_5_vl"));
    model.save_pretrained(source("qwen2_5_vl"), &out, ExportOptions::default()).unwrap();
    let before = stored_tensors(&out);
    let broken = common::copy_checkpoint("qwen2_5_vl");
    std::fs::remove_file(broken.path().join("config.json")).unwrap();
    let err = model.save_pretrained(broken.path(), &out, ExportOptions::default()).unwrap_err();
    match &err {
        ModelError::Io { path, .. } => assert_eq!(path, &broken.path().join("config.json"), "{err}"),
        other => panic!("expected an Io error, got {other:?}"),
    }
    assert!(stored_tensors(&out) == before);
    assert_eq!(files_with_suffix(tmp.path(), ""), ["out"], "staging directory left behind");
}

#[test]
fn side_files_are_copied() {
    for family in FAMILIES {
        let (_tmp, out) = export(family, ExportOptions::default());
        for name in ["config.json", "tokenizer.json", "chat_template.jinja", "preprocessor_config.json"] {
            let (a, b) = (std::fs::read(source(family).join(name)).unwrap(), std::fs::read(out.join(name)));
            assert_eq!(a, b.unwrap_or_else(|e| panic!("{family}/{name}: {e}")), "{family}/{name}");
        }
        let side: Vec<String> = files_with_suffix(&source(family), "")
            .into_iter()
            .filter(|n| !n.contains("safetensors"))
            .collect();
        for name in side {
            assert!(out.join(&name).is_file(), "{family}: {name} not copied");
        }
    }
}

/// Writes exports for `tests/fixtures/check_export.py` under `$SEETHINK_EXPORT_DIR`:
/// `<family>` (defaults) and `<family>-converted` (small shards; Qwen2.5-VL in the current
/// layout, Qwen3-VL in f32).
#[test]
#[ignore = "writes exports for the manual transformers check"]
fn write_exports_for_transformers_check() {
    let root = PathBuf::from(std::env::var("SEETHINK_EXPORT_DIR").expect("set SEETHINK_EXPORT_DIR"));
    let to_current =
        ExportOptions { layout: Some(Layout::Current), max_shard_bytes: 60_000, ..Default::default() };
    let to_f32 = ExportOptions { dtype: Some(Dtype::F32), max_shard_bytes: 60_000, ..Default::default() };
    for (family, converted) in [("qwen2_5_vl", to_current), ("qwen3_vl", to_f32)] {
        let model = load(&source(family));
        model.save_pretrained(source(family), root.join(family), ExportOptions::default()).unwrap();
        model.save_pretrained(source(family), root.join(format!("{family}-converted")), converted).unwrap();
    }
}
