//! `sweeprun report` as a person looks at it: the report of a sweep, rendered by a real
//! headless browser (Debian's `chromium`) to a PNG, shows a heatmap with one coloured cell
//! per (x, y) pair, in many colours, with its axis labels; the page makes no network
//! request (chromium's own net log, checked against a page that does); bad input exits 2.
//!
//! Needs `chromium` (the test command installs it, `scripts/test-all.sh`); without it these
//! tests fail, they do not skip.

use serde_json::Value;
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Command;
use sweeprun_tests::{goog_spec, output_of, sweeprun, workspace_root, write_spec};

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let path = Path::new(dir).join(name);
            if path.is_file() {
                return path;
            }
        }
    }
    panic!("chromium is not installed: `apt install chromium` (scripts/test-all.sh installs it)");
}

/// chromium, headless, with a profile of its own (tests run in parallel) and no sandbox
/// (the tests run as root).
fn browser(profile: &Path) -> Command {
    let mut command = Command::new(chromium());
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--disable-background-networking",
        "--no-first-run",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The page rendered at `width` x `height` to a PNG: its pixels as RGB, row by row.
fn screenshot(page: &Path, width: u32, height: u32) -> Image {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("shot.png");
    let out = output_of(
        browser(&dir.path().join("profile"))
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--screenshot={}", png.display()))
            .arg(url(page)),
    );
    assert!(png.exists(), "chromium wrote no screenshot: {}", String::from_utf8_lossy(&out.stderr));
    Image::read(&png)
}

/// The page's DOM after rendering.
fn dom(page: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = output_of(browser(&dir.path().join("profile")).arg("--dump-dom").arg(url(page)));
    assert!(out.status.success(), "chromium --dump-dom: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The URLs the page itself asked for while chromium loaded it, from chromium's net log:
/// requests whose initiator is the page (`null` for a file:// page), not the browser's own
/// background requests (initiator "not an origin").
fn page_requests(page: &Path) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("net.json");
    let out = output_of(
        browser(&dir.path().join("profile"))
            .arg(format!("--log-net-log={}", log.display()))
            .arg("--dump-dom")
            .arg(url(page)),
    );
    assert!(out.status.success(), "chromium: {}", String::from_utf8_lossy(&out.stderr));
    let net: Value = serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
    let start_job = net["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].as_u64().unwrap();
    net["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_u64() == Some(start_job))
        .filter(|e| e["params"]["initiator"].as_str().is_some_and(|i| i != "not an origin"))
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_string))
        .filter(|u| !u.starts_with("file://"))
        .collect()
}

struct Image {
    width: usize,
    height: usize,
    pixels: Vec<[u8; 3]>,
}

impl Image {
    fn read(path: &Path) -> Image {
        let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buffer = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buffer).unwrap();
        let channels = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("unexpected PNG colour type {other:?}"),
        };
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let pixels = buffer[..info.buffer_size()].chunks_exact(channels).map(|p| [p[0], p[1], p[2]]).collect();
        Image { width: info.width as usize, height: info.height as usize, pixels }
    }

    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.pixels[y * self.width + x]
    }
}

/// A heatmap colour, not white, grey or black text: its channels spread (viridis: >= 77).
fn coloured(p: [u8; 3]) -> bool {
    let (max, min) = (p.iter().max().unwrap(), p.iter().min().unwrap());
    max - min > 40
}

fn dark(p: [u8; 3]) -> bool {
    p.iter().all(|&c| c < 110)
}

