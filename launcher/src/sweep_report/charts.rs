//! The report's charts, drawn with plotters into SVG strings: the heatmap, equity curves,
//! the λ histogram and the in-sample vs out-of-sample scatter.
//!
//! Text is plain SVG `<text>` (sans-serif), which the browser draws: no font is embedded
//! or fetched.

use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Where the heatmap's cells are, in SVG pixels (the page puts the SVG at its top left, so
/// these are page pixels too; the browser test reads them from the page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlotArea {
    /// Left edge of the cells.
    pub left: i32,
    /// Top edge of the cells.
    pub top: i32,
    /// Right edge of the cells.
    pub right: i32,
    /// Bottom edge of the cells.
    pub bottom: i32,
}

/// A heatmap's input: `values[y][x]` (None: no combo there; NaN: undefined metric).
pub struct Heatmap<'a> {
    /// The title line.
    pub title: &'a str,
    /// Axis names.
    pub x_name: &'a str,
    /// Axis names.
    pub y_name: &'a str,
    /// Tick labels, in axis order.
    pub x_labels: &'a [String],
    /// Tick labels, in axis order (the first at the bottom).
    pub y_labels: &'a [String],
    /// Cell values.
    pub values: &'a [Vec<Option<f64>>],
    /// Whether a lower metric is better (the colour bar says which end is best).
    pub lower_is_better: bool,
}

/// The heatmap's size in pixels.
pub const HEATMAP_SIZE: (u32, u32) = (1200, 720);

type DrawResult = Result<(), String>;

fn failed<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing failed: {e:?}")
}

fn text_style(size: u32, h: HPos, v: VPos) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK).pos(Pos::new(h, v))
}

/// Every `step`-th label (so that about `max` fit), always including the last.
fn label_step(count: usize, max: usize) -> usize {
    count.div_ceil(max).max(1)
}

/// Draws the heatmap; returns the SVG and where its cells are.
pub fn heatmap(map: &Heatmap) -> Result<(String, PlotArea), String> {
    let (width, height) = HEATMAP_SIZE;
    let area = PlotArea { left: 110, top: 56, right: width as i32 - 170, bottom: height as i32 - 90 };
    let (nx, ny) = (map.x_labels.len().max(1), map.y_labels.len().max(1));
    let finite: Vec<f64> = map.values.iter().flatten().flatten().copied().filter(|v| v.is_finite()).collect();
    let (low, high) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, HEATMAP_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        root.draw(&Text::new(map.title.to_string(), (area.left, 18), text_style(20, HPos::Left, VPos::Center)))
            .map_err(failed)?;
        let cell_w = f64::from(area.right - area.left) / nx as f64;
        let cell_h = f64::from(area.bottom - area.top) / ny as f64;
        // A 2-pixel white gap between cells keeps each one a region of its own colour.
        let gap = if cell_w >= 4.0 && cell_h >= 4.0 { 1 } else { 0 };
        for (yi, row) in map.values.iter().enumerate() {
            for (xi, value) in row.iter().enumerate() {
                let Some(value) = value else { continue };
                let x0 = area.left + (xi as f64 * cell_w).round() as i32;
                let x1 = area.left + ((xi + 1) as f64 * cell_w).round() as i32;
                // Row 0 at the bottom.
                let y1 = area.bottom - (yi as f64 * cell_h).round() as i32;
                let y0 = area.bottom - ((yi + 1) as f64 * cell_h).round() as i32;
                let colour = if value.is_finite() {
                    let t = if high > low { (value - low) / (high - low) } else { 0.5 };
                    ViridisRGB::get_color(t as f32)
                } else {
                    RGBColor(215, 215, 215)
                };
                root.draw(&Rectangle::new([(x0 + gap, y0 + gap), (x1 - gap, y1 - gap)], colour.filled()))
                    .map_err(failed)?;
            }
        }
        // Tick labels at cell centres.
        let x_step = label_step(nx, 24);
        for (xi, label) in map.x_labels.iter().enumerate() {
            if xi % x_step == 0 || xi + 1 == nx {
                let x = area.left + ((xi as f64 + 0.5) * cell_w).round() as i32;
                root.draw(&PathElement::new(vec![(x, area.bottom), (x, area.bottom + 5)], BLACK)).map_err(failed)?;
                root.draw(&Text::new(label.clone(), (x, area.bottom + 8), text_style(13, HPos::Center, VPos::Top)))
                    .map_err(failed)?;
            }
        }
        let y_step = label_step(ny, 20);
        for (yi, label) in map.y_labels.iter().enumerate() {
            if yi % y_step == 0 || yi + 1 == ny {
                let y = area.bottom - ((yi as f64 + 0.5) * cell_h).round() as i32;
                root.draw(&PathElement::new(vec![(area.left - 5, y), (area.left, y)], BLACK)).map_err(failed)?;
                root.draw(&Text::new(label.clone(), (area.left - 8, y), text_style(13, HPos::Right, VPos::Center)))
                    .map_err(failed)?;
            }
        }
        let frame =
            [(area.left, area.top), (area.right, area.top), (area.right, area.bottom), (area.left, area.bottom)];
        root.draw(&PathElement::new(vec![frame[0], frame[1], frame[2], frame[3], frame[0]], BLACK.mix(0.6)))
            .map_err(failed)?;
        root.draw(&Text::new(
            map.x_name.to_string(),
            ((area.left + area.right) / 2, area.bottom + 40),
            text_style(16, HPos::Center, VPos::Top),
        ))
        .map_err(failed)?;
        root.draw(&Text::new(
            map.y_name.to_string(),
            (30, (area.top + area.bottom) / 2),
            text_style(16, HPos::Center, VPos::Center).transform(FontTransform::Rotate270),
        ))
        .map_err(failed)?;
        colour_bar(&root, &area, low, high, map.lower_is_better)?;
        root.present().map_err(failed)?;
    }
    Ok((svg, area))
}

