//! Small integer expression trees: the computation behind every reasoning task.

use serde::{Deserialize, Serialize};

/// An integer expression over literals and variables (variables are indices into a value list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// A literal.
    Num(i64),
    /// The value of variable `i`.
    Var(usize),
    /// Sum.
    Add(Box<Expr>, Box<Expr>),
    /// Difference, left minus right.
    Sub(Box<Expr>, Box<Expr>),
    /// Product.
    Mul(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Evaluates with `vars[i]` for `Var(i)`; `None` when a variable is out of range or an
    /// operation overflows `i64`.
    pub fn eval(&self, vars: &[i64]) -> Option<i64> {
        match self {
            Expr::Num(n) => Some(*n),
            Expr::Var(i) => vars.get(*i).copied(),
            Expr::Add(a, b) => a.eval(vars)?.checked_add(b.eval(vars)?),
            Expr::Sub(a, b) => a.eval(vars)?.checked_sub(b.eval(vars)?),
            Expr::Mul(a, b) => a.eval(vars)?.checked_mul(b.eval(vars)?),
        }
    }

    /// The worked computation with `vars[i]` for `Var(i)`: one `a op b = v` line per operation
    /// in evaluation order (left operand's steps, right operand's, then the operation itself,
    /// its operands written as their values), and the value; `None` as for [`Expr::eval`].
    /// `(x + 2) * y` with x = 3, y = 4 gives `["3+2=5", "5*4=20"]` and 20.
    pub fn worked(&self, vars: &[i64]) -> Option<(Vec<String>, i64)> {
        let mut steps = Vec::new();
        let value = self.worked_into(vars, &mut steps)?;
        Some((steps, value))
    }

    fn worked_into(&self, vars: &[i64], steps: &mut Vec<String>) -> Option<i64> {
        let (a, b) = match self {
            Expr::Num(n) => return Some(*n),
            Expr::Var(i) => return vars.get(*i).copied(),
            Expr::Add(a, b) | Expr::Sub(a, b) | Expr::Mul(a, b) => (a, b),
        };
        let (a, b) = (a.worked_into(vars, steps)?, b.worked_into(vars, steps)?);
        let value = match self {
            Expr::Add(..) => a.checked_add(b),
            Expr::Sub(..) => a.checked_sub(b),
            _ => a.checked_mul(b),
        }?;
        steps.push(format!("{a}{}{b}={value}", self.symbol()));
        Some(value)
    }

    /// Number of operations (internal nodes): the reasoning steps the expression takes.
    pub fn steps(&self) -> u32 {
        match self {
            Expr::Num(_) | Expr::Var(_) => 0,
            Expr::Add(a, b) | Expr::Sub(a, b) | Expr::Mul(a, b) => 1 + a.steps() + b.steps(),
        }
    }

    /// Infix text with `names[i]` for `Var(i)` (`?` when missing), `+ - *`, and parentheses
    /// only where needed: around a left operand of lower precedence than its parent, and around
    /// a right operand of lower precedence, or of equal precedence under `-`.
    pub fn infix(&self, names: &[&str]) -> String {
        match self {
            Expr::Num(n) => n.to_string(),
            Expr::Var(i) => names.get(*i).copied().unwrap_or("?").to_string(),
            Expr::Add(a, b) | Expr::Sub(a, b) | Expr::Mul(a, b) => {
                let p = self.precedence();
                let left = a.operand(names, a.precedence() < p);
                let right_parens =
                    b.precedence() < p || (b.precedence() == p && matches!(self, Expr::Sub(..)));
                let right = b.operand(names, right_parens);
                format!("{left} {} {right}", self.symbol())
            }
        }
    }

    fn operand(&self, names: &[&str], parens: bool) -> String {
        let text = self.infix(names);
        if parens {
            format!("({text})")
        } else {
            text
        }
    }

    fn precedence(&self) -> u8 {
        match self {
            Expr::Num(_) | Expr::Var(_) => 3,
            Expr::Mul(..) => 2,
            Expr::Add(..) | Expr::Sub(..) => 1,
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Expr::Mul(..) => "*",
            Expr::Sub(..) => "-",
            _ => "+",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: i64) -> Box<Expr> {
        Box::new(Expr::Num(v))
    }
    fn v(i: usize) -> Box<Expr> {
        Box::new(Expr::Var(i))
    }

    #[test]
    fn eval_steps_and_infix() {
        // (x - y) * 3
        let e = Expr::Mul(Box::new(Expr::Sub(v(0), v(1))), n(3));
        assert_eq!(e.eval(&[5, 7]), Some(-6));
        assert_eq!(e.eval(&[5]), None);
        assert_eq!(e.steps(), 2);
        assert_eq!(e.infix(&["x", "y"]), "(x - y) * 3");
        // 10 - (4 - 2) + 3 * 2
        let e = Expr::Add(
            Box::new(Expr::Sub(n(10), Box::new(Expr::Sub(n(4), n(2))))),
            Box::new(Expr::Mul(n(3), n(2))),
        );
        assert_eq!(e.infix(&[]), "10 - (4 - 2) + 3 * 2");
        assert_eq!(e.eval(&[]), Some(14));
        assert_eq!(e.steps(), 4);
    }

    #[test]
    fn worked_steps_follow_evaluation_order() {
        // (x - y) * 3 + 2
        let e = Expr::Add(Box::new(Expr::Mul(Box::new(Expr::Sub(v(0), v(1))), n(3))), n(2));
        let (steps, value) = e.worked(&[5, 7]).unwrap();
        assert_eq!(steps, ["5-7=-2", "-2*3=-6", "-6+2=-4"]);
        assert_eq!(Some(value), e.eval(&[5, 7]));
        assert_eq!(Expr::Var(0).worked(&[4]), Some((Vec::new(), 4)));
        assert_eq!(e.worked(&[5]), None);
    }

    #[test]
    fn overflow_is_none() {
        let e = Expr::Mul(n(i64::MAX), n(2));
        assert_eq!(e.eval(&[]), None);
    }

    #[test]
    fn serde_shape_is_compact() {
        let e = Expr::Add(v(0), n(2));
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"add":[{"var":0},{"num":2}]}"#);
        assert_eq!(serde_json::from_str::<Expr>(&json).unwrap(), e);
    }
}
