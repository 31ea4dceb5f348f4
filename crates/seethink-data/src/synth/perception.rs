//! Perception tasks: questions about a scene, as four-option multiple-choice questions answered
//! with a letter ([`AnswerStyle::Choice`]) or as open questions answered with the count, colour,
//! direction or object itself ([`AnswerStyle::Worked`]).
//!
//! Generation draws the question type first, uniformly among those the level allows, then
//! draws scenes of the level until one supports it (falling back to a count question after
//! [`MAX_SCENE_DRAWS`] scenes), so every type is equally common. Level sets the scene (see
//! [`Scene::generate`]), the types, which counts may be asked and how close the wrong count
//! options are:
//!
//! | level | question types | count forms | count option spacing |
//! |-------|----------------|-------------|----------------------|
//! | 1 | count, color-of, relation | shape; colour | 3 |
//! | 2 | count, color-of, relation, largest | shape; colour; shape + colour | 2 |
//! | 3 | count, color-of, relation, largest | all shapes; shape; colour; shape + colour | 1 |

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::family::{AnswerStyle, SynthTask, TaskSlot};
use super::query::{describe, CountQuery, Direction, PerceptionQuery, Referent};
use super::render::png_image;
use super::scene::{Color, Look, Scene, Shape, Size};
use super::{worked_response, MCQ_SUFFIX};
use crate::error::Result;
use crate::task::{Capability, Task, IMAGE_MARKER};

/// Option labels, in order.
pub const OPTION_LETTERS: [&str; 4] = ["A", "B", "C", "D"];

/// Probability that a count query targets attributes present in the scene (else any allowed
/// attributes, so zero counts occur too).
const PRESENT_BIAS: f64 = 0.8;
/// Scenes drawn for a question type before falling back to a count question.
pub const MAX_SCENE_DRAWS: usize = 100;

/// The `meta` of a perception task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PerceptionMeta {
    /// Scene ground truth.
    pub scene: Scene,
    /// The question asked.
    pub query: PerceptionQuery,
    /// Option texts in letter order; the answer is the letter of the one equal to
    /// `query.truth(scene)`. Empty for an open question, whose answer is the truth itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Id of the visual-reasoning task this question was derived from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// A built multiple-choice question.
pub(crate) struct Mcq {
    /// Prompt text, starting with the image marker.
    pub prompt: String,
    /// Option texts in letter order.
    pub options: Vec<String>,
    /// The correct letter.
    pub answer: String,
}

/// Generates the perception task `id` at `level`: a question type, a scene supporting it, the
/// question's parameters and, in the choice style, shuffled options (see the module docs); its
/// worked solution states the fact read from the scene ([`fact`]) and boxes the answer.
pub(crate) fn generate(slot: &TaskSlot, rng: &mut impl Rng) -> Result<SynthTask> {
    let TaskSlot { level, style, .. } = *slot;
    let types: &[QuestionType] = if level == 1 { &QuestionType::ALL[..3] } else { &QuestionType::ALL };
    let (scene, query) = scene_and_query(types, level, rng, |rng| Scene::generate(level, rng))?;
    let mcq = match style {
        AnswerStyle::Choice => build_mcq(&scene, &query, level, rng),
        AnswerStyle::Worked => open_question(&scene, &query),
    };
    perception_task(slot, scene, query, mcq)
}

/// A question type drawn uniformly from `types`, then scenes from `draw` until one supports it
/// (a count question on the [`MAX_SCENE_DRAWS`]th), and the question's parameters; count forms
/// as at `level`.
fn scene_and_query<R: Rng>(
    types: &[QuestionType],
    level: u32,
    rng: &mut R,
    mut draw: impl FnMut(&mut R) -> Result<Scene>,
) -> Result<(Scene, PerceptionQuery)> {
    let question_type = *types.choose(rng).expect("every caller allows some types");
    for _ in 1..MAX_SCENE_DRAWS {
        let scene = draw(rng)?;
        if let Some(query) = question_of_type(question_type, &scene, level, rng) {
            return Ok((scene, query));
        }
    }
    let scene = draw(rng)?;
    let query = question_of_type(question_type, &scene, level, rng)
        .unwrap_or_else(|| PerceptionQuery::Count(pick_count_query(&scene, level, &[], rng)));
    Ok((scene, query))
}

