//! Perception-error attribution: was a wrong visual-reasoning answer a failure to *see* or a
//! failure to *think*?
//!
//! Exact where ground truth exists: a synthetic visual-reasoning task lists the perception
//! sub-questions (the counts) its answer depends on
//! ([`seethink_data::synth::visual_reasoning::subquestion_tasks`]). The same responder is asked
//! them on the same image; missing any means it misread the image.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use seethink_data::synth::visual_reasoning::subquestion_tasks;
use seethink_data::{Capability, DataError, Task};
use seethink_reward::Reward;
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};
use crate::markdown::{level_name, percent};
use crate::runner::{answer_and_grade, Responder, TaskResult};

/// Why an answer was wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// At least one perception sub-question was answered wrong.
    Perception,
    /// Every perception sub-question was answered right, so the reasoning failed.
    Reasoning,
}

/// The responder's answer to one perception sub-question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubAnswer {
    /// The sub-question's task id (`<parent>-sub<i>`).
    pub id: String,
    /// Whether it was answered correctly (accuracy reward ≥ 1).
    pub correct: bool,
    /// The response text.
    pub response: String,
}

/// One attributed wrong answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributedError {
    /// The visual-reasoning task.
    pub task_id: String,
    /// Its level.
    pub level: Option<u32>,
    /// The attribution.
    pub kind: ErrorKind,
    /// The sub-questions asked, in order.
    pub subquestions: Vec<SubAnswer>,
}

/// Attribution counts of one level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LevelAttribution {
    /// The level; `None` gathers tasks without one.
    pub level: Option<u32>,
    /// Wrong answers attributed to perception.
    pub perception_errors: usize,
    /// Wrong answers attributed to reasoning.
    pub reasoning_errors: usize,
    /// `perception_errors / (perception_errors + reasoning_errors)`.
    pub perception_share: f64,
}

/// The result of [`attribute_errors`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    /// Visual-reasoning tasks among the results (each judged on its first sample).
    pub examined: usize,
    /// Of those, the ones whose first sample was wrong.
    pub wrong: usize,
    /// Wrong answers attributed to perception.
    pub perception_errors: usize,
    /// Wrong answers attributed to reasoning.
    pub reasoning_errors: usize,
    /// Wrong answers whose task carries no sub-question ground truth (not attributed).
    pub without_ground_truth: usize,
    /// `perception_errors / (perception_errors + reasoning_errors)`; `None` when nothing was
    /// attributed. The paper's analogue is 86.9%.
    pub perception_share: Option<f64>,
    /// The perception share that sub-question accuracy alone gives, whatever caused the wrong
    /// answers: with q the fraction of all asked sub-questions answered right and m_t the
    /// sub-questions of wrong answer t, `1 − mean_t q^{m_t}` (each sub-answer an independent
    /// draw). A share near it says the attribution finds nothing beyond guessing. `None` when
    /// nothing was attributed.
    #[serde(default)]
    pub chance_share: Option<f64>,
    /// Counts per level, ascending (tasks without a level first); only levels with attributed
    /// errors appear.
    pub by_level: Vec<LevelAttribution>,
    /// Every attributed error, in the results' order.
    pub errors: Vec<AttributedError>,
}

