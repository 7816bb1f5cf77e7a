//! `--backend mpi`: outside an MPI world, the front end that runs the system's `mpirun`
//! with the matching flags (printing the command, so the user learns the real one);
//! inside one (started by `mpirun` or `srun`), a member of the sweep
//! (`backend::mpi`: rank 0 schedules and writes the table, every rank computes).
//!
//! The front end checks everything a rank would (the spec, the data, the output path),
//! the hostfile and the slots first, so bad input gets one line and exit 2 before
//! `mpirun` starts anything.

use crate::cli::{BindTo, MapBy, RunArgs};
use crate::error::{Failure, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Runs `sweeprun run ... --backend mpi`.
pub fn run(args: &RunArgs) -> Result<String> {
    #[cfg(feature = "mpi")]
    {
        if in_mpi_world() {
            super::mpi::run_in_world(args)
        } else {
            front_end(args)
        }
    }
    #[cfg(not(feature = "mpi"))]
    {
        let _ = args;
        Err(Failure::usage(
            "--backend mpi: this sweeprun was built without MPI support; \
             rebuild it with `cargo build --release --features mpi` (needs libopenmpi-dev or libmpich-dev)",
        ))
    }
}

/// Environment variables an MPI launcher sets in every rank (OpenMPI's mpirun, MPICH's
/// hydra, and PMIx under `srun --mpi=pmix`).
const WORLD_MARKERS: [&str; 4] = ["OMPI_COMM_WORLD_SIZE", "PMI_RANK", "PMI_SIZE", "PMIX_RANK"];

/// Whether this process was started by an MPI launcher (as a rank of a world).
pub fn in_mpi_world() -> bool {
    WORLD_MARKERS.iter().any(|name| std::env::var_os(name).is_some())
}

/// The world size the launcher that started this process announced, if it did.
pub fn launcher_world_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"]
        .iter()
        .find_map(|name| std::env::var(name).ok().and_then(|v| v.parse().ok()))
}

/// The rank the launcher that started this process gave it, if it did.
pub fn launcher_rank() -> Option<usize> {
    ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"]
        .iter()
        .find_map(|name| std::env::var(name).ok().and_then(|v| v.parse().ok()))
}

/// Which MPI implementation a library version string names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// Open MPI (Debian's default `mpirun`).
    OpenMpi,
    /// MPICH (hydra's `mpiexec`).
    Mpich,
}

impl Implementation {
    /// From `MPI_Get_library_version`'s text.
    pub fn from_version(version: &str) -> Option<Implementation> {
        if version.starts_with("Open MPI") {
            Some(Implementation::OpenMpi)
        } else if version.starts_with("MPICH") {
            Some(Implementation::Mpich)
        } else {
            None
        }
    }

    /// Its launchers, most specific first (Debian installs both side by side).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    fn launchers(self) -> &'static [&'static str] {
        match self {
            Implementation::OpenMpi => &["mpirun.openmpi", "mpirun"],
            Implementation::Mpich => &["mpiexec.mpich", "mpirun.mpich", "mpiexec"],
        }
    }

    /// Its name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Implementation::OpenMpi => "Open MPI",
            Implementation::Mpich => "MPICH",
        }
    }
}

/// The MPI library this binary is linked with, by name.
#[cfg(feature = "mpi")]
pub fn library_name() -> String {
    let version = mpi::environment::library_version().unwrap_or_default();
    match Implementation::from_version(&version) {
        Some(implementation) => implementation.name().to_string(),
        None => version.lines().next().unwrap_or("an unknown MPI").trim().to_string(),
    }
}

/// One host of a hostfile or `--host` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its name or address.
    pub name: String,
    /// Ranks it takes (`slots=N`); `None` when not said (mpirun then counts its cores).
    pub slots: Option<u64>,
}

