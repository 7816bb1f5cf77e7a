//! Per-combo tearsheets: the daily equity curve and statistics as JSON in the layout of
//! QSTrader's `JSONStatistics` (so downstream scripts written for QSTrader keep working),
//! plus `Date,Equity` and `DateTime,Asset,Quantity,Price,Commission` CSV dumps.
//!
//! Layout notes: timestamps are epoch milliseconds of each date's UTC midnight (QSTrader
//! uses local midnight; run it with `TZ=UTC` to compare), undefined numbers (e.g. a
//! sortino without losing days, or any other value that is not finite) are `null` where
//! QSTrader's `json.dump` writes `NaN`, and empty cells in the CSV files, as in the results
//! table; daily series keep QSTrader's 0.0 for NaN.

use crate::error::{Failure, Result};
use crate::ledger;
use crate::spec::Spec;
use crate::strategy::Trace;
use serde_json::{json, Value};
use std::path::Path;
use sweeprun_kernel::date::Date;
use sweeprun_kernel::metrics::{qstrader_metrics_of_curve, QstraderSeries, PERIODS_PER_YEAR};
use sweeprun_kernel::prices::PriceSet;

const MS_PER_DAY: i64 = 86_400_000;

fn epoch_ms(day: Date) -> i64 {
    i64::from(day.days()) * MS_PER_DAY
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn series(dates: &[Date], values: &[f64]) -> Value {
    // QSTrader writes NaN as 0.0 in series.
    Value::Array(
        dates.iter().zip(values).map(|(d, v)| json!([epoch_ms(*d), if v.is_nan() { 0.0 } else { *v }])).collect(),
    )
}

/// `exp(sum(log(1 + r))) - 1` over groups of consecutive rows with the same key.
fn aggregate<K: PartialEq + Copy>(dates: &[Date], returns: &[f64], key: impl Fn(Date) -> K) -> Vec<(K, f64)> {
    let mut groups: Vec<(K, f64)> = Vec::new();
    for (date, r) in dates.iter().zip(returns) {
        let k = key(*date);
        let log = (1.0 + r).ln();
        match groups.last_mut() {
            Some((last, sum)) if *last == k => *sum += log,
            _ => groups.push((k, log)),
        }
    }
    groups.into_iter().map(|(k, log_sum)| (k, log_sum.exp() - 1.0)).collect()
}

/// numpy's default (linear) percentile.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let position = q / 100.0 * (sorted.len() - 1) as f64;
    let low = position.floor() as usize;
    let high = position.ceil() as usize;
    let t = position - low as f64;
    let (a, b) = (sorted[low], sorted[high]);
    if t >= 0.5 {
        b - (b - a) * (1.0 - t)
    } else {
        a + (b - a) * t
    }
}

fn quantiles(values: &[f64]) -> Value {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    json!({
        "min": number(sorted.first().copied().unwrap_or(f64::NAN)),
        "lq": number(percentile(&sorted, 25.0)),
        "med": number(percentile(&sorted, 50.0)),
        "uq": number(percentile(&sorted, 75.0)),
        "max": number(sorted.last().copied().unwrap_or(f64::NAN)),
    })
}

/// The `JSONStatistics` document of a traced backtest.
pub fn statistics_json(trace: &Trace, strategy_id: &str, strategy_name: &str) -> Value {
    let (dates, equity) = (&trace.dates, &trace.equity);
    let n = equity.len();
    let QstraderSeries { returns, cumulative, drawdowns } = QstraderSeries::of(equity);
    let metrics = qstrader_metrics_of_curve(equity, 0);
    let mean = returns.iter().sum::<f64>() / n as f64;
    let stdev = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n as f64).sqrt();

    let monthly = aggregate(dates, &returns, |d| {
        let (y, m, _) = d.ymd();
        (y, m)
    });
    let yearly = aggregate(dates, &returns, |d| d.ymd().0);
    let years: Vec<i32> = yearly.iter().map(|(y, _)| *y).collect();
    let mut monthly_hc = Vec::new();
    for month in 1..=12u32 {
        for (year_index, year) in years.iter().enumerate() {
            if let Some((_, r)) = monthly.iter().find(|((y, m), _)| y == year && *m == month) {
                monthly_hc.push(json!([month - 1, year_index, number(100.0 * r)]));
            }
        }
    }
    let daily_q = quantiles(&returns);
    let monthly_q = quantiles(&monthly.iter().map(|(_, r)| *r).collect::<Vec<_>>());
    let yearly_q = quantiles(&yearly.iter().map(|(_, r)| *r).collect::<Vec<_>>());
    let hc = |q: &Value| -> Value {
        Value::Array(
            ["min", "lq", "med", "uq", "max"]
                .iter()
                .map(|k| number(q[k].as_f64().unwrap_or(f64::NAN) * 100.0))
                .collect(),
        )
    };
    let returns_quantiles_hc = json!([hc(&daily_q), hc(&monthly_q), hc(&yearly_q)]);

    let mut strategy = json!({
        "equity_curve": series(dates, equity),
        "returns": series(dates, &returns),
        "cum_returns": series(dates, &cumulative),
        "monthly_agg_returns": monthly.iter().map(|((y, m), r)| json!([[y, m], number(*r)])).collect::<Vec<_>>(),
        "monthly_agg_returns_hc": monthly_hc,
        "yearly_agg_returns": yearly.iter().map(|(y, r)| json!([y, number(*r)])).collect::<Vec<_>>(),
        "yearly_agg_returns_hc": yearly.iter().map(|(_, r)| number(100.0 * r)).collect::<Vec<_>>(),
        "returns_quantiles": { "daily": daily_q, "monthly": monthly_q, "yearly": yearly_q },
        "returns_quantiles_hc": returns_quantiles_hc,
        "drawdowns": series(dates, &drawdowns),
        "max_drawdown": number(metrics.max_drawdown),
        "max_drawdown_duration": metrics.max_drawdown_duration,
        "mean_returns": number(mean),
        "stdev_returns": number(stdev),
        "cagr": number(metrics.cagr),
        "annualised_vol": number(stdev * PERIODS_PER_YEAR.sqrt()),
        "sharpe": number(metrics.sharpe),
        "sortino": number(metrics.sortino),
    });
    strategy["target_allocations"] = target_allocations(trace);
    json!({ "strategy": strategy, "strategy_id": strategy_id, "strategy_name": strategy_name })
}

