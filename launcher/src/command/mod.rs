//! `[command]` sweeps: any program as the backtest. This module reads the section
//! ([`CommandSpec`]), expands the argv templates, and runs one combo's process
//! ([`CommandSpec::run`]): its own working directory, the parameters as arguments and
//! environment variables, a timeout that kills the whole process tree, retries, and the
//! row read from the last line of stdout (or from a file the command writes).
//!
//! A combo's outcome is a [`Record`]: one JSON line (`{"combo_id":..,"status":..,..}`) that
//! travels to the launcher like any chunk's rows, is journaled as it is, and becomes a
//! table row only at the end ([`crate::command_table`]), once every JSON key is known.

mod process;
mod record;

pub use process::{KILL_GRACE, OUTPUT_FILE_BYTES, STDERR_FILE, STDOUT_FILE, STDOUT_TAIL_BYTES};
pub use record::{parse_object, Members, OrderedObject, Record, Status};

use crate::grid::{ParamDef, ParamKind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The keys `[command]` accepts.
pub const COMMAND_KEYS: [&str; 6] = ["argv", "timeout", "retries", "output", "keep_workdirs", "spec_dir"];

/// Template fields every command has besides the grid parameters.
pub const BUILTINS: [&str; 3] = ["workdir", "combo_id", "spec_dir"];

/// The most retries a spec may ask for.
pub const MAX_RETRIES: i64 = 10;

/// A text with `{name}` fields (`{{` and `}}` stand for literal braces).
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Field(String),
}

impl Template {
    /// Parses `text`; errors say what is wrong with the braces.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_alphanumeric() || c == '_' => name.push(c),
                            _ => {
                                return Err(format!(
                                    "`{text}`: `{{` opens a field such as {{lookback}} that is not closed \
                                     by `}}` (write `{{{{` for a literal brace)"
                                ))
                            }
                        }
                    }
                    if name.is_empty() {
                        return Err(format!("`{text}`: empty field `{{}}` (write `{{{{}}}}` for literal braces)"));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(name));
                }
                '}' => return Err(format!("`{text}`: a lone `}}` (write `}}}}` for a literal brace)")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// The field names, in order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The text with every field replaced by `value(name)`.
    pub fn expand(&self, value: &dyn Fn(&str) -> String) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(text) => text.clone(),
                Part::Field(name) => value(name),
            })
            .collect()
    }

    /// The text if it has no fields.
    fn literal(&self) -> Option<String> {
        (self.fields().next().is_none()).then(|| self.expand(&|_| String::new()))
    }
}

/// A validated `[command]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandSpec {
    /// The program and its arguments, one template each.
    pub argv: Vec<Template>,
    /// Where the row comes from: a file the command writes (`{workdir}/stats.json`; a
    /// relative path is relative to the working directory), or `None` for the last line of
    /// stdout.
    pub output: Option<Template>,
    /// Wall-clock limit per attempt (paused time included).
    pub timeout: Option<Duration>,
    /// How often a combo that did not end `ok` is run again.
    pub retries: u32,
    /// Keep the working directories of `ok` combos too.
    pub keep_workdirs: bool,
    /// What `{spec_dir}` means, and what a relative program path resolves against.
    pub spec_dir: PathBuf,
    /// The grid parameters: every `[grid]` key but `where`, in name order, each an integer
    /// parameter if all its values are integers, else a number.
    pub params: Vec<ParamDef>,
}