/// Parses a hostfile in OpenMPI's syntax: one host per line, optional `slots=N` and
/// `max_slots=N`, `#` comments, blank lines. Errors name the line.
pub fn parse_hostfile(path: &Path, text: &str) -> Result<Vec<Host>> {
    let mut hosts = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("--hostfile {} line {}", path.display(), number + 1);
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or_default().to_string();
        if name.contains('=') {
            return Err(Failure::usage(format!("{}: expected a host name first, got `{name}`", at())));
        }
        let mut slots = None;
        for word in words {
            let (key, value) = word.split_once('=').ok_or_else(|| {
                Failure::usage(format!("{}: expected slots=N or max_slots=N after the host, got `{word}`", at()))
            })?;
            let count: u64 = value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                Failure::usage(format!("{}: {key} must be a whole number of at least 1, got `{value}`", at()))
            })?;
            match key {
                "slots" => slots = Some(count),
                "max_slots" | "max-slots" => {}
                _ => {
                    return Err(Failure::usage(format!(
                        "{}: unknown field `{key}` (expected slots=N or max_slots=N)",
                        at()
                    )))
                }
            }
        }
        hosts.push(Host { name, slots });
    }
    if hosts.is_empty() {
        return Err(Failure::usage(format!("--hostfile {}: names no host", path.display())));
    }
    Ok(hosts)
}

/// Parses `--host a:4,b:4` (OpenMPI 4.1: a host without `:N` counts one slot per listing).
pub fn parse_host_list(list: &str) -> Result<Vec<Host>> {
    let mut hosts: Vec<Host> = Vec::new();
    for item in list.split(',') {
        let item = item.trim();
        let (name, slots) = match item.split_once(':') {
            Some((name, slots)) => {
                let slots = slots.parse().ok().filter(|&n: &u64| n > 0).ok_or_else(|| {
                    Failure::usage(format!("--host: `{item}`: slots must be a whole number of at least 1"))
                })?;
                (name, slots)
            }
            None => (item, 1),
        };
        if name.is_empty() {
            return Err(Failure::usage(format!("--host: expected host[:slots],... got `{list}`")));
        }
        match hosts.iter_mut().find(|h| h.name == name) {
            Some(host) => host.slots = Some(host.slots.unwrap_or(0) + slots),
            None => hosts.push(Host { name: name.to_string(), slots: Some(slots) }),
        }
    }
    Ok(hosts)
}

/// Total slots, when every host says how many it has.
pub fn total_slots(hosts: &[Host]) -> Option<u64> {
    hosts.iter().map(|h| h.slots).sum()
}

/// What the front end decided to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The launcher program (e.g. `mpirun.openmpi`).
    pub program: String,
    /// Its arguments, ending with this executable's `run ... --backend mpi` command.
    pub args: Vec<OsString>,
    /// A hydra-syntax hostfile to write first (MPICH), and where.
    pub hydra_hostfile: Option<(PathBuf, String)>,
}

