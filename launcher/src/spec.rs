//! The sweep spec: TOML file + `--set` overrides, validated into a [`Spec`].
//!
//! Relative paths in a spec resolve against the spec file's directory, so a spec and its
//! data can move together; `--out` on the command line resolves against the current
//! directory, like any command-line path.

use crate::command::CommandSpec;
use crate::error::{Failure, Result};
use crate::grid::Grid;
use crate::strategy::Strategy;
use crate::table::OutputFormat;
use std::path::{Path, PathBuf};

/// A validated sweep spec.
#[derive(Debug)]
pub struct Spec {
    /// Where the spec came from (for messages).
    pub origin: String,
    /// The spec after overrides, with every path made absolute: what workers receive and
    /// what the sidecar records.
    pub effective: toml::Table,
    /// The price data source (a file or a directory); `None` only for a `[command]` sweep
    /// without `[data]` (the command reads its own data).
    pub data_path: Option<PathBuf>,
    /// The asset a single-asset strategy trades, when the data has several.
    pub symbol: Option<String>,
    /// The strategy and its fixed settings.
    pub strategy: Strategy,
    /// The parameter grid.
    pub grid: Grid,
    /// `[output] path`, if the spec has one.
    pub output: Option<PathBuf>,
    /// The `--set key.path=value` overrides applied to the file.
    pub overrides: Vec<String>,
}

const SECTIONS: &str = "data, strategy or command, grid, output";

/// The largest spec file read (1 MiB): real specs are a few hundred bytes.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;

impl Spec {
    /// Reads, overrides and validates the spec file at `path`.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Spec> {
        use std::io::Read;
        let origin = path.display().to_string();
        let cannot_read = |e: std::io::Error| Failure::usage(format!("{origin}: cannot read the spec: {e}"));
        // Capped, so that e.g. /dev/zero given as the spec fails at once instead of
        // reading until memory runs out.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_SPEC_BYTES + 1).read_to_end(&mut bytes))
            .map_err(cannot_read)?;
        if bytes.len() as u64 > MAX_SPEC_BYTES {
            return Err(Failure::usage(format!(
                "{origin}: the spec is larger than {} MiB (stopped reading there); a spec is a small TOML file",
                MAX_SPEC_BYTES >> 20
            )));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            Failure::usage(format!("{origin}: cannot read the spec: not UTF-8 (byte {})", e.utf8_error().valid_up_to()))
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
        Spec::parse(&origin, &text, &base, overrides)
    }

    /// Parses spec text; relative paths resolve against `base_dir`.
    pub fn parse(origin: &str, text: &str, base_dir: &Path, overrides: &[String]) -> Result<Spec> {
        let mut table = parse_toml(origin, text)?;
        for assignment in overrides {
            apply_override(&mut table, assignment)?;
        }
        let bad = |message: String| blame(origin, overrides, message);
        for key in table.keys() {
            if !["data", "strategy", "command", "grid", "output"].contains(&key.as_str()) {
                return Err(bad(format!("unknown section `{key}` (expected {SECTIONS})")));
            }
        }
        let base_dir = std::path::absolute(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());

        let is_command = match (table.contains_key("strategy"), table.contains_key("command")) {
            (true, true) => {
                return Err(bad(
                    "the spec has both [strategy] and [command]; a sweep runs one of them (remove the other)".into(),
                ))
            }
            (false, false) => {
                return Err(bad(
                    "missing section [strategy] or [command] (a built-in strategy, or any command to run per combo)"
                        .into(),
                ))
            }
            (_, command) => command,
        };
        let (data_path, symbol) = match table.get("data") {
            // A command reads its own data.
            None if is_command => (None, None),
            _ => {
                let data = section(&table, "data").map_err(bad)?;
                check_keys("data", data, &["path", "dir", "symbol"]).map_err(bad)?;
                let data_path = match (data.get("path"), data.get("dir")) {
                    (Some(_), Some(_)) => return Err(bad("[data] has both `path` and `dir`; give one".into())),
                    (None, None) => {
                        return Err(bad("[data] needs `path` (a CSV file) or `dir` (a directory of CSVs)".into()))
                    }
                    (Some(p), None) => resolve(&base_dir, string_value("data", "path", p).map_err(bad)?),
                    (None, Some(d)) => resolve(&base_dir, string_value("data", "dir", d).map_err(bad)?),
                };
                let symbol = data
                    .get("symbol")
                    .map(|v| string_value("data", "symbol", v).map(str::to_string))
                    .transpose()
                    .map_err(bad)?;
                (Some(data_path), symbol)
            }
        };

        let grid_table = section(&table, "grid").map_err(bad)?;
        let strategy = if is_command {
            let command = section(&table, "command").map_err(bad)?;
            Strategy::Command(CommandSpec::from_table(command, grid_table, &base_dir).map_err(bad)?)
        } else {
            Strategy::from_table(section(&table, "strategy").map_err(bad)?).map_err(bad)?
        };
        if grid_table.contains_key(crate::grid::SYMBOL) && !is_command {
            if !strategy.single_asset() {
                return Err(bad(format!(
                    "[grid] symbol: {} trades the whole universe at once; a `symbol` grid key is only for \
                     single-asset strategies (sma_cross)",
                    strategy.name()
                )));
            }
            if let Some(one) = &symbol {
                return Err(bad(format!(
                    "[grid] symbol: cannot be combined with [data] symbol = {one:?} \
                     (the grid key sweeps assets, [data] symbol picks one; remove one of them)"
                )));
            }
        }
        let grid = Grid::from_table(grid_table, &strategy.params()).map_err(bad)?;

        let output = match table.get("output") {
            None => None,
            Some(toml::Value::Table(out)) => {
                check_keys("output", out, &["path"]).map_err(bad)?;
                match out.get("path") {
                    Some(p) => {
                        let text = string_value("output", "path", p).map_err(bad)?;
                        if text.ends_with('/') {
                            return Err(bad(format!(
                                "[output] path: `{text}` ends with `/` (a directory); expected a file such as results.csv"
                            )));
                        }
                        Some(resolve(&base_dir, text))
                    }
                    None => None,
                }
            }
            Some(_) => return Err(bad("`output` must be a table: [output]".into())),
        };
        if let Some(path) = &output {
            OutputFormat::from_path(path).map_err(|e| bad(format!("[output] path: {e}")))?;
        }

        // Workers and the sidecar get absolute paths, independent of the working directory.
        let data_key = match table.get("data") {
            Some(toml::Value::Table(data)) if data.contains_key("dir") => "dir",
            _ => "path",
        };
        let mut effective = table;
        if let Some(data_path) = &data_path {
            set_path(&mut effective, "data", data_key, data_path);
        }
        if let Strategy::Command(command) = &strategy {
            set_path(&mut effective, "command", "spec_dir", &command.spec_dir);
        }
        if let Some(path) = &output {
            set_path(&mut effective, "output", "path", path);
        }
        let overrides = overrides.to_vec();
        Ok(Spec { origin: origin.to_string(), effective, data_path, symbol, strategy, grid, output, overrides })
    }

