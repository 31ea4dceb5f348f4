//! Robustness: no input makes the reward panic, hang, or leave `[0, 1]`.
//!
//! A deterministic fuzz loop (SplitMix64, fixed seed) over random strings built from ASCII,
//! LaTeX fragments and multi-byte Unicode, plus hand-picked adversarial inputs.

use seethink_reward::{
    clean_response, format_score, grade_answer, last_boxed, normalize_answer, normalize_prm, too_complex,
    Extensions, MathReward,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "\\boxed{",
    "\\fbox{",
    "\\frac",
    "\\dfrac",
    "\\tfrac",
    "\\sqrt",
    "\\sqrt[3]{",
    "\\text{",
    "\\text{ ",
    "\\textbf{",
    "\\mathbf{",
    "\\left(",
    "\\right)",
    "\\pi",
    "\\infty",
    "\\cdot",
    "\\times",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "\\begin{array}{cc}",
    "\\\\",
    "&",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ".",
    "-",
    "--",
    "+",
    "*",
    "**",
    "^",
    "^{",
    "^\\circ",
    "/",
    "=",
    "%",
    "\\%",
    "$",
    "\\$",
    "\\!",
    "\\,",
    "_",
    "e",
    "x",
    "y",
    "A",
    "B",
    "0",
    "1",
    "2",
    "9",
    "0.5",
    ".5",
    "1,000",
    " ",
    "\n",
    "\t",
    "<",
    ">",
    "</",
    "<think>",
    "</think>",
    "< think >",
    "degrees",
    "cm",
    "million",
    " or ",
    " and ",
    "\\",
    "é",
    "数",
    "４",
    "٣",
    "𝐀",
    "\u{301}",
    "\u{0}",
    "\u{202e}",
    "🙂",
    "\u{fffd}",
];

fn random_string(rng: &mut Rng, max_pieces: usize) -> String {
    let n = rng.below(max_pieces + 1);
    let mut s = String::new();
    for _ in 0..n {
        match rng.below(4) {
            0 => {
                // Any Unicode scalar value.
                let c = char::from_u32(rng.next() as u32 % 0x11_0000).unwrap_or('\u{fffd}');
                s.push(c);
            }
            1 => s.push((b' ' + rng.below(95) as u8) as char),
            _ => s.push_str(PIECES[rng.below(PIECES.len())]),
        }
    }
    s
}

fn check(reward: &MathReward, response: &str, gold: &str) {
    let b = reward.score_answer(response, gold);
    for v in [b.overall, b.format, b.accuracy] {
        assert!((0.0..=1.0).contains(&v), "{v} out of range for {response:?} / {gold:?}");
    }
    assert!(b.format == 0.0 || b.format == 1.0);
    assert!(b.accuracy == 0.0 || b.accuracy == 1.0);
    let cleaned = clean_response(response);
    assert_eq!(clean_response(&cleaned), cleaned, "cleaning is idempotent");
    assert_eq!(format_score(response), b.format);
    if let Some(ans) = last_boxed(&cleaned, Extensions::ALL) {
        let _ = too_complex(&ans, Extensions::ALL);
    }
    let _ = normalize_answer(response);
    let _ = normalize_prm(response);
    let _ = grade_answer(gold, response, Extensions::ALL);
}

#[test]
fn random_inputs_never_panic() {
    let reward = MathReward::default();
    let mut rng = Rng(0x5EE7_414C);
    let cases = 12_000;
    for i in 0..cases {
        let gold = random_string(&mut rng, 6);
        let body = random_string(&mut rng, 12);
        let response = match i % 3 {
            0 => random_string(&mut rng, 40),
            1 => format!("<think>{}</think>\\boxed{{{body}}}", random_string(&mut rng, 8)),
            _ => format!("\\boxed{{{gold}}} {body}"),
        };
        check(&reward, &response, &gold);
    }
}

#[test]
fn adversarial_inputs_never_panic() {
    let reward = MathReward::default();
    let big = [
        "{".repeat(20_000),
        "}".repeat(20_000),
        "(".repeat(20_000),
        "\\frac".repeat(4_000),
        "\\sqrt".repeat(4_000),
        "\\boxed{".repeat(4_000),
        "1,000".repeat(4_000),
        "9".repeat(20_000),
        "1+".repeat(10_000),
        "x".repeat(20_000),
        "2^".repeat(10_000),
        "\\begin{pmatrix}".repeat(1_000),
        "\\\\&".repeat(4_000),
        "<think>".repeat(4_000),
        " / ".repeat(6_000),
        "\\text{ ".repeat(2_000),
        "é数🙂".repeat(6_000),
        format!("1{}", ",000".repeat(5_000)),
        format!("<think>{}</think>\\boxed{{1}}", "\\boxed{".repeat(4_000)),
    ];
    for s in &big {
        for (response, gold) in [
            (s.clone(), "1".to_string()),
            (format!("<think></think>\\boxed{{{s}}}"), s.clone()),
            ("\\boxed{1}".to_string(), s.clone()),
        ] {
            check(&reward, &response, &gold);
            let _ = grade_answer(s, s, Extensions::ALL);
            let _ = grade_answer(s, "1", Extensions::ALL);
        }
    }
}
