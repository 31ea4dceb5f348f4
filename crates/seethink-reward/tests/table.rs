//! Table-driven check of the whole reward against the reference behaviour.
//!
//! Each row is (response, gold answer, expected overall, note). Expected values are what the
//! reference (EasyR1's `math` reward: mathruler `extract_boxed_content` + `grade_answer`, plus the
//! paper's complexity guard) gives — the default [`MathReward`]. Rows made with `ext` also give
//! the value with every opt-in [`Extensions`] on (`\fbox{}` answers; `A.` and `A)` as option
//! letters; `^` and `**` counted separately by the guard); every other row must score the same
//! either way.

use seethink_data::{Capability, Task};
use seethink_reward::{Extensions, MathReward, Reward};

const T: &str = "<think>r</think> ";

/// A response with a well-formed think block before `s`.
fn t(s: &str) -> String {
    format!("{T}{s}")
}

struct Row {
    response: String,
    gold: String,
    expected: f32,
    /// With every extension on.
    extended: f32,
    note: &'static str,
}

fn row(response: impl Into<String>, gold: impl Into<String>, expected: f32, note: &'static str) -> Row {
    ext(response, gold, expected, expected, note)
}

/// A row whose score changes with the extensions: `expected` by the reference, `extended` with them.
fn ext(
    response: impl Into<String>,
    gold: impl Into<String>,
    expected: f32,
    extended: f32,
    note: &'static str,
) -> Row {
    Row { response: response.into(), gold: gold.into(), expected, extended, note }
}

fn task(answer: &str) -> Task {
    Task {
        id: "t".into(),
        prompt: "q".into(),
        images: Vec::new(),
        answer: answer.into(),
        capability: Capability::TextReasoning,
        level: None,
        pass_rate: None,
        source: "table".into(),
        meta: serde_json::Value::Null,
    }
}

