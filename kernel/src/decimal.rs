//! Exact decimal prices: the closes exactly as written in the text.
//!
//! SMA crossovers compare window sums exactly (a tie must never flip a signal), so the
//! closes are also kept as integers in units of `10^-scale`, where `scale` is the largest
//! number of decimals in the column. Any decimal a correctly rounded parser reads is
//! accepted, in fixed or exponent notation and with any number of digits: the integers are
//! 64-bit when they fit, 128-bit when their sums do, and arbitrary-precision otherwise
//! ([`Ticks`]).

use num_bigint::BigUint;

/// A decimal number `±mantissa · 10^exponent`, exactly as written in the text (trailing
/// zeros of the mantissa moved into the exponent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decimal {
    /// A minus sign was written.
    pub negative: bool,
    /// The significant digits as an integer.
    pub mantissa: Mantissa,
    /// Power of ten of the last significant digit.
    pub exponent: i32,
}

/// The significant digits of a [`Decimal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mantissa {
    /// Up to 38 digits.
    Small(u128),
    /// More digits than a u128 holds.
    Big(BigUint),
}

/// Exponents beyond this are not prices (f64 covers about ±308); refusing them keeps the
/// scaled integers bounded.
const MAX_EXPONENT: i32 = 400;

impl Decimal {
    /// Parses `[-+]digits[.digits][(e|E)[-+]digits]` (at least one digit before or after the
    /// point); `None` for anything else, including NaN and infinities.
    pub fn parse(text: &str) -> Option<Decimal> {
        let text = text.trim();
        let (number, exponent) = match text.find(['e', 'E']) {
            Some(at) => {
                let written = &text[at + 1..];
                let digits = written.strip_prefix(['-', '+']).unwrap_or(written);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                // Long exponents saturate; anything that large is refused below.
                let exponent =
                    written.parse::<i64>().unwrap_or(if written.starts_with('-') { i64::MIN } else { i64::MAX });
                (&text[..at], exponent)
            }
            None => (text, 0),
        };
        let (negative, digits) = match number.as_bytes().first()? {
            b'-' => (true, &number[1..]),
            b'+' => (false, &number[1..]),
            _ => (false, number),
        };
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let frac_len = i64::try_from(frac_part.len()).ok()?;
        let mut exponent = exponent.saturating_sub(frac_len);
        // Significant digits: leading zeros dropped, trailing zeros moved into the exponent.
        let all = int_part.bytes().chain(frac_part.bytes());
        let significant: Vec<u8> = all.skip_while(|&b| b == b'0').collect();
        let trailing = significant.iter().rev().take_while(|&&b| b == b'0').count();
        let significant = &significant[..significant.len() - trailing];
        if significant.is_empty() {
            return Some(Decimal { negative, mantissa: Mantissa::Small(0), exponent: 0 });
        }
        exponent = exponent.saturating_add(trailing as i64);
        let exponent = i32::try_from(exponent).ok().filter(|e| e.abs() <= MAX_EXPONENT)?;
        let mantissa = if significant.len() <= 38 {
            Mantissa::Small(significant.iter().fold(0u128, |m, &b| m * 10 + u128::from(b - b'0')))
        } else {
            Mantissa::Big(BigUint::parse_bytes(significant, 10)?)
        };
        Some(Decimal { negative, mantissa, exponent })
    }

    /// The value as the nearest f64, when one IEEE operation gives it: the mantissa and
    /// the power of ten are both exact in f64 (mantissa <= 2^53, |exponent| <= 22), so the
    /// one rounding is the correctly rounded decimal, the same value `str::parse::<f64>`
    /// returns (Clinger's fast path). `None` otherwise (then parse the text).
    pub fn to_f64_fast(&self) -> Option<f64> {
        const POWERS: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
            1e19, 1e20, 1e21, 1e22,
        ];
        let Mantissa::Small(mantissa) = self.mantissa else { return None };
        if mantissa > 1 << 53 {
            return None;
        }
        let power = *POWERS.get(self.exponent.unsigned_abs() as usize)?;
        let magnitude = if self.exponent < 0 { mantissa as f64 / power } else { mantissa as f64 * power };
        Some(if self.negative { -magnitude } else { magnitude })
    }

    /// Digits after the decimal point (0 for integers).
    pub fn decimals(&self) -> u32 {
        if self.exponent < 0 {
            self.exponent.unsigned_abs()
        } else {
            0
        }
    }
}

