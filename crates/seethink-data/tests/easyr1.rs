//! EasyR1 JSONL loading and writing: roundtrips and error reporting.

use std::fs;
use std::path::{Path, PathBuf};

use seethink_data::{
    load_jsonl, load_jsonl_with, write_jsonl, Capability, DataError, ImageRef, JsonlKeys, LineProblem,
    LoadOptions, Task,
};
use serde_json::json;

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn good_line(id: &str) -> String {
    json!({"id": id, "problem": "1+1?", "answer": "2", "capability": "text_reasoning"}).to_string()
}

/// The (line, problem) of a `DataError::Line`, after checking its message names file and line.
fn line_error(err: DataError, path: &Path) -> (usize, LineProblem) {
    let message = err.to_string();
    match err {
        DataError::Line { path: p, line, problem } => {
            assert_eq!(p, path);
            assert!(message.starts_with(&format!("{}:{line}: ", path.display())), "{message}");
            (line, problem)
        }
        other => panic!("expected a line error, got {other:?}"),
    }
}

#[test]
fn handwritten_tasks_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("img")).unwrap();
    let image = dir.path().join("img/a.png");
    fs::write(&image, b"not really a png").unwrap();
    let outside = tempfile::NamedTempFile::new().unwrap();
    let tasks = vec![
        Task {
            id: "v1".into(),
            prompt: "<image>\nWhat is shown? Compare with <image>.".into(),
            images: vec![ImageRef::Path(image.clone()), ImageRef::Path(outside.path().to_path_buf())],
            answer: "a cat".into(),
            capability: Capability::VisualReasoning,
            level: Some(2),
            pass_rate: Some(0.25),
            source: "hand".into(),
            meta: json!({"note": [1, 2, {"x": null}]}),
        },
        Task {
            id: "t1".into(),
            prompt: "Compute 6*7. Put the final answer in \\boxed{}.".into(),
            images: vec![],
            answer: "42".into(),
            capability: Capability::TextReasoning,
            level: None,
            pass_rate: None,
            source: "hand".into(),
            meta: serde_json::Value::Null,
        },
    ];
    let path = dir.path().join("data.jsonl");
    write_jsonl(&path, &tasks, &JsonlKeys::default()).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(r#""images":["img/a.png","/"#), "{text}");
    assert_eq!(load_jsonl(&path, &JsonlKeys::default()).unwrap(), tasks);

    let keys =
        JsonlKeys { prompt: "question".into(), answer: "solution".into(), images: "image_paths".into() };
    write_jsonl(&path, &tasks, &keys).unwrap();
    assert!(fs::read_to_string(&path).unwrap().contains("\"solution\":\"42\""));
    assert_eq!(load_jsonl(&path, &keys).unwrap(), tasks);
}

#[test]
fn easyr1_defaults_and_normalisation() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.png"), b"x").unwrap();
    let path = write(
        dir.path(),
        "geo.jsonl",
        &[
            json!({"problem": "Find x.", "answer": 5, "images": ["a.png"], "extra": true}).to_string(),
            String::new(),
            json!({"problem": "Why?", "answer": "because", "level": null}).to_string(),
        ],
    );
    // Without a capability key or default, loading fails on line 1.
    let err = load_jsonl(&path, &JsonlKeys::default()).unwrap_err();
    let (line, problem) = line_error(err, &path);
    assert_eq!(line, 1);
    assert!(matches!(problem, LineProblem::MissingKey(k) if k == "capability"));

    let options =
        LoadOptions { default_capability: Some(Capability::VisualReasoning), ..LoadOptions::default() };
    let loaded = load_jsonl_with(&path, &options).unwrap();
    assert!(loaded.skipped.is_empty());
    let [a, b] = &loaded.tasks[..] else { panic!("expected two tasks") };
    assert_eq!(a.id, "geo-1");
    assert_eq!(a.prompt, "<image>\nFind x.");
    assert_eq!(a.answer, "5");
    assert_eq!(a.images, vec![ImageRef::Path(dir.path().join("a.png"))]);
    assert_eq!(a.source, "geo.jsonl");
    assert_eq!(a.meta, serde_json::Value::Null);
    assert_eq!(b.id, "geo-3", "blank lines still count");
    assert_eq!(b.level, None);
    assert!(b.images.is_empty());
}

