//! Visual-reasoning tasks: arithmetic over counts read from the image.
//!
//! A level-L task has a level-L scene and an expression with exactly L operations whose leaves
//! are counts of objects (`x`, `y`, `z`, `w`) and factors 2–3. Each count is also a perception
//! sub-question, embedded in the task's `meta.subquestions` so an evaluator can ask it on the
//! same image and tell a seeing failure from a thinking failure.
//!
//! The worked solution reads each count as a perception answer states it, then computes:
//! `<think>red circles: 3. blue squares: 2. 2*2=4. 3+4=7.</think>\boxed{7}` for x + y·2.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::expr::Expr;
use super::family::{AnswerStyle, SynthTask, TaskSlot};
use super::perception::{build_mcq, fact, open_question, pick_count_query, PerceptionMeta};
use super::query::{CountQuery, PerceptionQuery};
use super::render::png_image;
use super::scene::Scene;
use super::{worked_response, ANSWER_SUFFIX};
use crate::error::{DataError, Result};
use crate::task::{Capability, Task, IMAGE_MARKER};

/// Names of the counts in prompts, in order of appearance.
pub const VARIABLE_NAMES: [&str; 4] = ["x", "y", "z", "w"];

/// A perception sub-question a visual-reasoning task depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubQuestion {
    /// Id of the sub-question as a task: `<parent id>-sub<i>`.
    pub id: String,
    /// The count it asks for.
    pub query: CountQuery,
    /// Its prompt (with the parent's image marker): multiple choice, or the open count
    /// question in the worked style.
    pub prompt: String,
    /// Option texts in letter order; empty for an open question.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// The correct letter, or the count for an open question.
    pub answer: String,
    /// The correct count.
    pub count: i64,
}

/// The `meta` of a visual-reasoning task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VisualMeta {
    /// Scene ground truth.
    pub scene: Scene,
    /// The computation; `Var(i)` is the count of `subquestions[i]`.
    pub expr: Expr,
    /// One perception sub-question per variable.
    pub subquestions: Vec<SubQuestion>,
}

/// Generates the visual-reasoning task `id` at `level` (1–3); the choice style ends the prompt
/// with [`ANSWER_SUFFIX`] and asks sub-questions as multiple choice, the worked style asks both
/// openly.
pub(crate) fn generate(slot: &TaskSlot, rng: &mut impl Rng) -> Result<SynthTask> {
    let TaskSlot { id, level, style, source } = *slot;
    let scene = Scene::generate(level, rng)?;
    let mut vars = 0;
    let expr = build(level, &mut vars, rng);
    let mut queries: Vec<CountQuery> = Vec::with_capacity(vars);
    for _ in 0..vars {
        let q = pick_count_query(&scene, level, &queries, rng);
        queries.push(q);
    }
    let mut subquestions = Vec::with_capacity(vars);
    for (i, q) in queries.iter().enumerate() {
        let query = PerceptionQuery::Count(*q);
        let mcq = match style {
            AnswerStyle::Choice => build_mcq(&scene, &query, level, rng),
            AnswerStyle::Worked => open_question(&scene, &query),
        };
        subquestions.push(SubQuestion {
            id: format!("{id}-sub{i}"),
            query: *q,
            prompt: mcq.prompt,
            options: mcq.options,
            answer: mcq.answer,
            count: q.count(&scene) as i64,
        });
    }
    let counts: Vec<i64> = subquestions.iter().map(|s| s.count).collect();
    let (steps, answer) = expr.worked(&counts).expect("small counts and factors cannot overflow");
    let phrases: Vec<String> = queries
        .iter()
        .zip(VARIABLE_NAMES)
        .enumerate()
        .map(|(i, (q, name))| {
            let be = if i == 0 { " be" } else { "" };
            format!("{name}{be} the number of {}", q.noun_phrase())
        })
        .collect();
    let question =
        format!("{IMAGE_MARKER}\nLet {}. What is {}?", join_list(&phrases), expr.infix(&VARIABLE_NAMES));
    let prompt = match style {
        AnswerStyle::Choice => format!("{question}\n{ANSWER_SUFFIX}"),
        AnswerStyle::Worked => question,
    };
    let thoughts: Vec<String> = queries
        .iter()
        .map(|q| fact(&scene, &PerceptionQuery::Count(*q)))
        .chain(steps)
        .map(|line| format!("{line}."))
        .collect();
    let solution = worked_response(&thoughts.join(" "), &answer.to_string());
    let meta = VisualMeta { scene: scene.clone(), expr, subquestions };
    let task = Task {
        id: id.to_string(),
        prompt,
        images: vec![png_image(&scene, id)?],
        answer: answer.to_string(),
        capability: Capability::VisualReasoning,
        level: Some(level),
        pass_rate: None,
        source: source.to_string(),
        meta: serde_json::to_value(&meta).expect("visual meta serialises"),
    };
    Ok(SynthTask { task, scene: Some(scene), solution })
}