/// Regions of one colour-class pixel (4-connected) inside `rect`: their sizes and the
/// colour at their middle.
fn cells(image: &Image, rect: [usize; 4]) -> Vec<(usize, [u8; 3])> {
    let [left, top, right, bottom] = rect;
    let mut seen = vec![false; image.width * image.height];
    let mut regions = Vec::new();
    for y in top..bottom {
        for x in left..right {
            if seen[y * image.width + x] || !coloured(image.at(x, y)) {
                continue;
            }
            let mut queue = VecDeque::from([(x, y)]);
            seen[y * image.width + x] = true;
            let mut members = Vec::new();
            while let Some((cx, cy)) = queue.pop_front() {
                members.push((cx, cy));
                let neighbours = [(cx.wrapping_sub(1), cy), (cx + 1, cy), (cx, cy.wrapping_sub(1)), (cx, cy + 1)];
                for (nx, ny) in neighbours {
                    if (left..right).contains(&nx) && (top..bottom).contains(&ny) {
                        let at = ny * image.width + nx;
                        if !seen[at] && coloured(image.at(nx, ny)) {
                            seen[at] = true;
                            queue.push_back((nx, ny));
                        }
                    }
                }
            }
            let (sx, sy) = members.iter().fold((0, 0), |(a, b), &(x, y)| (a + x, b + y));
            let middle = (sx / members.len(), sy / members.len());
            regions.push((members.len(), image.at(middle.0, middle.1)));
        }
    }
    regions
}

/// `name="value"` of the element with `id="heatmap"` in a DOM dump.
fn heatmap_attribute(dom: &str, name: &str) -> String {
    let element = &dom[dom.find("id=\"heatmap\"").expect("no #heatmap")..];
    let element = &element[..element.find('>').unwrap()];
    let start =
        element.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("no {name} in {element}")) + name.len() + 2;
    element[start..start + element[start..].find('"').unwrap()].to_string()
}

/// Renders `report` and checks what a person would see in its heatmap: `cells` coloured
/// cells, at least `colours` distinct colours, the axis names and tick labels, and labels
/// drawn (dark pixels) below and left of the cells.
fn check_heatmap(report: &Path, cells_expected: usize, colours: usize, x: &str, y: &str, ticks: &[&str]) {
    let dom = dom(report);
    assert_eq!(heatmap_attribute(&dom, "data-cells"), cells_expected.to_string());
    assert_eq!((heatmap_attribute(&dom, "data-x"), heatmap_attribute(&dom, "data-y")), (x.to_string(), y.to_string()));
    let heatmap = &dom[dom.find("id=\"heatmap\"").unwrap()..dom.find("<main").unwrap()];
    let texts: Vec<&str> =
        heatmap.split("<text").skip(1).filter_map(|t| Some(t[t.find('>')? + 1..t.find("</text>")?].trim())).collect();
    for label in [x, y].iter().chain(ticks) {
        assert!(texts.contains(label), "no axis label `{label}` in the heatmap: {texts:?}");
    }
    let rect: Vec<usize> = ["left", "top", "right", "bottom"]
        .iter()
        .map(|s| heatmap_attribute(&dom, &format!("data-plot-{s}")).parse().unwrap())
        .collect();
    let image = screenshot(report, 1200, 720);
    let found = cells(&image, [rect[0], rect[1], rect[2], rect[3]]);
    let real: Vec<&(usize, [u8; 3])> = found.iter().filter(|(size, _)| *size >= 4).collect();
    assert_eq!(real.len(), cells_expected, "coloured cells in the screenshot (regions: {})", found.len());
    let distinct: BTreeSet<[u8; 3]> = real.iter().map(|(_, c)| *c).collect();
    assert!(distinct.len() >= colours, "{} distinct cell colours, expected at least {colours}", distinct.len());
    // Tick labels: dark text pixels in the band under the cells and left of them.
    let band = |x0: usize, x1: usize, y0: usize, y1: usize| {
        (y0..y1).flat_map(|y| (x0..x1).map(move |x| (x, y))).filter(|&(x, y)| dark(image.at(x, y))).count()
    };
    assert!(band(rect[0], rect[2], rect[3] + 6, rect[3] + 30) > 50, "no x tick labels drawn");
    assert!(band(rect[0] - 60, rect[0] - 6, rect[1], rect[3]) > 50, "no y tick labels drawn");
}

