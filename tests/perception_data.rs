//! `seethink perception-data`: captions in, EasyR1 JSONL out, on committed checkpoints; each
//! side of the caption-vs-image filter drops what it must.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use seethink::data::Task;
use seethink::eval::runner::{Responder, Response};
use seethink::perception_data::{
    perception_data, Answerer, PerceptionDataOptions, Question, QuestionSource, Templates,
};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn seethink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seethink")).args(args).output().unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The whole command on the tiny Qwen3-VL checkpoint (random weights): it writes the questions
/// (here nothing well-formed), both sides run, and the outputs and report are written; a rerun
/// answers nothing again; a captions file naming a missing image is refused with its line.
#[test]
fn captions_go_in_and_easyr1_jsonl_comes_out_resumably() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["square.png", "wide.png"] {
        std::fs::copy(root().join("tests/fixtures/images").join(name), dir.path().join(name)).unwrap();
    }
    let captions = dir.path().join("captions.jsonl");
    std::fs::write(
        &captions,
        "{\"id\": \"sq\", \"image\": \"square.png\", \"caption\": \"A grey square on white.\"}\n\
         {\"image\": \"wide.png\", \"caption\": \"A wide band of colour.\"}\n",
    )
    .unwrap();
    let model = root().join("tests/fixtures/qwen3_vl/checkpoint");
    // the tiny checkpoint holds 1024 positions and its tokenizer reads bytes: a short question
    // prompt of the user's own (`--templates`)
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(templates.join("questions.txt"), "Write a question as ```json about: {caption}").unwrap();
    let out = dir.path().join("out");
    let run = |captions: &Path| {
        seethink(&[
            "perception-data",
            "--captions",
            captions.to_str().unwrap(),
            "--question-model",
            model.to_str().unwrap(),
            "--image-model",
            model.to_str().unwrap(),
            "--templates",
            templates.to_str().unwrap(),
            "--question-tokens",
            "12",
            "--answer-tokens",
            "2",
            "--no-image-bounds",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let first = run(&captions);
    let stdout = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(stdout.contains("from 2 captions |"), "{stdout}");
    let generated = lines(&out.join("generation.jsonl"));
    assert_eq!(generated.len(), 1 + 2, "a settings line and the question model's text per caption");
    assert_eq!(generated[2]["id"], "caption2", "a caption without an id is named by its line");
    assert!(generated[1]["prompt"].as_str().unwrap().contains("A grey square on white."));
    // random weights write no well-formed question: nothing to check or keep, and it says so
    let questions = std::fs::read_to_string(out.join("questions.jsonl")).unwrap();
    assert_eq!(stdout.contains("kept 0 of 0 questions"), questions.is_empty(), "{stdout}");
    assert_eq!(std::fs::read_to_string(out.join("report.md")).unwrap(), stdout);
    let tasks = std::fs::read_to_string(out.join("tasks.jsonl")).unwrap();

    let again = run(&captions);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success() && !stderr.contains("answers"), "{stderr}");
    assert_eq!(std::fs::read_to_string(out.join("tasks.jsonl")).unwrap(), tasks);

    let broken = dir.path().join("broken.jsonl");
    std::fs::write(
        &broken,
        "{\"image\": \"square.png\", \"caption\": \"x\"}\n{\"image\": \"gone.png\", \"caption\": \"y\"}\n",
    )
    .unwrap();
    let refused = run(&broken);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success()
            && stderr.contains("broken.jsonl:2: the image")
            && stderr.contains("gone.png"),
        "{stderr}"
    );
}

/// A stand-in for an LLM reading captions: it answers a caption prompt right when the prompt
/// holds the caption a question was written from, and cannot tell otherwise.
struct CaptionReader(HashMap<String, String>);

impl Responder for CaptionReader {
    fn respond(&mut self, tasks: &[Task], k: usize) -> seethink::eval::Result<Vec<Vec<Response>>> {
        Ok(tasks
            .iter()
            .map(|t| {
                let text = match self.0.get(&t.prompt) {
                    Some(answer) => format!("\\boxed{{{answer}}}"),
                    None => "I cannot tell.".to_string(),
                };
                vec![Response { text, tokens: 1 }; k]
            })
            .collect())
    }
}