/// Closes as exact integers `ticks[t] · 10^-scale`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactCloses {
    /// Decimal places of the integers.
    pub scale: u32,
    /// The integers.
    pub ticks: Ticks,
}

/// The integers of [`ExactCloses`], in the narrowest type that holds every one and their
/// total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ticks {
    /// 64-bit (prices written with a few decimals: cents, ticks).
    I64(Vec<i64>),
    /// 128-bit (float-written prices: up to 17 significant digits, 13+ decimals).
    I128(Vec<i128>),
    /// Arbitrary precision (extreme exponents or digit counts).
    Big(Vec<BigUint>),
}

impl Ticks {
    /// Number of closes.
    pub fn len(&self) -> usize {
        match self {
            Ticks::I64(t) => t.len(),
            Ticks::I128(t) => t.len(),
            Ticks::Big(t) => t.len(),
        }
    }

    /// True when there are no closes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ExactCloses {
    /// Closes already scaled to integers (tests, synthetic data).
    pub fn from_i64(ticks: Vec<i64>, scale: u32) -> ExactCloses {
        ExactCloses { scale, ticks: Ticks::I64(ticks) }
    }

    /// The exact integers of positive decimals, at the scale of the one with the most
    /// decimals. `None` if a decimal is negative.
    pub fn from_decimals(decimals: &[Decimal]) -> Option<ExactCloses> {
        if decimals.iter().any(|d| d.negative) {
            return None;
        }
        let scale = decimals.iter().map(Decimal::decimals).max().unwrap_or(0);
        // shift = exponent + scale >= 0 for every decimal.
        let shift = |d: &Decimal| (i64::from(d.exponent) + i64::from(scale)) as u32;
        let small = |d: &Decimal| match d.mantissa {
            Mantissa::Small(m) => 10u128.checked_pow(shift(d)).and_then(|p| m.checked_mul(p)),
            Mantissa::Big(_) => None,
        };
        let as_i64: Option<Vec<i64>> = decimals.iter().map(|d| small(d).and_then(|v| i64::try_from(v).ok())).collect();
        if let Some(ticks) = as_i64 {
            if ticks.iter().try_fold(0i64, |total, &t| total.checked_add(t)).is_some() {
                return Some(ExactCloses { scale, ticks: Ticks::I64(ticks) });
            }
        }
        let as_i128: Option<Vec<i128>> =
            decimals.iter().map(|d| small(d).and_then(|v| i128::try_from(v).ok())).collect();
        if let Some(ticks) = as_i128 {
            if ticks.iter().try_fold(0i128, |total, &t| total.checked_add(t)).is_some() {
                return Some(ExactCloses { scale, ticks: Ticks::I128(ticks) });
            }
        }
        let big = decimals
            .iter()
            .map(|d| {
                let mantissa = match &d.mantissa {
                    Mantissa::Small(m) => BigUint::from(*m),
                    Mantissa::Big(m) => m.clone(),
                };
                mantissa * BigUint::from(10u32).pow(shift(d))
            })
            .collect();
        Some(ExactCloses { scale, ticks: Ticks::Big(big) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_f64_is_the_parsed_f64() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut texts: Vec<String> =
            ["0.1", "0.264", "14.391", "1e-7", "123456789.123456", "9007199254740993", "0.3", "2.5e3", "7E+2"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = x % 10_000_000_000_000_000;
            let places = (x >> 56) % 13;
            let text = digits.to_string();
            let split = text.len().saturating_sub(places as usize);
            texts.push(if split == 0 { format!("0.{text}") } else { format!("{}.{}", &text[..split], &text[split..]) });
        }
        let mut fast = 0;
        for text in &texts {
            let decimal = Decimal::parse(text).unwrap();
            if let Some(value) = decimal.to_f64_fast() {
                fast += 1;
                assert_eq!(value.to_bits(), text.parse::<f64>().unwrap().to_bits(), "{text}");
            }
        }
        assert!(fast > texts.len() / 2, "the fast path covers typical prices ({fast} of {})", texts.len());
    }

    fn dec(m: u128, exponent: i32) -> Option<Decimal> {
        Some(Decimal { negative: false, mantissa: Mantissa::Small(m), exponent })
    }

    #[test]
    fn parses_plain_and_exponent_forms() {
        assert_eq!(Decimal::parse("100"), dec(1, 2));
        assert_eq!(Decimal::parse("104.06"), dec(10406, -2));
        assert_eq!(Decimal::parse("104.060"), dec(10406, -2));
        assert_eq!(
            Decimal::parse("-0.5"),
            Some(Decimal { negative: true, mantissa: Mantissa::Small(5), exponent: -1 })
        );
        assert_eq!(Decimal::parse(".25"), dec(25, -2));
        assert_eq!(Decimal::parse("7."), dec(7, 0));
        assert_eq!(Decimal::parse("1.5e2"), dec(15, 1));
        assert_eq!(Decimal::parse("1.5E-2"), dec(15, -3));
        assert_eq!(Decimal::parse("1e-20"), dec(1, -20));
        assert_eq!(Decimal::parse("0.000"), dec(0, 0));
        assert_eq!(Decimal::parse("88.43754942505001"), dec(8843754942505001, -14));
        let long = Decimal::parse("1234567890123456789012345678901234567890.5").unwrap();
        assert!(matches!(long.mantissa, Mantissa::Big(_)));
        assert_eq!(long.exponent, -1);
    }

    #[test]
    fn rejects_non_decimals() {
        for bad in ["", "-", ".", "NaN", "inf", "1,5", "1.2.3", "0x10", "1e", "1e+", "1e5x", "1e-999", "--1", "1 2"] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn scales_to_the_most_decimals_in_the_narrowest_type() {
        let cents: Vec<Decimal> = ["12.5", "3", "0.25"].iter().map(|t| Decimal::parse(t).unwrap()).collect();
        assert_eq!(ExactCloses::from_decimals(&cents), Some(ExactCloses::from_i64(vec![1250, 300, 25], 2)));
        let floats: Vec<Decimal> = ["1469.25", "1455.2244897959183", "1399.4233333333331"]
            .iter()
            .map(|t| Decimal::parse(t).unwrap())
            .collect();
        let exact = ExactCloses::from_decimals(&floats).unwrap();
        assert_eq!(exact.scale, 13);
        assert_eq!(
            exact.ticks,
            Ticks::I64(vec![14_692_500_000_000_000, 14_552_244_897_959_183, 13_994_233_333_333_331])
        );
        // Sums past i64 move to i128.
        let large: Vec<Decimal> =
            ["900000.1234567890123", "900000.1"].iter().map(|t| Decimal::parse(t).unwrap()).collect();
        let exact = ExactCloses::from_decimals(&large).unwrap();
        assert_eq!(exact.ticks, Ticks::I128(vec![9_000_001_234_567_890_123, 9_000_001_000_000_000_000]));
        // Extreme exponents need arbitrary precision.
        let extreme: Vec<Decimal> = ["1e-300", "2e10"].iter().map(|t| Decimal::parse(t).unwrap()).collect();
        let exact = ExactCloses::from_decimals(&extreme).unwrap();
        assert_eq!(exact.scale, 300);
        let Ticks::Big(big) = exact.ticks else { panic!("expected big ticks") };
        assert_eq!(big[0], BigUint::from(1u32));
        assert_eq!(big[1], BigUint::from(2u32) * BigUint::from(10u32).pow(310));
        assert_eq!(ExactCloses::from_decimals(&[Decimal::parse("-1").unwrap()]), None);
    }
}
