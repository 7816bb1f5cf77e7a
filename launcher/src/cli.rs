//! Command-line definition (clap).

use crate::backend::Backend;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  sweeprun run examples/sma_goog.toml
  sweeprun run examples/sma_goog.toml -np 4 --out results/goog.jsonl --top 5
  sweeprun run examples/sma_goog.toml --set strategy.fee=0.001 --set strategy.fill=close
  sweeprun run examples/sma_goog.toml --resume          # finish an interrupted sweep
  sweeprun run examples/command_sweep.toml -np 2        # any command per combo ([command])
  sweeprun run examples/command_sweep.toml --resume --retry-failed   # rerun non-ok combos only
  sweeprun run examples/sma_goog.toml --backend mpi -np 16 --hostfile hosts   # runs mpirun
  sweeprun run examples/sma_goog.toml --backend slurm --nodes 4 --ntasks-per-node 4   # a SLURM job
  sweeprun run examples/sma_goog.toml --backend slurm --nodes 4 --no-wait   # prints the job id
  sweeprun run examples/command_sweep.toml --backend slurm --slurm-array=8   # a job array
  sweeprun status results/sma_goog.csv                 # the job's state and progress
  sweeprun collect results/sma_goog.csv                # wait for it, print the summary
  sweeprun cancel results/sma_goog.csv                 # scancel (resume later with --resume)
  sweeprun run examples/sma_goog_large.toml --thermal sim:pi4-case-fan-off     # under a simulated hot board
  sweeprun run examples/sma_sp20.toml --top 3 --group-by symbol   # 20 stocks, best 3 of each
  sweeprun run examples/momentum_etf5.toml --tearsheet top:3   # QSTrader-style JSON per combo
  sweeprun bench --data examples/data/GOOG.csv
  sweeprun verify results/sma_goog.csv                 # the table is the one the sweep wrote
  sweeprun run examples/sma_goog.toml --report         # and results/sma_goog.csv.report.html
  sweeprun report results/sma_goog.csv --x slow --y fast   # heatmap, top K, equity, overfitting

Exit codes: 0 done, 1 runtime failure, 2 bad input or usage (nothing written),
130 interrupted (partial results kept; finish with --resume).";

/// Backtest parameter sweeps on every core: expands a grid, runs it over N rank
/// processes, gathers every result exactly once into one table.
#[derive(Debug, Parser)]
#[command(name = "sweeprun", version, after_help = EXAMPLES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a sweep spec and write its results table.
    #[command(after_help = EXAMPLES)]
    Run(Box<RunArgs>),
    /// Measure the kernel's throughput (combo-bars per second) on one core.
    Bench(BenchArgs),
    /// Check a finished table against the BLAKE3 digest in its sidecar `<TABLE>.meta.json`
    /// (exit 0 same, 1 different, 2 unreadable).
    Verify {
        /// The results table (.csv or .jsonl).
        table: PathBuf,
    },
    /// Write a finished sweep's report: one self-contained HTML file `<TABLE>.report.html`
    /// (heatmap, top K, equity curves, overfitting, provenance); prints its path.
    #[command(after_help = "Examples:\n  sweeprun report results/sma_goog.csv\n  \
                            sweeprun report results/sma_goog.csv --x slow --y fast --metric cagr\n  \
                            sweeprun report results/sma_sp20.csv --x fast --y slow --where 'symbol == \"AAPL\"'\n  \
                            sweeprun report results/momentum_etf5.csv --svg   # the heatmap alone")]
    Report(crate::sweep_report::ReportArgs),
    /// The state and progress of the SLURM job writing a table (`--backend slurm`).
    #[command(after_help = "Example:\n  sweeprun status results/sma_goog.csv")]
    Status {
        /// The results table the job writes (its `--out`).
        out: PathBuf,
    },
    /// Follow the SLURM job writing a table to its end and print the summary (after
    /// `--no-wait`, or a Ctrl-C that detached).
    #[command(after_help = "Example:\n  sweeprun collect results/sma_goog.csv")]
    Collect {
        /// The results table the job writes (its `--out`).
        out: PathBuf,
    },
    /// Cancel the SLURM job writing a table (`scancel`); its results so far stay for `--resume`.
    #[command(after_help = "Example:\n  sweeprun cancel results/sma_goog.csv")]
    Cancel {
        /// The results table the job writes (its `--out`).
        out: PathBuf,
    },
    /// Internal: one local rank process (started by `sweeprun run`).
    #[command(name = "__rank", hide = true)]
    Rank {
        /// CPU to pin this rank to.
        #[arg(long)]
        pin_cpu: Option<usize>,
        /// This rank's number (for messages and --report-bindings).
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// Print this rank's binding, as mpirun's --report-bindings.
        #[arg(long)]
        report_bindings: bool,
        /// Die with this process (the launcher): exit at once if it is already gone.
        #[arg(long)]
        parent: Option<u32>,
    },
    /// Internal: runs one combo of a `[command]` sweep in its own process (a SLURM array
    /// task) and writes its record to `<out>.runs/records/<id>.json`.
    #[command(name = "__combo", hide = true)]
    Combo(ComboArgs),
    /// Internal: assembles a `[command]` sweep's table and sidecar from its per-combo
    /// records (after the array tasks ran), as `sweeprun run` would have written them.
    #[command(name = "__gather", hide = true)]
    Gather(GatherArgs),
    /// Internal: holds an MPI rank's registration with its node's agent (started by the rank).
    #[command(name = "__agent-guard", hide = true)]
    AgentGuard {
        /// The rank's process group.
        #[arg(long)]
        group: u32,
        /// The rank's number (for messages).
        #[arg(long)]
        rank: usize,
    },
}