#[test]
fn the_goog_report_shows_every_cell_of_the_grid_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let spec = workspace_root().join("examples/sma_goog.toml");
    let run =
        output_of(sweeprun(dir.path()).arg("run").arg(&spec).args(["--out", "goog.csv", "--report", "--top", "3"]));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let report = dir.path().join("goog.csv.report.html");
    assert!(stderr.contains(&format!("sweeprun: wrote {}", report.display())), "{stderr}");
    // fast 5..100 x slow 10..250 step 5 with fast < slow: 3,830 cells, one per combo.
    check_heatmap(&report, 3830, 200, "fast", "slow", &["5", "100", "10", "250"]);
    let html = std::fs::read_to_string(&report).unwrap();
    for part in
        ["Top 10 by sharpe", "Equity of the top combos", "Deflated Sharpe ratio", "Provenance", "λ (≤ 0: overfit)"]
    {
        assert!(html.contains(part), "the report has no `{part}`");
    }
    let sidecar: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("goog.csv.meta.json")).unwrap()).unwrap();
    assert!(html.contains(sidecar["data"]["sha256"].as_str().unwrap()), "the data's digest is in the provenance");

    // The page asks for nothing; a page that does is caught (the check can fail).
    assert_eq!(page_requests(&report), Vec::<String>::new(), "the report made network requests");
    let fetching = dir.path().join("fetching.html");
    std::fs::write(&fetching, "<html><body><img src=\"http://example.invalid/x.png\"></body></html>").unwrap();
    assert_eq!(page_requests(&fetching), ["http://example.invalid/x.png"]);
    for needle in ["<script", "<link", "<img", "url(", "@import", "src=", "href="] {
        assert!(!html.contains(needle), "the report holds `{needle}`");
    }

    // Other axes and metric, by `sweeprun report`; `--svg` writes the heatmap alone.
    let table = dir.path().join("goog.csv");
    let again = output_of(
        sweeprun(dir.path()).arg("report").arg(&table).args(["--x", "slow", "--y", "fast", "--metric", "cagr"]),
    );
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(String::from_utf8(again.stdout).unwrap().trim(), report.display().to_string());
    check_heatmap(&report, 3830, 200, "slow", "fast", &["10", "250", "5", "100"]);
    let svg = output_of(sweeprun(dir.path()).arg("report").arg(&table).arg("--svg"));
    assert!(svg.status.success());
    let svg_text = std::fs::read_to_string(dir.path().join("goog.csv.heatmap.svg")).unwrap();
    assert!(svg_text.starts_with("<svg") && svg_text.matches("<rect").count() > 3830, "{}", &svg_text[..200]);
}

#[test]
fn a_momentum_report_shows_lookback_by_top_n() {
    let dir = tempfile::tempdir().unwrap();
    let spec = workspace_root().join("examples/momentum_etf5.toml");
    let run = output_of(sweeprun(dir.path()).arg("run").arg(&spec).args(["--out", "m.csv", "--top", "0", "--report"]));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // lookback 21..252 step 21 (12 values) x top_n 1..5.
    check_heatmap(&dir.path().join("m.csv.report.html"), 60, 30, "lookback", "top_n", &["21", "252", "1", "5"]);
}

#[test]
fn bad_input_exits_2_with_one_line_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "goog.toml", &goog_spec("goog.csv", ""));
    assert!(output_of(sweeprun(dir.path()).arg("run").arg(&spec).args(["--top", "0"])).status.success());
    let table = dir.path().join("goog.csv");
    std::fs::write(dir.path().join("plain.csv"), "a,b\n1,2\n").unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--x", "fsat"], "--x: `fsat` is not a grid parameter (grid parameters: fast, slow)"),
        (&["--y", "fast"], "--x and --y: both are `fast`"),
        (&["--metric", "fast"], "--metric: `fast` is not a result column"),
        (&["--where", "fast > 1000"], "--where: `fast > 1000` holds for no row of the table"),
        (&["--where", "fats > 1"], "--where: unknown name `fats`"),
        (&["--top", "x"], "invalid value 'x' for '--top <K>'"),
    ];
    for (args, says) in cases {
        let out = output_of(sweeprun(dir.path()).arg("report").arg(&table).args(args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.lines().count() == 1 && stderr.contains(says), "{args:?}: {stderr}");
    }
    let not_a_sweep = output_of(sweeprun(dir.path()).arg("report").arg(dir.path().join("plain.csv")));
    let stderr = String::from_utf8_lossy(&not_a_sweep.stderr);
    assert_eq!(not_a_sweep.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.lines().count() == 1 && stderr.contains("plain.csv is not a sweep table: cannot read its sidecar"),
        "{stderr}"
    );
    // A table changed after the sweep no longer matches its sidecar.
    let mut text = std::fs::read_to_string(&table).unwrap();
    text.push_str("9999,1,2\n");
    std::fs::write(&table, text).unwrap();
    let changed = output_of(sweeprun(dir.path()).arg("report").arg(&table));
    assert_eq!(changed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&changed.stderr).contains("changed after the sweep"));
    let written: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("report") || n.contains("heatmap"))
        .collect();
    assert!(written.is_empty(), "wrote {written:?}");
}