    /// A usage error about this spec: `message` (one line starting `[section] key`) is
    /// prefixed with the `--set` that supplied that key, else with the spec file.
    pub fn blame(&self, message: String) -> Failure {
        blame(&self.origin, &self.overrides, message)
    }

    /// The effective spec as TOML text.
    pub fn effective_toml(&self) -> String {
        toml::to_string(&self.effective).expect("a parsed TOML table serialises")
    }
}

/// Prefixes `message` with where the offending value came from: the last `--set` whose
/// key path the message names (`[section] key...`, `[section] unknown key `key``,
/// ``unknown section `section` ``), else the spec file `origin`.
fn blame(origin: &str, overrides: &[String], message: String) -> Failure {
    let named_by = |assignment: &String| {
        let Some((key_path, _)) = assignment.split_once('=') else { return false };
        let keys: Vec<&str> = key_path.trim().split('.').map(str::trim).collect();
        match keys.as_slice() {
            [section, key, ..] => {
                let field = format!("[{section}] {key}");
                message.strip_prefix(&field).is_some_and(|rest| rest.starts_with([':', ' ']) || rest.is_empty())
                    || message.starts_with(&format!("[{section}] unknown key `{key}`"))
                    || message.starts_with(&format!("unknown section `{section}`"))
            }
            _ => false,
        }
    };
    match overrides.iter().rev().find(|a| named_by(a)) {
        Some(assignment) => Failure::usage(format!("--set {assignment}: {message}")),
        None => Failure::usage(format!("{origin}: {message}")),
    }
}

fn parse_toml(origin: &str, text: &str) -> Result<toml::Table> {
    text.parse::<toml::Table>().map_err(|e| {
        let place = e.span().map(|span| {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!(":{line}")
        });
        Failure::usage(format!("{origin}{}: invalid TOML: {}", place.unwrap_or_default(), e.message().trim()))
    })
}

fn section<'a>(table: &'a toml::Table, name: &str) -> std::result::Result<&'a toml::Table, String> {
    match table.get(name) {
        Some(toml::Value::Table(t)) => Ok(t),
        Some(_) => Err(format!("`{name}` must be a table: [{name}]")),
        None => {
            Err(format!("missing section [{name}] (a spec needs [data], [strategy], [grid] and [output] or --out)"))
        }
    }
}

/// Errors on a key that is not in `allowed`.
pub fn check_keys(section: &str, table: &toml::Table, allowed: &[&str]) -> std::result::Result<(), String> {
    match table.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(format!("[{section}] unknown key `{key}` (expected one of: {})", allowed.join(", "))),
        None => Ok(()),
    }
}

fn string_value<'a>(section: &str, key: &str, value: &'a toml::Value) -> std::result::Result<&'a str, String> {
    match value.as_str() {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(format!("[{section}] {key}: must not be empty")),
        None => Err(format!("[{section}] {key}: expected a string, got {}", value.type_str())),
    }
}

fn resolve(base: &Path, path: &str) -> PathBuf {
    normalize(&base.join(path))
}