/// Target weights forward-filled onto the equity dates, one series per asset.
fn target_allocations(trace: &Trace) -> Value {
    if trace.weights.is_empty() {
        return json!([]);
    }
    let columns = trace.symbols.iter().enumerate().map(|(asset, name)| {
        let mut next = 0;
        let mut current = f64::NAN;
        let data: Vec<Value> = trace
            .dates
            .iter()
            .map(|day| {
                while next < trace.weights.len() && trace.weights[next].0 <= *day {
                    current = trace.weights[next].1[asset];
                    next += 1;
                }
                json!([epoch_ms(*day), if current.is_nan() { 0.0 } else { current }])
            })
            .collect();
        json!({ "name": name, "data": data })
    });
    Value::Array(columns.collect())
}

/// A float exactly as Python's `repr` writes it (`1000000.0`, `0.5`, `3e-05`, `1e+16`,
/// `nan`), as in the CSV files QSTrader users compare with.
pub fn python_float(x: f64) -> String {
    crate::float_text::python_repr(x)
}

/// A number in the tearsheets' CSV files: [`python_float`], or an empty cell when it is
/// undefined (not finite), the rule of the results table.
fn csv_float(x: f64) -> String {
    if x.is_finite() {
        python_float(x)
    } else {
        String::new()
    }
}

/// `Date,Equity` rows.
pub fn equity_csv(trace: &Trace) -> String {
    let mut out = String::from("Date,Equity\n");
    for (day, equity) in trace.dates.iter().zip(&trace.equity) {
        out.push_str(&format!("{day},{}\n", csv_float(*equity)));
    }
    out
}

/// `DateTime,Asset,Quantity,Price,Commission` rows, fills at the 14:30 UTC open.
pub fn fills_csv(trace: &Trace) -> String {
    let mut out = String::from("DateTime,Asset,Quantity,Price,Commission\n");
    for fill in &trace.fills {
        out.push_str(&format!(
            "{} 14:30:00+00:00,EQ:{},{},{},{}\n",
            fill.day,
            trace.symbols[fill.asset],
            csv_float(fill.quantity),
            csv_float(fill.price),
            csv_float(fill.commission)
        ));
    }
    out
}

/// Which tearsheets a sweep writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    /// These combo ids (`--equity`).
    pub ids: &'a [u64],
    /// The best `top` combos (`--tearsheet top:K`), per group with `group_by`.
    pub top: usize,
    /// The grid key the ranking is grouped by (`--group-by`).
    pub group_by: Option<&'a str>,
}

