//! Command-line interface: flags parsed once (clap derive, with environment fallbacks), then
//! validated into the engine's options. `main.rs` only calls [`main_with_args`].

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::dataflow::{self, RunOptions, Workers};
use crate::sink::{JsonlSink, Names, Sink, ViewState};
use crate::source::Input;
use crate::sql::Dataflows;
use crate::workload::{DecimalMode, GenOptions};

/// Exit status when the run completed but some records were rejected (dead-lettered) or rows
/// could not be evaluated.
pub const EXIT_REJECTED: u8 = 3;

/// cdcflow: exact incremental SQL views over MySQL change events (Debezium JSON), on timely and
/// differential dataflow.
#[derive(Debug, Parser)]
#[command(name = "cdcflow", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay Debezium JSON-lines files (one message value per line) to the end through the
    /// views; write the change log and print each view's final state.
    Replay(ReplayArgs),
    /// Validate dataflows/schema.sql and the views, and print each view's plan.
    Check(CheckArgs),
    /// Write a seeded outbound workload (orders, items, shipments, couriers, deliveries) as
    /// Debezium JSON lines.
    Gen(GenArgs),
}

/// Worker layout flags, shared by commands that run the engine.
#[derive(Debug, Args)]
struct WorkerArgs {
    /// Worker threads per process.
    #[arg(short = 'w', long, default_value_t = 1, env = "CDCFLOW_WORKERS")]
    workers: usize,
    /// Number of processes in a timely cluster (each runs --workers threads).
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// This process's index in the cluster (0-based).
    #[arg(long, default_value_t = 0)]
    process: usize,
    /// Comma-separated host:port of every process, in process order (cluster mode).
    #[arg(long, value_delimiter = ',')]
    hosts: Vec<String>,
}

impl WorkerArgs {
    fn validate(&self) -> anyhow::Result<Workers> {
        if self.workers == 0 {
            bail!("--workers must be at least 1");
        }
        if self.processes > 1 {
            if self.hosts.len() != self.processes {
                bail!(
                    "--processes {} needs --hosts with {} host:port entries (got {})",
                    self.processes,
                    self.processes,
                    self.hosts.len()
                );
            }
            if self.process >= self.processes {
                bail!(
                    "--process {} must be below --processes {}",
                    self.process,
                    self.processes
                );
            }
        } else if !self.hosts.is_empty() && self.hosts.len() != 1 {
            bail!(
                "--hosts lists {} processes but --processes is 1",
                self.hosts.len()
            );
        }
        Ok(Workers {
            threads: self.workers,
            process: self.process,
            hosts: if self.processes > 1 {
                self.hosts.clone()
            } else {
                Vec::new()
            },
        })
    }
}

#[derive(Debug, Args)]
struct ReplayArgs {
    #[command(flatten)]
    workers: WorkerArgs,
    /// Directory with schema.sql and one NAME.sql per view.
    #[arg(long, default_value = "dataflows", env = "CDCFLOW_VIEWS")]
    views: PathBuf,
    /// Write the JSON-lines change log here (`-` for stdout; then the final-state tables are not printed).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where rejected records go (default: OUT with `.dead-letter.jsonl` appended, or
    /// `dead-letter.jsonl` without --out). Created only when a record is rejected.
    #[arg(long)]
    dead_letter: Option<PathBuf>,
    /// Allowed lateness in milliseconds: the frontier trails each input's newest commit time by
    /// this much. Events older than the frontier are applied at the frontier and counted as late.
    #[arg(long, default_value_t = 0, env = "CDCFLOW_ALLOWED_LATENESS_MS")]
    allowed_lateness_ms: u64,
    /// No progress output on stderr.
    #[arg(short, long, conflicts_with = "progress")]
    quiet: bool,
    /// Progress on stderr about once a second even when stderr is not a terminal (by default only
    /// on a terminal).
    #[arg(long)]
    progress: bool,
    /// Debezium JSON-lines files; each is one source partition.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Directory with schema.sql and one NAME.sql per view.
    #[arg(long, default_value = "dataflows", env = "CDCFLOW_VIEWS")]
    views: PathBuf,
}

