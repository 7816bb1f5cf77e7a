//! `simulate --plot out.svg`: the scenario's temperature, clock and duty over time, for the
//! docs and for users tuning their cases (plotters, SVG backend).

use plotters::prelude::*;
use std::path::Path;

/// One second of a scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Board time, s.
    pub t_s: f64,
    /// The sensor, C.
    pub sensor_c: f64,
    /// The clock, MHz.
    pub clock_mhz: f64,
    /// Fraction of time the ranks ran.
    pub duty: f64,
}

/// Draws `points` into `path`: temperature (with the 75 C limit and the firmware's 80 C)
/// above, clock and duty below.
pub fn draw(path: &Path, title: &str, points: &[Point]) -> Result<(), String> {
    let error = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let (upper, lower) = root.split_vertically(360);
    let end_min = points.last().map_or(1.0, |p| p.t_s / 60.0).max(1.0);
    let (low, high) = points.iter().fold((f64::MAX, f64::MIN), |(l, h), p| (l.min(p.sensor_c), h.max(p.sensor_c)));
    let mut temperature = ChartBuilder::on(&upper)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end_min, (low.min(40.0) - 2.0)..(high.max(82.0) + 2.0))
        .map_err(|e| error(&e))?;
    temperature.configure_mesh().x_desc("minutes").y_desc("sensor, C").draw().map_err(|e| error(&e))?;
    temperature
        .draw_series(LineSeries::new(points.iter().map(|p| (p.t_s / 60.0, p.sensor_c)), &RED))
        .map_err(|e| error(&e))?
        .label("sensor");
    for (level, color) in [(75.0, &BLUE), (80.0, &BLACK)] {
        temperature
            .draw_series(LineSeries::new([(0.0, level), (end_min, level)], color.mix(0.5)))
            .map_err(|e| error(&e))?;
    }
    let mut clock = ChartBuilder::on(&lower)
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..end_min, 0.0..1600.0)
        .map_err(|e| error(&e))?;
    clock.configure_mesh().x_desc("minutes").y_desc("clock MHz / duty x 1500").draw().map_err(|e| error(&e))?;
    clock
        .draw_series(LineSeries::new(points.iter().map(|p| (p.t_s / 60.0, p.clock_mhz)), &GREEN))
        .map_err(|e| error(&e))?;
    clock
        .draw_series(LineSeries::new(points.iter().map(|p| (p.t_s / 60.0, p.duty * 1500.0)), &MAGENTA))
        .map_err(|e| error(&e))?;
    root.present().map_err(|e| error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_an_svg_with_the_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.svg");
        let points: Vec<Point> = (0..600)
            .map(|i| Point { t_s: f64::from(i), sensor_c: 60.0 + f64::from(i) / 60.0, clock_mhz: 1500.0, duty: 1.0 })
            .collect();
        draw(&path, "test", &points).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "{}", &svg[..200.min(svg.len())]);
        assert!(svg.contains("minutes"));
    }
}
