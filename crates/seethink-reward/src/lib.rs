//! Verifiable rewards: how good a response to a [`Task`] is.
//!
//! [`MathReward`] reproduces the reward of EasyR1's `math` reward function (as used by the paper)
//! for every stage, multiple-choice letters included:
//! 1. [`clean_response`]: remove whitespace around `<`, `>` and `/`;
//! 2. [`format_score`]: 1 if the response is `<think>…</think>…\boxed{…}…`;
//! 3. accuracy: the last balanced box ([`last_boxed`]), refused when [`too_complex`], graded by
//!    [`grade_answer`] (Hendrycks MATH / PRM800K normalisation, then exact numeric equivalence
//!    from a small rational evaluator standing in for sympy);
//! 4. overall = 0.9·accuracy + 0.1·format.
//!
//! [`DirectAnswer`] grades the whole response instead (tasks answered without reasoning).
//!
//! Modules: [`format`](mod@format) (prompt instruction, cleaning, format score), [`boxed`] (answer
//! extraction, complexity guard), [`normalize`] (the two normalisers), [`latex`] (LaTeX → text),
//! [`rational`] and [`eval`] (exact evaluator), [`grade`] (equivalence), [`math_reward`].
//!
//! # Where this differs from the reference (mathruler + sympy + pylatexenc)
//! Checked by differential testing against the reference on ~40k (answer, gold) pairs (MATH-500
//! answers with variants, random expressions, LaTeX token soup) and 3k full responses; the
//! normalisers agree exactly, and the grader differs only as listed here.
//! - Opt-in [`Extensions`] (off by default): `\fbox{...}` counts as a box; option letters also
//!   match as `A.`, `A)`; the guard counts `^` and `**` separately. Always on: option letters
//!   also match wrapped in `\mathbf{}` and similar ([`grade::mcq_letter`]).
//! - No sympy: [`eval`] decides numeric/polynomial equality exactly (see its docs). Decimals are
//!   exact (`0.1+0.2` equals `0.3`; sympy floats do not), functions other than `sqrt` are not
//!   understood, and irrational values agree within `1e-9` relative.
//! - LaTeX → text ([`latex`]): `\frac{x+1}{2}` keeps its grouping (pylatexenc writes `x+1/2`),
//!   `\sqrt[3]{x}` stays a cube root, `\mathbf{A}` stays plain; malformed input such as a `\frac`
//!   missing its arguments is left unconverted instead of becoming pylatexenc's fallback text.
//! - The complexity guard ([`too_complex`]) is the paper's addition; mathruler has none.

use seethink_data::Task;

pub mod boxed;
pub mod direct;
pub mod eval;
pub mod format;
pub mod grade;
pub mod latex;
pub mod math_reward;
pub mod normalize;
pub mod rational;

pub use boxed::{last_boxed, too_complex};

/// Deviations from the reference reward (EasyR1's `math` with the paper's guard), all off by
/// default: each changes scores against the reference.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// Read `\fbox{...}` answers as well as `\boxed{...}`.
    pub fbox: bool,
    /// Read `A.`, `A)`, `A:` and `(A` as the option letter `A`.
    pub letter_punctuation: bool,
    /// The complexity guard counts `^` and `**` separately (more than 10 of either) instead of
    /// together.
    pub separate_power_counts: bool,
}

impl Extensions {
    /// The reference behaviour.
    pub const NONE: Extensions =
        Extensions { fbox: false, letter_punctuation: false, separate_power_counts: false };
    /// Every extension on.
    pub const ALL: Extensions =
        Extensions { fbox: true, letter_punctuation: true, separate_power_counts: true };
}
pub use direct::DirectAnswer;
pub use format::{clean_response, format_score};
pub use grade::{grade_answer, mcq_letter, split_tuple};
pub use math_reward::{MathReward, DEFAULT_FORMAT_WEIGHT};
pub use normalize::{normalize_answer, normalize_prm};

/// The parts of a reward; `overall` is what RL maximises.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RewardBreakdown {
    /// The scalar reward: `(1 - w)·accuracy + w·format` for [`MathReward`] (w = 0.1).
    pub overall: f32,
    /// 1 when the response has the required `<think>…</think>…\boxed{…}` shape, else 0.
    pub format: f32,
    /// 1 when the final boxed answer is graded correct, else 0.
    pub accuracy: f32,
}

/// A reward function over responses to tasks. Implement it to train on your own signal.
pub trait Reward: Send + Sync {
    /// Scores `response` (the generated text only) as an answer to `task`.
    fn score(&self, task: &Task, response: &str) -> RewardBreakdown;
}