impl CommandSpec {
    /// Reads `[command]` against the spec's `[grid]` table; `base_dir` is the spec's
    /// directory. Errors are one line starting with `[command]` or `[grid]`.
    pub fn from_table(table: &toml::Table, grid: &toml::Table, base_dir: &Path) -> Result<CommandSpec, String> {
        crate::spec::check_keys("command", table, &COMMAND_KEYS)?;
        let params = grid_params(grid)?;
        let names: Vec<&str> = params.iter().map(|p| p.name).collect();
        let template = |key: &str, text: &str| {
            let parsed = Template::parse(text).map_err(|e| format!("[command] {key}: {e}"))?;
            for field in parsed.fields() {
                if !names.contains(&field) && !BUILTINS.contains(&field) {
                    return Err(format!(
                        "[command] {key}: `{{{field}}}` is not a grid parameter (the grid has: {}; \
                         builtins: {{workdir}}, {{combo_id}}, {{spec_dir}}; write `{{{{` for a literal brace)",
                        if names.is_empty() { "none".to_string() } else { names.join(", ") }
                    ));
                }
            }
            Ok(parsed)
        };
        let argv = match table.get("argv") {
            None => {
                return Err("[command] missing key `argv` (e.g. argv = [\"python3\", \"bt.py\", \"{lookback}\"])".into())
            }
            Some(toml::Value::Array(items)) if items.is_empty() => {
                return Err("[command] argv: must not be empty (the program and its arguments)".into())
            }
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|item| match item.as_str() {
                    Some(text) => template("argv", text),
                    None => Err(format!("[command] argv: expected strings, got {}", item.type_str())),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => return Err(format!("[command] argv: expected a list of strings, got {}", other.type_str())),
        };
        if argv[0].literal().is_some_and(|program| program.is_empty()) {
            return Err("[command] argv: the program (first item) is empty".into());
        }
        let output = match table.get("output") {
            None => None,
            Some(toml::Value::String(text)) if !text.is_empty() => Some(template("output", text)?),
            Some(other) => {
                return Err(format!(
                    "[command] output: expected a file path such as \"{{workdir}}/stats.json\", got {other}"
                ))
            }
        };
        let timeout = match table.get("timeout") {
            None => None,
            Some(toml::Value::String(text)) => match humantime::parse_duration(text) {
                Ok(d) if !d.is_zero() => Some(d),
                Ok(_) => return Err(format!("[command] timeout: `{text}` is zero; leave it out for no limit")),
                Err(e) => {
                    return Err(format!(
                        "[command] timeout: `{text}` is not a duration such as \"90s\" or \"10m\" ({e})"
                    ))
                }
            },
            Some(toml::Value::Integer(secs)) if *secs > 0 => Some(Duration::from_secs(*secs as u64)),
            Some(other) => {
                return Err(format!(
                "[command] timeout: expected a duration such as \"10m\" or a positive number of seconds, got {other}"
            ))
            }
        };
        let retries = match table.get("retries") {
            None => 0,
            Some(toml::Value::Integer(n)) if (0..=MAX_RETRIES).contains(n) => *n as u32,
            Some(other) => {
                return Err(format!("[command] retries: expected an integer 0..={MAX_RETRIES}, got {other}"))
            }
        };
        let keep_workdirs = match table.get("keep_workdirs") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(other) => return Err(format!("[command] keep_workdirs: expected true or false, got {other}")),
        };
        let spec_dir = match table.get("spec_dir") {
            None => base_dir.to_path_buf(),
            Some(toml::Value::String(dir)) if !dir.is_empty() => crate::spec::normalize(&base_dir.join(dir)),
            Some(other) => return Err(format!("[command] spec_dir: expected a directory, got {other}")),
        };
        Ok(CommandSpec { argv, output, timeout, retries, keep_workdirs, spec_dir, params })
    }