fn rows() -> Vec<Row> {
    vec![
        row(r"<think>2+2=4</think> The answer is \boxed{4}.", r"4", 1.0, "format and answer"),
        row(r"The answer is \boxed{4}.", r"4", 0.9, "no think block"),
        row(r"<think>reasoning</think> The answer is \boxed{5}.", r"4", 0.1, "format only"),
        row(r"The answer is 4.", r"4", 0.0, "nothing"),
        row(r"< think > reasoning < /think > \boxed{4}", r"4", 1.0, "whitespace inside tags"),
        row("<think>\nmulti\nline\n</think>\n\n\\boxed{4}\n", r"4", 1.0, "newlines"),
        row(r"<think>reasoning</think> the answer is 4", r"4", 0.0, "missing boxed"),
        row(r"<think>reasoning \boxed{4}</think>", r"4", 0.9, "boxed inside think"),
        row(r"Sure! <think>r</think>\boxed{4}", r"4", 0.9, "text before think"),
        row(r"<think>r</think>\boxed{4", r"4", 0.0, "unclosed box"),
        row(t(r"\boxed{}"), r"4", 0.1, "empty box"),
        row(t(r"\boxed {4}"), r"4", 0.0, "space before brace is not a box"),
        row(r"<think></think>\boxed{4}", r"4", 1.0, "empty think"),
        row(r"", r"4", 0.0, "empty response"),
        row(t(r"\boxed{\frac{1}{2}}"), r"\frac{1}{2}", 1.0, "nested braces"),
        row(t(r"first \boxed{3} then \boxed{4}"), r"4", 1.0, "last box wins"),
        row(t(r"first \boxed{4} then \boxed{3}"), r"4", 0.1, "last box wins (wrong)"),
        row(t(r"\boxed{4} and \boxed{3"), r"4", 0.1, "unclosed last box is no answer"),
        ext(t(r"\fbox{4}"), r"4", 0.0, 0.9, "fbox: no box for the reference"),
        row(t(r"\boxed{\dfrac{3}{4}}"), r"\frac{3}{4}", 1.0, "dfrac"),
        row(t(r"\boxed{\frac34}"), r"\frac{3}{4}", 1.0, "frac34"),
        row(t(r"\boxed{3/4}"), r"\frac{3}{4}", 1.0, "a/b"),
        row(t(r"\boxed{3 / 4}"), r"\frac{3}{4}", 1.0, "a / b cleaned"),
        row(t(r"\boxed{0.75}"), r"\frac{3}{4}", 1.0, "decimal vs frac"),
        row(t(r"\boxed{0.5}"), r"\frac12", 1.0, "0.5 vs frac12"),
        row(t(r"\boxed{1/2}"), r"0.5", 1.0, "1/2 vs 0.5"),
        row(t(r"\boxed{\frac12}"), r"1/2", 1.0, "frac12 vs 1/2"),
        row(t(r"\boxed{2/4}"), r"\frac{1}{2}", 0.1, "unreduced fraction vs fraction"),
        row(t(r"\boxed{2/4}"), r"0.5", 1.0, "unreduced fraction vs decimal"),
        row(t(r"\boxed{5 \text{ cm}}"), r"5", 1.0, "text units"),
        row(t(r"\boxed{5\text{cm}}"), r"5", 1.0, "text units no space"),
        row(t(r"\boxed{12 \text{ meters}}"), r"12", 1.0, "meters"),
        row(t(r"\boxed{7 feet}"), r"7", 1.0, "unit word"),
        row(t(r"\boxed{30^\circ}"), r"30", 1.0, "degrees circ"),
        row(t(r"\boxed{30^{\circ}}"), r"30", 1.0, "degrees circ braces"),
        row(t(r"\boxed{30 degrees}"), r"30", 1.0, "degrees word"),
        row(t(r"\boxed{25\%}"), r"25", 1.0, "percent"),
        row(t(r"\boxed{25}"), r"25\%", 1.0, "percent gold"),
        row(t(r"\boxed{0.25}"), r"25\%", 0.1, "percent as fraction is wrong"),
        row(t(r"\boxed{1,000}"), r"1000", 1.0, "thousands comma"),
        row(t(r"\boxed{1000}"), r"1{,}000", 1.0, "gold with {,}"),
        row(t(r"\boxed{1,000,000}"), r"1000000", 1.0, "two commas"),
        row(t(r"\boxed{\$18.90}"), r"18.90", 1.0, "dollars"),
        row(t(r"\boxed{-3}"), r"-3", 1.0, "negative"),
        row(t(r"\boxed{- 3}"), r"-3", 1.0, "negative with space"),
        row(t(r"\boxed{3}"), r"-3", 0.1, "sign matters"),
        row(t(r"\boxed{-\frac{1}{2}}"), r"-0.5", 1.0, "negative fraction vs decimal"),
        row(t(r"\boxed{2.0}"), r"2", 1.0, "2.0 vs 2"),
        row(t(r"\boxed{2}"), r"2.0", 1.0, "2 vs 2.0"),
        row(t(r"\boxed{2.50}"), r"2.5", 1.0, "trailing zero"),
        row(t(r"\boxed{\frac{4}{2}}"), r"2", 0.1, "integer gold needs integer"),
        row(t(r"\boxed{2.5}"), r"\frac{5}{2}", 1.0, "2.5 vs 5/2"),
        row(t(r"\boxed{0.333}"), r"\frac{1}{3}", 0.1, "rounded decimal is wrong"),
        row(t(r"\boxed{A}"), r"A", 1.0, "mcq"),
        row(t(r"\boxed{a}"), r"A", 1.0, "mcq lower"),
        row(t(r"\boxed{(A)}"), r"A", 1.0, "mcq parens"),
        row(t(r"\boxed{\text{A}}"), r"A", 1.0, "mcq text"),
        ext(t(r"\boxed{A.}"), r"A", 0.1, 1.0, "mcq trailing dot"),
        ext(t(r"\boxed{A)}"), r"A", 0.1, 1.0, "mcq trailing paren"),
        ext(
            t(r"\boxed{2^1^1^1^1^1^1**1**1**1**1**1**1}"),
            r"2^1^1^1^1^1^1**1**1**1**1**1**1",
            0.1,
            1.0,
            "6 `^` + 6 `**`: too complex together (the reference), not separately",
        ),
        row(t(r"\boxed{\textbf{A}}"), r"A", 1.0, "mcq textbf"),
        row(t(r"\boxed{B}"), r"(B)", 1.0, "mcq gold in parens"),
        row(t(r"\boxed{A}"), r"\text{(A)}", 1.0, "mcq gold text parens"),
        row(t(r"\boxed{C}"), r"A", 0.1, "mcq wrong"),
        row(t(r"\boxed{(B)}"), r"A", 0.1, "mcq wrong parens"),
        row(
            format!("{T}\\boxed{{{}1}}", "1+".repeat(100)),
            format!("{}1", "1+".repeat(100)),
            0.1,
            "201 chars: guard",
        ),
        row(
            format!("{T}\\boxed{{{}10}}", "1+".repeat(99)),
            format!("{}10", "1+".repeat(99)),
            1.0,
            "200 chars: allowed",
        ),
        row(format!("{T}\\boxed{{{}}}", "1".repeat(51)), "1".repeat(51), 0.1, "51 digits: guard"),
        row(format!("{T}\\boxed{{{}}}", "1".repeat(49)), "1".repeat(49), 1.0, "49 digits: allowed"),
        row(
            format!("{T}\\boxed{{{}}}", ["x^2"; 11].join("+")),
            ["x^2"; 11].join("+"),
            0.1,
            "11 carets: guard",
        ),
        row(
            format!("{T}\\boxed{{{}}}", ["x^2"; 10].join("+")),
            ["x^2"; 10].join("+"),
            1.0,
            "10 carets: allowed",
        ),
        row(
            format!("{T}\\boxed{{{}}}", ["x**2"; 11].join("+")),
            ["x**2"; 11].join("+"),
            0.1,
            "11 double stars: guard",
        ),
        row(format!("{T}\\boxed{{{}1{}}}", "(".repeat(41), ")".repeat(41)), "1", 0.1, "41 parens: guard"),
        row(format!("{T}\\boxed{{{}1{}}}", "{".repeat(41), "}".repeat(41)), "1", 0.1, "41 braces: guard"),
        row(t(r"\boxed{(1, 2)}"), r"(1,2)", 1.0, "tuple"),
        row(t(r"\boxed{[1,2)}"), r"(1,2)", 0.1, "interval brackets differ"),
        row(t(r"\boxed{(2,1)}"), r"(1,2)", 0.1, "tuple order"),
        row(t(r"\boxed{(1,2,3)}"), r"(1,2)", 0.1, "tuple length"),
        row(t(r"\boxed{(\frac{1}{2}, 3)}"), r"(0.5,3)", 1.0, "tuple elementwise numeric"),
        row(t(r"\boxed{(-\infty, 3]}"), r"(-\infty,3]", 1.0, "interval with infinity"),
        row(t(r"\boxed{(-\infty, 3)}"), r"(-\infty,3]", 0.1, "interval closedness"),
        row(t(r"\boxed{\left( 1, 2 \right)}"), r"(1,2)", 1.0, "left right"),
        row(t(r"\boxed{x = 3}"), r"3", 1.0, "x = 3"),
        row(t(r"\boxed{x=3}"), r"3", 1.0, "x=3"),
        row(t(r"\boxed{y = 2x + 1}"), r"2x+1", 1.0, "equation rhs"),
        row(t(r"\boxed{\sqrt{2}}"), r"\sqrt2", 1.0, "sqrt braces"),
        row(t(r"\boxed{2\sqrt{2}}"), r"\sqrt{8}", 1.0, "sqrt simplification"),
        row(t(r"\boxed{\frac{\sqrt{3}}{2}}"), r"\frac{\sqrt3}{2}", 1.0, "sqrt in frac"),
        row(t(r"\boxed{\sqrt{4}}"), r"2", 0.1, "integer gold needs integer literal"),
        row(t(r"\boxed{1.414}"), r"\sqrt{2}", 0.1, "decimal approx of sqrt"),
        row(t(r"\boxed{\frac{\pi}{2}}"), r"\pi/2", 1.0, "pi"),
        row(t(r"\boxed{3.14}"), r"\pi", 0.1, "decimal approx of pi"),
        row(t(r"\boxed{x^2+2x+1}"), r"(x+1)^2", 1.0, "polynomial identity"),
        row(t(r"\boxed{1+x}"), r"x+1", 1.0, "commutativity"),
        row(t(r"\boxed{2x}"), r"x^2", 0.1, "different polynomial"),
        row(t(r"\boxed{1\frac{1}{2}}"), r"\frac{3}{2}", 1.0, "mixed number"),
        row(t(r"\boxed{\text{Monday}}"), r"Monday", 1.0, "text answer"),
        row(t(r"\boxed{10^{6}}"), r"1000000", 0.1, "power vs integer"),
        row(
            t(r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}"),
            r"\begin{pmatrix}1\\2\end{pmatrix}",
            1.0,
            "matrix",
        ),
        row(r"<think>数学</think>答案是 \boxed{４}", r"4", 1.0, "unicode and fullwidth digit"),
    ]
}

#[test]
fn table_matches_reference_and_extensions() {
    let rows = rows();
    assert!(rows.len() >= 60, "table has {} rows", rows.len());
    let reference = MathReward::default();
    let extended = MathReward { extensions: Extensions::ALL, ..Default::default() };
    let mut failures = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        for (reward, expected, which) in
            [(&reference, r.expected, "reference"), (&extended, r.extended, "extended")]
        {
            let b = reward.score(&task(&r.gold), &r.response);
            assert!(b.format == 0.0 || b.format == 1.0);
            assert!(b.accuracy == 0.0 || b.accuracy == 1.0);
            assert!((b.overall - (0.9 * b.accuracy + 0.1 * b.format)).abs() < 1e-6);
            if (b.overall - expected).abs() > 1e-6 {
                failures.push(format!(
                    "row {i} ({}), {which}: response {:?}, gold {:?}: expected {expected}, got {b:?}",
                    r.note, r.response, r.gold
                ));
            }
        }
    }
    assert!(rows.iter().filter(|r| r.expected != r.extended).count() >= 4);
    assert!(failures.is_empty(), "{} rows differ:\n{}", failures.len(), failures.join("\n"));
}