/// Writes the tearsheets `asked` for into `<out>.tearsheets/`; `best` are the ranked rows
/// (best first; with a group key, each group's best in turn).
pub fn write_tearsheets(spec: &Spec, data: &PriceSet, best: &[Vec<String>], out: &Path, asked: Asked) -> Result<()> {
    let mut ids = asked.ids.to_vec();
    let top = asked.top;
    // With a group key, `best` holds each group's best rows in turn: top:K is K per group.
    let group_column = asked.group_by.and_then(|name| spec.grid.index_of(name)).map(|axis| axis + 1);
    let leading = crate::report::leading(best, top, group_column);
    ids.extend(leading.iter().filter_map(|row| row.first().and_then(|id| id.parse::<u64>().ok())));
    if ids.is_empty() {
        return Ok(());
    }
    let dir = ledger::tearsheet_dir(out);
    std::fs::create_dir_all(&dir).map_err(|e| Failure::runtime(format!("cannot create {}: {e}", dir.display())))?;
    let names = spec.grid.names();
    let mut values = vec![crate::grid::ParamValue::Int(0); names.len()];
    let mut seen = std::collections::HashSet::new();
    for id in ids.into_iter().filter(|id| seen.insert(*id)) {
        spec.grid.combo(id, &mut values);
        // A symbol may hold characters a file name cannot.
        let params: String = names
            .iter()
            .zip(&values)
            .map(|(n, &v)| format!("_{n}{}", spec.grid.value_text(v).replace(['/', '\0'], "_")))
            .collect();
        let tag = format!("{}{params}", spec.strategy.name());
        let trace = spec
            .strategy
            .trace(data, spec.symbol.as_deref(), &spec.grid, id)
            .map_err(|e| Failure::runtime(format!("tearsheet of combo {id}: {e}")))?;
        let doc = statistics_json(&trace, &format!("combo {id}"), &tag);
        let json_text = serde_json::to_string(&doc).expect("JSON values serialise") + "\n";
        ledger::write_atomically(&dir.join(format!("{tag}.json")), json_text.as_bytes())?;
        ledger::write_atomically(&dir.join(format!("{tag}.equity.csv")), equity_csv(&trace).as_bytes())?;
        if spec.strategy.reports_fills() {
            ledger::write_atomically(&dir.join(format!("{tag}.fills.csv")), fills_csv(&trace).as_bytes())?;
        }
        say!("sweeprun: wrote tearsheet {}", dir.join(format!("{tag}.json")).display());
    }
    Ok(())
}

/// K of `--tearsheet top:K` (0 without the flag).
pub fn tearsheet_count(flag: Option<&str>) -> Result<usize> {
    let Some(text) = flag else { return Ok(0) };
    text.strip_prefix("top:")
        .and_then(|k| k.parse::<usize>().ok())
        .filter(|&k| k > 0)
        .ok_or_else(|| Failure::usage(format!("--tearsheet: expected top:K with K >= 1, got `{text}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_percentiles() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&sorted, 50.0), 2.5);
        assert_eq!(percentile(&sorted, 25.0), 1.75);
        assert_eq!(percentile(&sorted, 100.0), 4.0);
        assert_eq!(python_float(1e6), "1000000.0");
        assert_eq!(python_float(-40.0), "-40.0");
        assert_eq!(python_float(0.25), "0.25");
        assert_eq!(python_float(3e-5), "3e-05");
        assert_eq!(python_float(1e16), "1e+16");
    }

    #[test]
    fn undefined_values_are_null_in_json_and_empty_in_csv() {
        let day = |s: &str| Date::parse_iso(s).unwrap();
        // No losing day: the sortino is undefined.
        let trace = Trace {
            symbols: vec!["A".into()],
            dates: vec![day("2020-01-30"), day("2020-01-31"), day("2020-02-03")],
            equity: vec![100.0, 101.0, f64::NAN],
            fills: Vec::new(),
            weights: Vec::new(),
        };
        let rising = Trace { equity: vec![100.0, 101.0, 102.5], ..trace.clone() };
        let doc = statistics_json(&rising, "combo 0", "test");
        assert!(doc["strategy"]["sortino"].is_null(), "{}", doc["strategy"]["sortino"]);
        assert_eq!(doc["strategy"]["equity_curve"][2][1], 102.5);
        assert_eq!(equity_csv(&trace), "Date,Equity\n2020-01-30,100.0\n2020-01-31,101.0\n2020-02-03,\n");
    }

    #[test]
    fn layout_has_qstrader_keys_and_monthly_aggregates() {
        let day = |s: &str| Date::parse_iso(s).unwrap();
        let trace = Trace {
            symbols: vec!["A".into(), "B".into()],
            dates: vec![day("2020-01-30"), day("2020-01-31"), day("2020-02-03"), day("2020-02-04"), day("2020-02-05")],
            equity: vec![100.0, 110.0, 99.0, 108.9, 100.0],
            fills: Vec::new(),
            weights: vec![(day("2020-01-31"), vec![0.0, 1.0])],
        };
        let doc = statistics_json(&trace, "combo 0", "test");
        let s = &doc["strategy"];
        for key in ["equity_curve", "returns", "cum_returns", "drawdowns", "monthly_agg_returns", "sharpe", "sortino"] {
            assert!(!s[key].is_null(), "{key}");
        }
        // January: +10 %; February: from 110 to 100.
        let jan = s["monthly_agg_returns"][0][1].as_f64().unwrap();
        let feb = s["monthly_agg_returns"][1][1].as_f64().unwrap();
        assert!((jan - 0.1).abs() < 1e-12 && (feb - (100.0 / 110.0 - 1.0)).abs() < 1e-12);
        assert_eq!(s["monthly_agg_returns"][1][0], json!([2020, 2]));
        assert_eq!(s["equity_curve"][0][0], 1_580_342_400_000i64);
        assert_eq!(s["target_allocations"][1]["data"][0][1], 0.0);
        assert_eq!(s["target_allocations"][1]["data"][1][1], 1.0);
        assert_eq!(s["max_drawdown_duration"], 3);
        assert_eq!(s["yearly_agg_returns"][0][0], 2020);
    }
}
