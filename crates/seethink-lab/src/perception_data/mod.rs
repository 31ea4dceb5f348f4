//! `seethink perception-data`: the paper's stage-1 data made from captioned images. Its
//! perception questions were synthesised from dense captions (DOCCI) by an LLM and kept only
//! where VLMs answering from the caption get them right while VLMs answering from the image
//! alone get them wrong: answerable, but only by seeing well. Here, from a captions file
//! (JSONL: `image`, `caption`, optionally `id`) to EasyR1 JSONL for stage 1, in three stages:
//! 1. **generate**: a question model (any checkpoint seethink loads, text only, greedy) writes a
//!    multiple-choice question per caption from `questions.txt` ([`Templates`]: the reference
//!    code's DOCCI prompt, a ```` ```json ```` block per question); blocks it writes malformed
//!    are dropped and counted. `--questions` gives questions written elsewhere (a
//!    `questions.jsonl` of an earlier run, template questions) instead;
//! 2. **caption side**: each caption model answers each question from the caption alone
//!    (greedy, `--answer-tokens` 8); a question any of them gets wrong is dropped;
//! 3. **image side**: each image model (the policy's base model) answers the questions left
//!    from the image alone, `--k` samples; a question is dropped when its pass rate exceeds
//!    `--max-image-pass-rate` or when a sample gives no answer (no option letter). With the
//!    defaults (one greedy answer, rate 0) this is the reference code's rule
//!    (`data_pipeline/filter_perception.py` of UCSC-VLAA/VLM-CapCurriculum): keep iff every
//!    image-only letter is present and wrong and every caption-only letter is right, letters
//!    read as it reads them ([`questions::answer_letter`]), prompts in its wording.
//!
//! Every stage appends each finished answer to its cache (`generation.jsonl`,
//! `caption-check.jsonl`, `image-check.jsonl` in `--out`, [`JsonlCache`]), so a killed run
//! resumes where it stopped, and item i of a stage samples from random streams `i·k …`, so a
//! resumed run equals an uninterrupted one. Writes `questions.jsonl` (every well-formed
//! question), `tasks.jsonl` (the kept ones, EasyR1 JSONL: `problem` from `task.txt`, the
//! reference code's `format_for_training.py` prompt, `answer` the letter or short answer,
//! `images`), `dropped.jsonl` (each dropped question, the stage and why) and `report.md` (what
//! each stage dropped).

pub mod questions;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

pub use questions::{Captioned, Question, Templates};

use crate::data::{Capability, ImageRef, Task};
use crate::eval::progress::Progress;
use crate::eval::{ModelResponder, Responder};
use crate::jsonl_cache::{unfinished_runs, JsonlCache};
use crate::models::generate::SamplingConfig;
use crate::models::processing::image::ImageBounds;
use crate::models::processing::Processor;
use crate::models::AnyVlm;
use crate::rl::train_backend::KernelBackend;

/// The `source` of the tasks this pipeline writes.
pub const PERCEPTION_DATA_SOURCE: &str = "perception-data";

/// Who answers a stage's prompts: a checkpoint (loaded when its stage runs) or any
/// [`Responder`] (a scripted stand-in in tests, a rule-based reader), named for the report and
/// the cache.
pub enum Answerer {
    Checkpoint(PathBuf),
    Responder { name: String, responder: Box<dyn Responder> },
}

impl Answerer {
    /// The checkpoint's path, or the responder's name.
    pub fn name(&self) -> String {
        match self {
            Answerer::Checkpoint(dir) => dir.display().to_string(),
            Answerer::Responder { name, .. } => name.clone(),
        }
    }
}

impl std::fmt::Debug for Answerer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Where the questions come from.
#[derive(Clone, Debug, PartialEq)]
pub enum QuestionSource {
    /// A captions file; the question model writes the questions.
    Captions { captions: PathBuf, model: PathBuf },
    /// Questions already written (JSONL of [`Question`]s, e.g. an earlier run's
    /// `questions.jsonl`).
    Written(PathBuf),
}

/// Options of `seethink perception-data`.
#[derive(Debug)]
pub struct PerceptionDataOptions {
    pub source: QuestionSource,
    /// New tokens the question model may write per caption.
    pub question_tokens: usize,
    /// Who answers from the caption alone (the question model when empty and it writes the
    /// questions; none: written questions are not checked on the caption side).
    pub caption_side: Vec<Answerer>,
    /// Who answers from the image alone: the policy's base model.
    pub image_side: Vec<Answerer>,
    /// Samples per question on the image side.
    pub k: usize,
    /// The image side's sampling temperature (0: greedy, the paper's).
    pub temperature: f32,
    /// New tokens of a check's answer (the paper's filter: 8).
    pub answer_tokens: usize,
    /// The highest image-only pass rate a kept question may have.
    pub max_image_pass_rate: f64,
    /// Prompts per generation call.
    pub batch_size: usize,
    pub bounds: ImageBounds,
    pub templates: Templates,
    pub seed: u64,
    pub out: PathBuf,
}