/// The perception sub-questions of a visual-reasoning task as tasks of their own: same images,
/// level and source, capability [`Capability::Perception`], and a [`PerceptionMeta`] whose
/// `parent` is the task's id.
pub fn subquestion_tasks(task: &Task) -> Result<Vec<Task>> {
    let meta: VisualMeta = serde_json::from_value(task.meta.clone()).map_err(|e| DataError::Meta {
        id: task.id.clone(),
        reason: format!("not a visual-reasoning meta: {e}"),
    })?;
    meta.subquestions
        .into_iter()
        .map(|sq| {
            let sub_meta = PerceptionMeta {
                scene: meta.scene.clone(),
                query: PerceptionQuery::Count(sq.query),
                options: sq.options,
                parent: Some(task.id.clone()),
            };
            Ok(Task {
                id: sq.id,
                prompt: sq.prompt,
                images: task.images.clone(),
                answer: sq.answer,
                capability: Capability::Perception,
                level: task.level,
                pass_rate: None,
                source: task.source.clone(),
                meta: serde_json::to_value(&sub_meta).expect("perception meta serialises"),
            })
        })
        .collect()
}

/// An expression with exactly `steps` operations: a fresh variable when `steps` is 0; else,
/// with equal odds, a sum, difference (may be negative) or product by a factor 2–3; sums and
/// differences split the remaining `steps − 1` between their operands at random. Variables are
/// numbered left to right.
fn build(steps: u32, vars: &mut usize, rng: &mut impl Rng) -> Expr {
    if steps == 0 {
        *vars += 1;
        return Expr::Var(*vars - 1);
    }
    match rng.random_range(0..3) {
        0 | 1 => {
            let split = rng.random_range(0..steps);
            let a = Box::new(build(split, vars, rng));
            let b = Box::new(build(steps - 1 - split, vars, rng));
            if rng.random_bool(0.5) {
                Expr::Add(a, b)
            } else {
                Expr::Sub(a, b)
            }
        }
        _ => {
            let a = Box::new(build(steps - 1, vars, rng));
            Expr::Mul(a, Box::new(Expr::Num(rng.random_range(2..=3))))
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join_list(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn expressions_have_level_steps_and_dense_variables() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for steps in 1..=3 {
            for _ in 0..100 {
                let mut vars = 0;
                let e = build(steps, &mut vars, &mut rng);
                assert_eq!(e.steps(), steps);
                assert!((1..=steps as usize + 1).contains(&vars));
                let values: Vec<i64> = (0..vars as i64).collect();
                assert!(e.eval(&values).is_some());
                assert!(e.eval(&values[..vars - 1]).is_none());
            }
        }
    }

    #[test]
    fn lists_join_in_english() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(join_list(&s(&["a"])), "a");
        assert_eq!(join_list(&s(&["a", "b"])), "a and b");
        assert_eq!(join_list(&s(&["a", "b", "c"])), "a, b and c");
    }
}
