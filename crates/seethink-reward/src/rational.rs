//! Exact rational numbers over `i128` with overflow-checked arithmetic.
//!
//! Every operation returns `None` instead of overflowing or dividing by zero; callers fall back
//! to floating point (see [`crate::eval`]).

use std::cmp::Ordering;

/// A reduced fraction `num / den` with `den > 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rational {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    // Works on magnitudes; `i128::MIN` is never produced because constructors reject it.
    a = a.abs();
    b = b.abs();
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Integer square root of a non-negative `i128`, if it is a perfect square.
fn exact_isqrt(n: i128) -> Option<i128> {
    if n < 0 {
        return None;
    }
    // Start from the float estimate and correct it; n < 2^127 so the estimate is close.
    let mut r = (n as f64).sqrt() as i128;
    while r > 0 && r.checked_mul(r).is_none_or(|sq| sq > n) {
        r -= 1;
    }
    while (r + 1).checked_mul(r + 1).is_some_and(|sq| sq <= n) {
        r += 1;
    }
    (r * r == n).then_some(r)
}

impl Rational {
    /// Zero.
    pub const ZERO: Rational = Rational { num: 0, den: 1 };
    /// One.
    pub const ONE: Rational = Rational { num: 1, den: 1 };

    /// `num / den` reduced; `None` when `den == 0` or a part is `i128::MIN`.
    pub fn new(num: i128, den: i128) -> Option<Rational> {
        if den == 0 || num == i128::MIN || den == i128::MIN {
            return None;
        }
        let g = gcd(num, den);
        let (mut n, mut d) = (num / g, den / g);
        if d < 0 {
            n = -n;
            d = -d;
        }
        Some(Rational { num: n, den: d })
    }

    /// The integer `n`.
    pub fn from_int(n: i128) -> Option<Rational> {
        Rational::new(n, 1)
    }

    /// Numerator (sign carrier).
    pub fn numer(self) -> i128 {
        self.num
    }

    /// Denominator (always positive).
    pub fn denom(self) -> i128 {
        self.den
    }

    /// Whether the value is an integer.
    pub fn is_integer(self) -> bool {
        self.den == 1
    }

    /// Parses a plain decimal literal: ASCII digits with at most one `.` (`"12"`, `"1.5"`,
    /// `".5"`, `"5."`); `None` for anything else or when it does not fit in `i128`.
    pub fn parse_decimal(s: &str) -> Option<Rational> {
        let (int_part, frac_part) = match s.split_once('.') {
            Some((a, b)) => (a, b),
            None => (s, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut num: i128 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            num = num.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        }
        let den = 10i128.checked_pow(u32::try_from(frac_part.len()).ok()?)?;
        Rational::new(num, den)
    }

    /// The nearest `f64`.
    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// `-self`.
    pub fn checked_neg(self) -> Option<Rational> {
        Rational::new(self.num.checked_neg()?, self.den)
    }

    /// `self + other`.
    pub fn checked_add(self, other: Rational) -> Option<Rational> {
        let g = gcd(self.den, other.den);
        let lhs = self.num.checked_mul(other.den / g)?;
        let rhs = other.num.checked_mul(self.den / g)?;
        let den = (self.den / g).checked_mul(other.den)?;
        Rational::new(lhs.checked_add(rhs)?, den)
    }

    /// `self - other`.
    pub fn checked_sub(self, other: Rational) -> Option<Rational> {
        self.checked_add(other.checked_neg()?)
    }

    /// `self * other`.
    pub fn checked_mul(self, other: Rational) -> Option<Rational> {
        // Cross-reduce first to keep intermediates small.
        let g1 = gcd(self.num, other.den).max(1);
        let g2 = gcd(other.num, self.den).max(1);
        let num = (self.num / g1).checked_mul(other.num / g2)?;
        let den = (self.den / g2).checked_mul(other.den / g1)?;
        Rational::new(num, den)
    }

    /// `self / other`; `None` for division by zero.
    pub fn checked_div(self, other: Rational) -> Option<Rational> {
        if other.num == 0 {
            return None;
        }
        self.checked_mul(Rational::new(other.den, other.num)?)
    }

    /// `self ^ exp` for an integer exponent (negative allowed unless `self` is zero).
    pub fn pow(self, exp: i64) -> Option<Rational> {
        let base = if exp < 0 { Rational::ONE.checked_div(self)? } else { self };
        let mut e = exp.unsigned_abs();
        let mut acc = Rational::ONE;
        let mut sq = base;
        while e > 0 {
            if e & 1 == 1 {
                acc = acc.checked_mul(sq)?;
            }
            e >>= 1;
            if e > 0 {
                sq = sq.checked_mul(sq)?;
            }
        }
        Some(acc)
    }

    /// The exact square root when both numerator and denominator are perfect squares.
    pub fn sqrt_exact(self) -> Option<Rational> {
        Rational::new(exact_isqrt(self.num)?, exact_isqrt(self.den)?)
    }
}

impl PartialOrd for Rational {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Rational {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.num.checked_mul(other.den), other.num.checked_mul(self.den)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.to_f64().total_cmp(&other.to_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i128, d: i128) -> Rational {
        Rational::new(n, d).unwrap()
    }

    #[test]
    fn reduces_and_normalises_sign() {
        assert_eq!(r(2, 4), r(1, 2));
        assert_eq!(r(3, -6), r(-1, 2));
        assert_eq!(r(-3, -6).denom(), 2);
        assert!(Rational::new(1, 0).is_none());
    }

    #[test]
    fn arithmetic() {
        assert_eq!(r(1, 2).checked_add(r(1, 3)), Some(r(5, 6)));
        assert_eq!(r(1, 2).checked_sub(r(1, 2)), Some(Rational::ZERO));
        assert_eq!(r(2, 3).checked_mul(r(3, 4)), Some(r(1, 2)));
        assert_eq!(r(1, 2).checked_div(r(1, 4)), Some(r(2, 1)));
        assert_eq!(r(1, 2).checked_div(Rational::ZERO), None);
        assert_eq!(r(2, 3).pow(3), Some(r(8, 27)));
        assert_eq!(r(2, 3).pow(-2), Some(r(9, 4)));
        assert_eq!(Rational::ZERO.pow(-1), None);
        assert_eq!(r(2, 1).pow(200), None, "overflow is reported, not wrapped");
    }

    #[test]
    fn decimals_and_roots() {
        assert_eq!(Rational::parse_decimal("0.5"), Some(r(1, 2)));
        assert_eq!(Rational::parse_decimal(".25"), Some(r(1, 4)));
        assert_eq!(Rational::parse_decimal("5."), Some(r(5, 1)));
        assert_eq!(Rational::parse_decimal("."), None);
        assert_eq!(Rational::parse_decimal("1.2.3"), None);
        assert_eq!(Rational::parse_decimal(&"9".repeat(60)), None);
        assert_eq!(r(9, 4).sqrt_exact(), Some(r(3, 2)));
        assert_eq!(r(2, 1).sqrt_exact(), None);
        assert_eq!(r(-4, 1).sqrt_exact(), None);
        assert_eq!(exact_isqrt(i128::MAX), None);
        assert!(r(1, 3) < r(1, 2));
    }
}