/// What each stage kept and dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub captions: usize,
    /// Malformed question blocks the question model wrote.
    pub malformed: usize,
    pub questions: usize,
    pub dropped_by_caption: usize,
    pub dropped_by_image: usize,
    pub kept: usize,
}

/// Runs the pipeline (see the module doc) and returns what each stage dropped.
pub fn perception_data<B: KernelBackend>(mut options: PerceptionDataOptions) -> Result<Report> {
    anyhow::ensure!(options.k >= 1 && options.batch_size >= 1, "--k and --batch-size must be at least 1");
    anyhow::ensure!(!options.image_side.is_empty(), "--image-model: at least one (the policy's base model)");
    std::fs::create_dir_all(&options.out).with_context(|| format!("creating {}", options.out.display()))?;
    let mut report = Report::default();
    let questions = match &options.source {
        QuestionSource::Captions { captions, model } => {
            let captioned = read_captions(captions)?;
            report.captions = captioned.len();
            let (questions, malformed) = generate::<B>(model, &captioned, &options)?;
            report.malformed = malformed;
            questions
        }
        QuestionSource::Written(path) => read_questions(path)?,
    };
    write_lines(&options.out.join("questions.jsonl"), questions.iter().map(|q| json!(q)))?;
    report.questions = questions.len();
    if let (QuestionSource::Captions { model, .. }, true) = (&options.source, options.caption_side.is_empty())
    {
        options.caption_side.push(Answerer::Checkpoint(model.clone()));
    }
    let mut caption_side = std::mem::take(&mut options.caption_side);
    let mut image_side = std::mem::take(&mut options.image_side);
    let mut dropped = Vec::new();
    // the caption side: every caption answerer answers right
    let prompts: Vec<Task> =
        questions.iter().map(|q| text_task(&q.id, options.templates.caption_prompt(q))).collect();
    let greedy = sampling(options.answer_tokens, 0.0, options.seed);
    let answers = answer_all::<B>(
        "caption side",
        "caption-check.jsonl",
        &mut caption_side,
        &prompts,
        1,
        &greedy,
        &options,
    )?;
    let mut left = Vec::new();
    for (q, question) in questions.iter().enumerate() {
        let wrong =
            caption_side.iter().enumerate().find(|(m, _)| !question.is_answered_by(&answers[*m][q][0]));
        match wrong {
            Some((m, answerer)) => dropped.push(json!({
                "id": question.id, "stage": "caption",
                "why": format!("{} answered {:?} from the caption, not {}", answerer.name(), answers[m][q][0], question.answer),
            })),
            None => left.push(question),
        }
    }
    report.dropped_by_caption = questions.len() - left.len();
    // the image side: every image model fails from the image alone
    let prompts: Vec<Task> = left.iter().map(|q| image_task(q, &options.templates)).collect();
    let image_sampling = sampling(options.answer_tokens, options.temperature, options.seed);
    let answers = answer_all::<B>(
        "image side",
        "image-check.jsonl",
        &mut image_side,
        &prompts,
        options.k,
        &image_sampling,
        &options,
    )?;
    let mut kept = Vec::new();
    for (q, question) in left.iter().enumerate() {
        let why = image_side.iter().enumerate().find_map(|(m, answerer)| {
            let responses = &answers[m][q];
            let right = responses.iter().filter(|r| question.is_answered_by(r)).count();
            let silent = responses.iter().filter(|r| !question.is_attempted_by(r)).count();
            let rate = right as f64 / responses.len() as f64;
            if rate > options.max_image_pass_rate {
                Some(format!(
                    "{} answered it from the image alone in {right} of {}",
                    answerer.name(),
                    responses.len()
                ))
            } else if silent > 0 {
                Some(format!(
                    "{} gave no answer in {silent} of {} (e.g. {:?})",
                    answerer.name(),
                    responses.len(),
                    responses[0]
                ))
            } else {
                None
            }
        });
        match why {
            Some(why) => dropped.push(json!({ "id": question.id, "stage": "image", "why": why })),
            None => kept.push(*question),
        }
    }
    report.dropped_by_image = left.len() - kept.len();
    report.kept = kept.len();
    let tasks: Vec<Task> =
        kept.iter().map(|q| training_task(q, &options.templates)).collect::<Result<_>>()?;
    crate::data::write_jsonl(&options.out.join("tasks.jsonl"), &tasks, &Default::default())?;
    write_lines(&options.out.join("dropped.jsonl"), dropped.into_iter())?;
    let table = report.table(&options, &caption_side, &image_side);
    std::fs::write(options.out.join("report.md"), &table)
        .with_context(|| format!("writing {}", options.out.join("report.md").display()))?;
    print!("{table}");
    Ok(report)
}

