//! Floats as text, the way Python's `repr` writes them: the shortest digits that read back
//! as the same `f64`, in fixed notation when the decimal exponent is in -4..16 (`0.0001`,
//! `1234.5`, `100.0`, `1000000000000000.0`) and in scientific notation otherwise, with a
//! sign and at least two exponent digits (`3e-05`, `1.5e+16`, `5e-324`). Results tables
//! (CSV and JSON lines) and the tearsheets' CSV files use it, so every float a user reads
//! back is the float that was computed, and Python's `float(text)`/`repr` round-trips it.

/// Appends finite `x` in Python's `repr` notation (see the module docs). Non-finite
/// values are the caller's business (the tables write them as undefined cells); given one
/// anyway, this writes some number.
#[inline]
pub fn push_float(out: &mut String, x: f64) {
    debug_assert!(x.is_finite(), "push_float({x})");
    // zmij (Schubfach with yy's tweaks, dtolnay's port of Victor Zverovich's C++; serde_json
    // formats with it too) rather than digits of our own: getting the shortest round-trip
    // digits right for every double takes the algorithm's proofs and tables, and it is ~4x
    // faster than `Display`, which was a quarter of a rank's CPU on large grids. It measured
    // ~20 % faster than ryu on the benchmark grid's metrics (BENCHMARKS.md).
    let mut buffer = zmij::Buffer::new();
    let text = buffer.format_finite(x);
    // In this range (decimal exponents -4..=15) zmij writes fixed notation with `.0` on
    // integral values, exactly as Python does (zmij's fixed range is -5..=15; the tests
    // check every exponent against Python's own output, so a zmij that changed it fails).
    if (1e-4..1e16).contains(&x.abs()) {
        out.push_str(text);
    } else {
        push_repr_of_decimal(out, text);
    }
}

/// Python's `repr` of any `f64`: [`push_float`]'s text, and `nan`, `inf`, `-inf`.
pub fn python_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let mut out = String::with_capacity(24);
    push_float(&mut out, x);
    out
}

