//! LaTeX → plain text, approximating what the reference grader gets from pylatexenc's
//! `LatexNodes2Text().latex_to_text` (text mode, default macro set).
//!
//! Rules:
//! - `{...}` groups are replaced by their content; a stray `}` is dropped; an unclosed `{` runs
//!   to the end.
//! - `\frac{a}{b}` (also `\dfrac`, `\tfrac`, `\nicefrac`, and single-token arguments as in
//!   `\frac12`) becomes `a/b`. **Deviation:** pylatexenc writes `a/b` with no parentheses, so
//!   `\frac{x+1}{2}` becomes `x+1/2`; here a numerator with an inner `+`/`-` and a denominator
//!   that is not a plain number or single character are parenthesised (`(x+1)/2`, `1/(2x)`).
//!   Plain fractions (`\frac{1}{2}` → `1/2`, `\frac{\sqrt{3}}{2}` → `√(3)/2`) are unchanged.
//! - `\sqrt{x}` becomes `√(x)`. **Deviation:** pylatexenc drops the index of `\sqrt[n]{x}`
//!   (so a cube root reads as a square root); here it becomes `(x)^(1/n)`, which the grader then
//!   only accepts by exact string match.
//! - Symbol macros become their Unicode character (`\pi` → `π`, `\infty` → `∞`, `\cdot` → `·`,
//!   `\le` → `≤`, Greek letters, ...; the table is pylatexenc's).
//! - `\,` `\;` `\:` `\ ` become a space, `\!` nothing, `\\` a newline; `\%` `\$` `\{` `\}` `\_`
//!   `\&` `\#` the character itself.
//! - Every other macro (including `\text`, `\textbf`, `\mathrm`, `\left`, `\right`,
//!   `\operatorname`) is dropped and its argument groups stay as ordinary groups, so
//!   `\text{cm}` → `cm` and `\left(` → `(`. **Deviation:** pylatexenc renders `\mathbf{A}` etc.
//!   in Unicode mathematical alphanumerics; here they are plain.
//! - Whitespace after a letter macro name is dropped (`\pi r` → `πr`); `%` starts a comment to the
//!   end of the line; `~` is a no-break space and `&` three spaces.
//!
//! - Text-mode specials: `--` → `–`, `---` → `—`, ``` `` ``` → `“`, `''` → `”`; a trailing lone
//!   backslash is dropped.
//! - `\begin{pmatrix}` (and `bmatrix`, `array`, ...) ... `\end{...}` becomes `[ a b; c d ]`
//!   (cells right-aligned to the widest); other environments keep just their content.
//!
//! Conversion fails (`None`) only on a missing macro argument, a matrix without cells, or
//! nesting deeper than [`MAX_DEPTH`]; the grader then keeps the input unchanged, as the
//! reference does when pylatexenc raises.

/// Deepest group/argument nesting converted before giving up.
pub const MAX_DEPTH: usize = 100;

