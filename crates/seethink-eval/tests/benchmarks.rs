//! Every benchmark's scorer on small hand-written files in VLMEvalKit's column layout, with
//! the expected scores derived by hand; predictions files and their errors.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use seethink_eval::benchmarks::predictions::{match_rows, read_predictions};
use seethink_eval::benchmarks::{Benchmark, BenchmarkReport, ScoreOptions, SuiteReport, Table};

/// A 2×2 PNG, base64.
fn image() -> String {
    let mut bytes = Vec::new();
    image::RgbImage::new(2, 2).write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png).unwrap();
    STANDARD.encode(bytes)
}

/// Writes a TSV: `header` columns (after `index` and `image`), one row per entry (fields after
/// the index; the image is added).
fn tsv(dir: &Path, name: &str, header: &[&str], rows: &[(&str, Vec<&str>)]) -> PathBuf {
    let image = image();
    let mut text = format!("index\timage\t{}\n", header.join("\t"));
    for (index, fields) in rows {
        assert_eq!(fields.len(), header.len(), "row {index}");
        text.push_str(&format!("{index}\t{image}\t{}\n", fields.join("\t")));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Writes `predictions` as JSONL.
fn jsonl(dir: &Path, predictions: &[(&str, &str)]) -> PathBuf {
    let text: String = predictions
        .iter()
        .map(|(index, p)| serde_json::json!({ "index": index, "prediction": p }).to_string() + "\n")
        .collect();
    let path = dir.join("predictions.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

/// Loads the benchmark, reads the predictions and scores them (VLMEvalKit's rules).
fn score(
    benchmark: Benchmark,
    header: &[&str],
    rows: &[(&str, Vec<&str>)],
    predictions: &[(&str, &str)],
) -> BenchmarkReport {
    score_with(benchmark, header, rows, predictions, ScoreOptions::default())
}

/// [`score`] with `options`.
fn score_with(
    benchmark: Benchmark,
    header: &[&str],
    rows: &[(&str, Vec<&str>)],
    predictions: &[(&str, &str)],
    options: ScoreOptions,
) -> BenchmarkReport {
    let dir = tempfile::tempdir().unwrap();
    let data = benchmark.load(&tsv(dir.path(), "bench.tsv", header, rows)).unwrap();
    let predictions = read_predictions(&jsonl(dir.path(), predictions)).unwrap();
    data.score_with(&match_rows(&data, &predictions).unwrap(), options).unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// The values of row `name` of `table`.
fn values<'a>(table: &'a Table, name: &str) -> &'a [f64] {
    &table.rows.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no row {name} in {table:?}")).values
}

fn correct(report: &BenchmarkReport) -> Vec<bool> {
    report.items.iter().map(|i| i.correct).collect()
}

#[test]
fn pope_f1_precision_recall_per_split() {
    let rows = [
        ("1", vec!["Is there a dog?", "Yes", "adversarial"]),
        ("2", vec!["Is there a cat?", "Yes", "adversarial"]),
        ("3", vec!["Is there a car?", "No", "adversarial"]),
        ("4", vec!["Is there a cup?", "No", "popular"]),
        ("5", vec!["Is there a man?", "yes", "popular"]),
        ("6", vec!["Is there a bus?", "Yes", "popular"]),
    ];
    let predictions = [
        ("1", "Yes"),                                // TP
        ("2", "<think>it looks like one</think>No"), // FN: only the text after </think> counts
        ("3", "No, there is none."),                 // TN
        ("4", "yes"),                                // FP
        ("5", "I think yes."),                       // TP (gold `yes` in lower case)
        ("6", "maybe"),                              // Unknown: FN
    ];
    let r = score(Benchmark::Pope, &["question", "answer", "category"], &rows, &predictions);
    assert_eq!(correct(&r), [true, false, true, false, true, false]);
    let t = &r.tables[0];
    // Overall: TP 2, FP 1, FN 2 → P = 2/3, R = 1/2, F1 = 2·(1/3)/(7/6) = 4/7; accuracy 3/6
    let o = values(t, "Overall");
    assert!(
        close(o[0], 400.0 / 7.0) && close(o[1], 50.0) && close(o[2], 200.0 / 3.0) && close(o[3], 50.0),
        "{o:?}"
    );
    assert!(close(r.score, 400.0 / 7.0));
    // adversarial: TP 1, FN 1, TN 1 → P = 1, R = 1/2, F1 = 2/3; accuracy 2/3
    let a = values(t, "adversarial");
    assert!(
        close(a[0], 200.0 / 3.0) && close(a[1], 200.0 / 3.0) && close(a[2], 100.0) && close(a[3], 50.0),
        "{a:?}"
    );
    // popular: TP 1, FP 1, FN 1 → P = R = F1 = 1/2; accuracy 1/3
    let p = values(t, "popular");
    assert!(close(p[0], 50.0) && close(p[1], 100.0 / 3.0) && close(p[2], 50.0) && close(p[3], 50.0), "{p:?}");
}

#[test]
fn pope_rows_in_several_splits_count_in_each() {
    let rows = [("1", vec!["Q?", "Yes", "adversarial,popular"]), ("2", vec!["Q?", "No", "random"])];
    let r = score(Benchmark::Pope, &["question", "answer", "category"], &rows, &[("1", "yes"), ("2", "yes")]);
    // exploded: (yes, yes) twice and (no, yes) once → TP 2, FP 1: P = 2/3, R = 1, F1 = 0.8
    let o = values(&r.tables[0], "Overall");
    assert_eq!(r.tables[0].rows[0].items, 3);
    assert!(close(o[0], 80.0) && close(o[1], 200.0 / 3.0), "{o:?}");
}

const MCQ: [&str; 8] = ["question", "A", "B", "C", "D", "answer", "category", "l2-category"];

#[test]
fn mmstar_accuracy_per_category_with_can_infer() {
    let row =
        |answer, category, l2| vec!["Which colour?", "red", "green", "yellow", "blue", answer, category, l2];
    let rows = [
        ("1", row("A", "coarse perception", "image scene")),
        ("2", row("B", "coarse perception", "image style")),
        ("3", row("C", "math", "geometry")),
        ("4", row("D", "math", "geometry")),
    ];
    let predictions = [
        ("1", "A"),                                        // hit
        ("2", "The answer is C"),                          // C: miss
        ("3", "<think>A or B? neither</think>\\boxed{C}"), // C after </think>: hit
        ("4", "It must be the blue one"),                  // no letter; the text `blue` is D: hit
    ];
    let r = score(Benchmark::MmStar, &MCQ, &rows, &predictions);
    assert_eq!(correct(&r), [true, false, true, true]);
    assert_eq!(r.items[1].extracted.as_deref(), Some("C"));
    assert!(close(r.score, 75.0));
    let t = &r.tables[0];
    assert!(close(values(t, "Overall")[0], 75.0));
    assert!(close(values(t, "coarse perception")[0], 50.0));
    assert!(close(values(t, "math")[0], 100.0));
    assert!(close(values(t, "image style")[0], 0.0));
}

#[test]
fn mcq_prompts_are_vlmevalkits() {
    let dir = tempfile::tempdir().unwrap();
    let header = ["question", "hint", "A", "B", "C", "answer", "category"];
    let rows = [("7", vec!["Which?", "Look left", "cat", "dog", "nan", "B", "x"])];
    let data = Benchmark::RealWorldQa.load(&tsv(dir.path(), "rw.tsv", &header, &rows)).unwrap();
    let task = &data.tasks()[0];
    assert_eq!(
        task.prompt,
        "<image>\nHint: Look left\nQuestion: Which?\nOptions:\nA. cat\nB. dog\n\
         Please select the correct answer from the options above. \n"
    );
    assert_eq!((task.id.as_str(), task.answer.as_str(), task.images.len()), ("7", "B", 1));
    let data = Benchmark::WeMath
        .load(&tsv(
            dir.path(),
            "we.tsv",
            &[&header[..], &["ID", "key"]].concat(),
            &[("7", vec!["Which?", "nan", "cat", "dog", "", "A", "x", "1", "2steps_1"])],
        ))
        .unwrap();
    assert_eq!(data.tasks()[0].prompt, "<image>\nQuestion: Which?\nOptions:\nA. cat\nB. dog\n");
}

#[test]
fn wemath_four_dimensional_metric() {
    // (index, ID, key, answered right?)
    let plan = [
        ("1", "1", "2steps_1", true),
        ("2", "1", "2steps_2", true),
        ("3", "1", "2steps_multi", true), // all parts, composite right: CM strict and loose
        ("4", "2", "2steps_1", true),
        ("5", "2", "2steps_2", false),
        ("6", "2", "2steps_multi", true), // some part wrong, composite right: RM strict, CM loose
        ("7", "3", "2steps_1", false),
        ("8", "3", "2steps_2", false),
        ("9", "3", "2steps_multi", true), // every part wrong, composite right: RM strict and loose
        ("10", "4", "2steps_1", true),
        ("11", "4", "2steps_2", true),
        ("12", "4", "2steps_multi", false), // every part right, composite wrong: IG
        ("13", "5", "3steps_1", false),
        ("14", "5", "3steps_2", true),
        ("15", "5", "3steps_3", true),
        ("16", "5", "3steps_multi", false), // some part wrong, composite wrong: IK
        ("17", "6", "1step", false),        // not a multi-step problem: outside the metric
    ];
    let rows: Vec<(&str, Vec<&str>)> =
        plan.iter().map(|(i, id, key, _)| (*i, vec!["Q?", "x", "y", "A", *id, *key, "Angles"])).collect();
    let predictions: Vec<(&str, &str)> =
        plan.iter().map(|(i, _, _, right)| (*i, if *right { "A" } else { "B" })).collect();
    let r = score(
        Benchmark::WeMath,
        &["question", "A", "B", "answer", "ID", "key", "knowledge concept"],
        &rows,
        &predictions,
    );
    let four = &r.tables[0];
    // N = 5 problems; IK = 1, IG = 1, RM strict = 2, RM loose = 1, CM strict = 1, CM loose = 2
    // strict: (5 − 0.5 − 2 − 1) / 5 = 30%; loose: (5 − 0.5 − 1 − 1) / 5 = 50%
    assert_eq!(values(four, "Score"), [30.0, 50.0]);
    assert!(close(r.score, 30.0));
    assert_eq!(values(four, "Insufficient knowledge"), [20.0, 20.0]);
    assert_eq!(values(four, "Inadequate generalization"), [20.0, 20.0]);
    assert_eq!(values(four, "Complete mastery"), [20.0, 40.0]);
    // RM / (CM + RM): strict 2 / 3, loose 1 / 3
    let rm = values(four, "Rote memorization");
    assert!(close(rm[0], 200.0 / 3.0) && close(rm[1], 100.0 / 3.0), "{rm:?}");
    let steps = &r.tables[1];
    // S1: 7 of the 11 parts right; S2: 3 of 4 composites; S3: 0 of 1
    assert!(close(values(steps, "One-step (S1)")[0], 700.0 / 11.0));
    assert_eq!(values(steps, "Two-step (S2)"), [75.0]);
    assert_eq!(values(steps, "Three-step (S3)"), [0.0]);
}

#[test]
fn mathvista_choices_by_can_infer_free_form_by_post_check() {
    let header =
        ["question", "answer", "question_type", "answer_type", "choices", "answer_option", "task", "skills"];
    let rows = [
        (
            "1",
            vec![
                "Q1",
                "8/11",
                "multi_choice",
                "text",
                "['3/11', '8/11', '6/11']",
                "B",
                "figure QA",
                "['arithmetic reasoning']",
            ],
        ),
        (
            "2",
            vec![
                "Q2",
                "5",
                "free_form",
                "integer",
                "nan",
                "nan",
                "word problem",
                "['arithmetic reasoning', 'algebraic reasoning']",
            ],
        ),
        (
            "3",
            vec!["Q3", "1.5", "free_form", "float", "nan", "nan", "word problem", "['algebraic reasoning']"],
        ),
        (
            "4",
            vec![
                "Q4",
                "yes",
                "multi_choice",
                "text",
                "['yes', 'no']",
                "A",
                "figure QA",
                "['logical reasoning']",
            ],
        ),
    ];
    let predictions = [
        ("1", "\\boxed{B}"),                   // B: hit
        ("2", "<think>2+3</think>\\boxed{5}"), // int("5") == int("5"): hit
        ("3", "The answer is 1.50"),           // no box: float() of the whole text fails, miss
        ("4", "no"),                           // the text of option B: miss
    ];
    let r = score(Benchmark::MathVista, &header, &rows, &predictions);
    assert_eq!(correct(&r), [true, true, false, false]);
    assert_eq!(r.items[3].extracted.as_deref(), Some("B"));
    assert!(close(r.score, 50.0));
    assert_eq!(values(&r.tables[0], "figure QA"), [50.0]);
    assert_eq!(values(&r.tables[0], "word problem"), [50.0]);
    assert_eq!(values(&r.tables[1], "arithmetic reasoning"), [100.0]);
    assert_eq!(values(&r.tables[1], "algebraic reasoning"), [50.0]);
    assert_eq!(values(&r.tables[1], "logical reasoning"), [0.0]);
}

#[test]
fn mathvision_and_mathverse() {
    let rows = [
        ("1", vec!["Q1", "B", "['1', '2', '3']", "algebra"]),
        ("2", vec!["Q2", "\\frac{1}{2}", "[]", "algebra"]),
        ("3", vec!["Q3", "3", "[]", "counting"]),
    ];
    let predictions = [("1", "so \\boxed{B}"), ("2", "\\boxed{0.5}"), ("3", "\\boxed{4}")];
    let r = score(Benchmark::MathVision, &["question", "answer", "choices", "category"], &rows, &predictions);
    // B is B; is_equal: 0.5 and \frac{1}{2} are within 1e-6; 4 ≠ 3
    assert_eq!(correct(&r), [true, true, false]);
    assert!(close(r.score, 200.0 / 3.0));
    assert_eq!(values(&r.tables[0], "algebra"), [100.0]);
    assert_eq!(values(&r.tables[0], "counting"), [0.0]);

    let meta = |subject| {
        format!("{{'split': 'testmini', 'subject': '{subject}', 'subfield': 'Angle', 'problem_version': 'Vision Intensive'}}")
    };
    let (geometry, functions) = (meta("Plane Geometry"), meta("Functions"));
    let rows = [
        ("1", vec!["Q1", "B", geometry.as_str()]),
        ("2", vec!["Q2", "120", geometry.as_str()]),
        ("3", vec!["Q3", "3", functions.as_str()]),
    ];
    let predictions =
        [("1", "\\boxed{B}"), ("2", "<think>…</think>The angle is \\boxed{120}"), ("3", "no idea")];
    let r = score(Benchmark::MathVerse, &["question", "answer", "metadata"], &rows, &predictions);
    assert_eq!(correct(&r), [true, true, false]);
    assert_eq!(values(&r.tables[0], "Vision Intensive")[0], 200.0 / 3.0);
    assert_eq!(values(&r.tables[1], "Plane Geometry"), [100.0]);
    assert_eq!(values(&r.tables[1], "Functions"), [0.0]);
}

#[test]
fn dynamath_average_and_worst_case() {
    let header = ["question", "answer", "answer_type", "qid", "varid", "subject", "knowledge_level"];
    let rows = [
        ("1", vec!["Q", "3.142", "float", "1", "1", "algebra", "high school"]),
        ("2", vec!["Q", "2.000", "float", "1", "2", "algebra", "high school"]),
        ("3", vec!["Q", "B", "multiple choice", "2", "1", "geometry", "elementary"]),
        ("4", vec!["Q", "C", "multiple choice", "2", "2", "geometry", "elementary"]),
        ("5", vec!["Q", "x+1", "free form", "3", "1", "algebra", "elementary"]),
    ];
    let predictions = [
        ("1", r#"{"solution": "pi", "short answer": "3.1416"}"#), // |3.1416 − 3.142| ≤ 0.001: hit
        ("2", "<think>…</think>\\boxed{2.5}"),                    // not JSON; the box: 2.5 ≠ 2: miss
        ("3", "B"),                                               // one character: hit
        ("4", "the choice is C"),                                 // C and E named, no box: miss
        ("5", r#"{"short answer": "X+1"}"#),                      // contained, lower-cased: hit
    ];
    let r = score(Benchmark::DynaMath, &header, &rows, &predictions);
    assert_eq!(correct(&r), [true, false, true, false, true]);
    assert_eq!(r.items[1].extracted.as_deref(), Some("2.5"));
    // average 3 / 5; worst case: question 1 and 2 each have a wrong variant, 3 is right → 1 / 3
    assert!(close(r.score, 60.0));
    assert!(close(values(&r.tables[1], "Overall")[0], 100.0 / 3.0));
    assert!(close(values(&r.tables[0], "algebra")[0], 200.0 / 3.0));
    assert_eq!(values(&r.tables[1], "geometry"), [0.0]);
    let dir = tempfile::tempdir().unwrap();
    let data = Benchmark::DynaMath.load(&tsv(dir.path(), "d.tsv", &header, &rows[..1])).unwrap();
    let prompt = &data.tasks()[0].prompt;
    assert!(prompt.starts_with("<image>\n## Question\n Q\n## Answer Instruction Please provide"), "{prompt}");
    assert!(prompt.contains("Format the answer as a three-digit floating-point number"), "{prompt}");
    assert!(prompt.ends_with("\"short answer\": \"[Concise Answer]\"\n}"), "{prompt}");
}

// The tests below follow issue 50: each row's expected decision is VLMEvalKit's, read off its
// code (the function named beside the row); the Python behind them was run on the same rows.

#[test]
fn dynamath_json_with_raw_control_characters_and_empty_predictions() {
    let header = ["question", "answer", "answer_type", "qid", "varid"];
    let rows = [
        ("1", vec!["Q", "3.142", "float", "1", "1"]),
        ("2", vec!["Q", "x+1", "free form", "2", "1"]),
        ("3", vec!["Q", "A", "multiple choice", "3", "1"]),
        ("4", vec!["Q", "B", "multiple choice", "4", "1"]),
        ("5", vec!["Q", "2.000", "float", "5", "1"]),
        ("6", vec!["Q", "x+1", "free form", "6", "1"]),
    ];
    let predictions = [
        // `DynaMath_auxeval`: json.loads(pred, strict=False) accepts the raw newline and tab
        ("1", "{\"solution\": \"step 1\nstep\t2\", \"short answer\": \"3.1416\"}"),
        // an empty prediction is NaN after the predictions file's round trip, `preprocess(str(nan))`
        // is `nan`; `parse_answer` keeps it as free form: `nan` is not in `x+1`
        ("2", ""),
        // multiple choice: `nan`.upper() holds exactly one of ABCDE, `A`: right for gold A …
        ("3", "<think>no idea</think>"),
        // … and wrong for gold B
        ("4", ""),
        // `None` is NaN too; float: `float('nan')` parses, |nan − 2| ≤ 0.001 is false
        ("5", "None"),
        // an empty short answer in the JSON is no NaN: `'' in 'x+1'` is true
        ("6", "{\"short answer\": \"\"}"),
    ];
    let r = score(Benchmark::DynaMath, &header, &rows, &predictions);
    assert_eq!(correct(&r), [true, false, true, false, false, true]);
    let extracted: Vec<Option<&str>> = r.items.iter().map(|i| i.extracted.as_deref()).collect();
    assert_eq!(extracted, [Some("3.1416"), Some("nan"), Some("A"), Some("A"), Some("NaN"), Some("")]);
}

#[test]
fn option_cells_pandas_reads_as_missing_are_no_options() {
    let rows = [
        // `build_choices` (multiple_choice.py) skips D: `pd.isna` of the cell `None` read by
        // `pd.read_csv`; `can_infer` cannot give D, so the row is wrong
        ("1", vec!["Q", "red", "green", "yellow", "None", "D", "x", "y"]),
        // option text is not trimmed: `can_infer_text` looks for ` red ` in `red`: no option
        ("2", vec!["Q", " red ", "blue", "NA", "null", "A", "x", "y"]),
        // an empty prediction is `str(nan)`: `can_infer_text` finds the text `na` of A in `nan`
        ("3", vec!["Q", "Na", "K", "", "#N/A", "A", "x", "y"]),
        ("4", vec!["Q", "cat", "dog", "n/a", "", "B", "x", "y"]),
    ];
    let predictions = [("1", "D"), ("2", "red"), ("3", ""), ("4", "dog")];
    let r = score(Benchmark::MmStar, &MCQ, &rows, &predictions);
    assert_eq!(correct(&r), [false, false, true, true]);
    assert_eq!(r.items[0].extracted, None);
    let dir = tempfile::tempdir().unwrap();
    let data = Benchmark::MmStar.load(&tsv(dir.path(), "m.tsv", &MCQ, &rows)).unwrap();
    // `ImageMCQDataset.build_prompt`: the options pandas reads, as written
    assert_eq!(
        data.tasks()[1].prompt,
        "<image>\nQuestion: Q\nOptions:\nA.  red \nB. blue\n\
         Please select the correct answer from the options above. \n"
    );
}

#[test]
fn mathverse_problem_version_column_and_choice_letters() {
    let meta = "{'subject': 'plane geometry', 'subfield': 'angle'}";
    let rows = [
        ("1", vec!["Q1", "A", "Vision Intensive", meta]),
        ("2", vec!["Q2", "B", "Vision Intensive", meta]),
        ("3", vec!["Q3", "C", "Vision Only", meta]),
        ("4", vec!["Q4", "120", "Vision Only", meta]),
    ];
    // VLMEvalKit's judge extracts the letter of a prose answer; seethink's stand-in is
    // `can_infer_option`, whose letter then equals the answer (`post_check_score`)
    let predictions = [
        ("1", "The answer is A"),
        ("2", "<think>…</think>B."),
        ("3", "The answer is D"),
        ("4", "\\boxed{120}"),
    ];
    let r = score(
        Benchmark::MathVerse,
        &["question", "answer", "problem_version", "metadata"],
        &rows,
        &predictions,
    );
    assert_eq!(correct(&r), [true, true, false, true]);
    assert_eq!(r.items[2].extracted.as_deref(), Some("D"));
    // `MathVerse_acc`: per `problem_version` (the TSV's own column here)
    assert_eq!(values(&r.tables[0], "Vision Intensive"), [100.0]);
    assert_eq!(values(&r.tables[0], "Vision Only"), [50.0]);
    assert_eq!(values(&r.tables[1], "plane geometry"), [75.0]);
}

#[test]
fn mathvista_free_form_by_post_check_or_the_math_grader() {
    let header = ["question", "answer", "question_type", "answer_type", "choices", "answer_option"];
    let free = |answer, kind| vec!["Q", answer, "free_form", kind, "", ""];
    let rows = [
        ("1", free("5", "integer")),
        ("2", free("1.5", "float")),
        ("3", free("[2007, 2008]", "list")),
        ("4", free("5", "integer")),
    ];
    let predictions = [
        ("1", "\\boxed{5.0}"),          // post_check: int('5.0') raises ValueError: wrong
        ("2", "\\boxed{1.50}"),         // float('1.50') == float('1.5'): right
        ("3", "\\boxed{[2007, 2008]}"), // list: post_check compares str(None): wrong
        ("4", " 5 "),                   // int(' 5 ') == 5: right
    ];
    let r = score(Benchmark::MathVista, &header, &rows, &predictions);
    assert_eq!(correct(&r), [false, true, false, true]);
    let options = ScoreOptions { math_grader: true };
    let r = score_with(Benchmark::MathVista, &header, &rows, &predictions, options);
    assert_eq!(correct(&r), [true, true, true, true], "the MATH grader: 5.0 is 5, lists compare");
}

#[test]
fn mathvision_free_form_by_is_equal_or_the_math_grader() {
    let rows = [
        ("1", vec!["Q", "3", "[]"]),
        ("2", vec!["Q", "3", "[]"]),
        ("3", vec!["Q", "\\sqrt{12}", "[]"]),
        ("4", vec!["Q", "\\frac{1}{2}", "[]"]),
        ("5", vec!["Q", "8", "[]"]),
    ];
    let predictions = [
        ("1", "\\boxed{x=3}"),        // is_equal: no number, not the same text
        ("2", "\\boxed{3.0000005}"),  // eval: |3 − 3.0000005| < 1e-6
        ("3", "\\boxed{2\\sqrt{3}}"), // eval(str(latex2sympy)) fails on sqrt: only the text counts
        ("4", "\\boxed{0.5}"),        // latex2sympy: 1/2 and 0.5
        ("5", "\\boxed{2^{3}}"),      // latex2sympy: 2**3 = 8
    ];
    let header = ["question", "answer", "choices"];
    let r = score(Benchmark::MathVision, &header, &rows, &predictions);
    assert_eq!(correct(&r), [false, true, false, true, true]);
    let options = ScoreOptions { math_grader: true };
    let r = score_with(Benchmark::MathVision, &header, &rows, &predictions, options);
    // the MATH grader: `x=` is dropped, 3.0000005 is no integer (PRM800K: within 1e-7), 2√3 = √12
    // numerically, 0.5 = 1/2, and its guard evaluates no `^{`
    assert_eq!(correct(&r), [true, false, true, true, false]);
}

#[test]
fn suite_averages_and_files() {
    let pope = score(Benchmark::Pope, &["question", "answer"], &[("1", vec!["Q", "Yes"])], &[("1", "yes")]);
    let mmstar =
        score(Benchmark::MmStar, &MCQ, &[("1", vec!["Q", "a", "b", "c", "d", "A", "x", "y"])], &[("1", "B")]);
    let suite = SuiteReport::new(vec![pope, mmstar]).unwrap();
    // perception: (100 + 0) / 2; no visual math, so no overall
    assert_eq!(suite.averages.perception.as_ref().unwrap().mean, 50.0);
    assert!(suite.averages.visual_math.is_none() && suite.averages.overall.is_none());
    let md = suite.to_markdown();
    assert!(md.contains("| **perception average** |") && md.contains("without A-OKVQA, RealWorldQA"), "{md}");
    let dir = tempfile::tempdir().unwrap();
    suite.write(dir.path()).unwrap();
    let back: SuiteReport =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(back, suite);
}

#[test]
fn bad_benchmark_files_and_predictions_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let no_answer = tsv(d, "pope.tsv", &["question"], &[("1", vec!["Q"])]);
    let e = Benchmark::Pope.load(&no_answer).unwrap_err().to_string();
    assert!(e.contains("pope.tsv:1:") && e.contains("missing column `answer`"), "{e}");
    let maybe =
        tsv(d, "pope2.tsv", &["question", "answer"], &[("1", vec!["Q", "Yes"]), ("2", vec!["Q", "Maybe"])]);
    let e = Benchmark::Pope.load(&maybe).unwrap_err().to_string();
    assert!(e.contains("pope2.tsv:3:") && e.contains("answer `maybe` is neither yes nor no"), "{e}");

    let rows: Vec<(&str, Vec<&str>)> =
        ["1", "2", "3", "4", "5", "6", "7"].iter().map(|i| (*i, vec!["Q", "No"])).collect();
    let data = Benchmark::Pope.load(&tsv(d, "p.tsv", &["question", "answer"], &rows)).unwrap();
    let write = |name: &str, text: &str| {
        let path = d.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let e = read_predictions(&write("a.jsonl", "{\"index\": 1, \"prediction\": \"no\"}\n{oops\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("a.jsonl:2:") && e.contains("not a JSON object"), "{e}");
    let e = read_predictions(&write("b.jsonl", "\n{\"index\": 1}\n")).unwrap_err().to_string();
    assert!(e.contains("b.jsonl:2:") && e.contains("missing key `prediction`"), "{e}");
    let e = read_predictions(&write(
        "c.jsonl",
        "{\"index\": 1, \"prediction\": \"a\"}\n{\"index\": \"1\", \"prediction\": \"b\"}\n",
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("c.jsonl:2:") && e.contains("index `1` has a prediction already (line 1)"), "{e}");
    let e = read_predictions(&write("d.tsv", "index\tanswer\n1\tNo\n")).unwrap_err().to_string();
    assert!(e.contains("d.tsv:1:") && e.contains("missing column `prediction`"), "{e}");

    let stray = read_predictions(&write(
        "e.jsonl",
        "{\"index\": 1, \"prediction\": \"no\"}\n{\"index\": 99, \"prediction\": \"no\"}\n",
    ))
    .unwrap();
    let e = match_rows(&data, &stray).unwrap_err().to_string();
    assert!(e.contains("e.jsonl:2:") && e.contains("index `99` is not in the POPE benchmark"), "{e}");
    let few = read_predictions(&write("f.jsonl", "{\"index\": 2, \"prediction\": \"no\"}\n")).unwrap();
    let e = match_rows(&data, &few).unwrap_err().to_string();
    assert!(
        e.contains("f.jsonl: 6 of the 7 rows") && e.contains("(first: `1`, `3`, `4`, `5`, `6`, …)"),
        "{e}"
    );

    // VLMEvalKit's output layout: the benchmark's columns beside `prediction`
    let all: String = (1..=7).map(|i| format!("{i}\tQ\tNo\t\"Yes, a \"\"dog\"\".\"\n")).collect();
    let vlmeval =
        read_predictions(&write("g.tsv", &format!("index\tquestion\tanswer\tprediction\n{all}"))).unwrap();
    let report = data.score(&match_rows(&data, &vlmeval).unwrap()).unwrap();
    assert_eq!(report.items[0].extracted.as_deref(), Some("Yes"));
    assert_eq!(report.score, 0.0, "no gold yes: TP = 0, so F1 = 0");
}