/// The filter on the sandbox's scenes, their captions and template questions (`seethink data
/// captions`), the image side answered by the sandbox's base model (greedy): a question whose
/// caption does not state the answer is dropped by the caption side; of those the caption
/// answers, the ones the base model answers right from the image alone are dropped and the
/// ones it gets wrong are kept, as EasyR1 tasks with their image and answer.
#[test]
fn each_side_of_the_filter_drops_what_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seethink::perception_data::captions(&data, 24, 11).unwrap();
    let mut questions: Vec<Question> = lines(&data.join("questions.jsonl"))
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    for question in &mut questions {
        question.image = data.join(&question.image);
    }
    // one caption that does not state the answer
    let blank = Question { id: "blank-q0".into(), caption: "A picture.".into(), ..questions[0].clone() };
    questions.push(blank);
    let written = dir.path().join("questions.jsonl");
    let text: String = questions.iter().map(|q| format!("{}\n", serde_json::json!(q))).collect();
    std::fs::write(&written, text).unwrap();
    let templates =
        Templates::shipped_or_from(Some(&root().join("configs/perception_data/sandbox"))).unwrap();
    let readable: HashMap<String, String> = questions
        .iter()
        .filter(|q| q.id != "blank-q0")
        .map(|q| (templates.caption_prompt(q), q.answer.clone()))
        .collect();
    let out = dir.path().join("out");
    let options = || PerceptionDataOptions {
        source: QuestionSource::Written(written.clone()),
        question_tokens: 1,
        caption_side: vec![Answerer::Responder {
            name: "caption reader".into(),
            responder: Box::new(CaptionReader(readable.clone())),
        }],
        image_side: vec![Answerer::Checkpoint(seethink::sandbox::committed_base())],
        k: 1,
        temperature: 0.0,
        answer_tokens: 160,
        max_image_pass_rate: 0.0,
        batch_size: 8,
        bounds: seethink::models::processing::image::ImageBounds::default(),
        templates: templates.clone(),
        seed: 0,
        out: out.clone(),
    };
    let report = perception_data::<burn::backend::NdArray>(options()).unwrap();
    assert_eq!((report.questions, report.dropped_by_caption), (25, 1));
    let dropped: HashMap<String, Value> = lines(&out.join("dropped.jsonl"))
        .into_iter()
        .map(|d| (d["id"].as_str().unwrap().to_string(), d))
        .collect();
    assert_eq!(dropped["blank-q0"]["stage"], "caption");
    // the image side answered the other 24, and dropped exactly those it answered right
    let image: Vec<Value> = lines(&out.join("image-check.jsonl")).into_iter().skip(1).collect();
    assert_eq!(image.len(), 24);
    let by_id: HashMap<&str, &Question> = questions.iter().map(|q| (q.id.as_str(), q)).collect();
    let mut right = 0;
    for record in &image {
        let id = record["id"].as_str().unwrap();
        let response = record["responses"][0].as_str().unwrap();
        let answered = by_id[id].is_answered_by(response);
        right += usize::from(answered);
        assert_eq!(
            dropped.get(id).map(|d| d["stage"].as_str().unwrap()),
            answered.then_some("image"),
            "{id}: {response:?}"
        );
    }
    assert!(
        right > 0 && right < 24,
        "the base model answered {right} of 24 from the image: the fixture shows both"
    );
    assert_eq!(report.kept, 24 - right);
    let kept = seethink::data::load_tasks(&out, None).unwrap();
    assert_eq!(kept.len(), report.kept);
    for task in &kept {
        let question = by_id[task.id.as_str()];
        assert_eq!(task.answer, question.answer);
        assert_eq!(task.prompt, format!("<image>\n{}", question.question));
        let seethink::data::ImageRef::Path(image) = &task.images[0] else { panic!("an image path") };
        assert_eq!(image.canonicalize().unwrap(), question.image.canonicalize().unwrap());
    }
    // a rerun answers from the caches: the same tasks, nothing appended
    let tasks = std::fs::read_to_string(out.join("tasks.jsonl")).unwrap();
    perception_data::<burn::backend::NdArray>(options()).unwrap();
    assert_eq!(std::fs::read_to_string(out.join("tasks.jsonl")).unwrap(), tasks);
    assert_eq!(lines(&out.join("image-check.jsonl")).len(), 25);
}