impl Report {
    /// The report as a Markdown table with the settings.
    fn table(
        &self,
        options: &PerceptionDataOptions,
        caption_side: &[Answerer],
        image_side: &[Answerer],
    ) -> String {
        let names = |side: &[Answerer]| side.iter().map(Answerer::name).collect::<Vec<_>>().join(", ");
        let mut out = String::from("| stage | questions | dropped |\n|---|---:|---:|\n");
        if let QuestionSource::Captions { model, .. } = &options.source {
            let _ = writeln!(
                out,
                "| generated by {} from {} captions | {} | {} malformed blocks |",
                model.display(),
                self.captions,
                self.questions,
                self.malformed
            );
        } else {
            let _ = writeln!(out, "| written beforehand | {} | |", self.questions);
        }
        let _ = match caption_side.is_empty() {
            true => {
                writeln!(out, "| caption side: not checked (no caption answerer) | {} | 0 |", self.questions)
            }
            false => writeln!(
                out,
                "| caption side ({}): answered right from the caption alone | {} | {} |",
                names(caption_side),
                self.questions - self.dropped_by_caption,
                self.dropped_by_caption
            ),
        };
        let _ = writeln!(
            out,
            "| image side ({}, {} sample(s), temperature {}): pass rate ≤ {} from the image alone | {} | {} |",
            names(image_side),
            options.k,
            options.temperature,
            options.max_image_pass_rate,
            self.kept,
            self.dropped_by_image
        );
        let _ = writeln!(
            out,
            "\nkept {} of {} questions: {}",
            self.kept,
            self.questions,
            options.out.join("tasks.jsonl").display()
        );
        out
    }
}

/// The captioned images of `path` (JSONL: `image`, resolved against the file's directory,
/// `caption`, optionally `id`, else the line number); an error names the line and key.
pub fn read_captions(path: &Path) -> Result<Vec<Captioned>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut captioned = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("{}:{}", path.display(), i + 1);
        let record: Value = serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
        let field = |key: &str| record[key].as_str().map(str::to_string);
        let (Some(image), Some(caption)) = (field("image"), field("caption")) else {
            bail!("{}: needs `image` and `caption` strings", at());
        };
        let image = base.join(image);
        if !image.is_file() {
            bail!("{}: the image {} does not exist", at(), image.display());
        }
        let id = field("id").unwrap_or_else(|| format!("caption{}", i + 1));
        captioned.push(Captioned { id, image, caption });
    }
    let mut seen = HashSet::new();
    if let Some(twice) = captioned.iter().find(|c| !seen.insert(c.id.as_str())) {
        bail!("{}: the id {} is used twice", path.display(), twice.id);
    }
    Ok(captioned)
}

/// The questions of `path` (JSONL of [`Question`]s); an error names the line.
pub fn read_questions(path: &Path) -> Result<Vec<Question>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut questions = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let mut question: Question = serde_json::from_str(line).with_context(|| {
            format!(
                "{}:{}: not a question (id, caption_id, image, caption, question, options, answer)",
                path.display(),
                i + 1
            )
        })?;
        question.image = base.join(&question.image);
        questions.push(question);
    }
    Ok(questions)
}

/// Stage 1: `model` writes questions about each caption (greedy); returns the well-formed ones
/// (`<caption id>-q<j>`) and the number of malformed blocks.
fn generate<B: KernelBackend>(
    model: &Path,
    captioned: &[Captioned],
    options: &PerceptionDataOptions,
) -> Result<(Vec<Question>, usize)> {
    let prompts: Vec<Task> =
        captioned.iter().map(|c| text_task(&c.id, options.templates.questions_prompt(&c.caption))).collect();
    let greedy = sampling(options.question_tokens, 0.0, options.seed);
    let mut writer = [Answerer::Checkpoint(model.to_path_buf())];
    let written =
        answer_all::<B>("generation", "generation.jsonl", &mut writer, &prompts, 1, &greedy, options)?;
    let mut questions = Vec::new();
    let mut malformed = 0;
    for (c, caption) in captioned.iter().enumerate() {
        let (parsed, bad) = questions::parse_questions(&written[0][c][0]);
        malformed += bad;
        for (j, (question, choices, answer)) in parsed.into_iter().enumerate() {
            questions.push(Question {
                id: format!("{}-q{j}", caption.id),
                caption_id: caption.id.clone(),
                image: caption.image.clone(),
                caption: caption.caption.clone(),
                question,
                options: choices,
                answer,
            });
        }
    }
    Ok((questions, malformed))
}