    /// Checks that a program without fields can be started: an existing file (a relative
    /// path resolves against `spec_dir`) or a name found on `PATH`.
    pub fn check_program(&self) -> Result<(), String> {
        let Some(program) = self.argv[0].literal() else { return Ok(()) };
        let found = if program.contains('/') {
            self.program_path(&program).is_file()
        } else {
            std::env::var_os("PATH")
                .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(&program).is_file()))
        };
        if found {
            Ok(())
        } else {
            Err(format!("[command] argv: the program `{program}` is not a file nor on PATH"))
        }
    }

    /// A program path as run: relative paths with a `/` resolve against `spec_dir`.
    fn program_path(&self, program: &str) -> PathBuf {
        if program.contains('/') {
            self.spec_dir.join(program)
        } else {
            PathBuf::from(program)
        }
    }

    /// Runs combo `id` (its parameters as `(name, text)` in grid order) in its working
    /// directory `<runs_dir>/<id>`, with up to [`CommandSpec::retries`] more attempts.
    /// `shown_runs_dir` is how the table names `runs_dir` (relative to the table). An
    /// error means the combo could not be attempted at all (e.g. no working directory).
    pub fn run(
        &self,
        runs_dir: &Path,
        shown_runs_dir: &str,
        id: u64,
        params: &[(&str, String)],
    ) -> Result<Record, String> {
        let workdir = runs_dir.join(id.to_string());
        let value = |name: &str| match name {
            "workdir" => workdir.display().to_string(),
            "combo_id" => id.to_string(),
            "spec_dir" => self.spec_dir.display().to_string(),
            _ => params.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_default(),
        };
        let mut argv: Vec<String> = self.argv.iter().map(|t| t.expand(&value)).collect();
        argv[0] = self.program_path(&argv[0]).display().to_string();
        let mut env: Vec<(String, String)> = params
            .iter()
            .map(|(name, text)| (format!("SWEEPRUN_PARAM_{}", name.to_uppercase()), text.clone()))
            .collect();
        env.push(("SWEEPRUN_COMBO_ID".into(), id.to_string()));
        env.push(("SWEEPRUN_WORKDIR".into(), workdir.display().to_string()));
        env.push(("SWEEPRUN_SPEC_DIR".into(), self.spec_dir.display().to_string()));
        // A relative `output` is the command's: relative to its working directory.
        let output_file = self.output.as_ref().map(|t| workdir.join(t.expand(&value)));
        let started = Instant::now();
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let outcome = process::attempt(&workdir, &argv, &env, self.timeout, output_file.as_deref())?;
            if outcome.status == Status::Ok || attempts > self.retries {
                break outcome;
            }
        };
        let kept = outcome.status != Status::Ok || self.keep_workdirs;
        if !kept {
            std::fs::remove_dir_all(&workdir)
                .map_err(|e| format!("cannot remove the working directory {}: {e}", workdir.display()))?;
        }
        Ok(Record {
            combo_id: id,
            status: outcome.status,
            exit_code: outcome.exit_code,
            stderr: if kept { format!("{shown_runs_dir}/{id}/{STDERR_FILE}") } else { String::new() },
            attempts,
            elapsed_s: started.elapsed().as_secs_f64(),
            row: outcome.row,
        })
    }
}

