//! The report's HTML: one file, inline SVG and CSS, no script, nothing fetched.
//!
//! The heatmap comes first, at the page's top left with no margin, so that its pixels are
//! the page's: `#heatmap`'s `data-plot-*` attributes say where its cells are (the browser
//! test reads them), `data-cells` how many have a value.

use super::charts::{self, Curve, PlotArea};
use crate::report::display_cell;
use serde_json::Value;
use std::fmt::Write;
use std::path::Path;
use sweeprun_kernel::overfitting::Cscv;

/// What goes on the page.
pub struct Page<'a> {
    pub table: &'a Path,
    pub sidecar: &'a Value,
    pub heatmap_svg: &'a str,
    pub area: PlotArea,
    pub cells: usize,
    pub x_name: &'a str,
    pub y_name: &'a str,
    pub metric: &'a str,
    pub columns: &'a [String],
    pub top: &'a [Vec<String>],
    pub equity: Option<&'a (Vec<Curve>, Vec<String>)>,
    pub cscv: Option<&'a Cscv>,
    /// Why the recomputed splits may differ from the sidecar's statistics.
    pub cscv_note: Option<&'a str>,
    /// Whether `--where` filtered the heatmap and the top K (not the statistics).
    pub filtered: bool,
}

/// `text` with HTML's special characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "\
body { margin: 0; font-family: sans-serif; color: #222; background: #fff; }
#heatmap { position: absolute; top: 0; left: 0; width: 1200px; height: 720px; }
#heatmap svg rect { shape-rendering: crispEdges; }
main { position: absolute; top: 720px; left: 0; width: 1200px; padding: 0 24px 48px 24px; box-sizing: border-box; }
h1 { font-size: 22px; margin: 24px 0 8px 0; }
h2 { font-size: 18px; margin: 28px 0 8px 0; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; text-align: right; border-bottom: 1px solid #eee; }
th { background: #f4f4f4; }
td.text, th.text { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.verdict { font-size: 15px; margin: 8px 0; }
pre { background: #f7f7f7; padding: 8px; font-size: 12px; overflow-x: auto; }
dt { font-weight: bold; float: left; width: 160px; clear: left; }
dd { margin: 0 0 4px 170px; font-size: 13px; word-break: break-all; }
";

/// The whole page.
pub fn render(page: &Page) -> Result<String, String> {
    let mut html = String::new();
    let name = page.table.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let a = page.area;
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>sweeprun report: {}</title>\n\
         <style>\n{STYLE}</style>\n</head>\n<body>\n\
         <div id=\"heatmap\" data-plot-left=\"{}\" data-plot-top=\"{}\" data-plot-right=\"{}\" data-plot-bottom=\"{}\" \
         data-cells=\"{}\" data-x=\"{}\" data-y=\"{}\" data-metric=\"{}\">\n{}\n</div>\n<main>\n",
        escape(&name),
        a.left,
        a.top,
        a.right,
        a.bottom,
        page.cells,
        escape(page.x_name),
        escape(page.y_name),
        escape(page.metric),
        page.heatmap_svg
    );
    let sidecar = page.sidecar;
    let _ = writeln!(
        html,
        "<h1>{}: {} combos of {}</h1>",
        escape(&name),
        json_text(&sidecar["combos"]),
        escape(sidecar["strategy"].as_str().unwrap_or("?"))
    );
    overfitting_section(&mut html, sidecar, page.cscv, page.cscv_note, page.filtered)?;
    top_section(&mut html, page);
    if let Some((curves, dates)) = page.equity {
        html.push_str("<h2>Equity of the top combos</h2>\n<div class=\"chart\">");
        html.push_str(&charts::equity_chart(curves, dates)?);
        html.push_str("</div>\n");
    }
    provenance_section(&mut html, sidecar);
    html.push_str("</main>\n</body>\n</html>\n");
    Ok(html)
}

fn top_section(html: &mut String, page: &Page) {
    let _ = write!(html, "<h2>Top {} by {}</h2>\n<table>\n<tr>", page.top.len(), escape(page.metric));
    for column in page.columns {
        let _ = write!(html, "<th class=\"{}\">{}</th>", class_of(column), escape(column));
    }
    html.push_str("</tr>\n");
    for row in page.top {
        html.push_str("<tr>");
        for (column, cell) in page.columns.iter().zip(row) {
            let _ = write!(html, "<td class=\"{}\">{}</td>", class_of(column), escape(&display_cell(column, cell)));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n");
}

fn class_of(column: &str) -> &'static str {
    if column == crate::grid::SYMBOL {
        "text"
    } else {
        "num"
    }
}

/// A JSON value from the sidecar as page text (escaped: the sidecar is not signed).
fn json_text(value: &Value) -> String {
    escape(&match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn number(value: &Value, decimals: usize) -> String {
    value.as_f64().map_or("undefined".to_string(), |v| format!("{v:.decimals$}"))
}

fn overfitting_section(
    html: &mut String,
    sidecar: &Value,
    cscv: Option<&Cscv>,
    note: Option<&str>,
    filtered: bool,
) -> Result<(), String> {
    let statistics = &sidecar["overfitting"];
    html.push_str("<h2>Overfitting</h2>\n");
    if filtered {
        html.push_str("<p>Over the whole sweep, not only the rows <code>--where</code> keeps.</p>\n");
    }
    if statistics.is_null() {
        html.push_str("<p>Not computed for this sweep (<code>--cscv-blocks 0</code>, or a command sweep).</p>\n");
        return Ok(());
    }
    if let Some(why) = statistics["across_symbols_not_measured"].as_str() {
        let _ = writeln!(html, "<p>Not measured across symbols: {}. Per symbol below.</p>", escape(why));
    } else {
        let pbo = statistics["pbo"].as_f64();
        let verdict = match (pbo, statistics["deflated_sharpe"].as_f64()) {
            (Some(p), _) if p >= 0.5 => "The best combo is likely luck.".to_string(),
            (Some(_), Some(d)) if d >= 0.95 => "The best combo holds up out of sample and after deflation.".to_string(),
            (Some(_), _) => {
                "The best combo holds up out of sample, but its Sharpe ratio is not significant after this many trials."
                    .to_string()
            }
            (None, _) => "Not measured (fewer than two combos with varying returns).".to_string(),
        };
        let _ = writeln!(
            html,
            "<p class=\"verdict\">Deflated Sharpe ratio <b>{}</b> for the best of {} trials (combo {}); \
             probability of backtest overfitting <b>{}</b> over {} CSCV splits of {} blocks. {}</p>",
            number(&statistics["deflated_sharpe"], 3),
            json_text(&statistics["trials"]),
            json_text(&statistics["best_combo_id"]),
            pbo.map_or("undefined".to_string(), |p| format!("{:.1}%", 100.0 * p)),
            json_text(&statistics["splits"]),
            json_text(&statistics["cscv_blocks"]),
            escape(&verdict)
        );
        html.push_str("<table>\n");
        for (label, key, decimals) in [
            ("Sharpe per period of the best", "sharpe_per_period", 5),
            ("expected max of unskilled trials (SR0)", "sr0", 5),
            ("probabilistic Sharpe ratio", "psr", 4),
            ("deflated Sharpe ratio", "deflated_sharpe", 4),
            ("PBO", "pbo", 4),
            ("degradation slope (OOS on IS)", "degradation_slope", 4),
            ("P(out-of-sample loss)", "prob_oos_loss", 4),
            ("skewness of the best", "skew", 3),
            ("kurtosis of the best", "kurtosis", 3),
        ] {
            let _ = writeln!(
                html,
                "<tr><td class=\"text\">{}</td><td>{}</td></tr>",
                escape(label),
                number(&statistics[key], decimals)
            );
        }
        html.push_str("</table>\n");
    }
    if let Some(cscv) = cscv {
        if let Some(note) = note {
            let _ = writeln!(html, "<p>{}</p>", escape(note));
        }
        html.push_str("<div class=\"charts\">\n<div class=\"chart\">");
        html.push_str(&charts::lambda_histogram(&cscv.lambdas)?);
        html.push_str("</div>\n<div class=\"chart\">");
        let slope = cscv.degradation_slope.is_finite().then_some(cscv.degradation_slope);
        html.push_str(&charts::sharpe_scatter(&cscv.in_sample, &cscv.out_of_sample, slope)?);
        html.push_str("</div>\n</div>\n");
    }
    if let Some(per_symbol) = statistics["per_symbol"].as_array() {
        html.push_str(
            "<h3>Per symbol</h3>\n<table>\n<tr><th class=\"text\">symbol</th><th>trials</th><th>best combo</th>\
             <th>deflated Sharpe</th><th>PBO</th></tr>\n",
        );
        for entry in per_symbol {
            let _ = writeln!(
                html,
                "<tr><td class=\"text\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(entry["symbol"].as_str().unwrap_or("")),
                json_text(&entry["trials"]),
                json_text(&entry["best_combo_id"]),
                number(&entry["deflated_sharpe"], 4),
                number(&entry["pbo"], 4)
            );
        }
        html.push_str("</table>\n");
    }
    Ok(())
}

fn provenance_section(html: &mut String, sidecar: &Value) {
    html.push_str("<h2>Provenance</h2>\n<dl>\n");
    let text = |v: &Value| match v {
        Value::Null => "none".to_string(),
        other => json_text(other),
    };
    for (label, value) in [
        ("sweeprun", &sidecar["sweeprun_version"]),
        ("spec file", &sidecar["spec_file"]),
        ("data", &sidecar["data"]["path"]),
        ("data SHA-256", &sidecar["data"]["sha256"]),
        ("table", &sidecar["output"]["path"]),
        ("table BLAKE3", &sidecar["output"]["blake3"]),
        ("strategy", &sidecar["strategy_settings"]),
        ("statistics", &sidecar["statistics"]),
        ("kernel", &sidecar["kernel"]),
        ("backend", &sidecar["backend"]),
        ("ranks", &sidecar["ranks"]),
        ("started", &sidecar["started_at"]),
        ("finished", &sidecar["finished_at"]),
        ("wall seconds", &sidecar["wall_seconds"]),
    ] {
        let _ = writeln!(html, "<dt>{}</dt><dd>{}</dd>", escape(label), text(value));
    }
    html.push_str("</dl>\n<h3>Spec</h3>\n<pre>");
    html.push_str(&escape(sidecar["spec"].as_str().unwrap_or("")));
    html.push_str("</pre>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_the_markup_characters() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
        assert_eq!(escape("plain"), "plain");
    }
}