/// Attributes each wrong visual-reasoning answer among `results` (an [`crate::EvalReport`]'s
/// `tasks`) to perception or reasoning.
///
/// A visual-reasoning task counts as wrong when the *first* of its samples has accuracy < 1
/// (one fixed sample, so every task weighs the same whatever its pass rate). Its perception
/// sub-questions are put to `responder` (one sample each, all in one batch) and graded with
/// `reward`: any wrong sub-answer makes it a perception error, else a reasoning error.
/// perception share = perception errors / (perception errors + reasoning errors), overall and
/// per level. Tasks whose `meta` has no sub-questions are counted in `without_ground_truth`.
///
/// `tasks` must contain every task of `results` (matched by id); errors otherwise, or when
/// the responder fails.
pub fn attribute_errors<R: Responder + ?Sized>(
    responder: &mut R,
    tasks: &[Task],
    results: &[TaskResult],
    reward: &dyn Reward,
) -> Result<Attribution> {
    let by_id: BTreeMap<&str, &Task> = tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let visual: Vec<_> =
        results.iter().filter(|r| r.capability == Some(Capability::VisualReasoning)).collect();
    let mut wrong = 0;
    let mut without_ground_truth = 0;
    // (parent result, number of its sub-questions) and all sub-questions in one list
    let mut parents = Vec::new();
    let mut questions = Vec::new();
    for result in &visual {
        if result.samples.first().is_none_or(|s| s.is_correct()) {
            continue;
        }
        wrong += 1;
        let task = by_id.get(result.id.as_str()).ok_or_else(|| EvalError::UnknownTask(result.id.clone()))?;
        match subquestion_tasks(task) {
            Ok(subs) if !subs.is_empty() => {
                parents.push((*result, subs.len()));
                questions.extend(subs);
            }
            Ok(_) | Err(DataError::Meta { .. }) => without_ground_truth += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let answers = answer_and_grade(responder, &questions, reward, 1)?;
    let mut answers = answers.into_iter();
    let mut errors = Vec::with_capacity(parents.len());
    for (result, n) in parents {
        let subquestions: Vec<SubAnswer> = answers
            .by_ref()
            .take(n)
            .map(|a| {
                let first = a.samples.into_iter().next();
                SubAnswer {
                    id: a.id,
                    correct: first.as_ref().is_some_and(|s| s.is_correct()),
                    response: first.map(|s| s.text).unwrap_or_default(),
                }
            })
            .collect();
        let kind =
            if subquestions.iter().all(|s| s.correct) { ErrorKind::Reasoning } else { ErrorKind::Perception };
        errors.push(AttributedError { task_id: result.id.clone(), level: result.level, kind, subquestions });
    }
    let count = |errs: &[&AttributedError], kind| errs.iter().filter(|e| e.kind == kind).count();
    let mut levels: BTreeMap<Option<u32>, Vec<&AttributedError>> = BTreeMap::new();
    for e in &errors {
        levels.entry(e.level).or_default().push(e);
    }
    let by_level = levels
        .into_iter()
        .map(|(level, errs)| {
            let (p, r) = (count(&errs, ErrorKind::Perception), count(&errs, ErrorKind::Reasoning));
            LevelAttribution {
                level,
                perception_errors: p,
                reasoning_errors: r,
                perception_share: share(p, r).unwrap_or(0.0),
            }
        })
        .collect();
    let all: Vec<&AttributedError> = errors.iter().collect();
    let (p, r) = (count(&all, ErrorKind::Perception), count(&all, ErrorKind::Reasoning));
    let asked: Vec<&SubAnswer> = errors.iter().flat_map(|e| &e.subquestions).collect();
    let q = asked.iter().filter(|s| s.correct).count() as f64 / asked.len().max(1) as f64;
    let chance_share = (!errors.is_empty()).then(|| {
        1.0 - errors.iter().map(|e| q.powi(e.subquestions.len() as i32)).sum::<f64>() / errors.len() as f64
    });
    Ok(Attribution {
        examined: visual.len(),
        wrong,
        perception_errors: p,
        reasoning_errors: r,
        without_ground_truth,
        perception_share: share(p, r),
        chance_share,
        by_level,
        errors,
    })
}

/// `p / (p + r)`, `None` when both are 0.
fn share(p: usize, r: usize) -> Option<f64> {
    (p + r > 0).then(|| p as f64 / (p + r) as f64)
}

impl Attribution {
    /// A markdown summary: the totals, then a table per level.
    pub fn to_markdown(&self) -> String {
        let mut md =
            String::from("### Perception-error attribution (first sample per visual-reasoning task)\n\n");
        let _ = writeln!(
            md,
            "{} of {} visual-reasoning answers wrong; {} perception errors, {} reasoning errors, \
             {} without ground truth; perception share {} (chance: {}).\n",
            self.wrong,
            self.examined,
            self.perception_errors,
            self.reasoning_errors,
            self.without_ground_truth,
            self.perception_share.map_or_else(|| "n/a".to_string(), percent),
            self.chance_share.map_or_else(|| "n/a".to_string(), percent)
        );
        md.push_str(
            "| level | perception errors | reasoning errors | perception share |\n|---|---|---|---|\n",
        );
        for l in &self.by_level {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                level_name(l.level),
                l.perception_errors,
                l.reasoning_errors,
                percent(l.perception_share)
            );
        }
        md
    }
}