/// The launcher command for `args` (checked: slots, hostfile), running `exe`.
pub fn launch_command(
    args: &RunArgs,
    implementation: Implementation,
    program: &str,
    exe: &Path,
    local_cpus: u64,
) -> Result<Launch> {
    let from_file = match &args.hostfile {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::usage(format!("--hostfile {}: {e}", path.display())))?;
            Some(parse_hostfile(path, &text)?)
        }
        None => None,
    };
    let from_list = args.host.as_deref().map(parse_host_list).transpose()?;
    if from_file.is_some() && from_list.is_some() {
        return Err(Failure::usage("--host and --hostfile: give one of them"));
    }
    let hosts = from_file.clone().or(from_list);
    // Slots as mpirun counts them: the hosts' slots, or this machine's cores.
    let slots = match &hosts {
        Some(hosts) => total_slots(hosts),
        None => Some(local_cpus),
    };
    let np = args.np.or(slots);
    if let (Some(np), Some(slots), false) = (args.np, slots, args.oversubscribe) {
        if np > slots {
            let place = match (&args.hostfile, &args.host) {
                (Some(file), _) => format!("the hosts in {} have", file.display()),
                (None, Some(list)) => format!("--host {list} has"),
                (None, None) => "this machine has".to_string(),
            };
            return Err(Failure::usage(format!(
                "-np {np}: {place} only {}; lower -np or add --oversubscribe",
                crate::report::counted(slots, "slot")
            )));
        }
    }
    let oversubscribed = matches!((np, slots), (Some(np), Some(slots)) if np > slots);
    let mut line: Vec<OsString> = Vec::new();
    let mut push = |words: &[&str]| line.extend(words.iter().map(OsString::from));
    let mut hydra_hostfile = None;
    match implementation {
        Implementation::OpenMpi => {
            if let Some(np) = np {
                push(&["-np", &np.to_string()]);
            }
            if let Some(file) = &args.hostfile {
                push(&["--hostfile", &file.display().to_string()]);
            }
            if let Some(list) = &args.host {
                push(&["--host", list]);
            }
            push(&["--map-by", map_by_name(args.map_by)]);
            // An oversubscribed core cannot hold one rank each: as the local backend, do not pin.
            // `overload-allowed`: a hostfile's slots are the user's word; a node with fewer
            // cores than slots (mpirun refuses to bind there) then shares cores, visibly so
            // in --report-bindings, rather than failing with a lost-daemon message.
            let bind = if oversubscribed { BindTo::None } else { args.bind_to };
            push(&["--bind-to", bind_to_name(bind)]);
            if args.oversubscribe {
                push(&["--oversubscribe"]);
            }
            // OpenMPI passes the launcher's environment to remote ranks only when asked
            // (hydra passes all of it): each node's ranks look for their agent there.
            if std::env::var_os("SWEEPRUN_AGENT_SOCKET").is_some() {
                push(&["-x", "SWEEPRUN_AGENT_SOCKET"]);
            }
        }
        Implementation::Mpich => {
            if let Some(np) = np {
                push(&["-n", &np.to_string()]);
            }
            if let (Some(hosts), Some(file)) = (&from_file, &args.hostfile) {
                let text: String = hosts
                    .iter()
                    .map(|h| match h.slots {
                        Some(slots) => format!("{}:{slots}\n", h.name),
                        None => format!("{}\n", h.name),
                    })
                    .collect();
                let path = std::env::temp_dir().join(format!("sweeprun-hydra-hosts-{}", std::process::id()));
                push(&["-f", &path.display().to_string()]);
                let _ = file;
                hydra_hostfile = Some((path, text));
            }
            if let Some(list) = &args.host {
                push(&["-hosts", list]);
            }
            if args.bind_to == BindTo::Core && !oversubscribed {
                push(&["-bind-to", "core"]);
            }
            if args.map_by == MapBy::Socket {
                push(&["-map-by", "socket"]);
            }
        }
    }
    line.extend(args.mpi_args.iter().map(OsString::from));
    line.push(exe.as_os_str().to_owned());
    line.extend(forwarded_run_args(args)?);
    Ok(Launch { program: program.to_string(), args: line, hydra_hostfile })
}

fn map_by_name(map_by: MapBy) -> &'static str {
    match map_by {
        MapBy::Core => "core",
        MapBy::Socket => "socket",
        MapBy::Node => "node",
    }
}

fn bind_to_name(bind_to: BindTo) -> &'static str {
    match bind_to {
        BindTo::Core => "core:overload-allowed",
        BindTo::None => "none",
    }
}

/// The `run` arguments each rank gets: the sweep's own flags, with the spec and output as
/// absolute paths (ranks may start in another directory); not the front end's flags.
pub fn forwarded_run_args(args: &RunArgs) -> Result<Vec<OsString>> {
    forwarded_run_args_for(args, super::Backend::Mpi)
}

