//! Text-reasoning tasks: arithmetic word problems without an image, one sentence per step.
//!
//! The level is the number of steps: the problem is a random expression tree with exactly
//! `level` operations over literals 1–9 (factors 2–4), told as a story in which each operation
//! defines how many items a new person has. Every intermediate count is a positive integer.
//! The worked solution computes each person's count in the order the story introduces them:
//! `<think>Ann=3+4=7. Ben=7*2=14.</think>\boxed{14}`.

use rand::seq::IndexedRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::expr::Expr;
use super::family::{AnswerStyle, SynthTask, TaskSlot};
use super::{worked_response, ANSWER_SUFFIX};
use crate::error::{DataError, Result};
use crate::task::{Capability, Task};

/// Highest text-reasoning level (number of steps).
pub const MAX_TEXT_STEPS: u32 = 8;

/// One person per step, in order of appearance.
const NAMES: [&str; MAX_TEXT_STEPS as usize] = ["Ann", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana"];
/// Item nouns, singular and plural.
const ITEMS: [(&str, &str); 6] = [
    ("apple", "apples"),
    ("marble", "marbles"),
    ("sticker", "stickers"),
    ("coin", "coins"),
    ("pen", "pens"),
    ("book", "books"),
];
/// Products above this are replaced by sums, keeping numbers small.
const MAX_PRODUCT: i64 = 200;

/// The `meta` of a text-reasoning task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TextMeta {
    /// The computation; its value is the answer and its [`Expr::steps`] the level.
    pub expr: Expr,
}

/// Generates the text-reasoning task `id` with `level` steps; the choice style ends the prompt
/// with [`ANSWER_SUFFIX`], the worked style asks the question alone.
pub(crate) fn generate(slot: &TaskSlot, rng: &mut impl Rng) -> Result<SynthTask> {
    let TaskSlot { id, level, style, source } = *slot;
    if !(1..=MAX_TEXT_STEPS).contains(&level) {
        return Err(DataError::Config(format!(
            "text-reasoning level {level} is outside 1..={MAX_TEXT_STEPS}"
        )));
    }
    let (one, many) = *ITEMS.choose(rng).expect("ITEMS is non-empty");
    let items = Items { one, many };
    let mut story = Story { rng, items, sentences: Vec::new(), steps: Vec::new() };
    let root = story.node(level);
    // Children are told before parents, so the root is the last person introduced.
    let name = NAMES[story.sentences.len() - 1];
    let question = format!("{} How many {many} does {name} have?", story.sentences.join(" "));
    let prompt = match style {
        AnswerStyle::Choice => format!("{question}\n{ANSWER_SUFFIX}"),
        AnswerStyle::Worked => question,
    };
    let solution = worked_response(&story.steps.join(" "), &root.value.to_string());
    let task = Task {
        id: id.to_string(),
        prompt,
        images: Vec::new(),
        answer: root.value.to_string(),
        capability: Capability::TextReasoning,
        level: Some(level),
        pass_rate: None,
        source: source.to_string(),
        meta: serde_json::to_value(TextMeta { expr: root.expr }).expect("text meta serialises"),
    };
    Ok(SynthTask { task, scene: None, solution })
}

/// An operation of the story.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
}

/// What an operand is called in the story: a number, or a person whose count it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operand {
    Lit(i64),
    Person(&'static str),
}

/// A subtree: its expression, how the story names it, and its value.
struct Node {
    expr: Expr,
    operand: Operand,
    value: i64,
}

/// Builds the expression tree, its sentences and its worked steps together, children before
/// parents.
struct Story<'r, R> {
    rng: &'r mut R,
    items: Items,
    sentences: Vec<String>,
    /// One `Name=a+b=v.` per sentence, operands as their values.
    steps: Vec<String>,
}