/// Symbol macros and their text, from pylatexenc's default `latex2text` specs.
const SYMBOLS: &[(&str, &str)] = &[
    ("textquoteleft", "‘"),
    ("textquoteright", "’"),
    ("textquotedblright", "”"),
    ("textquotedblleft", "“"),
    ("textendash", "–"),
    ("textemdash", "—"),
    ("textpm", "±"),
    ("textmp", "∓"),
    ("texteuro", "€"),
    ("backslash", "\u{5c}"),
    ("textbackslash", "\u{5c}"),
    ("hbar", "ħ"),
    ("ell", "ℓ"),
    ("forall", "∀"),
    ("complement", "∁"),
    ("partial", "∂"),
    ("exists", "∃"),
    ("nexists", "∄"),
    ("varnothing", "∅"),
    ("emptyset", "∅"),
    ("aleph", "ℵ"),
    ("nabla", "∇"),
    ("in", "∈"),
    ("notin", "∉"),
    ("ni", "∋"),
    ("prod", "∏"),
    ("coprod", "∐"),
    ("sum", "∑"),
    ("setminus", "∖"),
    ("smallsetminus", "∖"),
    ("ast", "∗"),
    ("circ", "∘"),
    ("bullet", "∙"),
    ("propto", "∝"),
    ("infty", "∞"),
    ("parallel", "∥"),
    ("nparallel", "∦"),
    ("wedge", "∧"),
    ("vee", "∨"),
    ("cap", "∩"),
    ("cup", "∪"),
    ("int", "∫"),
    ("iint", "∬"),
    ("iiint", "∭"),
    ("oint", "∮"),
    ("sim", "∼"),
    ("backsim", "∽"),
    ("simeq", "≃"),
    ("approx", "≈"),
    ("neq", "≠"),
    ("equiv", "≡"),
    ("le", "≤"),
    ("ge", "≥"),
    ("leq", "≤"),
    ("geq", "≥"),
    ("leqslant", "⩽"),
    ("geqslant", "⩾"),
    ("leqq", "≦"),
    ("geqq", "≧"),
    ("lneqq", "≨"),
    ("gneqq", "≩"),
    ("ll", "≪"),
    ("gg", "≫"),
    ("nless", "≮"),
    ("ngtr", "≯"),
    ("nleq", "≰"),
    ("ngeq", "≱"),
    ("lesssim", "≲"),
    ("gtrsim", "≳"),
    ("lessgtr", "≶"),
    ("gtrless", "≷"),
    ("prec", "≺"),
    ("succ", "≻"),
    ("preceq", "≼"),
    ("succeq", "≽"),
    ("precsim", "≾"),
    ("succsim", "≿"),
    ("nprec", "⊀"),
    ("nsucc", "⊁"),
    ("subset", "⊂"),
    ("supset", "⊃"),
    ("subseteq", "⊆"),
    ("supseteq", "⊇"),
    ("nsubseteq", "⊈"),
    ("nsupseteq", "⊉"),
    ("subsetneq", "⊊"),
    ("supsetneq", "⊋"),
    ("cdot", "·"),
    ("times", "×"),
    ("otimes", "⊗"),
    ("oplus", "⊕"),
    ("bigotimes", "⊗"),
    ("bigoplus", "⊕"),
    ("cos", "cos"),
    ("sin", "sin"),
    ("tan", "tan"),
    ("arccos", "arccos"),
    ("arcsin", "arcsin"),
    ("arctan", "arctan"),
    ("cosh", "cosh"),
    ("sinh", "sinh"),
    ("tanh", "tanh"),
    ("arccosh", "arccosh"),
    ("arcsinh", "arcsinh"),
    ("arctanh", "arctanh"),
    ("ln", "ln"),
    ("log", "log"),
    ("exp", "exp"),
    ("max", "max"),
    ("min", "min"),
    ("sup", "sup"),
    ("inf", "inf"),
    ("lim", "lim"),
    ("limsup", "lim sup"),
    ("liminf", "lim inf"),
    ("prime", "'"),
    ("dag", "†"),
    ("dagger", "†"),
    ("pm", "±"),
    ("mp", "∓"),
    ("quad", "  "),
    ("qquad", "    "),
    ("ldots", "…"),
    ("cdots", "⋯"),
    ("ddots", "⋱"),
    ("iddots", "⋰"),
    ("vdots", "⋮"),
    ("dots", "…"),
    ("dotsc", "…"),
    ("dotsb", "…"),
    ("dotsm", "…"),
    ("dotsi", "…"),
    ("dotso", "…"),
    ("langle", "⟨"),
    ("rangle", "⟩"),
    ("lvert", "|"),
    ("rvert", "|"),
    ("vert", "|"),
    ("lVert", "‖"),
    ("rVert", "‖"),
    ("Vert", "‖"),
    ("mid", "|"),
    ("nmid", "∤"),
    ("uparrow", "↑"),
    ("downarrow", "↓"),
    ("rightarrow", "→"),
    ("to", "→"),
    ("leftarrow", "←"),
    ("longrightarrow", "⟶"),
    ("longleftarrow", "⟵"),
    ("alpha", "α"),
    ("Alpha", "Α"),
    ("beta", "β"),
    ("Beta", "Β"),
    ("gamma", "γ"),
    ("Gamma", "Γ"),
    ("delta", "δ"),
    ("Delta", "Δ"),
    ("epsilon", "ϵ"),
    ("Epsilon", "Ε"),
    ("zeta", "ζ"),
    ("Zeta", "Ζ"),
    ("eta", "η"),
    ("Eta", "Η"),
    ("theta", "θ"),
    ("Theta", "Θ"),
    ("iota", "ι"),
    ("Iota", "Ι"),
    ("kappa", "κ"),
    ("Kappa", "Κ"),
    ("lambda", "λ"),
    ("Lambda", "Λ"),
    ("mu", "μ"),
    ("Mu", "Μ"),
    ("nu", "ν"),
    ("Nu", "Ν"),
    ("xi", "ξ"),
    ("Xi", "Ξ"),
    ("omicron", "ο"),
    ("Omicron", "Ο"),
    ("pi", "π"),
    ("Pi", "Π"),
    ("rho", "ρ"),
    ("Rho", "Ρ"),
    ("sigma", "σ"),
    ("Sigma", "Σ"),
    ("tau", "τ"),
    ("Tau", "Τ"),
    ("upsilon", "υ"),
    ("Upsilon", "Υ"),
    ("phi", "ϕ"),
    ("Phi", "Φ"),
    ("chi", "χ"),
    ("Chi", "Χ"),
    ("psi", "ψ"),
    ("Psi", "Ψ"),
    ("omega", "ω"),
    ("Omega", "Ω"),
    ("varepsilon", "ε"),
    ("vartheta", "ϑ"),
    ("varpi", "ϖ"),
    ("varrho", "ϱ"),
    ("varsigma", "ς"),
    ("varphi", "φ"),
    ("div", "÷"),
    ("textdegree", "°"),
    ("texttimes", "×"),
    ("textdiv", "÷"),
];

