//! Answering and grading: a [`Responder`] answers every task `k` times and a [`Reward`] grades
//! each answer into [`Sample`]s, per task a [`TaskResult`] ([`crate::evaluate`] summarises them).

use seethink_data::{Capability, Task};
use seethink_reward::{Reward, RewardBreakdown};
use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// One generated answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The generated text (special tokens removed).
    pub text: String,
    /// Its length in tokens.
    pub tokens: usize,
}

/// Anything that answers tasks: a model ([`crate::ModelResponder`]) or a scripted fake.
pub trait Responder {
    /// `k` responses to each of `tasks`: one inner vector per task, in task order, each of
    /// length `k`.
    fn respond(&mut self, tasks: &[Task], k: usize) -> Result<Vec<Vec<Response>>>;
}

/// One graded response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The generated text.
    pub text: String,
    /// Its length in tokens.
    pub tokens: usize,
    /// The reward's overall score.
    pub overall: f32,
    /// The reward's format score.
    pub format: f32,
    /// The reward's accuracy score.
    pub accuracy: f32,
}

impl Sample {
    /// Whether the answer counts as correct: accuracy reward ≥ 1.
    pub fn is_correct(&self) -> bool {
        self.accuracy >= 1.0
    }
}

/// All graded samples of one task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    /// The task id.
    pub id: String,
    /// The task's capability; `None` when its record had none (the `unlabelled` group,
    /// [`crate::EvalReport::with_unlabelled`]).
    #[serde(with = "crate::group")]
    pub capability: Option<Capability>,
    /// The task's difficulty level, if it has one.
    pub level: Option<u32>,
    /// The kind of question, where the task's data says (`meta.query.type` of the procedural
    /// benchmark's perception tasks: `count`, `color_of`, `relation`, `largest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_type: Option<String>,
    /// The task's reference answer.
    #[serde(default)]
    pub answer: String,
    /// The graded samples, in the responder's order.
    pub samples: Vec<Sample>,
    /// Number of correct samples `c` ([`Sample::is_correct`]).
    pub correct: usize,
    /// Pass rate `c / n` over the `n` samples: the empirical difficulty of the task.
    pub pass_rate: f64,
}

impl TaskResult {
    /// The mean length of its samples in tokens (0 without samples).
    pub fn mean_tokens(&self) -> f64 {
        let total: usize = self.samples.iter().map(|s| s.tokens).sum();
        total as f64 / self.samples.len().max(1) as f64
    }
}

/// `k` graded responses per task, in task order, with `c` = number of samples whose accuracy
/// reward is ≥ 1 and pass rate `c / k`.
pub fn answer_and_grade<R: Responder + ?Sized>(
    responder: &mut R,
    tasks: &[Task],
    reward: &dyn Reward,
    k: usize,
) -> Result<Vec<TaskResult>> {
    if k == 0 {
        return Err(EvalError::Invalid("k (samples per task) must be at least 1".into()));
    }
    if tasks.is_empty() {
        return Ok(Vec::new());
    }
    let responses = responder.respond(tasks, k)?;
    if responses.len() != tasks.len() {
        return Err(EvalError::ResponseCount {
            what: "tasks".into(),
            expected: tasks.len(),
            got: responses.len(),
        });
    }
    tasks
        .iter()
        .zip(responses)
        .map(|(task, group)| {
            if group.len() != k {
                return Err(EvalError::ResponseCount {
                    what: format!("samples of task `{}`", task.id),
                    expected: k,
                    got: group.len(),
                });
            }
            let samples: Vec<Sample> = group.into_iter().map(|r| grade(task, r, reward)).collect();
            let correct = samples.iter().filter(|s| s.is_correct()).count();
            Ok(TaskResult {
                id: task.id.clone(),
                capability: Some(task.capability),
                level: task.level,
                question_type: question_type(task),
                answer: task.answer.clone(),
                pass_rate: correct as f64 / k as f64,
                correct,
                samples,
            })
        })
        .collect()
}

/// `task.meta.query.type`, the kind of question a procedural perception task asks.
fn question_type(task: &Task) -> Option<String> {
    Some(task.meta.get("query")?.get("type")?.as_str()?.to_string())
}

/// `response` scored by `reward` as an answer to `task`.
fn grade(task: &Task, response: Response, reward: &dyn Reward) -> Sample {
    let RewardBreakdown { overall, format, accuracy } = reward.score(task, &response.text);
    Sample { text: response.text, tokens: response.tokens, overall, format, accuracy }
}