/// How ranks are spread over the machine(s) (`--map-by`, as OpenMPI's mpirun).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MapBy {
    /// Fill each node's cores in order.
    Core,
    /// Round robin over sockets (packages).
    Socket,
    /// Round robin over nodes (MPI).
    Node,
}

/// How ranks are placed on CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BindTo {
    /// One rank per CPU (when there are at least as many CPUs as ranks).
    Core,
    /// Let the OS scheduler place ranks.
    None,
}

/// `sweeprun run` arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The sweep spec (TOML). Relative paths inside it resolve against its directory.
    pub spec: PathBuf,
    /// Number of rank processes [default: the usable CPUs]. `-np N` works too.
    #[arg(short = 'n', long = "np", value_name = "N", allow_negative_numbers = true)]
    pub np: Option<u64>,
    /// Where ranks run: local processes, MPI ranks started by the system's mpirun
    /// (needs a sweeprun built with `--features mpi`), or a SLURM batch job (see the SLURM
    /// options).
    #[arg(long, value_enum, default_value_t = Backend::Local)]
    pub backend: Backend,
    /// Pin each rank to one CPU, or not.
    #[arg(long = "bind-to", value_enum, default_value_t = BindTo::Core)]
    pub bind_to: BindTo,
    /// How ranks are spread: over cores in order, round robin over sockets, or (MPI) by
    /// node. As OpenMPI's mpirun.
    #[arg(long = "map-by", value_enum, default_value_t = MapBy::Core)]
    pub map_by: MapBy,
    /// Print each rank's host and the cores it is bound to, as mpirun does.
    #[arg(long = "report-bindings")]
    pub report_bindings: bool,
    /// MPI: the hosts and their slots, in OpenMPI's hostfile syntax (`node1 slots=4`).
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// MPI: hosts and slots on the command line, e.g. `--host node1:4,node2:4`.
    #[arg(long, value_name = "HOST[:SLOTS],...")]
    pub host: Option<String>,
    /// MPI: allow more ranks than slots (as mpirun's --oversubscribe).
    #[arg(long)]
    pub oversubscribe: bool,
    /// The node agent: `auto` registers the local ranks with this node's `sweeprun-agent`
    /// if one runs (with `--backend mpi`, each node's ranks with that node's agent);
    /// `sim:MODEL` runs an agent on a simulated Pi 4B inside this sweep, local ranks only
    /// (pi4-bare, pi4-heatsink, pi4-case-fan-on, pi4-case-fan-off); `off`.
    #[arg(long, default_value = "auto", value_name = "auto|off|sim:MODEL")]
    pub thermal: crate::thermal::ThermalMode,
    /// MPI: one more argument for mpirun, e.g. `--mpi-arg=--mca --mpi-arg=btl_tcp_if_include --mpi-arg=eth0`
    /// (repeatable).
    #[arg(long = "mpi-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub mpi_args: Vec<String>,
    /// Results file (.csv or .jsonl), relative to the current directory [default: the spec's output path].
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Finish an interrupted sweep from its `<out>.partial` journal.
    #[arg(long)]
    pub resume: bool,
    /// With --resume, `[command]` sweeps: run again the combos whose row is not `ok`
    /// (failed, timeout, bad_output), and nothing else; also after the sweep finished.
    /// Example: `sweeprun run sweep.toml --resume --retry-failed`.
    #[arg(long = "retry-failed", requires = "resume")]
    pub retry_failed: bool,
    /// Rows in the summary printed on stdout (0: none).
    #[arg(long, default_value_t = 10, value_name = "K")]
    pub top: usize,
    /// Metric the summary ranks by.
    #[arg(long = "sort-by", default_value = "sharpe", value_name = "METRIC")]
    pub sort_by: String,
    /// Rank within each value of this grid key (e.g. `symbol`): the summary shows the top K
    /// of each, in grid order.
    #[arg(long = "group-by", value_name = "KEY")]
    pub group_by: Option<String>,
    /// Override a spec value, e.g. `--set strategy.fee=0.001` (repeatable).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub set: Vec<String>,
    /// Statistics convention [default: standard for sma_cross, qstrader for momentum_taa].
    #[arg(long, value_name = "standard|qstrader")]
    pub stats: Option<String>,
    /// Write the tearsheet (QSTrader JSON statistics, daily equity, fills) of these combo ids.
    #[arg(long, value_name = "COMBO_ID", value_delimiter = ',')]
    pub equity: Vec<u64>,
    /// Write the tearsheets of the K best combos by --sort-by, e.g. `top:5`.
    #[arg(long, value_name = "top:K")]
    pub tearsheet: Option<String>,
    /// Combos per chunk handed to a rank [default: guided: 1/(4 x ranks) of what remains,
    /// 16..4096].
    #[arg(long = "chunk-size", value_name = "COMBOS")]
    pub chunk_size: Option<u64>,
    /// Also write the sweep's HTML report, `<OUT>.report.html` (as `sweeprun report OUT`).
    #[arg(long)]
    pub report: bool,
    /// Overfitting statistics (deflated Sharpe ratio; PBO by combinatorially symmetric
    /// cross-validation over S blocks of the returns): S even, 2..=24; 0 turns them off
    /// [default: 8 for a built-in strategy; none for a `[command]` sweep].
    #[arg(long = "cscv-blocks", value_name = "S")]
    pub cscv_blocks: Option<usize>,
    /// `--backend slurm` options.
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