/// Environments rendered as `[ a b; c d ]` (pylatexenc's `fmt_matrix_environment_node`).
const MATRIX_ENVS: &[&str] = &["array", "pmatrix", "bmatrix", "smallmatrix", "psmallmatrix", "bsmallmatrix"];

/// Macros that take two arguments and become `a/b`.
const FRAC_MACROS: &[&str] = &["frac", "dfrac", "tfrac", "nicefrac", "textfrac"];

struct Converter {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Converter {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Converts until end of input, or until the `}` closing the current group (consumed) when
    /// `in_group`.
    fn text(&mut self, in_group: bool) -> Option<String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '{' => out.push_str(&self.text(true)?),
                '}' if in_group => break,
                '}' => {}
                '\\' => out.push_str(&self.macro_text()?),
                '%' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                '~' => out.push('\u{a0}'),
                '-' | '`' | '\'' | '!' | '?' => {
                    // pylatexenc's text-mode specials: `---` `--` ``` `` ``` `''` `!`` `?``.
                    let next = self.peek();
                    let next2 = self.chars.get(self.pos + 1).copied();
                    let (text, extra) = match (c, next, next2) {
                        ('-', Some('-'), Some('-')) => ("\u{2014}", 2),
                        ('-', Some('-'), _) => ("\u{2013}", 1),
                        ('`', Some('`'), _) => ("\u{201c}", 1),
                        ('\'', Some('\''), _) => ("\u{201d}", 1),
                        ('!', Some('`'), _) => ("\u{a1}", 1),
                        ('?', Some('`'), _) => ("\u{bf}", 1),
                        _ => ("", 0),
                    };
                    if extra == 0 {
                        out.push(c);
                    } else {
                        out.push_str(text);
                        self.pos += extra;
                    }
                }
                '&' => out.push_str("   "),
                _ => out.push(c),
            }
        }
        self.depth -= 1;
        Some(out)
    }

    /// One macro argument: a `{group}`, a macro, or a single character.
    fn arg(&mut self) -> Option<String> {
        self.skip_whitespace();
        let c = self.peek()?;
        self.pos += 1;
        match c {
            '{' => self.text(true),
            '\\' => self.macro_text(),
            '}' => None,
            _ => Some(c.to_string()),
        }
    }

    /// An optional `[...]` argument.
    fn opt_arg(&mut self) -> Option<Option<String>> {
        let save = self.pos;
        self.skip_whitespace();
        if self.peek() != Some('[') {
            self.pos = save;
            return Some(None);
        }
        self.pos += 1;
        let mut inner = String::new();
        let mut level = 0usize;
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                ']' if level == 0 => {
                    let mut sub = Converter { chars: inner.chars().collect(), pos: 0, depth: self.depth };
                    return sub.text(false).map(Some);
                }
                '{' => level += 1,
                '}' => level = level.saturating_sub(1),
                _ => {}
            }
            inner.push(c);
        }
        None
    }

    /// The text of the macro whose backslash was just consumed.
    fn macro_text(&mut self) -> Option<String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let Some(first) = self.peek() else {
            self.depth -= 1;
            return Some(String::new()); // a trailing lone backslash is dropped
        };
        self.pos += 1;
        let out = if first.is_ascii_alphabetic() {
            let start = self.pos - 1;
            while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                self.pos += 1;
            }
            let name: String = self.chars[start..self.pos].iter().collect();
            self.skip_whitespace();
            if FRAC_MACROS.contains(&name.as_str()) {
                let num = self.arg()?;
                let den = self.arg()?;
                fraction(&num, &den)
            } else if name == "sqrt" {
                let index = self.opt_arg()?;
                let radicand = self.arg()?;
                match index {
                    Some(n) => format!("({radicand})^(1/{n})"),
                    None => format!("√({radicand})"),
                }
            } else if name == "begin" {
                let env = self.arg()?;
                let env = env.trim();
                if MATRIX_ENVS.contains(&env) {
                    if env == "array" {
                        self.opt_arg()?;
                        self.arg()?; // column specification
                    }
                    let body = self.env_body(env);
                    self.matrix_text(&body)?
                } else {
                    String::new()
                }
            } else if name == "end" {
                self.arg()?;
                String::new()
            } else if let Some((_, text)) = SYMBOLS.iter().find(|(m, _)| *m == name) {
                (*text).to_string()
            } else {
                String::new()
            }
        } else {
            match first {
                ',' | ';' | ':' | ' ' => " ".to_string(),
                '!' => String::new(),
                '\\' => "\n".to_string(),
                '%' | '$' | '{' | '}' | '_' | '&' | '#' => first.to_string(),
                _ => String::new(),
            }
        };
        self.depth -= 1;
        Some(out)
    }
}

