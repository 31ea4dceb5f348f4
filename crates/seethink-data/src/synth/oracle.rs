//! An oracle that answers synthetic tasks from their `meta` alone, optionally through a noisy
//! "perception" of the scene: the reference for checking stored answers and for simulating a
//! model that sees imperfectly but reasons perfectly.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;

use super::perception::{letter_of, PerceptionMeta, OPTION_LETTERS};
use super::query::PerceptionQuery;
use super::scene::{Color, Scene};
use super::text_reasoning::TextMeta;
use super::visual_reasoning::VisualMeta;
use crate::error::{DataError, Result};
use crate::hash::fnv1a;
use crate::task::{Capability, Task};

/// Per-object perception errors applied to a scene before answering.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerceptionNoise {
    /// Probability that an object is miscounted: equally often missed or seen twice.
    pub miscount: f64,
    /// Probability that an object's colour is misread as another colour (uniform).
    pub misread_color: f64,
    /// Seed of the noise; each task draws from its own stream of it.
    pub seed: u64,
}

impl PerceptionNoise {
    /// Both error probabilities equal to `p`.
    pub fn uniform(p: f64, seed: u64) -> Self {
        PerceptionNoise { miscount: p, misread_color: p, seed }
    }

    /// The scene as perceived: objects in order, each first having its colour replaced with
    /// probability `misread_color`, then with probability `miscount` dropped or duplicated
    /// (even odds).
    pub fn perceive(&self, scene: &Scene, rng: &mut impl Rng) -> Scene {
        let mut seen = scene.clone();
        seen.objects.clear();
        for object in &scene.objects {
            let mut o = *object;
            if rng.random_bool(self.misread_color) {
                let others: Vec<Color> = Color::ALL.into_iter().filter(|&c| c != o.color).collect();
                o.color = others[rng.random_range(0..others.len())];
            }
            if rng.random_bool(self.miscount) {
                if rng.random_bool(0.5) {
                    continue;
                }
                seen.objects.push(o);
            }
            seen.objects.push(o);
        }
        seen
    }

    fn validate(&self) -> Result<()> {
        for (name, p) in [("miscount", self.miscount), ("misread_color", self.misread_color)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(DataError::Config(format!("perception noise {name} = {p} is not a probability")));
            }
        }
        Ok(())
    }
}

/// Answers `task` from its `meta`.
///
/// Without noise this re-derives the exact answer and fails (naming the task) when `meta` is
/// missing, malformed or inconsistent: the truth not among the options, a referent that fits
/// no single object, an expression over missing counts.
///
/// With noise, image tasks are answered on [`PerceptionNoise::perceive`]d scenes drawn from
/// stream `FNV-1a(task id)` of `seed`: an open question's answer is the perceived truth (an
/// error when the perceived scene determines none); a multiple-choice answer is the option equal to the
/// perceived truth, else for counts the numerically nearest option (first on ties), else a
/// uniformly guessed letter; a visual-reasoning answer evaluates the expression on the
/// perceived counts. Text-reasoning tasks ignore the noise.
pub fn answer_from_ground_truth(task: &Task, noise: Option<&PerceptionNoise>) -> Result<String> {
    let meta_error = |reason: String| DataError::Meta { id: task.id.clone(), reason };
    if let Some(n) = noise {
        n.validate()?;
    }
    let mut noisy = noise.map(|n| {
        let mut rng = ChaCha8Rng::seed_from_u64(n.seed);
        rng.set_stream(fnv1a(&task.id));
        (n, rng)
    });
    match task.capability {
        Capability::TextReasoning => {
            let meta: TextMeta = parse_meta(task)?;
            meta.expr
                .eval(&[])
                .map(|v| v.to_string())
                .ok_or_else(|| meta_error("expression does not evaluate without variables".into()))
        }
        Capability::Perception => {
            let meta: PerceptionMeta = parse_meta(task)?;
            if meta.options.len() > OPTION_LETTERS.len() {
                return Err(meta_error(format!("{} options; expected at most 4", meta.options.len())));
            }
            if meta.options.is_empty() {
                // an open question: the truth of the (perceived) scene itself
                let scene = match noisy.as_mut() {
                    Some((n, rng)) => n.perceive(&meta.scene, rng),
                    None => meta.scene,
                };
                return meta
                    .query
                    .truth(&scene)
                    .ok_or_else(|| meta_error("the scene does not determine the answer".into()));
            }
            match noisy.as_mut() {
                Some((n, rng)) => {
                    let seen = n.perceive(&meta.scene, rng);
                    Ok(noisy_choice(&meta, &seen, rng))
                }
                None => {
                    let truth = meta
                        .query
                        .truth(&meta.scene)
                        .ok_or_else(|| meta_error("the scene does not determine the answer".into()))?;
                    letter_of(&meta.options, &truth)
                        .map(str::to_string)
                        .ok_or_else(|| meta_error(format!("truth `{truth}` is not an option")))
                }
            }
        }
        Capability::VisualReasoning => {
            let meta: VisualMeta = parse_meta(task)?;
            let scene = match noisy.as_mut() {
                Some((n, rng)) => n.perceive(&meta.scene, rng),
                None => meta.scene,
            };
            let counts: Vec<i64> = meta.subquestions.iter().map(|sq| sq.query.count(&scene) as i64).collect();
            meta.expr
                .eval(&counts)
                .map(|v| v.to_string())
                .ok_or_else(|| meta_error("expression refers to a missing sub-question".into()))
        }
    }
}

/// The letter a noisy perceiver picks (rule on [`answer_from_ground_truth`]).
fn noisy_choice(meta: &PerceptionMeta, seen: &Scene, rng: &mut impl Rng) -> String {
    let truth = meta.query.truth(seen);
    if let Some(letter) = truth.as_deref().and_then(|t| letter_of(&meta.options, t)) {
        return letter.to_string();
    }
    if let PerceptionQuery::Count(q) = meta.query {
        let t = q.count(seen) as i64;
        let nearest = meta
            .options
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.parse::<i64>().ok().map(|v| ((v - t).abs(), i)))
            .min();
        if let Some((_, i)) = nearest {
            return OPTION_LETTERS[i].to_string();
        }
    }
    OPTION_LETTERS[rng.random_range(0..meta.options.len())].to_string()
}

fn parse_meta<T: DeserializeOwned>(task: &Task) -> Result<T> {
    serde_json::from_value(task.meta.clone()).map_err(|e| DataError::Meta {
        id: task.id.clone(),
        reason: format!("not a {} meta: {e}", task.capability),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scene::{Object, Shape, Size};

    #[test]
    fn perception_noise_extremes() {
        let o = Object { kind: Shape::Circle, color: Color::Red, size: Size::Small, x: 10, y: 10 };
        let scene = Scene {
            width: 96,
            height: 96,
            background: [255; 3],
            objects: vec![o; 200],
            noise_pixels: 0,
            noise_seed: 0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(PerceptionNoise::uniform(0.0, 0).perceive(&scene, &mut rng), scene);
        let all = PerceptionNoise::uniform(1.0, 0).perceive(&scene, &mut rng);
        assert!(all.objects.iter().all(|x| x.color != Color::Red));
        let n = all.objects.len();
        // Every object dropped (0) or doubled (2): about 200 on average, always even.
        assert!(n.is_multiple_of(2) && (100..=300).contains(&n), "{n}");
        assert!(PerceptionNoise::uniform(1.5, 0).validate().is_err());
    }
}
