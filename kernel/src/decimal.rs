//! Exact parsing of decimal price text into scaled integers.
//!
//! SMA crossovers compare window sums exactly (a tie must never flip a signal),
//! so closes are also kept as integers in units of 10^-decimals.

/// A decimal number `mantissa * 10^-decimals`, exactly as written in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    /// The digits as an integer, with sign.
    pub mantissa: i128,
    /// Number of digits after the decimal point (after applying any exponent).
    pub decimals: u32,
}

/// Most decimals a price may carry for exact integer arithmetic.
pub const MAX_DECIMALS: u32 = 12;

impl Decimal {
    /// Parses `[-+]digits[.digits][e[-+]digits]`; `None` for anything else
    /// (including NaN, infinities and more than [`MAX_DECIMALS`] decimals).
    pub fn parse(text: &str) -> Option<Decimal> {
        let text = text.trim();
        let (number, exponent) = match text.find(['e', 'E']) {
            Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
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
        let mut mantissa: i128 = 0;
        if int_part.len() + frac_part.len() <= 18 {
            // The common case in u64: 18 digits cannot overflow it.
            let mut small: u64 = 0;
            for byte in int_part.bytes().chain(frac_part.bytes()) {
                if !byte.is_ascii_digit() {
                    return None;
                }
                small = small * 10 + u64::from(byte - b'0');
            }
            mantissa = i128::from(small);
        } else {
            for byte in int_part.bytes().chain(frac_part.bytes()) {
                if !byte.is_ascii_digit() {
                    return None;
                }
                mantissa = mantissa.checked_mul(10)?.checked_add(i128::from(byte - b'0'))?;
            }
        }
        let mut decimals = frac_part.len() as i64 - i64::from(exponent);
        while decimals < 0 {
            mantissa = mantissa.checked_mul(10)?;
            decimals += 1;
        }
        let decimals = u32::try_from(decimals).ok().filter(|d| *d <= MAX_DECIMALS)?;
        Some(Decimal { mantissa: if negative { -mantissa } else { mantissa }, decimals })
    }

    /// The value as the nearest f64, when one IEEE division gives it: the mantissa and the
    /// power of ten are both exact in f64 (|mantissa| <= 2^53, decimals <= 22), so the one
    /// rounding of the quotient is the correctly rounded decimal, the same value
    /// `str::parse::<f64>` returns (Clinger's fast path).
    pub fn to_f64_fast(self) -> Option<f64> {
        const POWERS: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
            1e19, 1e20, 1e21, 1e22,
        ];
        let power = *POWERS.get(self.decimals as usize)?;
        let mantissa = i64::try_from(self.mantissa).ok()?;
        (mantissa.unsigned_abs() <= 1 << 53).then(|| mantissa as f64 / power)
    }

    /// The value in units of `10^-decimals`, if it is exact and fits in an i64.
    pub fn scaled_to(self, decimals: u32) -> Option<i64> {
        let shift = decimals.checked_sub(self.decimals)?;
        let factor = 10i128.checked_pow(shift)?;
        i64::try_from(self.mantissa.checked_mul(factor)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_f64_is_the_parsed_f64() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut texts: Vec<String> = ["0.1", "0.264", "14.391", "1e-7", "123456789.123456", "9007199254740993", "0.3"]
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

    fn dec(m: i128, d: u32) -> Option<Decimal> {
        Some(Decimal { mantissa: m, decimals: d })
    }

    #[test]
    fn parses_plain_and_exponent_forms() {
        assert_eq!(Decimal::parse("100"), dec(100, 0));
        assert_eq!(Decimal::parse("104.06"), dec(10406, 2));
        assert_eq!(Decimal::parse("-0.5"), dec(-5, 1));
        assert_eq!(Decimal::parse(".25"), dec(25, 2));
        assert_eq!(Decimal::parse("7."), dec(7, 0));
        assert_eq!(Decimal::parse("1.5e2"), dec(150, 0));
        assert_eq!(Decimal::parse("1.5E-2"), dec(15, 3));
    }

    #[test]
    fn rejects_non_decimals() {
        for bad in ["", "-", ".", "NaN", "inf", "1,5", "1.2.3", "0x10", "1e", "1e-20"] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn scales_exactly() {
        let d = Decimal::parse("12.5").unwrap();
        assert_eq!(d.scaled_to(3), Some(12_500));
        assert_eq!(d.scaled_to(0), None);
    }
}
