//! The Parquet loader reads EasyR1 / HF-datasets files (embedded image bytes) with the same
//! rules and errors as the JSONL loader.

use std::path::PathBuf;

use seethink_data::{
    load_parquet, load_parquet_with, Capability, DataError, ImageRef, JsonlKeys, LoadOptions,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/data").join(name)
}

#[test]
fn hf_style_rows_become_tasks_with_embedded_images() {
    let tasks = load_parquet(&fixture("easyr1.parquet"), &JsonlKeys::default()).unwrap();
    assert_eq!(tasks.len(), 2);
    let first = &tasks[0];
    assert_eq!(first.prompt, "<image>How many red squares are there?");
    assert_eq!(first.answer, "1");
    assert_eq!(first.capability, Capability::Perception);
    assert_eq!(first.id, "easyr1-1");
    let [ImageRef::Bytes(png)] = first.images.as_slice() else {
        panic!("one embedded image: {:?}", first.images)
    };
    let image = image::load_from_memory(png).unwrap();
    assert_eq!((image.width(), image.height()), (8, 6));
    assert_eq!(first.pass_rate, Some(0.5), "EasyR1's pass_rate column");
    assert!(tasks[1].images.is_empty());
    assert_eq!(tasks[1].capability, Capability::TextReasoning);
}

#[test]
fn bad_rows_name_file_and_row() {
    let err = load_parquet(&fixture("missing_answer.parquet"), &JsonlKeys::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Line { line: 1, .. }), "{msg}");
    assert!(msg.contains("missing_answer.parquet") && msg.contains("answer"), "{msg}");
    let options = LoadOptions { skip_invalid: true, ..Default::default() };
    let loaded = load_parquet_with(&fixture("missing_answer.parquet"), &options).unwrap();
    assert_eq!((loaded.tasks.len(), loaded.skipped.len()), (0, 2));
}

#[test]
fn a_file_that_is_not_parquet_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.parquet");
    std::fs::write(&path, b"definitely not parquet").unwrap();
    let msg = load_parquet(&path, &JsonlKeys::default()).unwrap_err().to_string();
    assert!(msg.contains("broken.parquet") && msg.contains("not a readable Parquet file"), "{msg}");
}

#[test]
fn records_without_capability_take_the_sources() {
    let path = fixture("no_capability.parquet");
    let err = seethink_data::load_tasks(&path, None).unwrap_err().to_string();
    assert!(err.contains("no_capability.parquet") && err.contains("capability"), "{err}");
    let loaded = seethink_data::load_tasks_noting_defaults(&path, Some(Capability::VisualReasoning)).unwrap();
    assert_eq!(loaded.without_capability, [0, 1]);
    let tasks = loaded.tasks;
    assert_eq!(tasks.len(), 2);
    assert!(tasks.iter().all(|t| t.capability == Capability::VisualReasoning));
    assert!(matches!(tasks[0].images.as_slice(), [ImageRef::Bytes(_)]));
}
