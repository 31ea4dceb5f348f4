//! The VLMEvalKit TSV loader on small files written here, with a tiny PNG in base64.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use seethink_data::{load_tsv, Capability, DataError, ImageRef, TsvOptions};

/// A 2×2 PNG whose top-left pixel is `shade`.
fn png(shade: u8) -> Vec<u8> {
    let mut img = image::RgbImage::new(2, 2);
    img.put_pixel(0, 0, image::Rgb([shade, 0, 0]));
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
    bytes
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const HEADER: &str = "index\timage\tquestion\thint\tA\tB\tC\tD\tanswer\tcategory\n";

#[test]
fn rows_become_tasks() {
    let (red, green) = (png(200), png(100));
    let (b_red, b_green) = (STANDARD.encode(&red), STANDARD.encode(&green));
    let text = format!(
        "{HEADER}\
         1\t{b_red}\tWhat color is the pixel?\tnan\tred\tblue\t\t\tB\tcolor\n\
         2\t1\t\"How many\n\"\"shapes\"\"?\"\t\t\t\t\t\t 3 \tcount\n\
         3\t['{b_red}', '{b_green}']\tWhich is darker?\tLook closely\tleft\tright\tnan\t\tA\tcompare\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "MiniBench.tsv", &text);
    let tasks = load_tsv(&path, &TsvOptions::default()).unwrap();
    assert_eq!(tasks.len(), 3);

    let t = &tasks[0];
    assert_eq!(t.id, "MiniBench-1");
    assert_eq!(t.source, "MiniBench");
    assert_eq!(
        t.prompt,
        "<image>\nWhat color is the pixel?\nA. red\nB. blue\nThink step by step, then put the letter of your answer in \\boxed{}."
    );
    assert_eq!(t.answer, "B");
    assert_eq!(t.images, vec![ImageRef::Bytes(red.clone())]);
    assert_eq!(t.capability, Capability::VisualReasoning);
    assert_eq!((t.level, t.pass_rate), (None, None));
    assert_eq!(t.meta["category"], "color");
    assert_eq!(t.meta["index"], "1");
    assert_eq!(t.meta["options"]["B"], "blue");
    assert!(t.meta.get("hint").is_none());

    // image shared by reference, quoted multi-line question, free answer kept as-is
    let t = &tasks[1];
    assert_eq!(
        t.prompt,
        "<image>\nHow many\n\"shapes\"?\nThink step by step, then put the final answer in \\boxed{}."
    );
    assert_eq!(t.answer, "3");
    assert_eq!(t.images, vec![ImageRef::Bytes(red.clone())]);
    assert_eq!(t.meta["options"], serde_json::json!({}));

    // several images, a hint
    let t = &tasks[2];
    assert_eq!(
        t.prompt,
        "<image>\n<image>\nHint: Look closely\nWhich is darker?\nA. left\nB. right\nThink step by step, then put the letter of your answer in \\boxed{}."
    );
    assert_eq!(t.images, vec![ImageRef::Bytes(red), ImageRef::Bytes(green)]);
    assert_eq!(t.meta["hint"], "Look closely");

    let perception = TsvOptions { capability: Capability::Perception, source: Some("mmb".into()) };
    let tasks = load_tsv(&path, &perception).unwrap();
    assert!(tasks.iter().all(|t| t.capability == Capability::Perception && t.source == "mmb"));
    assert_eq!(tasks[2].id, "mmb-3");
}

/// The error of loading `rows` under [`HEADER`] (or `header`), as text.
fn load_error(header: &str, rows: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.tsv", &format!("{header}{rows}"));
    let err = load_tsv(&path, &TsvOptions::default()).unwrap_err();
    assert!(matches!(err, DataError::Tsv { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn bad_rows_are_errors_naming_file_and_line() {
    let good = STANDARD.encode(png(1));
    let row =
        |index: &str, image: &str, answer: &str| format!("{index}\t{image}\tQ?\t\tx\ty\t\t\t{answer}\tc\n");
    let ok = row("1", &good, "A");

    let e = load_error(HEADER, &format!("{ok}{}", row("2", &format!("{good}!!"), "A")));
    assert!(e.contains("bad.tsv:3:") && e.contains("bad base64"), "{e}");

    let not_png = STANDARD.encode([7u8; 90]);
    let e = load_error(HEADER, &row("1", &not_png, "A"));
    assert!(e.contains("bad.tsv:2:") && e.contains("no known image format"), "{e}");

    let e = load_error("index\timage\tquestion\tA\tB\n", "1\tx\tQ\ta\tb\n");
    assert!(e.contains("bad.tsv:1:") && e.contains("missing column `answer`"), "{e}");

    let e = load_error(HEADER, &format!("{ok}2\t{good}\tQ?\n"));
    assert!(e.contains("bad.tsv:3:") && e.contains("3 fields, but the header has 10"), "{e}");

    let e = load_error(HEADER, &row("1", &good, "C"));
    assert!(e.contains("bad.tsv:2:") && e.contains("answer `C` is not one of the options A, B"), "{e}");

    let e = load_error(HEADER, &format!("{ok}{}", row("1", &good, "B")));
    assert!(e.contains("bad.tsv:3:") && e.contains("duplicate index `1` (first on line 2)"), "{e}");

    let e = load_error(HEADER, &row("1", "42", "A"));
    assert!(e.contains("bad.tsv:2:") && e.contains("image `42` is neither base64"), "{e}");

    let e = load_error(HEADER, &row("1", &good, ""));
    assert!(e.contains("bad.tsv:2:") && e.contains("empty `answer`"), "{e}");

    let e = load_error(HEADER, &row("1", "[1, 2]", "A"));
    assert!(e.contains("bad.tsv:2:") && e.contains("not a list of strings"), "{e}");

    let e = load_error("", "");
    assert!(e.contains("bad.tsv:1:") && e.contains("no header row"), "{e}");

    // a quoted multi-line field shifts the line numbers of later rows
    let multi = format!("1\t{good}\t\"two\nlines\"\t\tx\ty\t\t\tA\tc\n");
    let e = load_error(HEADER, &format!("{multi}{}", row("2", "!!", "A")));
    assert!(e.contains("bad.tsv:4:"), "{e}");

    let missing = load_tsv(Path::new("/nonexistent/x.tsv"), &TsvOptions::default()).unwrap_err();
    assert!(matches!(missing, DataError::Io { .. }) && missing.to_string().contains("/nonexistent/x.tsv"));
}