/// The parameters of a command's grid: every key but `where`, in name order; integer
/// parameters where every value written is an integer, else numbers (any finite value).
fn grid_params(grid: &toml::Table) -> Result<Vec<ParamDef>, String> {
    fn all_integers(value: &toml::Value) -> bool {
        match value {
            toml::Value::Integer(_) => true,
            toml::Value::Array(items) => items.iter().all(all_integers),
            toml::Value::Table(range) => range.values().all(all_integers),
            _ => false,
        }
    }
    let mut params = Vec::new();
    for (name, value) in grid.iter().filter(|(name, _)| name.as_str() != "where") {
        if BUILTINS.contains(&name.as_str()) {
            return Err(format!("[grid] {name}: the name is taken by the builtin {{{name}}}; rename the parameter"));
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || name.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(format!(
                "[grid] {name}: a command's parameter names are letters, digits and `_` (they become \
                 {{{{name}}}} fields and SWEEPRUN_PARAM_ variables)"
            ));
        }
        if ["combo_id", "status", "exit_code", "stderr"].contains(&name.as_str()) {
            return Err(format!("[grid] {name}: the name is taken by a column of the table; rename the parameter"));
        }
        let kind = if all_integers(value) {
            ParamKind::Int { min: i64::MIN }
        } else {
            ParamKind::Float { min: f64::NEG_INFINITY }
        };
        // Leaked once per spec read: grids name their parameters with `&'static str`.
        params.push(ParamDef { name: Box::leak(name.clone().into_boxed_str()), kind });
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand_fields_and_escaped_braces() {
        let t = Template::parse("--n={n}/{{x}}{combo_id}").unwrap();
        assert_eq!(t.fields().collect::<Vec<_>>(), ["n", "combo_id"]);
        assert_eq!(t.expand(&|name| format!("<{name}>")), "--n=<n>/{x}<combo_id>");
        for bad in ["{", "{a", "}", "{}", "{a b}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_timeout_kills_the_commands_descendants_too() {
        let dir = tempfile::tempdir().unwrap();
        let grid: toml::Table = "n = [1]".parse().unwrap();
        let table: toml::Table =
            "argv = [\"sh\", \"-c\", \"sleep 60 & echo $! > ../grandchild; wait\"]\ntimeout = \"1s\"".parse().unwrap();
        let spec = CommandSpec::from_table(&table, &grid, dir.path()).unwrap();
        let runs = dir.path().join("runs");
        let started = Instant::now();
        let record = spec.run(&runs, "t.csv.runs", 0, &[("n", "1".into())]).unwrap();
        assert_eq!((record.status, record.exit_code, record.attempts), (Status::Timeout, None, 1));
        assert_eq!(record.stderr, "t.csv.runs/0/stderr");
        assert!(runs.join("0/stderr").exists(), "a timed-out combo keeps its directory");
        assert!(started.elapsed() < KILL_GRACE, "the shell dies at SIGTERM: no grace period waited");
        let grandchild: u32 = std::fs::read_to_string(runs.join("grandchild")).unwrap().trim().parse().unwrap();
        // Signalled, it dies as soon as it is scheduled: gone, or a zombie waiting for a
        // PID 1 that does not reap (as in some containers).
        let dead = || {
            std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                .map_or(true, |stat| stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dead() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(dead(), "the shell's background sleep was killed too");
    }

    #[test]
    fn retries_run_a_failing_combo_again_and_keep_the_last_attempt() {
        let dir = tempfile::tempdir().unwrap();
        let grid: toml::Table = "n = [1]".parse().unwrap();
        // Fails on the first attempt (no marker yet), prints its row on the second.
        let script =
            "if [ -e ../marker ]; then echo '{{\"n\": '$SWEEPRUN_PARAM_N'}}'; else touch ../marker; exit 3; fi";
        let table: toml::Table = format!("argv = [\"sh\", \"-c\", {script:?}]\nretries = 1").parse().unwrap();
        let spec = CommandSpec::from_table(&table, &grid, dir.path()).unwrap();
        let runs = dir.path().join("runs");
        let record = spec.run(&runs, "r", 0, &[("n", "1".into())]).unwrap();
        assert_eq!((record.status, record.exit_code, record.attempts), (Status::Ok, Some(0), 2));
        assert_eq!(record.row, vec![("n".to_string(), serde_json::Value::from(1))]);
        assert!(!runs.join("0").exists(), "an ok combo's directory is removed");
    }

    #[test]
    fn command_sections_are_checked() {
        let grid: toml::Table = "a = [1, 2]\nb = { from = 0.5, to = 1.5, step = 0.5 }".parse().unwrap();
        let parse = |text: &str| {
            let table: toml::Table = text.parse().unwrap();
            CommandSpec::from_table(&table, &grid, Path::new("/spec"))
        };
        let spec = parse("argv = [\"bt\", \"{a}\", \"{b}\", \"{{c}}\"]\ntimeout = \"1m 30s\"\nretries = 2").unwrap();
        assert_eq!(spec.timeout, Some(Duration::from_secs(90)));
        assert_eq!(
            spec.params.iter().map(|p| (p.name, p.kind)).collect::<Vec<_>>()[0],
            ("a", ParamKind::Int { min: i64::MIN })
        );
        assert!(matches!(spec.params[1].kind, ParamKind::Float { .. }));
        for (text, expected) in [
            ("argv = []", "[command] argv: must not be empty"),
            ("argv = [\"bt\", \"{c}\"]", "[command] argv: `{c}` is not a grid parameter"),
            ("argv = [\"bt\"]\ntimeout = \"soon\"", "[command] timeout: `soon` is not a duration"),
            ("argv = [\"bt\"]\ntimeout = 0", "[command] timeout: expected"),
            ("argv = [\"bt\"]\nretries = -1", "[command] retries: expected an integer"),
            ("argv = [\"bt\"]\nretires = 1", "[command] unknown key `retires`"),
            ("argv = [\"bt\"]\noutput = \"{workdir}/{x}.json\"", "[command] output: `{x}`"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.starts_with(expected), "{text}: {error}");
        }
    }
}