/// The `data-cells` of a report file, read from its HTML (no browser).
fn cells_of(report: &Path) -> usize {
    heatmap_attribute(&std::fs::read_to_string(report).unwrap(), "data-cells").parse().unwrap()
}

#[test]
fn a_multi_asset_report_slices_by_symbol_or_reduces_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = workspace_root().join("examples/data/sp500_20stocks_adjclose_daily.csv");
    let spec = write_spec(
        dir.path(),
        "sp.toml",
        &format!(
            "[data]\npath = \"{}\"\n[strategy]\nname = \"sma_cross\"\nfill = \"close\"\n[grid]\nsymbol = [\"GE\", \"KO\", \"XOM\"]\n\
             fast = {{ from = 5, to = 40, step = 5 }}\nslow = {{ from = 20, to = 200, step = 20 }}\nwhere = \"fast < slow\"\n\
             [output]\npath = \"sp.csv\"\n",
            data.display()
        ),
    );
    assert!(output_of(sweeprun(dir.path()).arg("run").arg(&spec).args(["--top", "0"])).status.success());
    let table = dir.path().join("sp.csv");
    let report = dir.path().join("sp.csv.report.html");
    let per_symbol = {
        let (_, rows) = sweeprun_tests::read_csv(&table);
        rows.iter().filter(|r| r[1] == "GE").count()
    };
    // Sliced to one symbol: fast x slow, one cell per GE combo.
    let sliced = output_of(sweeprun(dir.path()).arg("report").arg(&table).args([
        "--x",
        "fast",
        "--y",
        "slow",
        "--where",
        "symbol == \"GE\"",
    ]));
    assert!(sliced.status.success(), "{}", String::from_utf8_lossy(&sliced.stderr));
    assert_eq!(cells_of(&report), per_symbol);
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("where symbol == &quot;GE&quot;") && html.contains("(best over symbol)"),
        "the title says so"
    );
    assert!(html.contains("<h3>Per symbol</h3>"), "the per-symbol statistics are shown");
    // Default axes: symbol and fast (the grid's first two), the best over slow: 3 x 8 cells.
    assert!(output_of(sweeprun(dir.path()).arg("report").arg(&table)).status.success());
    assert_eq!(cells_of(&report), 3 * 8);
    assert_eq!(heatmap_attribute(&std::fs::read_to_string(&report).unwrap(), "data-x"), "symbol");
}

#[test]
fn json_lines_and_command_sweep_tables_have_reports_too() {
    let dir = tempfile::tempdir().unwrap();
    let goog = workspace_root().join("examples/sma_goog.toml");
    let run = output_of(sweeprun(dir.path()).arg("run").arg(&goog).args(["--out", "goog.jsonl", "--top", "0"]));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report = output_of(sweeprun(dir.path()).arg("report").arg(dir.path().join("goog.jsonl")));
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));
    let html = dir.path().join("goog.jsonl.report.html");
    assert_eq!(cells_of(&html), 3830);
    assert_eq!(heatmap_attribute(&std::fs::read_to_string(&html).unwrap(), "data-x"), "fast");
    // A [command] sweep (fast 10..50 step 10 x slow 100, 150, 200): its own columns.
    let command = workspace_root().join("examples/command_sweep.toml");
    let run =
        output_of(sweeprun(dir.path()).arg("run").arg(&command).args(["--out", "c.csv", "--top", "0", "--report"]));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success() && !stderr.contains("warning"), "{stderr}");
    let html = std::fs::read_to_string(dir.path().join("c.csv.report.html")).unwrap();
    assert_eq!(heatmap_attribute(&html, "data-cells"), "15");
    assert!(html.contains("Not computed for this sweep"), "a command sweep has no statistics");
}