/// The perception task `slot.id` asking `question` (built from `query`) about `scene`: the
/// rendered image, the scene and query in `meta`, and the worked solution stating the fact read
/// from the scene ([`fact`]) before the boxed answer.
fn perception_task(
    slot: &TaskSlot,
    scene: Scene,
    query: PerceptionQuery,
    question: Mcq,
) -> Result<SynthTask> {
    let solution = worked_response(&fact(&scene, &query), &question.answer);
    let meta = PerceptionMeta { scene: scene.clone(), query, options: question.options, parent: None };
    let task = Task {
        id: slot.id.to_string(),
        prompt: question.prompt,
        images: vec![png_image(&scene, slot.id)?],
        answer: question.answer,
        capability: Capability::Perception,
        level: Some(slot.level),
        pass_rate: None,
        source: slot.source.to_string(),
        meta: serde_json::to_value(&meta).expect("perception meta serialises"),
    };
    Ok(SynthTask { task, scene: Some(scene), solution })
}

/// A first-look perception task for pretraining (a size curriculum before the benchmark's
/// scenes), answered in the worked style, on a scene of `look` ([`Scene::first_look`]):
/// - [`Look::One`]: one large object (about three 8-pixel patches across), asked its colour
///   (`What color is the triangle?`) or counted by shape or colour as at level 1 (1, or 0 for a
///   shape or colour not present). With nothing to bind and much to see, a small model learns
///   to read colour and shape from pixels here (docs/sandbox.md: it does not learn them from the
///   scenes' small objects first).
/// - [`Look::Few`]: two or three objects of both sizes, asked every question type of level 2
///   (count, color-of, relation, largest), drawn as [`generate`] draws them: binding, places and
///   sizes at sizes still easy to see.
///
/// `meta` holds the scene and query as perception tasks' do; the task's level is the level
/// whose question types it asks (1, 2).
pub fn first_look_task(look: Look, id: &str, source: &str, rng: &mut impl Rng) -> Result<SynthTask> {
    let (types, level): (&[QuestionType], u32) = match look {
        Look::One => (&[QuestionType::Count, QuestionType::ColorOf], 1),
        Look::Few => (&QuestionType::ALL, 2),
    };
    let (scene, query) = scene_and_query(types, level, rng, |rng| Scene::first_look(look, rng))?;
    let question = open_question(&scene, &query);
    let slot = TaskSlot { id, level, style: AnswerStyle::Worked, source };
    perception_task(&slot, scene, query, question)
}

/// `n` [`first_look_task`]s of `look` from `seed`, ids `look-<look>-s<seed>-<i>`, each from its
/// own stream of the seed (deterministic, independent of `n`).
pub fn first_look_tasks(look: Look, n: usize, seed: u64) -> Result<Vec<SynthTask>> {
    let source = format!("seethink-synth/first-look-{}/seed-{seed}", look.name());
    (0..n)
        .map(|i| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(i as u64);
            first_look_task(look, &format!("look-{}-s{seed}-{i:05}", look.name()), &source, &mut rng)
        })
        .collect()
}

/// The open form of `query` on `scene`: the image marker, the question, no options; the answer
/// is the truth itself (`3`, `red`, `left`, `red circle`).
pub(crate) fn open_question(scene: &Scene, query: &PerceptionQuery) -> Mcq {
    let answer = query.truth(scene).expect("generated queries have a ground-truth answer");
    Mcq { prompt: format!("{IMAGE_MARKER}\n{}", query.question()), options: Vec::new(), answer }
}