/// [`forwarded_run_args`] for ranks of `backend` (the SLURM job runs MPI ranks, or local
/// ones when built without MPI).
pub fn forwarded_run_args_for(args: &RunArgs, backend: super::Backend) -> Result<Vec<OsString>> {
    let absolute = |path: &Path, flag: &str| {
        std::path::absolute(path).map_err(|e| Failure::usage(format!("{flag} {}: {e}", path.display())))
    };
    let mut out: Vec<OsString> =
        vec!["run".into(), absolute(&args.spec, "spec")?.into(), "--backend".into(), backend.name().into()];
    let mut flag = |name: &str, value: String| {
        out.push(name.into());
        out.push(value.into());
    };
    if let Some(path) = &args.out {
        flag("--out", absolute(path, "--out")?.display().to_string());
    }
    flag("--top", args.top.to_string());
    flag("--sort-by", args.sort_by.clone());
    if let Some(key) = &args.group_by {
        flag("--group-by", key.clone());
    }
    for set in &args.set {
        flag("--set", set.clone());
    }
    if let Some(stats) = &args.stats {
        flag("--stats", stats.clone());
    }
    if !args.equity.is_empty() {
        flag("--equity", args.equity.iter().map(u64::to_string).collect::<Vec<_>>().join(","));
    }
    if let Some(tearsheet) = &args.tearsheet {
        flag("--tearsheet", tearsheet.clone());
    }
    if let Some(size) = args.chunk_size {
        flag("--chunk-size", size.to_string());
    }
    if let Some(blocks) = args.cscv_blocks {
        flag("--cscv-blocks", blocks.to_string());
    }
    match &args.thermal {
        crate::thermal::ThermalMode::Auto => {}
        crate::thermal::ThermalMode::Off => flag("--thermal", "off".into()),
        crate::thermal::ThermalMode::Sim(_) => {
            return Err(Failure::usage(
                "--thermal sim:MODEL: the simulated board runs beside local ranks only; with --backend mpi, \
                 each node's ranks register with that node's sweeprun-agent (--thermal auto)",
            ))
        }
    }
    if args.retry_failed {
        out.push("--retry-failed".into());
    }
    if args.resume {
        out.push("--resume".into());
    }
    if args.report_bindings {
        out.push("--report-bindings".into());
    }
    if args.report {
        out.push("--report".into());
    }
    Ok(out)
}

