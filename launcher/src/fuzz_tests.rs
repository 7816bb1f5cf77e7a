//! Bounded-time property tests: the spec parser and the `where` expression parser return
//! `Ok` or a one-line `Err` for any input, and never panic (the CLI turns those into exit
//! 0 or 2). 2,000 cases each, about a second in release.

use crate::error::Failure;
use crate::expr::Expr;
use crate::spec::Spec;
use proptest::prelude::*;
use std::path::Path;

/// Fragments a `where` expression is made of, so that most generated inputs get past the
/// tokenizer and exercise the parser and type checker.
fn where_source() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("fast"),
        Just("slow"),
        Just("fsat"),
        Just("0"),
        Just("1.5"),
        Just("4294967296"),
        Just("1e308"),
        Just("-"),
        Just("+"),
        Just("*"),
        Just("/"),
        Just("%"),
        Just("<"),
        Just("<="),
        Just("=="),
        Just("!="),
        Just(">"),
        Just("="),
        Just("and"),
        Just("or"),
        Just("not"),
        Just("("),
        Just(")"),
        Just(" "),
    ];
    prop_oneof![
        prop::collection::vec(token, 0..24).prop_map(|t| t.join(" ")),
        "[ -~]{0,40}",
        // Deep nesting must be refused, not overflow the stack.
        (1usize..5000).prop_map(|n| format!("{}fast < slow{}", "(".repeat(n), ")".repeat(n))),
        (1usize..5000).prop_map(|n| format!("{}fast < slow", "not ".repeat(n))),
    ]
}

/// Spec texts: the baseline with one line replaced by a generated one, or noise.
fn spec_source() -> impl Strategy<Value = String> {
    const LINES: [&str; 12] = [
        "[data]",
        "path = \"data/GOOG.csv\"",
        "[strategy]",
        "name = \"sma_cross\"",
        "fee = 0.001",
        "[grid]",
        "fast = { from = 5, to = 20, step = 5 }",
        "slow = [10, 20, 40]",
        "where = \"fast < slow\"",
        "[output]",
        "path = \"out/sma.csv\"",
        "",
    ];
    let value = prop_oneof![
        "[ -~]{0,30}",
        Just("{ from = 1, to = 9223372036854775807 }".to_string()),
        Just("{ from = -5, to = 5, step = -1 }".to_string()),
        Just("[1e308, -1e308, nan, inf]".to_string()),
        Just("\"momentum_taa\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
    ];
    let key = prop_oneof![
        Just("name"),
        Just("fast"),
        Just("slow"),
        Just("where"),
        Just("fee"),
        Just("path"),
        Just("dir"),
        Just("lookback"),
        Just("top_n"),
        Just("end"),
        Just("[grid"),
    ];
    prop_oneof![
        (0..LINES.len(), key, value).prop_map(|(at, key, value)| {
            let mut lines = LINES.map(str::to_string).to_vec();
            lines[at] = format!("{key} = {value}");
            lines.join("\n")
        }),
        "[ -~\n]{0,200}",
    ]
}

/// `Ok`, or a usage error of one non-empty line.
fn one_line_or_ok(result: Result<Spec, Failure>) -> Result<(), TestCaseError> {
    match result {
        Ok(_) => Ok(()),
        Err(Failure::Usage(message)) => {
            prop_assert!(!message.is_empty() && !message.contains('\n'), "{message:?}");
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!("not a usage error: {other:?}"))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn where_parses_or_fails_on_one_line(source in where_source(), fast in -1e6f64..1e6, slow in -1e6f64..1e6) {
        match Expr::parse(&source, &["fast", "slow"]) {
            Ok(expr) => {
                expr.eval(&[fast, slow]);
            }
            Err(message) => prop_assert!(!message.is_empty() && !message.contains('\n'), "{message:?}"),
        }
    }

    #[test]
    fn spec_parses_or_fails_on_one_line(text in spec_source(), set in "[a-z_.]{0,20}=[ -~]{0,12}") {
        one_line_or_ok(Spec::parse("s.toml", &text, Path::new("/base"), &[]))?;
        one_line_or_ok(Spec::parse("s.toml", &text, Path::new("/base"), &[set]))?;
    }
}