/// What a worked perception answer states before its box, read from the ground truth:
/// `red circles: 3`, `the large square is red`, `the red circle is left of the blue square`
/// (`right of`, `above`, `below`), `the largest is the green triangle`.
pub(crate) fn fact(scene: &Scene, query: &PerceptionQuery) -> String {
    let truth = query.truth(scene).expect("generated queries have a ground-truth answer");
    match query {
        PerceptionQuery::Count(q) => format!("{}: {truth}", q.noun_phrase()),
        PerceptionQuery::ColorOf { target } => format!("{} is {truth}", target.phrase()),
        PerceptionQuery::Relation { subject, reference } => {
            let of = if matches!(truth.as_str(), "left" | "right") { " of" } else { "" };
            format!("{} is {truth}{of} {}", subject.phrase(), reference.phrase())
        }
        PerceptionQuery::Largest => format!("the largest is the {truth}"),
    }
}

/// The letter of the option whose text is `value`.
pub fn letter_of(options: &[String], value: &str) -> Option<&'static str> {
    options.iter().position(|o| o == value).and_then(|i| OPTION_LETTERS.get(i).copied())
}

/// Picks a count query of `level` not in `exclude`: a count form drawn uniformly among the
/// level's forms (module docs) that has queries left, then with probability 0.8 a query of that
/// form matching at least one object (when any exists), else any query of that form.
pub(crate) fn pick_count_query(
    scene: &Scene,
    level: u32,
    exclude: &[CountQuery],
    rng: &mut impl Rng,
) -> CountQuery {
    let mut forms: Vec<CountForm> = match level {
        1 => vec![CountForm::Shape, CountForm::Color],
        2 => vec![CountForm::Shape, CountForm::Color, CountForm::ShapeAndColor],
        _ => CountForm::ALL.to_vec(),
    };
    forms.shuffle(rng);
    for form in forms {
        let allowed: Vec<CountQuery> = form.queries().into_iter().filter(|q| !exclude.contains(q)).collect();
        let present: Vec<CountQuery> = allowed.iter().copied().filter(|q| q.count(scene) > 0).collect();
        let pool = if !present.is_empty() && rng.random_bool(PRESENT_BIAS) { &present } else { &allowed };
        if let Some(q) = pool.choose(rng) {
            return *q;
        }
    }
    // Callers exclude at most 3 queries and every level has a form with at least 3 more.
    unreachable!("some count form always has queries left")
}

/// Which attributes a count query names.
#[derive(Clone, Copy, Debug)]
enum CountForm {
    All,
    Shape,
    Color,
    ShapeAndColor,
}

impl CountForm {
    const ALL: [CountForm; 4] =
        [CountForm::All, CountForm::Shape, CountForm::Color, CountForm::ShapeAndColor];

    /// Every query of this form, in a fixed order.
    fn queries(self) -> Vec<CountQuery> {
        let q = |kind, color| CountQuery { kind, color };
        match self {
            CountForm::All => vec![q(None, None)],
            CountForm::Shape => Shape::ALL.iter().map(|&k| q(Some(k), None)).collect(),
            CountForm::Color => Color::ALL.iter().map(|&c| q(None, Some(c))).collect(),
            CountForm::ShapeAndColor => {
                Shape::ALL.iter().flat_map(|&k| Color::ALL.map(|c| q(Some(k), Some(c)))).collect()
            }
        }
    }
}