/// One answerer's responses to a batch of tasks under a sampling config: `k` texts per task.
type BatchAnswers<'a> = Box<dyn FnMut(&[Task], SamplingConfig) -> Result<Vec<Vec<String>>> + 'a>;

/// `k` answers of each of `answerers` to each of `tasks`: `answers[m][t][j]`. Cached in
/// `--out/<cache>` (one record per answerer and task, appended as each batch finishes, with
/// the stage's settings and prompts), so a rerun answers only what is not there; task t
/// samples from streams `t·k …` of `sampling.seed` whatever the batching.
fn answer_all<B: KernelBackend>(
    label: &str,
    cache: &str,
    answerers: &mut [Answerer],
    tasks: &[Task],
    k: usize,
    sampling: &SamplingConfig,
    options: &PerceptionDataOptions,
) -> Result<Vec<Vec<Vec<String>>>> {
    let names: Vec<String> = answerers.iter().map(Answerer::name).collect();
    let settings = json!({
        "answerers": names, "k": k, "temperature": sampling.temperature, "max_new_tokens": sampling.max_new_tokens,
        "seed": sampling.seed, "bounds": format!("{:?}", options.bounds),
    });
    let prompts: HashMap<&str, &str> = tasks.iter().map(|t| (t.id.as_str(), t.prompt.as_str())).collect();
    // a record holds its prompt: one whose question or template changed is answered again
    let current = |r: &Value| {
        r["responses"].as_array().is_some_and(|a| a.len() == k)
            && r["model"].as_u64().is_some_and(|m| (m as usize) < answerers.len())
            && r["id"].as_str().and_then(|id| prompts.get(id))
                == Some(&r["prompt"].as_str().unwrap_or_default())
    };
    let (mut file, records) = JsonlCache::open(&options.out.join(cache), &settings, current)?;
    let mut answers: Vec<HashMap<String, Vec<String>>> = vec![HashMap::new(); answerers.len()];
    for record in records {
        let responses = record["responses"].as_array().into_iter().flatten();
        let responses = responses.map(|r| r.as_str().unwrap_or_default().to_string()).collect();
        answers[record["model"].as_u64().unwrap_or_default() as usize]
            .insert(record["id"].as_str().unwrap_or_default().to_string(), responses);
    }
    let device = Default::default();
    for (m, answerer) in answerers.iter_mut().enumerate() {
        let todo: Vec<usize> = (0..tasks.len()).filter(|&t| !answers[m].contains_key(&tasks[t].id)).collect();
        if todo.is_empty() {
            continue;
        }
        let name = answerer.name();
        let loaded;
        let mut responder: BatchAnswers<'_> = match answerer {
            Answerer::Checkpoint(dir) => {
                loaded = (AnyVlm::<B>::load(dir.as_path(), &device)?, Processor::from_dir(dir.as_path())?);
                let (model, processor) = (&loaded.0, &loaded.1);
                let device = device.clone();
                Box::new(move |batch, sampling| {
                    let mut responder =
                        ModelResponder::new(model, processor, sampling, options.batch_size, device.clone())?
                            .within(options.bounds)
                            .quiet();
                    Ok(texts(responder.respond(batch, k)?))
                })
            }
            Answerer::Responder { responder, .. } => {
                Box::new(move |batch, _| Ok(texts(responder.respond(batch, k)?)))
            }
        };
        let mut done = tasks.len() - todo.len();
        eprintln!(
            "perception-data, {label}: {name} answers {} prompts ({done} cached), {k} each",
            tasks.len()
        );
        let progress = Progress::new(label, "prompt", done + 1, tasks.len());
        let per_call = options.batch_size * <B as crate::models::kernels::Kernels>::batch_threads();
        for run in unfinished_runs(&todo, per_call) {
            let batch = &tasks[run.clone()];
            let sampling = SamplingConfig { stream: (run.start * k) as u64, ..sampling.clone() };
            for (task, texts) in batch.iter().zip(responder(batch, sampling)?) {
                file.append(
                    &json!({ "model": m, "id": task.id, "prompt": task.prompt, "responses": texts }),
                )?;
                answers[m].insert(task.id.clone(), texts);
            }
            done += batch.len();
            progress.update(done, "", "");
        }
    }
    Ok(answers
        .into_iter()
        .map(|mut by_id| tasks.iter().map(|t| by_id.remove(&t.id).unwrap_or_default()).collect())
        .collect())
}