impl<R: Rng> Story<'_, R> {
    /// A subtree with exactly `steps` operations: a literal 1–9 when `steps` is 0; else a
    /// product of a `steps − 1` subtree and a factor 2–4 (a sum with a literal 1–9 when the
    /// product would exceed 200), or a sum or difference of two subtrees splitting `steps − 1`
    /// at random. Literals go right of persons; a difference subtracts a literal 1..v−1 from a
    /// person's count v, or the smaller of two like operands from the larger (a sum when equal
    /// or v < 2), so every count stays positive.
    fn node(&mut self, steps: u32) -> Node {
        if steps == 0 {
            let v = self.rng.random_range(1..=9);
            return lit(v);
        }
        let op = [Op::Add, Op::Sub, Op::Mul][self.rng.random_range(0..3)];
        if op == Op::Mul {
            let a = self.node(steps - 1);
            let f = self.rng.random_range(2..=4);
            if a.value * f <= MAX_PRODUCT {
                return self.define(Op::Mul, a, lit(f));
            }
            let k = self.rng.random_range(1..=9);
            return self.define(Op::Add, a, lit(k));
        }
        let split = self.rng.random_range(0..steps);
        let mut a = self.node(split);
        let mut b = self.node(steps - 1 - split);
        if matches!(a.operand, Operand::Lit(_)) && matches!(b.operand, Operand::Person(_)) {
            std::mem::swap(&mut a, &mut b);
        }
        if op == Op::Add {
            return self.define(Op::Add, a, b);
        }
        match (a.operand, b.operand) {
            (Operand::Person(_), Operand::Lit(_)) if a.value >= 2 => {
                let k = self.rng.random_range(1..=(a.value - 1).min(9));
                self.define(Op::Sub, a, lit(k))
            }
            (Operand::Person(_), Operand::Lit(_)) => self.define(Op::Add, a, b),
            _ if a.value == b.value => self.define(Op::Add, a, b),
            _ if a.value < b.value => self.define(Op::Sub, b, a),
            _ => self.define(Op::Sub, a, b),
        }
    }

    /// Introduces the next person as `a op b` and tells it in one sentence.
    fn define(&mut self, op: Op, a: Node, b: Node) -> Node {
        let name = NAMES[self.sentences.len()];
        self.sentences.push(sentence(name, op, a.operand, b.operand, self.items));
        let (expr, value, symbol) = match op {
            Op::Add => (Expr::Add(a.expr.into(), b.expr.into()), a.value + b.value, '+'),
            Op::Sub => (Expr::Sub(a.expr.into(), b.expr.into()), a.value - b.value, '-'),
            Op::Mul => (Expr::Mul(a.expr.into(), b.expr.into()), a.value * b.value, '*'),
        };
        self.steps.push(format!("{name}={}{symbol}{}={value}.", a.value, b.value));
        Node { expr, operand: Operand::Person(name), value }
    }
}

fn lit(v: i64) -> Node {
    Node { expr: Expr::Num(v), operand: Operand::Lit(v), value: v }
}

/// An item noun in both numbers.
#[derive(Clone, Copy)]
struct Items {
    one: &'static str,
    many: &'static str,
}

impl Items {
    /// `n` followed by the noun in the number `n` needs (`1 pen`, `3 pens`).
    fn count(self, n: i64) -> String {
        format!("{n} {}", if n == 1 { self.one } else { self.many })
    }
}