/// The colour scale right of the cells, low at the bottom.
fn colour_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    area: &PlotArea,
    low: f64,
    high: f64,
    lower_is_better: bool,
) -> DrawResult {
    let (x0, x1) = (area.right + 40, area.right + 60);
    let steps = 64;
    let span = f64::from(area.bottom - area.top);
    for i in 0..steps {
        let y1 = area.bottom - (span * i as f64 / steps as f64).round() as i32;
        let y0 = area.bottom - (span * (i + 1) as f64 / steps as f64).round() as i32;
        let colour = ViridisRGB::get_color((i as f64 + 0.5) / steps as f64);
        root.draw(&Rectangle::new([(x0, y0), (x1, y1)], colour.filled())).map_err(failed)?;
    }
    if low.is_finite() {
        for (value, y) in [(high, area.top), (low, area.bottom)] {
            root.draw(&Text::new(format_value(value), (x1 + 6, y), text_style(13, HPos::Left, VPos::Center)))
                .map_err(failed)?;
        }
    }
    let best = if lower_is_better { "best: low" } else { "best: high" };
    root.draw(&Text::new(best, (x0, area.bottom + 24), text_style(12, HPos::Left, VPos::Top))).map_err(failed)?;
    Ok(())
}

/// A value for a label: 4 significant decimals, plain notation.
pub fn format_value(value: f64) -> String {
    if value.abs() >= 1000.0 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.3}")
    } else {
        format!("{value:.4}")
    }
}

/// One equity curve of the equity chart.
pub struct Curve {
    /// Legend text.
    pub label: String,
    /// Equity per day, scaled to start at 1.
    pub equity: Vec<f64>,
}

/// Palette for curves and points (plotters' category colours).
fn palette(i: usize) -> RGBColor {
    let colours = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    colours[i % colours.len()]
}