/// `--backend slurm`: the batch job's shape and how to follow it.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "SLURM (--backend slurm)")]
pub struct SlurmArgs {
    /// Nodes for the job [default: 1].
    #[arg(long, value_name = "N")]
    pub nodes: Option<u64>,
    /// Ranks per node [default: the CPUs of the partition's nodes].
    #[arg(long = "ntasks-per-node", value_name = "K")]
    pub ntasks_per_node: Option<u64>,
    /// The partition [default: the cluster's default one].
    #[arg(long, value_name = "NAME")]
    pub partition: Option<String>,
    /// The job's time limit, in sbatch's syntax (minutes, `H:MM:SS`, `D-HH`); past it
    /// SLURM stops the job and `--resume` finishes the sweep.
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    /// The account to charge.
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// One more `#SBATCH` option as `--opt` or `--opt=value`, e.g. `--sbatch-arg=--exclusive`,
    /// `--sbatch-arg=--mem=2G` (repeatable; options the script sets itself, such as
    /// `--output` or `--nodes`, are refused with the flag to use instead).
    #[arg(long = "sbatch-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
    /// srun's MPI plugin for the ranks (`srun --mpi=list` shows the cluster's) [default:
    /// pmix].
    #[arg(long = "slurm-mpi", value_name = "TYPE")]
    pub slurm_mpi: Option<String>,
    /// Submit, print the job id and return (`sweeprun collect OUT` waits for it later).
    #[arg(long = "no-wait")]
    pub no_wait: bool,
    /// `[command]` sweeps: one SLURM array task per combo (`--array=0-(N-1)%K`, at most K at
    /// once; no K: as many as SLURM allows), then a job that gathers the table.
    #[arg(long = "slurm-array", value_name = "K", num_args = 0..=1, default_missing_value = "0")]
    pub slurm_array: Option<u64>,
}