impl Converter {
    /// The raw body of environment `env` up to its `\end{env}` (consumed), or to the end of
    /// the input when it is never closed.
    fn env_body(&mut self, env: &str) -> Vec<char> {
        let begin: Vec<char> = format!("\\begin{{{env}}}").chars().collect();
        let end: Vec<char> = format!("\\end{{{env}}}").chars().collect();
        let start = self.pos;
        let mut level = 0usize;
        let mut i = start;
        while i < self.chars.len() {
            if self.chars[i..].starts_with(&begin) {
                level += 1;
                i += begin.len();
            } else if self.chars[i..].starts_with(&end) {
                if level == 0 {
                    self.pos = i + end.len();
                    return self.chars[start..i].to_vec();
                }
                level -= 1;
                i += end.len();
            } else {
                i += 1;
            }
        }
        self.pos = self.chars.len();
        self.chars[start..].to_vec()
    }

    /// `[ a11 a12; a21 a22 ]`: cells split at top-level `&` and `\\`, converted and trimmed,
    /// right-aligned to the widest cell; an empty cell is dropped. `None` when there is no cell
    /// at all (pylatexenc raises there).
    fn matrix_text(&self, body: &[char]) -> Option<String> {
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut row: Vec<String> = Vec::new();
        let mut cell = String::new();
        let mut depth = 0usize;
        let convert = |raw: &str| -> Option<String> {
            let mut sub = Converter { chars: raw.chars().collect(), pos: 0, depth: self.depth + 1 };
            Some(sub.text(false)?.trim().to_string())
        };
        let mut i = 0;
        while i < body.len() {
            let c = body[i];
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                '&' if depth == 0 => {
                    if !cell.is_empty() {
                        row.push(convert(&cell)?);
                    }
                    cell.clear();
                    i += 1;
                    continue;
                }
                '\\' if depth == 0 && body.get(i + 1) == Some(&'\\') => {
                    if !cell.is_empty() {
                        row.push(convert(&cell)?);
                    }
                    cell.clear();
                    rows.push(std::mem::take(&mut row));
                    i += 2;
                    continue;
                }
                '\\' => {
                    // Keep an escaped character (`\&`, `\{`) out of the structure scan.
                    cell.push(c);
                    if let Some(&next) = body.get(i + 1) {
                        cell.push(next);
                    }
                    i += 2;
                    continue;
                }
                _ => {}
            }
            cell.push(c);
            i += 1;
        }
        if !cell.is_empty() {
            row.push(convert(&cell)?);
        }
        rows.push(row);
        let width = rows.iter().flatten().map(|c| c.chars().count()).max()?;
        let text: Vec<String> = rows
            .iter()
            .map(|r| r.iter().map(|c| format!("{c:>width$}")).collect::<Vec<_>>().join(" "))
            .collect();
        Some(format!("[ {} ]", text.join("; ")))
    }
}

/// `a/b`, parenthesising parts that would otherwise change meaning (see module docs).
fn fraction(num: &str, den: &str) -> String {
    let (n, d) = (num.trim(), den.trim());
    let num_needs = n.chars().skip(1).any(|c| c == '+' || c == '-');
    let den_plain = d.chars().count() <= 1 || d.chars().all(|c| c.is_ascii_digit() || c == '.');
    let n = if num_needs { format!("({n})") } else { num.to_string() };
    let d = if den_plain { den.to_string() } else { format!("({d})") };
    format!("{n}/{d}")
}

/// Converts LaTeX to plain text following the rules in the module docs; `None` when the input
/// cannot be converted.
pub fn latex_to_text(s: &str) -> Option<String> {
    Converter { chars: s.chars().collect(), pos: 0, depth: 0 }.text(false)
}