/// Rewrites a decimal number (fixed or scientific, as a shortest formatter writes it) in
/// Python's notation; the digits stay as they are. Off the hot path: only zeros and
/// magnitudes below 1e-4 or from 1e16 up come here.
#[cold]
fn push_repr_of_decimal(out: &mut String, text: &str) {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().expect("a formatter's exponent is an integer")),
        None => (unsigned, 0),
    };
    // The significant digits, and the power of ten of the first one.
    let mut digits = [0u8; 40];
    let mut count = 0;
    let mut integer_digits = None;
    for &byte in mantissa.as_bytes() {
        if byte == b'.' {
            integer_digits = Some(count as i32);
        } else if count > 0 || byte != b'0' {
            digits[count] = byte;
            count += 1;
        } else if integer_digits.is_some() {
            // A leading zero after the point: the first digit is one place further down.
            integer_digits = integer_digits.map(|i: i32| i - 1);
        }
    }
    let integer_digits = integer_digits.unwrap_or(count as i32);
    while count > 1 && digits[count - 1] == b'0' {
        count -= 1;
    }
    if negative {
        out.push('-');
    }
    if count == 0 {
        out.push_str("0.0");
        return;
    }
    let digits = std::str::from_utf8(&digits[..count]).expect("ASCII digits");
    let power = integer_digits - 1 + exponent;
    if (-4..16).contains(&power) {
        if power < 0 {
            out.push_str("0.");
            (1..-power).for_each(|_| out.push('0'));
            out.push_str(digits);
        } else {
            let integer_len = power as usize + 1;
            if digits.len() > integer_len {
                out.push_str(&digits[..integer_len]);
                out.push('.');
                out.push_str(&digits[integer_len..]);
            } else {
                out.push_str(digits);
                (digits.len()..integer_len).for_each(|_| out.push('0'));
                out.push_str(".0");
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(if power < 0 { "e-" } else { "e+" });
        if power.abs() < 10 {
            out.push('0');
        }
        out.push_str(itoa::Buffer::new().format(power.unsigned_abs()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Python's repr built another way, from Rust's formatting: `{:e}` gives the shortest
    /// round-trip digit count, `{:.*e}` the exact value correctly rounded (ties to even) to
    /// that many digits, which Python (and zmij) write, whereas `{:e}` may round a tie up;
    /// Python's rule then lays the digits out with string operations.
    fn reference_repr(x: f64) -> String {
        let shortest = format!("{x:e}");
        let digit_count = shortest.split('e').next().unwrap().bytes().filter(u8::is_ascii_digit).count();
        let nearest = format!("{x:.*e}", digit_count - 1);
        let scientific = if nearest.parse::<f64>() == Ok(x) { nearest } else { shortest };
        let (mantissa, exponent) = scientific.split_once('e').unwrap();
        let exponent: i32 = exponent.parse().unwrap();
        let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
        let digits = mantissa.replace('.', "");
        let body = if (-4..16).contains(&exponent) {
            if exponent >= 0 {
                let integer_len = exponent as usize + 1;
                let padded = format!("{digits:0<integer_len$}");
                let (integer, fraction) = padded.split_at(integer_len);
                format!("{integer}.{}", if fraction.is_empty() { "0" } else { fraction })
            } else {
                format!("0.{}{digits}", "0".repeat((-exponent - 1) as usize))
            }
        } else {
            format!("{mantissa}e{}{:02}", if exponent < 0 { '-' } else { '+' }, exponent.abs())
        };
        format!("{sign}{body}")
    }

    fn written(x: f64) -> String {
        let mut out = String::new();
        push_float(&mut out, x);
        out
    }

    fn check(x: f64) -> Result<(), TestCaseError> {
        let text = written(x);
        let back: f64 = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back.to_bits(), x.to_bits(), "{} reads back as {}", text, back);
        prop_assert_eq!(&text, &reference_repr(x), "bits {:016x}", x.to_bits());
        Ok(())
    }

    /// Finite doubles of every kind: any bit pattern, subnormals, integers, powers of ten
    /// and their neighbours, metric-sized numbers.
    fn finite() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits).prop_filter("finite", |x| x.is_finite()),
            (any::<bool>(), 0u64..1 << 52).prop_map(|(negative, m)| f64::from_bits(u64::from(negative) << 63 | m)),
            any::<i64>().prop_map(|i| i as f64),
            (-(1i64 << 53)..1 << 53).prop_map(|i| i as f64),
            (-323i32..=308, -1i64..=1)
                .prop_map(|(e, step)| {
                    let power = format!("1e{e}").parse::<f64>().unwrap();
                    f64::from_bits(power.to_bits().wrapping_add_signed(step))
                })
                .prop_filter("finite", |x| x.is_finite()),
            (-3.0f64..3.0, -8i32..20).prop_map(|(x, e)| x * 10f64.powi(e)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn every_float_reads_back_and_matches_the_reference_layout(x in finite()) {
            check(x)?;
            check(-x)?;
        }
    }

    #[test]
    fn notation_boundaries_and_special_values() {
        for (x, text) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (100.0, "100.0"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (3e-5, "3e-05"),
            (1.2345e-5, "1.2345e-05"),
            (-1e-7, "-1e-07"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
        ] {
            assert_eq!(written(x), text);
        }
        assert_eq!(
            [python_repr(f64::NAN), python_repr(f64::INFINITY), python_repr(-f64::INFINITY)],
            ["nan", "inf", "-inf"]
        );
    }

    /// Values with the repr Python 3 wrote for them (scripts/gen-python-repr-vectors.py).
    #[test]
    fn matches_python_repr_on_its_own_vectors() {
        let vectors = include_str!("../tests/data/python_float_repr.txt");
        let mut checked = 0;
        for line in vectors.lines().filter(|l| !l.starts_with('#')) {
            let (bits, expected) = line.split_once(' ').unwrap();
            let x = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
            assert_eq!(python_repr(x), expected, "bits {bits}");
            checked += 1;
        }
        assert!(checked > 500, "{checked} vectors");
    }
}