/// A scripted answerer: the response to each prompt containing a key.
struct Scripted(Vec<(&'static str, &'static str)>);

impl Responder for Scripted {
    fn respond(&mut self, tasks: &[Task], k: usize) -> seethink::eval::Result<Vec<Vec<Response>>> {
        Ok(tasks
            .iter()
            .map(|t| {
                let text = self.0.iter().find(|(key, _)| t.prompt.contains(key)).map_or("", |(_, r)| r);
                vec![Response { text: text.to_string(), tokens: 1 }; k]
            })
            .collect())
    }
}

/// The reference code's rule on multiple-choice questions, with scripted answerers on both
/// sides: kept iff every caption-only letter is right and every image-only letter is present
/// and wrong; an image-only answer without a letter drops the question, as an image-only
/// answer that names the right letter does; letters are read as the reference reads them.
#[test]
fn multiple_choice_questions_are_kept_by_the_reference_rule() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("square.png");
    std::fs::copy(root().join("tests/fixtures/images/square.png"), &image).unwrap();
    let question = |id: &str, text: &str| Question {
        id: id.into(),
        caption_id: "c".into(),
        image: image.clone(),
        caption: "A grey square on white.".into(),
        question: text.into(),
        options: vec!["red".into(), "grey".into(), "blue".into(), "green".into()],
        answer: "B".into(),
    };
    let questions = [
        question("seen", "What colour is the square (seen)?"),
        question("missed", "What colour is the square (missed)?"),
        question("silent", "What colour is the square (silent)?"),
        question("misread", "What colour is the square (misread)?"),
    ];
    let written = dir.path().join("questions.jsonl");
    std::fs::write(
        &written,
        questions.iter().map(|q| format!("{}\n", serde_json::json!(q))).collect::<String>(),
    )
    .unwrap();
    let caption_reader = Scripted(vec![("(misread)", "Answer: C"), ("square", "The answer is B.")]);
    let image_model =
        Scripted(vec![("(seen)", "B"), ("(missed)", "answer - d"), ("(silent)", "I cannot tell")]);
    let out = dir.path().join("out");
    let report = perception_data::<burn::backend::NdArray>(PerceptionDataOptions {
        source: QuestionSource::Written(written),
        question_tokens: 1,
        caption_side: vec![Answerer::Responder {
            name: "reader".into(),
            responder: Box::new(caption_reader),
        }],
        image_side: vec![Answerer::Responder { name: "looker".into(), responder: Box::new(image_model) }],
        k: 2,
        temperature: 1.0,
        answer_tokens: 8,
        max_image_pass_rate: 0.0,
        batch_size: 4,
        bounds: seethink::models::processing::image::ImageBounds::NONE,
        templates: Templates::shipped_or_from(None).unwrap(),
        seed: 0,
        out: out.clone(),
    })
    .unwrap();
    assert_eq!((report.dropped_by_caption, report.dropped_by_image, report.kept), (1, 2, 1));
    let dropped: HashMap<String, String> = lines(&out.join("dropped.jsonl"))
        .into_iter()
        .map(|d| (d["id"].as_str().unwrap().to_string(), d["why"].as_str().unwrap().to_string()))
        .collect();
    assert!(dropped["misread"].contains("\"Answer: C\" from the caption, not B"), "{dropped:?}");
    assert!(dropped["seen"].contains("answered it from the image alone in 2 of 2"), "{dropped:?}");
    assert!(dropped["silent"].contains("gave no answer in 2 of 2"), "{dropped:?}");
    let kept = seethink::data::load_tasks(&out, None).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id, "missed");
    assert_eq!(
        kept[0].prompt,
        "<image>What colour is the square (missed)?\nOptions:\nA: red\nB: grey\nC: blue\nD: green\n\
         Respond using only the letter corresponding to the correct answer.\n"
    );
}
