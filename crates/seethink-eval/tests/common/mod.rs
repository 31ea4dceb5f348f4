//! Scripted rewards and responders shared by the integration tests: no neural network.

#![allow(dead_code)]

use std::collections::HashMap;

use seethink_data::synth::oracle::{answer_from_ground_truth, PerceptionNoise};
use seethink_data::synth::perception::{letter_of, PerceptionMeta, OPTION_LETTERS};
use seethink_data::synth::query::PerceptionQuery;
use seethink_data::synth::visual_reasoning::VisualMeta;
use seethink_data::synth::{generate, SynthConfig};
use seethink_data::{Capability, Task};
use seethink_eval::{EvalError, Responder, Response, Result};
use seethink_reward::{Reward, RewardBreakdown};

/// The content of the last `\boxed{…}` of `text` (braces balanced), if any.
pub fn last_boxed(text: &str) -> Option<String> {
    let start = text.rfind("\\boxed{")? + "\\boxed{".len();
    let mut depth = 1;
    for (i, ch) in text[start..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(text[start..start + i].trim().to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// Accuracy 1 when the last boxed answer equals the task's answer; format 1 when the response
/// has a `<think>…</think>` block and a boxed answer; overall = (format + accuracy) / 2.
pub struct BoxedReward;

impl Reward for BoxedReward {
    fn score(&self, task: &Task, response: &str) -> RewardBreakdown {
        let boxed = last_boxed(response);
        let accuracy = f32::from(u8::from(boxed.as_deref() == Some(task.answer.trim())));
        let format = f32::from(u8::from(
            response.contains("<think>") && response.contains("</think>") && boxed.is_some(),
        ));
        RewardBreakdown { overall: (format + accuracy) / 2.0, format, accuracy }
    }
}

/// A well-formatted response boxing `answer`.
pub fn boxed(answer: &str) -> Response {
    let text = format!("<think>I look, then I compute.</think> \\boxed{{{answer}}}");
    let tokens = text.split_whitespace().count();
    Response { text, tokens }
}

/// Answers every sample of a task with `answer(task)`.
pub struct FnResponder<F: FnMut(&Task) -> Result<String>>(pub F);

impl<F: FnMut(&Task) -> Result<String>> Responder for FnResponder<F> {
    fn respond(&mut self, tasks: &[Task], k: usize) -> Result<Vec<Vec<Response>>> {
        tasks.iter().map(|t| Ok(vec![boxed(&(self.0)(t)?); k])).collect()
    }
}

fn data_error(e: seethink_data::DataError) -> EvalError {
    EvalError::Responder(e.to_string())
}

/// Perfect perception and reasoning: the ground-truth answer.
pub fn oracle() -> FnResponder<impl FnMut(&Task) -> Result<String>> {
    FnResponder(|t: &Task| answer_from_ground_truth(t, None).map_err(data_error))
}

/// Sees right, reasons wrong: perception and text answers right, visual-reasoning answers off
/// by one.
pub fn sees_right_reasons_wrong() -> FnResponder<impl FnMut(&Task) -> Result<String>> {
    FnResponder(|t: &Task| {
        let truth = answer_from_ground_truth(t, None).map_err(data_error)?;
        if t.capability != Capability::VisualReasoning {
            return Ok(truth);
        }
        let value: i64 =
            truth.parse().map_err(|_| EvalError::Responder(format!("`{truth}` is not a number")))?;
        Ok((value + 1).to_string())
    })
}

/// Always miscounts by one and reasons perfectly: every count it perceives is the true count
/// plus one. Count questions get the option of the perceived count (else the first wrong
/// option); visual-reasoning answers evaluate the expression on the perceived counts; other
/// questions are answered right.
pub fn miscounter() -> FnResponder<impl FnMut(&Task) -> Result<String>> {
    FnResponder(|t: &Task| {
        let meta_error = |e: serde_json::Error| EvalError::Responder(format!("{}: {e}", t.id));
        match t.capability {
            Capability::VisualReasoning => {
                let meta: VisualMeta = serde_json::from_value(t.meta.clone()).map_err(meta_error)?;
                let seen: Vec<i64> = meta.subquestions.iter().map(|s| s.count + 1).collect();
                let v = meta.expr.eval(&seen).ok_or_else(|| EvalError::Responder("overflow".into()))?;
                Ok(v.to_string())
            }
            Capability::Perception => {
                let meta: PerceptionMeta = serde_json::from_value(t.meta.clone()).map_err(meta_error)?;
                let PerceptionQuery::Count(q) = meta.query else {
                    return answer_from_ground_truth(t, None).map_err(data_error);
                };
                let seen = (q.count(&meta.scene) + 1).to_string();
                Ok(letter_of(&meta.options, &seen)
                    .or_else(|| OPTION_LETTERS.into_iter().take(meta.options.len()).find(|&l| l != t.answer))
                    .unwrap_or("A")
                    .to_string())
            }
            Capability::TextReasoning => answer_from_ground_truth(t, None).map_err(data_error),
        }
    })
}

/// Perceives through [`PerceptionNoise`] and reasons perfectly.
pub fn noisy_perceiver(noise: PerceptionNoise) -> FnResponder<impl FnMut(&Task) -> Result<String>> {
    FnResponder(move |t: &Task| answer_from_ground_truth(t, Some(&noise)).map_err(data_error))
}

/// Returns fixed responses per task id (exactly the scripted list, whatever `k`).
pub struct Scripted(pub HashMap<String, Vec<Response>>);

impl Responder for Scripted {
    fn respond(&mut self, tasks: &[Task], _k: usize) -> Result<Vec<Vec<Response>>> {
        tasks
            .iter()
            .map(|t| {
                self.0
                    .get(&t.id)
                    .cloned()
                    .ok_or_else(|| EvalError::Responder(format!("no script for {}", t.id)))
            })
            .collect()
    }
}

/// The synthetic benchmark with `n` tasks per capability (levels 1–3) from `seed`.
pub fn synth_tasks(n: usize, seed: u64) -> Vec<Task> {
    generate(&SynthConfig::uniform(n), seed).unwrap().into_iter().map(|t| t.task).collect()
}

/// A text-only task with the given capability and level.
pub fn plain_task(id: &str, capability: Capability, level: Option<u32>, answer: &str) -> Task {
    Task {
        id: id.to_string(),
        prompt: format!("Question {id}?"),
        images: Vec::new(),
        answer: answer.to_string(),
        capability,
        level,
        pass_rate: None,
        source: "test".to_string(),
        meta: serde_json::Value::Null,
    }
}