/// The sentence saying that `name` has `l op r` items.
fn sentence(name: &str, op: Op, l: Operand, r: Operand, items: Items) -> String {
    use Operand::{Lit, Person};
    let many = items.many;
    match (op, l, r) {
        (Op::Add, Lit(a), Lit(b)) => format!("{name} has {} and gets {b} more.", items.count(a)),
        (Op::Sub, Lit(a), Lit(b)) => {
            format!("{name} has {} and gives away {b}.", items.count(a))
        }
        (Op::Mul, Lit(a), Lit(b)) => {
            let bags = if b == 1 { "bag" } else { "bags" };
            format!("{name} has {b} {bags} with {} in each.", items.count(a))
        }
        (Op::Add, Person(p), Lit(k)) | (Op::Add, Lit(k), Person(p)) => {
            format!("{name} has {} more than {p}.", items.count(k))
        }
        (Op::Sub, Person(p), Lit(k)) => format!("{name} has {} fewer than {p}.", items.count(k)),
        (Op::Sub, Lit(k), Person(p)) => {
            format!("{name} has as many {many} as {p} would need to get to {k}.")
        }
        (Op::Mul, Person(p), Lit(k)) | (Op::Mul, Lit(k), Person(p)) => {
            format!("{name} has {k} times as many {many} as {p}.")
        }
        (Op::Add, Person(p), Person(q)) => {
            format!("{name} has as many {many} as {p} and {q} together.")
        }
        (Op::Sub, Person(p), Person(q)) => {
            format!("{name} has as many {many} as {p} has more than {q}.")
        }
        (Op::Mul, Person(p), Person(q)) => {
            format!("{name} has as many {many} as {p}'s count times {q}'s.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn slot(id: &str, level: u32, style: AnswerStyle) -> TaskSlot<'_> {
        TaskSlot { id, level, style, source: "test" }
    }

    #[test]
    fn level_is_steps_and_counts_stay_positive() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for level in 1..=MAX_TEXT_STEPS {
            for i in 0..50 {
                let t = generate(&slot(&format!("t{i}"), level, AnswerStyle::Choice), &mut rng).unwrap();
                let meta: TextMeta = serde_json::from_value(t.task.meta.clone()).unwrap();
                assert_eq!(meta.expr.steps(), level);
                assert_eq!(meta.expr.eval(&[]).unwrap().to_string(), t.task.answer);
                let sentences = t.task.prompt.matches(". ").count();
                assert_eq!(sentences, level as usize, "{}", t.task.prompt);
                assert!(t.task.prompt.contains(NAMES[level as usize - 1]));
                assert!(!t.task.prompt.contains(NAMES.get(level as usize).unwrap_or(&"@")));
                assert!(t.task.prompt.ends_with(ANSWER_SUFFIX));
                assert!(t.task.answer.parse::<i64>().unwrap() > 0);
            }
        }
    }

    #[test]
    fn worked_solutions_compute_each_person_in_story_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for level in 1..=4 {
            let t = generate(&slot("t", level, AnswerStyle::Worked), &mut rng).unwrap();
            assert!(!t.task.prompt.contains("\\boxed"), "{}", t.task.prompt);
            let thoughts = t.solution.strip_prefix("<think>").unwrap();
            let (thoughts, boxed) = thoughts.split_once("</think>").unwrap();
            assert_eq!(boxed, format!("\\boxed{{{}}}", t.task.answer));
            let steps: Vec<&str> = thoughts.split(' ').collect();
            assert_eq!(steps.len(), level as usize);
            for (step, name) in steps.iter().zip(NAMES) {
                // Name=a op b=v. with v = a op b
                let rest = step.strip_prefix(&format!("{name}=")).unwrap().strip_suffix('.').unwrap();
                let (lhs, v) = rest.split_once('=').unwrap();
                let op = lhs.find(['+', '-', '*']).unwrap();
                let (a, b) = (lhs[..op].parse::<i64>().unwrap(), lhs[op + 1..].parse::<i64>().unwrap());
                let want = match &lhs[op..op + 1] {
                    "+" => a + b,
                    "-" => a - b,
                    _ => a * b,
                };
                assert_eq!(v.parse::<i64>().unwrap(), want, "{step}");
            }
            assert!(steps.last().unwrap().ends_with(&format!("={}.", t.task.answer)));
        }
    }

    #[test]
    fn bad_levels_are_errors() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert!(generate(&slot("t", 0, AnswerStyle::Choice), &mut rng).is_err());
        let err = generate(&slot("t", MAX_TEXT_STEPS + 1, AnswerStyle::Worked), &mut rng).unwrap_err();
        assert!(err.to_string().contains("outside 1..=8"), "{err}");
    }

    #[test]
    fn every_operand_combination_reads_as_a_sentence() {
        use Operand::{Lit, Person};
        let cases = [
            (Op::Add, Lit(3), Lit(4), "Ann has 3 pens and gets 4 more."),
            (Op::Sub, Lit(7), Lit(4), "Ann has 7 pens and gives away 4."),
            (Op::Mul, Lit(3), Lit(4), "Ann has 4 bags with 3 pens in each."),
            (Op::Add, Lit(2), Person("Ben"), "Ann has 2 pens more than Ben."),
            (Op::Sub, Person("Ben"), Lit(2), "Ann has 2 pens fewer than Ben."),
            (Op::Sub, Lit(9), Person("Ben"), "Ann has as many pens as Ben would need to get to 9."),
            (Op::Mul, Person("Ben"), Lit(3), "Ann has 3 times as many pens as Ben."),
            (Op::Add, Person("Ben"), Person("Cara"), "Ann has as many pens as Ben and Cara together."),
            (Op::Sub, Person("Ben"), Person("Cara"), "Ann has as many pens as Ben has more than Cara."),
            (Op::Mul, Person("Ben"), Person("Cara"), "Ann has as many pens as Ben's count times Cara's."),
        ];
        let pens = Items { one: "pen", many: "pens" };
        for (op, l, r, want) in cases {
            assert_eq!(sentence("Ann", op, l, r, pens), want);
        }
        assert_eq!(sentence("Ann", Op::Add, Lit(1), Lit(1), pens), "Ann has 1 pen and gets 1 more.");
        assert_eq!(sentence("Ann", Op::Mul, Lit(1), Lit(1), pens), "Ann has 1 bag with 1 pen in each.");
        assert_eq!(sentence("Ann", Op::Sub, Person("Ben"), Lit(1), pens), "Ann has 1 pen fewer than Ben.");
    }
}