/// The reference grader's `_parse_latex`: `\tfrac`/`\dfrac` → `\frac`, a space before every
/// `\frac` (so `1\frac{1}{2}` reads as the mixed number `1 1/2`), [`latex_to_text`], then
/// `√`→`sqrt`, `π`→`pi`, `∞`→`inf`, `∪`→`U`, `·` and `×`→`*`, and trims whitespace.
pub fn parse_latex(expr: &str) -> Option<String> {
    let expr = expr.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac").replace("\\frac", " \\frac");
    let text = latex_to_text(&expr)?;
    let text = text
        .replace('√', "sqrt")
        .replace('π', "pi")
        .replace('∞', "inf")
        .replace('∪', "U")
        .replace(['·', '×'], "*");
    Some(text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        latex_to_text(s).unwrap()
    }

    #[test]
    fn matches_pylatexenc_on_common_answers() {
        // Expected strings are pylatexenc 2.10's output.
        assert_eq!(t("\\frac{1}{2}"), "1/2");
        assert_eq!(t("\\frac12"), "1/2");
        assert_eq!(t("\\sqrt2"), "√(2)");
        assert_eq!(t("\\sqrt 2"), "√(2)");
        assert_eq!(t("\\frac{\\sqrt{3}}{2}"), "√(3)/2");
        assert_eq!(t("\\frac \\pi 2"), "π/2");
        assert_eq!(t("\\pi r"), "πr");
        assert_eq!(t("a\\,b"), "a b");
        assert_eq!(t("\\textbf{A}"), "A");
        assert_eq!(t("\\text{ cm}"), " cm");
        assert_eq!(t("x^{2}"), "x^2");
        assert_eq!(t("\\left. x \\right|"), ". x |");
        assert_eq!(t("\\unknown{x}y"), "xy");
        assert_eq!(t("\\operatorname{sin}(x)"), "sin(x)");
        assert_eq!(t("{1"), "1");
        assert_eq!(t("1}"), "1");
        assert_eq!(t("\\pm 2"), "±2");
        assert_eq!(t("\\\\"), "\n");
        assert_eq!(t("\\%"), "%");
        assert_eq!(t("\\neq"), "≠");
        assert_eq!(t("x--5"), "x–5");
        assert_eq!(t("a---b"), "a—b");
        assert_eq!(t("``a''"), "“a”");
        assert_eq!(t("a'b"), "a'b");
        assert_eq!(t("{x\\}"), "x}");
        assert_eq!(t("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"), "[ 1 2; 3 4 ]");
        assert_eq!(t("\\begin{pmatrix} 1 \\\\ 2 \\\\ \\end{pmatrix}"), "[ 1; 2;   ]");
        assert_eq!(t("\\begin{array}{cc} 1 & 2 \\end{array}"), "[ 1 2 ]");
        assert_eq!(t("\\begin{pmatrix} 10 \\\\ 2 \\end{pmatrix}"), "[ 10;  2 ]");
        assert_eq!(t("\\begin{pmatrix}x"), "[ x ]");
        assert_eq!(t("\\begin{cases} 1 \\end{cases}"), " 1 ");
        assert_eq!(t("\\begin{foo}x\\end{foo}"), "x");
    }

    #[test]
    fn documented_deviations() {
        assert_eq!(t("\\frac{x+1}{2}"), "(x+1)/2");
        assert_eq!(t("\\frac{1}{2x}"), "1/(2x)");
        assert_eq!(t("\\frac{-1}{2}"), "-1/2");
        assert_eq!(t("\\sqrt[3]{8}"), "(8)^(1/3)");
        assert_eq!(t("\\mathbf{A}"), "A");
    }

    #[test]
    fn parse_latex_wrapper() {
        assert_eq!(parse_latex("1\\frac{1}{2}").as_deref(), Some("1 1/2"));
        assert_eq!(parse_latex("\\dfrac{\\pi}{2}").as_deref(), Some("pi/2"));
        assert_eq!(parse_latex("(-\\infty, 3)").as_deref(), Some("(-inf, 3)"));
        assert_eq!(parse_latex("2\\sqrt{2}").as_deref(), Some("2sqrt(2)"));
        assert_eq!(parse_latex("3 \\times 4 \\cdot 5").as_deref(), Some("3 *4 *5"));
    }

    #[test]
    fn failures_are_none_not_panics() {
        assert_eq!(latex_to_text("1\\").as_deref(), Some("1"));
        assert_eq!(latex_to_text("\\frac{1}"), None);
        assert_eq!(latex_to_text(&"{".repeat(1000)), None);
        assert!(latex_to_text("\\sqrt[3").is_none());
        assert!(latex_to_text("\\é{x}").is_some());
    }
}