/// Growth of 1 for each curve over `dates` (tick labels).
pub fn equity_chart(curves: &[Curve], dates: &[String]) -> Result<String, String> {
    let days = curves.iter().map(|c| c.equity.len()).max().unwrap_or(0).max(2);
    let (low, high) = curves
        .iter()
        .flat_map(|c| c.equity.iter().copied())
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    let (low, high) = if low.is_finite() { (low.ln(), high.ln().max(low.ln() + 1e-9)) } else { (-0.1, 0.1) };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 460)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(16)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..(days - 1) as f64, low..high)
            .map_err(failed)?;
        let date_of = |x: &f64| dates.get(x.round().max(0.0) as usize).cloned().unwrap_or_default();
        chart
            .configure_mesh()
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&date_of)
            .y_label_formatter(&|y| format_value(y.exp()))
            .y_desc("growth of 1 (log scale)")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(failed)?;
        for (i, curve) in curves.iter().enumerate() {
            let colour = palette(i);
            let points = curve
                .equity
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite() && **v > 0.0)
                .map(|(t, v)| (t as f64, v.ln()));
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(failed)?
                .label(curve.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// The λ of every split as a histogram, with the line λ = 0 (left of it: overfit).
pub fn lambda_histogram(lambdas: &[f64]) -> Result<String, String> {
    let finite: Vec<f64> = lambdas.iter().copied().filter(|l| l.is_finite()).collect();
    let (low, high) = finite.iter().fold((0f64, 0f64), |(l, h), &v| (l.min(v), h.max(v)));
    let (low, high) = (low - 0.1, high + 0.1);
    let bins = 24;
    let width = (high - low) / bins as f64;
    let mut counts = vec![0u32; bins];
    for l in &finite {
        counts[(((l - low) / width) as usize).min(bins - 1)] += 1;
    }
    let top = f64::from(counts.iter().copied().max().unwrap_or(1).max(1)) * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (540, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .caption("logit of the best combo's out-of-sample rank, per split", ("sans-serif", 14))
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(low..high, 0f64..top)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc("λ (≤ 0: overfit)")
            .y_desc("splits")
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(failed)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = low + i as f64 * width;
                let colour = if x0 + width <= 0.0 { RGBColor(214, 39, 40) } else { RGBColor(31, 119, 180) };
                Rectangle::new([(x0, 0.0), (x0 + width, f64::from(c))], colour.mix(0.8).filled())
            }))
            .map_err(failed)?;
        chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.0), (0.0, top)], BLACK))).map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// Each split's best in-sample combo: its in-sample vs out-of-sample Sharpe, with the
/// least-squares line (`slope`).
pub fn sharpe_scatter(in_sample: &[f64], out_of_sample: &[f64], slope: Option<f64>) -> Result<String, String> {
    let points: Vec<(f64, f64)> = in_sample
        .iter()
        .zip(out_of_sample)
        .map(|(&x, &y)| (x, y))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let bounds = |values: &mut dyn Iterator<Item = f64>| {
        let (l, h) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
        if l.is_finite() {
            let pad = ((h - l) * 0.08).max(1e-4);
            (l - pad, h + pad)
        } else {
            (-1.0, 1.0)
        }
    };
    let (x_low, x_high) = bounds(&mut points.iter().map(|p| p.0));
    let (y_low, y_high) = bounds(&mut points.iter().map(|p| p.1).chain([0.0]));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (540, 360)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .caption("each split's in-sample best, Sharpe per period", ("sans-serif", 14))
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_low..x_high, y_low..y_high)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc("in sample")
            .y_desc("out of sample")
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(failed)?;
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, RGBColor(31, 119, 180).mix(0.6).filled())))
            .map_err(failed)?;
        if let (Some(slope), false) = (slope, points.is_empty()) {
            let n = points.len() as f64;
            let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
            let line = vec![(x_low, my + slope * (x_low - mx)), (x_high, my + slope * (x_high - mx))];
            chart.draw_series(std::iter::once(PathElement::new(line, RGBColor(214, 39, 40)))).map_err(failed)?;
        }
        root.present().map_err(failed)?;
    }
    Ok(svg)
}