impl SlurmArgs {
    /// The first SLURM option given, for "only with --backend slurm".
    pub fn first_given(&self) -> Option<&'static str> {
        [
            (self.nodes.is_some(), "--nodes"),
            (self.ntasks_per_node.is_some(), "--ntasks-per-node"),
            (self.partition.is_some(), "--partition"),
            (self.time.is_some(), "--time"),
            (self.account.is_some(), "--account"),
            (!self.sbatch_args.is_empty(), "--sbatch-arg"),
            (self.slurm_mpi.is_some(), "--slurm-mpi"),
            (self.no_wait, "--no-wait"),
            (self.slurm_array.is_some(), "--slurm-array"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

/// `sweeprun __combo` arguments: the sweep as `sweeprun run` reads it, and one combo id.
#[derive(Debug, clap::Args)]
pub struct ComboArgs {
    /// The sweep spec (TOML), as for `sweeprun run`.
    pub spec: PathBuf,
    /// The combo to run [default: $SLURM_ARRAY_TASK_ID].
    #[arg(long, value_name = "COMBO_ID")]
    pub id: Option<u64>,
    /// Results file, as for `sweeprun run` (the record goes under `<out>.runs/`).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Override a spec value, as for `sweeprun run` (repeatable).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub set: Vec<String>,
}

/// `sweeprun __gather` arguments: the sweep as `sweeprun run` reads it, and its summary.
#[derive(Debug, clap::Args)]
pub struct GatherArgs {
    /// The sweep spec (TOML), as for `sweeprun run`.
    pub spec: PathBuf,
    /// Results file, as for `sweeprun run`.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Override a spec value, as for `sweeprun run` (repeatable).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub set: Vec<String>,
    /// Rows in the summary printed on stdout (0: none).
    #[arg(long, default_value_t = 10, value_name = "K")]
    pub top: usize,
    /// Column the summary ranks by.
    #[arg(long = "sort-by", default_value = "sharpe", value_name = "METRIC")]
    pub sort_by: String,
    /// Rank within each value of this grid key.
    #[arg(long = "group-by", value_name = "KEY")]
    pub group_by: Option<String>,
}

/// `sweeprun bench` arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  sweeprun bench                                   # sma_cross, GOOG, fast 2..200 x slow 5..500
  sweeprun bench --direction long_short --fee 0.001
  sweeprun bench examples/momentum_sp20.toml       # any spec: its whole grid on one core")]
pub struct BenchArgs {
    /// Benchmark this spec's whole grid instead of the built-in SMA grid.
    pub spec: Option<PathBuf>,
    /// momentum_taa spec benches only: CPU seconds per backtest to compare with
    /// [default: 8.24, QSTrader's measured time per synth10 backtest].
    #[arg(long, value_name = "SECONDS")]
    pub baseline: Option<f64>,
    /// Price data (single-asset OHLC CSV) [default: examples/data/GOOG.csv of the
    /// repository holding this executable].
    #[arg(long, value_name = "CSV")]
    pub data: Option<PathBuf>,
    /// Fast windows FROM:TO (inclusive).
    #[arg(long, default_value = "2:200", value_name = "FROM:TO")]
    pub fast: String,
    /// Slow windows FROM:TO (inclusive); combos need fast < slow.
    #[arg(long, default_value = "5:500", value_name = "FROM:TO")]
    pub slow: String,
    /// long or long_short.
    #[arg(long, default_value = "long")]
    pub direction: String,
    /// open or close.
    #[arg(long, default_value = "open")]
    pub fill: String,
    /// Fee per fill (fraction of traded value).
    #[arg(long, default_value_t = 0.0)]
    pub fee: f64,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub samples: usize,
    /// Built-in SMA grid only: also emit per-combo sums over S CSCV blocks (S even) and
    /// time the overfitting statistics (DSR, PBO by CSCV) on them.
    #[arg(long, value_name = "S")]
    pub cscv_blocks: Option<usize>,
}

/// Rewrites mpirun's `-np N` spelling to `--np N` before clap sees it.
pub fn normalize_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    args.into_iter()
        .map(|arg| match arg.to_str() {
            Some("-np") => "--np".into(),
            Some(s) if s.starts_with("-np=") => format!("--np={}", &s[4..]).into(),
            _ => arg,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent_and_np_spellings_work() {
        Cli::command().debug_assert();
        for spelling in [&["-np", "3"][..], &["-n", "3"], &["--np", "3"], &["-np=3"]] {
            let mut args: Vec<std::ffi::OsString> = vec!["sweeprun".into(), "run".into(), "s.toml".into()];
            args.extend(spelling.iter().map(|s| s.into()));
            let cli = Cli::try_parse_from(normalize_args(args)).unwrap();
            let Command::Run(run) = cli.command else { panic!() };
            assert_eq!(run.np, Some(3));
        }
    }
}