/// Removes `.` and `name/..` components lexically, for readable paths in messages.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn set_path(table: &mut toml::Table, section: &str, key: &str, path: &Path) {
    if let Some(toml::Value::Table(t)) = table.get_mut(section) {
        t.insert(key.to_string(), toml::Value::String(path.display().to_string()));
    }
}

/// Applies one `--set key.path=value` override. The value is read as a TOML value
/// (`0.001`, `"close"`, `{ from = 5, to = 50 }`, `[1, 2]`); anything that is not valid
/// TOML is taken as a plain string, so `--set strategy.fill=close` works unquoted.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let bad = |why: &str| Failure::usage(format!("--set {assignment}: {why}"));
    let (key_path, raw_value) = assignment.split_once('=').ok_or_else(|| bad("expected key.path=value"))?;
    let keys: Vec<&str> = key_path.trim().split('.').map(str::trim).collect();
    if keys.iter().any(|k| k.is_empty()) || keys.len() < 2 {
        return Err(bad("expected a dotted key such as strategy.fee or grid.fast"));
    }
    let raw_value = raw_value.trim();
    let value = match format!("v = {raw_value}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").expect("just parsed"),
        Err(_) => toml::Value::String(raw_value.to_string()),
    };
    let (last, parents) = keys.split_last().expect("at least two keys");
    let mut current = table;
    for key in parents {
        let entry = current.entry(key.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(bad(&format!("`{key}` is not a table"))),
        };
    }
    current.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
[data]
path = "data/GOOG.csv"
[strategy]
name = "sma_cross"
[grid]
fast = { from = 5, to = 20, step = 5 }
slow = { from = 10, to = 40, step = 10 }
where = "fast < slow"
[output]
path = "out/sma.csv"
"#;

    fn parse(text: &str, sets: &[&str]) -> Result<Spec> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Spec::parse("s.toml", text, Path::new("/base"), &sets)
    }

    fn usage(text: &str, sets: &[&str]) -> String {
        match parse(text, sets) {
            Err(Failure::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn resolves_paths_against_the_spec_directory() {
        let spec = parse(SPEC, &[]).unwrap();
        assert_eq!(spec.data_path.as_deref(), Some(Path::new("/base/data/GOOG.csv")));
        assert_eq!(spec.output.as_deref(), Some(Path::new("/base/out/sma.csv")));
        assert!(spec.effective_toml().contains("/base/data/GOOG.csv"));
        assert_eq!(spec.grid.len(), 12);
    }

    #[test]
    fn overrides_apply_before_validation() {
        let spec = parse(SPEC, &["strategy.fee=0.001", "strategy.fill=close", "grid.fast=[5]"]).unwrap();
        assert_eq!(spec.grid.len(), 4);
        assert!(spec.effective_toml().contains("fee = 0.001"));
        assert!(usage(SPEC, &["strategy"]).contains("expected key.path=value"));
        assert!(usage(SPEC, &["nope=1"]).contains("dotted key"));
    }

    #[test]
    fn an_endless_spec_is_cut_off_at_the_cap() {
        let message = match Spec::load(Path::new("/dev/zero"), &[]) {
            Err(Failure::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        };
        assert!(message.starts_with("/dev/zero: the spec is larger than 1 MiB"), "{message}");
    }

    #[test]
    fn errors_in_a_set_value_name_the_set_not_the_file() {
        let fee = usage(SPEC, &["strategy.fee=2"]);
        assert!(fee.starts_with("--set strategy.fee=2: [strategy] fee"), "{fee}");
        let key = usage(SPEC, &["strategy.windw=5"]);
        assert!(key.starts_with("--set strategy.windw=5: [strategy] unknown key `windw`"), "{key}");
        let section = usage(SPEC, &["report.top=5"]);
        assert!(section.starts_with("--set report.top=5: unknown section `report`"), "{section}");
        let range = usage(SPEC, &["grid.fast.from=0"]);
        assert!(range.starts_with("--set grid.fast.from=0: [grid] fast"), "{range}");
        // A mistake in the file is still the file's, whatever else is set.
        let file =
            usage(&SPEC.replace("name = \"sma_cross\"", "name = \"sma_cross\"\nfee = 3"), &["strategy.fill=close"]);
        assert!(file.starts_with("s.toml: [strategy] fee"), "{file}");
    }

    #[test]
    fn reports_spec_errors_on_one_line() {
        assert!(usage("[data\n", &[]).starts_with("s.toml:1: invalid TOML"));
        assert!(usage(&SPEC.replace("[output]", "[outptu]"), &[]).contains("unknown section `outptu`"));
        assert!(usage(&SPEC.replace("path = \"data", "file = \"data"), &[]).contains("[data] unknown key `file`"));
        assert!(usage(&SPEC.replace("out/sma.csv", "out/sma.txt"), &[]).contains("[output] path"));
        for message in [usage("", &[]), usage(&SPEC.replace("[grid]", "[gird]"), &[])] {
            assert!(!message.contains('\n'), "{message}");
        }
    }
}