/// The command as a shell line (quoted where needed), to print.
pub fn shell_line(program: &str, args: &[OsString]) -> String {
    let quote = |word: &str| {
        let plain = !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@+%".contains(&b));
        if plain {
            word.to_string()
        } else {
            format!("'{}'", word.replace('\'', r"'\''"))
        }
    };
    std::iter::once(quote(program))
        .chain(args.iter().map(|a| quote(&a.to_string_lossy())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Finds the first of `names` on `PATH`.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
fn on_path(names: &[&str]) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    names.iter().find(|name| std::env::split_paths(&path).any(|dir| dir.join(name).is_file())).map(|n| n.to_string())
}

/// The front end: check, print the mpirun command, run it, pass its exit code on.
#[cfg(feature = "mpi")]
fn front_end(args: &RunArgs) -> Result<String> {
    let version = mpi::environment::library_version().unwrap_or_default();
    let implementation = Implementation::from_version(&version).ok_or_else(|| {
        Failure::usage(format!(
            "--backend mpi: unknown MPI library `{}` (expected Open MPI or MPICH)",
            version.lines().next().unwrap_or("")
        ))
    })?;
    let program = match std::env::var("SWEEPRUN_MPIRUN") {
        Ok(program) => program,
        Err(_) => on_path(implementation.launchers()).ok_or_else(|| {
            Failure::usage(format!(
                "--backend mpi: no {} launcher on PATH (looked for {}); install it or set SWEEPRUN_MPIRUN",
                implementation.name(),
                implementation.launchers().join(", ")
            ))
        })?,
    };
    let exe = std::env::current_exe().map_err(|e| Failure::runtime(format!("cannot find my own executable: {e}")))?;
    let cpus = sweeprun_hw::topology::usable_cpus().map(|c| c.len() as u64).unwrap_or(1);
    let launch = launch_command(args, implementation, &program, &exe, cpus)?;
    // Everything a rank would refuse is refused here, before mpirun starts anything.
    let out = crate::run::check(args)?;
    say!("sweeprun: running {}", shell_line(&launch.program, &launch.args));
    if let Some((path, text)) = &launch.hydra_hostfile {
        std::fs::write(path, text).map_err(|e| Failure::runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    let ran = std::process::Command::new(&launch.program)
        .args(&launch.args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            let relayed = relay(child.stderr.take().expect("piped stderr"));
            child.wait().map(|status| (relayed, status))
        });
    if let Some((path, _)) = &launch.hydra_hostfile {
        let _ = std::fs::remove_file(path);
    }
    let (relayed, status) = ran.map_err(|e| Failure::runtime(format!("cannot run {}: {e}", launch.program)))?;
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let journal = crate::ledger::journal_path(&out);
    outcome(code, crate::signals::interrupted(), &relayed, &journal)
}

/// What the front end saw on mpirun's stderr.
#[derive(Debug, Default)]
pub struct Relayed {
    /// Rank 0's closing line when it failed (`sweeprun: error: ...` or
    /// `sweeprun: interrupted...`), held back: the front end prints one closing line.
    pub final_line: Option<String>,
    /// mpirun's own messages (its banners and its agents' errors), not shown as they came.
    pub mpirun_lines: Vec<String>,
}

/// Passes the ranks' lines on to stderr as they come (progress, binding reports) and keeps
/// rank 0's closing line and mpirun's own banners aside: the front end sums up in one line.
#[cfg(feature = "mpi")]
fn relay(stderr: std::process::ChildStderr) -> Relayed {
    use std::io::BufRead;
    let mut relayed = Relayed::default();
    let verbose = std::env::var_os("SWEEPRUN_MPIRUN_VERBOSE").is_some();
    for line in std::io::BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if line.starts_with("sweeprun: error: ") || line.starts_with("sweeprun: interrupted") {
            relayed.final_line = Some(line);
        } else if is_sweeprun_line(&line) || verbose {
            say!("{line}");
        } else {
            relayed.mpirun_lines.push(line);
        }
    }
    relayed
}

/// Whether a line on mpirun's stderr is one of sweeprun's (not mpirun's).
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
fn is_sweeprun_line(line: &str) -> bool {
    line.starts_with("sweeprun") || (line.starts_with('[') && line.contains("] MCW rank "))
}

/// The front end's result from mpirun's exit code, whether the front end itself was
/// interrupted (Ctrl-C reaches it and mpirun alike), and what was relayed. Exit codes keep
/// their contract: rank 0's own (0, 2 bad input, 130 interrupted); a rank that died (mpirun
/// then stops the others, rank 0 included) or a job mpirun could not start is 1, with one
/// line naming the cause from mpirun's messages and where the results so far are.
pub fn outcome(code: i32, interrupted: bool, relayed: &Relayed, journal: &Path) -> Result<String> {
    let kept = if journal.exists() {
        format!("; results so far are kept in {}* (run the same command with --resume to finish)", journal.display())
    } else {
        String::new()
    };
    let rank0 = relayed.final_line.as_deref();
    let rank0_interrupted =
        rank0.and_then(|line| line.strip_prefix("sweeprun: ")).filter(|m| m.starts_with("interrupted"));
    if interrupted {
        return Err(Failure::Interrupted(
            rank0_interrupted.map_or_else(|| format!("interrupted{kept}"), str::to_string),
        ));
    }
    if died(&relayed.mpirun_lines) {
        return Err(Failure::Runtime(format!("{}{kept}", mpirun_cause(code, &relayed.mpirun_lines))));
    }
    if let Some(message) = rank0_interrupted {
        return Err(Failure::Interrupted(message.to_string()));
    }
    if let Some(message) = rank0.and_then(|line| line.strip_prefix("sweeprun: error: ")) {
        return Err(if code == 2 { Failure::usage(message) } else { Failure::runtime(message) });
    }
    match code {
        0 => Ok(String::new()),
        130 => Err(Failure::Interrupted(format!("interrupted{kept}"))),
        _ => Err(Failure::Runtime(format!("{}{kept}", mpirun_cause(code, &relayed.mpirun_lines)))),
    }
}

/// Whether mpirun says a rank died (OpenMPI's "noticed that process rank N ... exited on
/// signal", MPICH's "BAD TERMINATION").
fn died(lines: &[String]) -> bool {
    lines.iter().any(|l| l.contains(" noticed that process rank ") || l.contains("BAD TERMINATION"))
}

/// mpirun's reason for a failed job, in one line.
fn mpirun_cause(code: i32, lines: &[String]) -> String {
    let text: Vec<&str> = lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty() && !l.starts_with("---")).collect();
    // OpenMPI: "mpirun noticed that process rank 2 with PID 0 on node vm exited on signal 9 (Killed)."
    if let Some(noticed) = text.iter().find_map(|l| l.split_once(" noticed that process ").map(|(_, rest)| rest)) {
        return format!("the sweep was aborted: MPI {}", noticed.trim_end_matches('.'));
    }
    if text.is_empty() {
        return format!("mpirun failed (exit code {code})");
    }
    // Its first sentences say what went wrong (the rest is advice for MPI developers).
    let summary: Vec<&str> = text.iter().take(3).copied().collect();
    format!("mpirun failed (exit code {code}): {}", summary.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn run_args(words: &[&str]) -> RunArgs {
        let mut argv = vec!["sweeprun", "run", "spec.toml"];
        argv.extend_from_slice(words);
        let Command::Run(args) =
            Cli::try_parse_from(crate::cli::normalize_args(argv.iter().map(OsString::from))).unwrap().command
        else {
            panic!()
        };
        *args
    }

    #[test]
    fn hostfiles_in_openmpi_syntax_are_read_and_bad_lines_named() {
        let path = Path::new("hosts");
        let hosts =
            parse_hostfile(path, "# the cluster\nnode1 slots=4\nnode2 slots=4 max_slots=8  # comment\n\nnode3\n")
                .unwrap();
        assert_eq!(hosts.len(), 3);
        assert_eq!(hosts[0], Host { name: "node1".into(), slots: Some(4) });
        assert_eq!(hosts[2].slots, None);
        assert_eq!(total_slots(&hosts), None, "node3's slots are mpirun's to count");
        assert_eq!(total_slots(&hosts[..2]), Some(8));
        for (text, expected) in [
            ("", "--hostfile hosts: names no host"),
            ("# only a comment\n", "--hostfile hosts: names no host"),
            ("node1 slots=four\n", "--hostfile hosts line 1: slots must be a whole number of at least 1, got `four`"),
            ("node1\nnode2 slots=0\n", "--hostfile hosts line 2: slots must be a whole number of at least 1, got `0`"),
            ("node1 cpus=4\n", "--hostfile hosts line 1: unknown field `cpus` (expected slots=N or max_slots=N)"),
            ("node1 4\n", "--hostfile hosts line 1: expected slots=N or max_slots=N after the host, got `4`"),
            ("slots=4\n", "--hostfile hosts line 1: expected a host name first, got `slots=4`"),
        ] {
            assert_eq!(parse_hostfile(path, text).unwrap_err().to_string(), expected, "{text:?}");
        }
    }

    #[test]
    fn host_lists_count_slots_like_mpirun() {
        let hosts = parse_host_list("a:4,b:4,a").unwrap();
        assert_eq!(hosts, vec![Host { name: "a".into(), slots: Some(5) }, Host { name: "b".into(), slots: Some(4) }]);
        assert!(parse_host_list("a:0").is_err());
        assert!(parse_host_list("a:,b").is_err());
        assert!(parse_host_list(",").is_err());
    }

    #[test]
    fn the_openmpi_command_carries_the_flags_and_the_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let hostfile = dir.path().join("hosts");
        std::fs::write(&hostfile, "node1 slots=4\nnode2 slots=4\nnode3 slots=4\nnode4 slots=4\n").unwrap();
        let hostfile = hostfile.display().to_string();
        let args = run_args(&["-np", "16", "--hostfile", &hostfile, "--out", "/r/out.csv", "--top", "3"]);
        let exe = Path::new("/opt/sweeprun");
        let launch = launch_command(&args, Implementation::OpenMpi, "mpirun", exe, 2).unwrap();
        let line = shell_line(&launch.program, &launch.args);
        let spec = std::path::absolute("spec.toml").unwrap();
        assert_eq!(
            line,
            format!(
                "mpirun -np 16 --hostfile {hostfile} --map-by core --bind-to core:overload-allowed /opt/sweeprun run {} \
                 --backend mpi --out /r/out.csv --top 3 --sort-by sharpe",
                spec.display()
            )
        );
        let error =
            launch_command(&run_args(&["-np", "17", "--hostfile", &hostfile]), Implementation::OpenMpi, "m", exe, 2)
                .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("-np 17: the hosts in {hostfile} have only 16 slots; lower -np or add --oversubscribe")
        );
        let over = run_args(&["-np", "4", "--oversubscribe"]);
        let line =
            shell_line("mpirun", &launch_command(&over, Implementation::OpenMpi, "mpirun", exe, 2).unwrap().args);
        assert!(
            line.starts_with("mpirun -np 4 --map-by core --bind-to none --oversubscribe /opt/sweeprun run"),
            "{line}"
        );
        let error = launch_command(&run_args(&["-np", "4"]), Implementation::OpenMpi, "m", exe, 2).unwrap_err();
        assert_eq!(error.to_string(), "-np 4: this machine has only 2 slots; lower -np or add --oversubscribe");
    }

    #[test]
    fn the_mpich_command_uses_hydra_spellings_and_a_hydra_hostfile() {
        let dir = tempfile::tempdir().unwrap();
        let hostfile = dir.path().join("hosts");
        std::fs::write(&hostfile, "node1 slots=4\nnode2 slots=4\n").unwrap();
        let args = run_args(&["-np", "8", "--hostfile", &hostfile.display().to_string()]);
        let launch = launch_command(&args, Implementation::Mpich, "mpiexec.mpich", Path::new("/x"), 2).unwrap();
        let (path, text) = launch.hydra_hostfile.clone().unwrap();
        assert_eq!(text, "node1:4\nnode2:4\n");
        let line = shell_line(&launch.program, &launch.args);
        assert!(line.starts_with(&format!("mpiexec.mpich -n 8 -f {} -bind-to core /x run", path.display())), "{line}");
    }

    #[test]
    fn forwarded_arguments_mean_the_same_sweep() {
        let args = run_args(&[
            "--out",
            "o.jsonl",
            "--top",
            "4",
            "--sort-by",
            "cagr",
            "--group-by",
            "symbol",
            "--set",
            "strategy.fee=0.001",
            "--set",
            "grid.fast=[3]",
            "--stats",
            "qstrader",
            "--equity",
            "1,2",
            "--tearsheet",
            "top:2",
            "--chunk-size",
            "9",
            "--cscv-blocks",
            "12",
            "--resume",
            "--report-bindings",
            "-np",
            "3",
            "--hostfile",
            "h",
        ]);
        let forwarded = forwarded_run_args(&args).unwrap();
        let mut argv: Vec<OsString> = vec!["sweeprun".into()];
        argv.extend(forwarded);
        let Command::Run(again) = Cli::try_parse_from(argv).unwrap().command else { panic!() };
        assert_eq!(again.out, Some(std::path::absolute("o.jsonl").unwrap()));
        assert_eq!(again.spec, std::path::absolute("spec.toml").unwrap());
        assert_eq!((again.top, again.sort_by.as_str(), again.group_by.as_deref()), (4, "cagr", Some("symbol")));
        assert_eq!(again.set, args.set);
        assert_eq!(
            (again.stats, again.equity, again.tearsheet),
            (args.stats.clone(), args.equity.clone(), args.tearsheet.clone())
        );
        assert_eq!((again.chunk_size, again.resume, again.report_bindings), (Some(9), true, true));
        assert_eq!(again.cscv_blocks, Some(12));
        assert_eq!((again.np, again.hostfile), (None, None), "the front end's flags stay with mpirun");
        assert_eq!(again.backend, super::super::Backend::Mpi);
    }

    #[test]
    fn mpiruns_outcome_becomes_one_line_and_the_contract_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("r.csv.partial");
        let banner =
            |lines: &[&str]| Relayed { final_line: None, mpirun_lines: lines.iter().map(|l| l.to_string()).collect() };
        let killed = || {
            banner(&[
                "--------------------------------------------------------------------------",
                "Primary job  terminated normally, but 1 process returned",
                "a non-zero exit code. Per user-direction, the job has been aborted.",
                "--------------------------------------------------------------------------",
                "mpirun.openmpi noticed that process rank 2 with PID 0 on node vm exited on signal 9 (Killed).",
            ])
        };
        assert_eq!(outcome(0, false, &Relayed::default(), &journal), Ok(String::new()));
        assert_eq!(
            outcome(137, false, &killed(), &journal).unwrap_err(),
            Failure::runtime("the sweep was aborted: MPI rank 2 with PID 0 on node vm exited on signal 9 (Killed)")
        );
        std::fs::write(&journal, "").unwrap();
        let error = outcome(137, false, &killed(), &journal).unwrap_err();
        assert_eq!(error.exit_code(), 1);
        assert!(error.to_string().ends_with("(run the same command with --resume to finish)"), "{error}");
        // Rank 0 said why: its line is the closing line; the code is its own.
        let said = |line: &str| Relayed { final_line: Some(line.into()), mpirun_lines: vec![] };
        assert_eq!(outcome(2, false, &said("sweeprun: error: bad"), &journal), Err(Failure::usage("bad")));
        assert_eq!(outcome(1, false, &said("sweeprun: error: x"), &journal), Err(Failure::runtime("x")));
        assert_eq!(
            outcome(1, false, &said("sweeprun: interrupted; kept"), &journal),
            Err(Failure::Interrupted("interrupted; kept".into()))
        );
        // A rank killed: mpirun stops rank 0 (which says "interrupted"), but the cause is the death.
        let both = Relayed { final_line: Some("sweeprun: interrupted; kept".into()), ..killed() };
        let error = outcome(137, false, &both, &journal).unwrap_err();
        assert_eq!(error.exit_code(), 1);
        assert!(error.to_string().starts_with("the sweep was aborted: MPI rank 2 with PID 0"), "{error}");
        // Ctrl-C at the front end: 130 whatever mpirun returned, and it says where the results are.
        let interrupted = outcome(1, true, &Relayed::default(), &journal).unwrap_err();
        assert_eq!(interrupted.exit_code(), 130);
        assert!(interrupted.to_string().starts_with("interrupted; results so far are kept in"), "{interrupted}");
        let unreachable = banner(&[
            "ssh: Could not resolve hostname node5: Name or service not known",
            "---",
            "ORTE was unable to reliably start one or more daemons.",
        ]);
        assert_eq!(
            outcome(1, false, &unreachable, &dir.path().join("none")).unwrap_err().to_string(),
            "mpirun failed (exit code 1): ssh: Could not resolve hostname node5: Name or service not known \
             ORTE was unable to reliably start one or more daemons."
        );
        assert!(is_sweeprun_line("[node1:01234] MCW rank 3 bound to socket 0[core 3[hwt 0]]: [./././B]"));
        assert!(is_sweeprun_line("sweeprun: 2800/3830 combos (73%)"));
        assert!(!is_sweeprun_line("Primary job  terminated normally, but 1 process returned"));
    }

    #[test]
    fn library_versions_name_the_implementation() {
        assert_eq!(
            Implementation::from_version("Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4"),
            Some(Implementation::OpenMpi)
        );
        assert_eq!(
            Implementation::from_version("MPICH Version:\t4.0.2\nMPICH Release date:"),
            Some(Implementation::Mpich)
        );
        assert_eq!(Implementation::from_version("Intel(R) MPI Library"), None);
    }
}