/// Builds the prompt, shuffled options and answer letter of `query` on `scene`.
///
/// Wrong options: counts t + k·g for k ∈ {±1, ±2, ±3} that are ≥ 0, with spacing g = 3, 2, 1 at
/// levels 1, 2, 3; other colours; the other directions; other `<colour> <shape>` pairs, those
/// present in the scene first.
pub(crate) fn build_mcq(scene: &Scene, query: &PerceptionQuery, level: u32, rng: &mut impl Rng) -> Mcq {
    let truth = query.truth(scene).expect("generated queries have a ground-truth answer");
    let mut wrong: Vec<String> = match query {
        PerceptionQuery::Count(q) => {
            let t = q.count(scene) as i64;
            let g = i64::from(4 - level.clamp(1, 3));
            (-3..=3).filter(|&k| k != 0 && t + k * g >= 0).map(|k| (t + k * g).to_string()).collect()
        }
        PerceptionQuery::ColorOf { .. } => Color::ALL.iter().map(|c| c.name().to_string()).collect(),
        PerceptionQuery::Relation { .. } => Direction::ALL.iter().map(|d| d.name().to_string()).collect(),
        PerceptionQuery::Largest => {
            let mut present: Vec<String> = scene.objects.iter().map(describe).collect();
            present.shuffle(rng);
            let mut others: Vec<String> = Color::ALL
                .iter()
                .flat_map(|c| Shape::ALL.map(|k| format!("{} {}", c.name(), k.name())))
                .collect();
            others.shuffle(rng);
            present.extend(others);
            present
        }
    };
    if !matches!(query, PerceptionQuery::Largest) {
        wrong.shuffle(rng);
    }
    let mut options = vec![truth.clone()];
    for w in wrong {
        if options.len() == OPTION_LETTERS.len() {
            break;
        }
        if !options.contains(&w) {
            options.push(w);
        }
    }
    options.shuffle(rng);
    let answer = letter_of(&options, &truth).expect("the truth is among the options").to_string();
    let listed: Vec<String> = options.iter().zip(OPTION_LETTERS).map(|(o, l)| format!("{l}. {o}")).collect();
    let prompt = format!("{IMAGE_MARKER}\n{}\n{}\n{MCQ_SUFFIX}", query.question(), listed.join("\n"));
    Mcq { prompt, options, answer }
}

/// A question of `question_type` on `scene` with uniformly drawn parameters, or `None` when the
/// scene supports none: color-of needs an object singled out by shape and size alone; relation
/// a pair of objects each singled out by a description and clearly apart on one axis
/// ([`Direction::clearly_between`]); largest exactly one large object among several. Counts
/// always exist ([`pick_count_query`]).
fn question_of_type(
    question_type: QuestionType,
    scene: &Scene,
    level: u32,
    rng: &mut impl Rng,
) -> Option<PerceptionQuery> {
    let n = scene.objects.len();
    match question_type {
        QuestionType::Count => Some(PerceptionQuery::Count(pick_count_query(scene, level, &[], rng))),
        QuestionType::ColorOf => {
            let targets: Vec<Referent> = (0..n).filter_map(|i| Referent::shortest(scene, i, false)).collect();
            let target = *targets.choose(rng)?;
            Some(PerceptionQuery::ColorOf { target })
        }
        QuestionType::Relation => {
            let mut relations = Vec::new();
            for (i, a) in scene.objects.iter().enumerate() {
                for (j, b) in scene.objects.iter().enumerate() {
                    if i == j || Direction::clearly_between(a, b).is_none() {
                        continue;
                    }
                    if let (Some(subject), Some(reference)) =
                        (Referent::shortest(scene, i, true), Referent::shortest(scene, j, true))
                    {
                        relations.push(PerceptionQuery::Relation { subject, reference });
                    }
                }
            }
            relations.choose(rng).copied()
        }
        QuestionType::Largest => {
            let large = scene.objects.iter().filter(|o| o.size == Size::Large);
            (n >= 2 && large.count() == 1).then_some(PerceptionQuery::Largest)
        }
    }
}

/// The kinds of perception question.
#[derive(Clone, Copy, Debug)]
enum QuestionType {
    Count,
    ColorOf,
    Relation,
    Largest,
}

impl QuestionType {
    /// All types; level 1 uses the first three.
    const ALL: [QuestionType; 4] =
        [QuestionType::Count, QuestionType::ColorOf, QuestionType::Relation, QuestionType::Largest];
}