#[test]
fn records_that_took_the_default_capability_are_noted() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "mixed.jsonl",
        &[
            json!({"problem": "a", "answer": 1}).to_string(),
            json!({"problem": "b", "answer": 2, "capability": "perception"}).to_string(),
            json!({"problem": "c", "answer": 3, "capability": null}).to_string(),
        ],
    );
    let loaded = seethink_data::load_tasks_noting_defaults(&path, Some(Capability::TextReasoning)).unwrap();
    let capabilities: Vec<Capability> = loaded.tasks.iter().map(|t| t.capability).collect();
    assert_eq!(capabilities, [Capability::TextReasoning, Capability::Perception, Capability::TextReasoning]);
    assert_eq!(loaded.without_capability, [0, 2], "null counts as absent");
    assert_eq!(seethink_data::load_tasks(&path, Some(Capability::TextReasoning)).unwrap(), loaded.tasks);
}

#[test]
fn bad_json_on_line_3_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.jsonl", &[good_line("a"), good_line("b"), "{\"problem\": ".into()]);
    let (line, problem) = line_error(load_jsonl(&path, &JsonlKeys::default()).unwrap_err(), &path);
    assert_eq!(line, 3);
    assert!(matches!(problem, LineProblem::BadJson(_)));
    let path = write(dir.path(), "array.jsonl", &["[1, 2]".into()]);
    let err = load_jsonl(&path, &JsonlKeys::default()).unwrap_err();
    assert!(err.to_string().contains("expected a JSON object, found an array"));
}

#[test]
fn missing_answer_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "x.jsonl",
        &[good_line("a"), json!({"problem": "q", "capability": "perception"}).to_string()],
    );
    let err = load_jsonl(&path, &JsonlKeys::default()).unwrap_err();
    assert!(err.to_string().ends_with(":2: missing key `answer`"), "{err}");
    let (line, problem) = line_error(err, &path);
    assert_eq!(line, 2);
    assert!(matches!(problem, LineProblem::MissingKey(k) if k == "answer"));
}

#[test]
fn unknown_capability_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "x.jsonl",
        &[json!({"problem": "q", "answer": "a", "capability": "seeing"}).to_string()],
    );
    let err = load_jsonl(&path, &JsonlKeys::default()).unwrap_err();
    assert!(err.to_string().contains("unknown capability `seeing`"), "{err}");
    let (line, problem) = line_error(err, &path);
    assert_eq!(line, 1);
    assert!(matches!(problem, LineProblem::UnknownCapability(c) if c == "seeing"));
}

#[test]
fn missing_image_file_names_line_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "x.jsonl",
        &[
            good_line("a"),
            json!({"problem": "<image> q", "answer": "a", "capability": "perception",
                   "images": ["images/nope.png"]})
            .to_string(),
        ],
    );
    let err = load_jsonl(&path, &JsonlKeys::default()).unwrap_err();
    let missing = dir.path().join("images/nope.png");
    assert!(err.to_string().contains(&format!("image file not found: {}", missing.display())), "{err}");
    let (line, problem) = line_error(err, &path);
    assert_eq!(line, 2);
    assert!(matches!(problem, LineProblem::MissingImage(p) if p == missing));
}

#[test]
fn wrong_types_markers_ranges_and_duplicates_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.png"), b"x").unwrap();
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            json!({"problem": 3, "answer": "a", "capability": "perception"}),
            "key `problem`: expected a string, found number 3",
        ),
        (
            json!({"problem": "q", "answer": [1], "capability": "perception"}),
            "key `answer`: expected a string or number, found an array",
        ),
        (
            json!({"problem": "q", "answer": "a", "capability": "perception", "images": "a.png"}),
            "key `images`: expected an array of paths or {\"bytes\": base64, \"path\": ...} objects",
        ),
        (
            json!({"problem": "<image><image>", "answer": "a", "capability": "perception",
                   "images": ["a.png"]}),
            "prompt has 2 `<image>` markers but the line lists 1 images",
        ),
        (
            json!({"problem": "q", "answer": "a", "capability": "perception", "level": -1}),
            "key `level`: expected a non-negative 32-bit integer, found number -1",
        ),
        (
            json!({"problem": "q", "answer": "a", "capability": "perception", "difficulty": 1.5}),
            "key `difficulty`: pass rate 1.5 is outside [0, 1]",
        ),
        (
            json!({"problem": "q", "answer": "a", "capability": 7}),
            "key `capability`: expected a string, found number 7",
        ),
    ];
    for (record, want) in cases {
        let path = write(dir.path(), "x.jsonl", &[record.to_string()]);
        let err = load_jsonl(&path, &JsonlKeys::default()).unwrap_err();
        assert!(err.to_string().contains(want), "{err} does not contain {want}");
        assert!(err.to_string().contains("x.jsonl:1:"), "{err}");
    }
    let path = write(dir.path(), "dup.jsonl", &[good_line("a"), good_line("a")]);
    let (line, problem) = line_error(load_jsonl(&path, &JsonlKeys::default()).unwrap_err(), &path);
    assert_eq!(line, 2);
    assert!(matches!(problem, LineProblem::DuplicateId { first_line: 1, .. }));
}