/// The texts of each task's responses.
fn texts(responses: Vec<Vec<crate::eval::runner::Response>>) -> Vec<Vec<String>> {
    responses.into_iter().map(|group| group.into_iter().map(|r| r.text).collect()).collect()
}

/// Sampling of `max_new_tokens` at `temperature` (top-p 1) from `seed`.
fn sampling(max_new_tokens: usize, temperature: f32, seed: u64) -> SamplingConfig {
    SamplingConfig { max_new_tokens, temperature, top_p: 1.0, top_k: 0, seed, stream: 0 }
}

/// A text-only prompt named `id`.
fn text_task(id: &str, prompt: String) -> Task {
    Task::text(id, prompt, "", Capability::Perception)
}

/// The image side's prompt for `question`, with its image.
fn image_task(question: &Question, templates: &Templates) -> Task {
    Task {
        images: vec![ImageRef::Path(question.image.clone())],
        ..text_task(&question.id, templates.image_prompt(question))
    }
}

/// A kept question as a stage-1 training task: the training prompt (`task.txt`, the reference
/// code's `format_for_training.py` wording), the image, the answer.
pub fn training_task(question: &Question, templates: &Templates) -> Result<Task> {
    let image =
        question.image.canonicalize().with_context(|| format!("the image {}", question.image.display()))?;
    Ok(Task {
        id: question.id.clone(),
        prompt: templates.task_prompt(question),
        images: vec![ImageRef::Path(image)],
        answer: question.answer.clone(),
        capability: Capability::Perception,
        level: None,
        pass_rate: None,
        source: PERCEPTION_DATA_SOURCE.into(),
        meta: json!({ "caption_id": question.caption_id, "caption": question.caption }),
    })
}

/// Writes `lines` to `path`, one JSON value per line.
fn write_lines(path: &Path, lines: impl Iterator<Item = Value>) -> Result<()> {
    let text: String = lines.map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `seethink data captions`: `n` procedural scenes (perception tasks in the worked style,
/// levels 1–2, from `seed`) as the perception-data pipeline's input, in `out`: `images/`,
/// `captions.jsonl` (each scene's caption from its ground truth,
/// [`caption`](crate::data::synth::caption)) and `questions.jsonl` (template questions: each
/// scene's perception question and answer, short answer, for `perception-data --questions`,
/// since the sandbox's models cannot write questions).
pub fn captions(out: &Path, n: usize, seed: u64) -> Result<()> {
    use crate::data::synth::{self, AnswerStyle, FamilySpec, SynthConfig};

    anyhow::ensure!(n > 0, "--n: at least 1 scene, got 0");
    let none = FamilySpec { count: 0, min_level: 1, max_level: 1 };
    let config = SynthConfig {
        perception: FamilySpec { count: n, min_level: 1, max_level: 2 },
        text_reasoning: none,
        visual_reasoning: none,
        answers: AnswerStyle::Worked,
    };
    let generated = synth::generate(&config, seed)?;
    let tasks: Vec<crate::data::Task> = generated.iter().map(|t| t.task.clone()).collect();
    let summary = synth::write_tasks(out, &tasks)?;
    // the tasks as written: their images are files now
    let written = crate::data::load_tasks(&summary.tasks_file, None)?;
    std::fs::remove_file(&summary.tasks_file)?;
    let mut captions = String::new();
    let mut questions = String::new();
    for (generated, task) in generated.iter().zip(&written) {
        let Some(scene) = generated.scene.as_ref() else { continue };
        let Some(crate::data::ImageRef::Path(path)) = task.images.first() else { continue };
        let image = path.strip_prefix(out).unwrap_or(path).display().to_string();
        let caption = crate::data::synth::caption(scene);
        captions.push_str(&format!(
            "{}\n",
            serde_json::json!({ "id": task.id, "image": image, "caption": caption })
        ));
        let question = Question {
            id: format!("{}-q0", task.id),
            caption_id: task.id.clone(),
            image: image.clone().into(),
            caption,
            question: task.prompt.trim_start_matches(crate::data::IMAGE_MARKER).trim().to_string(),
            options: Vec::new(),
            answer: task.answer.clone(),
        };
        questions.push_str(&format!("{}\n", serde_json::json!(question)));
    }
    std::fs::write(out.join("captions.jsonl"), captions)?;
    std::fs::write(out.join("questions.jsonl"), questions)?;
    println!("wrote {n} captioned scenes to {} (captions.jsonl, questions.jsonl, images/)", out.display());
    Ok(())
}
