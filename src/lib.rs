//! Test support for sweeprun's end-to-end tests (`tests/`) and benches (`benches/`).
//!
//! Finds (and builds, once per test binary) the `sweeprun` executable of the same
//! profile, runs it, and locates the reference data (`tests/reference/`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The workspace root (where README.md and examples/ are).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `sweeprun` executable built with the same profile as the running test, built on
/// first use so a test never runs a stale binary.
pub fn sweeprun_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| built_bin("sweeprun", "sweeprun")).clone()
}

/// The `sweeprun-agent` executable, built like [`sweeprun_bin`].
pub fn agent_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| built_bin("sweeprun-agent", "sweeprun-agent")).clone()
}

/// Builds `bin` of `package` with the running test's profile and returns its path.
fn built_bin(package: &str, bin: &str) -> PathBuf {
    {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps layout").to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(workspace_root()).args(["build", "--quiet", "-p", package, "--bin", bin]);
        if release {
            build.arg("--release");
        }
        if let Some(target_dir) = profile_dir.parent() {
            build.env("CARGO_TARGET_DIR", target_dir);
        }
        let status = build.status().expect("run cargo build for the sweeprun binary");
        assert!(status.success(), "building the {bin} binary failed");
        let path = profile_dir.join(bin);
        assert!(path.exists(), "{} missing after cargo build", path.display());
        path
    }
}

/// `sweeprun` built with `--features mpi` against the MPI whose compiler wrapper is
/// `mpicc` (`mpicc.openmpi`, `mpicc.mpich`), in its own target directory `target/<dir>`
/// (mpi-sys does not notice a change of MPI, and the default build stays MPI-free).
/// Fails saying what to install when the MPI is missing.
pub fn mpi_build(dir: &str, mpicc: &str) -> PathBuf {
    let found = Command::new(mpicc).arg("-show").stdout(Stdio::null()).stderr(Stdio::null()).status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "{mpicc} not found: install openmpi-bin libopenmpi-dev mpich libmpich-dev libclang-dev \
         (scripts/test-all.sh does)"
    );
    let target = workspace_root().join("target").join(dir);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--quiet", "--release", "-p", "sweeprun", "--features", "mpi"])
        .env("CARGO_TARGET_DIR", &target)
        .env("MPICC", mpicc)
        .status()
        .expect("run cargo build --features mpi");
    assert!(status.success(), "building sweeprun with --features mpi against {mpicc} failed");
    target.join("release/sweeprun")
}

/// The `[command]` sweep over the Python fixture `tests/fixtures/command/backtest.py`
/// (tests/command.rs explains it): a = 1..=6 x b = 10, 20, 30, 40, 24 combos, a 4 s timeout,
/// the table at `out/results.csv`; the script is expected next to the spec.
pub const COMMAND_FIXTURE_SPEC: &str = r#"[command]
argv = ["python3", "{spec_dir}/backtest.py", "--a", "{a}", "--b", "{b}", "--dir", "{spec_dir}"]
timeout = "4s"

[grid]
a = { from = 1, to = 6 }
b = [10, 20, 30, 40]

[output]
path = "out/results.csv"
"#;

/// The `export KEY=VALUE ...` assignments of an env file the cluster scripts write
/// (`/run/sweeprun-cluster/*.sh`); a missing file fails the test with `hint`.
pub fn exported_vars(path: &Path, hint: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|_| panic!("{} missing: {hint}", path.display()));
    text.lines()
        .filter_map(|line| line.strip_prefix("export "))
        .flat_map(|assignments| assignments.split_whitespace())
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// A `sweeprun` command running in `dir`.
pub fn sweeprun(dir: &Path) -> Command {
    let mut command = Command::new(sweeprun_bin());
    command.current_dir(dir).env_remove("SWEEPRUN_DEBUG_CHUNK_DELAY_MS");
    command
}

/// Runs a command and returns its output.
pub fn output_of(command: &mut Command) -> Output {
    command.output().expect("spawn sweeprun")
}

/// The project's reference results, copied into the repository (`tests/reference/`, see
/// its `COPIED.md`), so a clone with nothing beside it runs every differential test.
pub fn reference_dir() -> PathBuf {
    let dir = workspace_root().join("tests/reference");
    assert!(dir.is_dir(), "{} is missing: it is part of the repository", dir.display());
    dir
}

/// The example GOOG data shipped in the repository.
pub fn example_goog() -> PathBuf {
    workspace_root().join("examples/data/GOOG.csv")
}

/// Writes a spec file into `dir` and returns its path.
pub fn write_spec(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write spec");
    path
}

/// The canonical SMA spec over the example GOOG data, writing to `out` (relative to the spec).
pub fn goog_spec(out: &str, extra_strategy: &str) -> String {
    format!(
        "[data]\npath = \"{}\"\n\n[strategy]\nname = \"sma_cross\"\n{extra_strategy}\n\n[grid]\n\
         fast = {{ from = 5, to = 100, step = 1 }}\nslow = {{ from = 10, to = 250, step = 5 }}\n\
         where = \"fast < slow\"\n\n[output]\npath = \"{out}\"\n",
        example_goog().display()
    )
}

/// Parses a CSV results table into a header and rows of cells.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines.next().expect("header").split(',').map(str::to_string).collect();
    let rows = lines.map(|l| l.split(',').map(str::to_string).collect()).collect();
    (header, rows)
}

/// A float cell of a results table: an empty cell (an undefined value) reads as NaN.
pub fn table_float(cell: &str) -> f64 {
    if cell.is_empty() {
        f64::NAN
    } else {
        cell.parse().unwrap_or_else(|e| panic!("cell `{cell}`: {e}"))
    }
}

/// Criterion's output directory (`$CRITERION_HOME`, else `criterion/` in the target
/// directory above this executable) holding `dir`.
fn criterion_dir(dir: &str) -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(PathBuf::from(home).join(dir));
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors().map(|a| a.join("criterion").join(dir)).find(|d| d.is_dir())
}

/// For benches: the median seconds per iteration that criterion saved for benchmark `id`
/// (its parts: group, then function and/or parameter) since `since` (`None` when it saved
/// none: filtered out, `--test`, `--list`).
pub fn criterion_median(id: &[&str], since: std::time::SystemTime) -> Option<f64> {
    // Criterion's file-name-safe form of each part (criterion::report::make_filename_safe).
    let safe = |s: &str| s.replace(['?', '"', '/', '\\', '*', '<', '>', ':', '|', '^'], "_");
    let mut file = criterion_dir(&safe(id[0]))?;
    file.extend(id[1..].iter().map(|part| safe(part)));
    file.push("new/estimates.json");
    if std::fs::metadata(&file).and_then(|m| m.modified()).ok()? < since {
        return None;
    }
    let estimates: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64().map(|ns| ns / 1e9)
}

/// The python of the project's venv (`scripts/qstrader-venv.sh`: QSTrader 0.3.0, pandas,
/// numpy; built from PyPI on first use), or a failed test saying what is missing.
pub fn venv_python() -> PathBuf {
    let script = workspace_root().join("scripts/qstrader-venv.sh");
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "bash scripts/qstrader-venv.sh failed (exit {:?}): this test needs the real QSTrader 0.3.0 \
         in a venv, built from PyPI (python3 >= 3.11 with venv support, network access to PyPI). \
         Its messages:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let python = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(python.is_file(), "scripts/qstrader-venv.sh printed {}, which is not a file", python.display());
    python
}