#[derive(Debug, Args)]
struct GenArgs {
    /// Number of orders (about 10 row changes each).
    #[arg(long)]
    orders: u64,
    /// Random seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Deliver lines out of order, each at most this many lines from its commit-order position.
    #[arg(long, default_value_t = 0)]
    shuffle: usize,
    /// Probability (0..1) that a message is delivered twice.
    #[arg(long, default_value_t = 0.0)]
    duplicates: f64,
    /// Debezium JsonConverter `schemas.enable`.
    #[arg(long, value_enum, default_value_t = OnOff::Off)]
    schemas: OnOff,
    /// Debezium `decimal.handling.mode`.
    #[arg(long, value_enum, default_value_t = DecimalMode::String)]
    decimal: DecimalMode,
    /// Commit-time span of the workload in seconds (commit times have second resolution, as in
    /// the MySQL binlog): a shorter span packs more transactions into each second.
    #[arg(long, default_value_t = crate::workload::DEFAULT_SPAN_SECS)]
    span_secs: u64,
    /// Output file (`-` for stdout).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

/// Parses arguments, runs the command and returns the process exit status.
pub fn main_with_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
    let result = match cli.command {
        Command::Replay(a) => replay(a),
        Command::Check(a) => check(a),
        Command::Gen(a) => gen_cmd(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(views: &Path) -> anyhow::Result<Dataflows> {
    Dataflows::load(views).map_err(|e| anyhow::anyhow!("{e}"))
}

fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let d = load(&a.views)?;
    println!(
        "schema: {} tables ({})",
        d.catalog.tables.len(),
        d.catalog.names()
    );
    for v in &d.views {
        println!("{v}");
    }
    println!("ok: {} views", d.views.len());
    Ok(ExitCode::SUCCESS)
}

fn replay(a: ReplayArgs) -> anyhow::Result<ExitCode> {
    let workers = a.workers.validate()?;
    let dataflows = load(&a.views)?;
    let names = Names::of(&dataflows.views);
    let mut inputs = Vec::new();
    for p in &a.inputs {
        inputs.push(Input::open(p)?);
    }
    let to_stdout = a.out.as_deref() == Some(Path::new("-"));
    // In a cluster only process 0 (it hosts worker 0, the sink) writes the change log.
    let sink: Option<Box<dyn Sink>> = match &a.out {
        None => None,
        Some(_) if a.workers.process != 0 => None,
        Some(_) if to_stdout => Some(Box::new(JsonlSink::new(
            BufWriter::new(std::io::stdout()),
            names.clone(),
        ))),
        Some(p) => {
            let f = File::create(p).with_context(|| format!("cannot create {}", p.display()))?;
            Some(Box::new(JsonlSink::new(BufWriter::new(f), names.clone())))
        }
    };
    let dead_letter = a.dead_letter.clone().unwrap_or_else(|| match &a.out {
        Some(p) if !to_stdout => PathBuf::from(format!("{}.dead-letter.jsonl", p.display())),
        _ => PathBuf::from("dead-letter.jsonl"),
    });
    let options = RunOptions {
        workers,
        lateness_ms: a.allowed_lateness_ms,
        progress: a.progress || (!a.quiet && std::io::stderr().is_terminal()),
        keep_log: false,
        dead_letter: Some(dead_letter.clone()),
        chunk_lines: dataflow::CHUNK_LINES,
    };
    let outcome = dataflow::run(&dataflows, inputs, &options, sink)?;
    if !to_stdout && a.workers.process == 0 {
        let mut out = std::io::stdout().lock();
        print_state(&mut out, &names, &outcome.state)?;
        out.flush()?;
    }
    let m = &outcome.metrics;
    let secs = outcome.elapsed.as_secs_f64();
    eprintln!(
        "summary: {m}; {:.2}s, {:.0} events/s with {} worker(s)",
        secs,
        m.events as f64 / secs.max(1e-9),
        a.workers.workers * a.workers.processes
    );
    if m.dead_lettered > 0 || m.eval_errors > 0 {
        if m.dead_lettered > 0 {
            eprintln!(
                "rejected: {} record(s) kept in {}",
                m.dead_lettered,
                dead_letter.display()
            );
        }
        if m.eval_errors > 0 {
            eprintln!(
                "rejected: {} row(s) could not be evaluated by a view (see warnings above)",
                m.eval_errors
            );
        }
        return Ok(ExitCode::from(EXIT_REJECTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints each view's documents as an aligned table.
pub fn print_state(out: &mut impl Write, names: &Names, state: &ViewState) -> std::io::Result<()> {
    for (vi, (view, cols)) in names.views.iter().enumerate() {
        let rows: Vec<Vec<String>> = state
            .range((vi, String::new())..(vi + 1, String::new()))
            .map(|(_, doc)| doc.iter().map(|v| v.to_string()).collect())
            .collect();
        writeln!(out, "{view} ({} documents)", rows.len())?;
        let mut widths: Vec<usize> = cols.iter().map(|c| c.chars().count()).collect();
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        writeln!(out, "  {}", line(cols))?;
        writeln!(
            out,
            "  {}",
            widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  ")
        )?;
        for r in &rows {
            writeln!(out, "  {}", line(r))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn gen_cmd(a: GenArgs) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&a.duplicates) {
        bail!("--duplicates must be a probability between 0 and 1");
    }
    let opts = GenOptions {
        orders: a.orders,
        seed: a.seed,
        shuffle: a.shuffle,
        duplicates: a.duplicates,
        schemas: a.schemas == OnOff::On,
        decimal: a.decimal,
        span_secs: a.span_secs,
    };
    let started = std::time::Instant::now();
    let stats = if a.out.as_os_str() == "-" {
        crate::workload::generate(&opts, &mut BufWriter::new(std::io::stdout().lock()))?
    } else {
        let f =
            File::create(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let s = crate::workload::generate(&opts, &mut w)?;
        w.flush()?;
        s
    };
    eprintln!(
        "generated {} events in {} transactions as {} lines in {:.2}s; replay with --allowed-lateness-ms {} for no late events",
        stats.events,
        stats.transactions,
        stats.lines,
        started.elapsed().as_secs_f64(),
        stats.max_displacement_ms
    );
    Ok(ExitCode::SUCCESS)
}