#[test]
fn skip_invalid_reports_every_skipped_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "mixed.jsonl",
        &[
            good_line("a"),
            "not json".into(),
            good_line("b"),
            json!({"problem": "q", "answer": "a", "capability": "hearing"}).to_string(),
            good_line("c"),
            good_line("a"),
        ],
    );
    let options = LoadOptions { skip_invalid: true, ..LoadOptions::default() };
    let loaded = load_jsonl_with(&path, &options).unwrap();
    let ids: Vec<&str> = loaded.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let lines: Vec<usize> = loaded.skipped.iter().map(|s| s.line).collect();
    assert_eq!(lines, [2, 4, 6]);
    for skipped in &loaded.skipped {
        let message = skipped.error.to_string();
        assert!(message.contains(&format!("mixed.jsonl:{}:", skipped.line)), "{message}");
    }
    assert!(loaded.skipped[1].error.to_string().contains("unknown capability `hearing`"));
}

#[test]
fn unreadable_file_and_unwritable_tasks_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.jsonl");
    let err = load_jsonl(&missing, &JsonlKeys::default()).unwrap_err();
    assert!(matches!(&err, DataError::Io { path, .. } if *path == missing));

    let mut task = Task {
        id: "m".into(),
        prompt: "<image> q".into(),
        images: vec![ImageRef::Bytes(vec![1, 2, 3])],
        answer: "a".into(),
        capability: Capability::Perception,
        level: None,
        pass_rate: None,
        source: "s".into(),
        meta: serde_json::Value::Null,
    };
    let out = dir.path().join("out.jsonl");
    let err = write_jsonl(&out, std::slice::from_ref(&task), &JsonlKeys::default()).unwrap_err();
    assert!(err.to_string().contains("task `m`"), "{err}");
    assert!(err.to_string().contains("in-memory bytes"), "{err}");
    task.images.clear();
    let err = write_jsonl(&out, std::slice::from_ref(&task), &JsonlKeys::default()).unwrap_err();
    assert!(err.to_string().contains("1 `<image>` markers but the task has 0"), "{err}");
    task.prompt = "q".into();
    task.pass_rate = Some(f64::NAN);
    let err = write_jsonl(&out, &[task], &JsonlKeys::default()).unwrap_err();
    assert!(err.to_string().contains("pass rate NaN is not in [0, 1]"), "{err}");
}

#[test]
fn embedded_image_bytes_load_as_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("embedded.jsonl");
    let line = r#"{"problem": "<image>What?", "answer": "A", "capability": "perception", "images": [{"bytes": "iVBORw0=", "path": null}]}"#;
    std::fs::write(&path, format!("{line}\n")).unwrap();
    let tasks = seethink_data::load_jsonl(&path, &Default::default()).unwrap();
    assert_eq!(tasks[0].images, vec![seethink_data::ImageRef::Bytes(vec![0x89, b'P', b'N', b'G', 0x0d])]);
    let bad = line.replace("iVBORw0=", "%%%");
    std::fs::write(&path, format!("{bad}\n")).unwrap();
    let msg = seethink_data::load_jsonl(&path, &Default::default()).unwrap_err().to_string();
    assert!(msg.contains("embedded.jsonl:1") && msg.contains("not base64"), "{msg}");
}
