//! Scaling benchmark: a generated outbound workload (about 1M events by default) held in memory
//! as Debezium JSON bytes, replayed through the three outbound views with 1, 2 and 4 workers.
//! Prints events/s, speedup over one worker, output changes per input event, peak memory (of
//! the process, and of the engine alone: the peak above the resident size just before the run,
//! which holds the input bytes), the engine's bytes per live source row, and the physical
//! limit: the rate at which one thread only decodes the same bytes and discards the events.
//!
//! `cargo bench --bench scaling` (release build). Each worker count runs in a fresh child
//! process so that its peak memory is its own. Environment:
//! - `CDCFLOW_BENCH_ORDERS` (default 100000, about 10 events each),
//! - `CDCFLOW_BENCH_WORKERS` (default `1,2,4`),
//! - `CDCFLOW_BENCH_SPAN_SECS` (default 3600: the workload's commit times span one busy hour,
//!   second resolution as in the binlog, so many transactions share a time),
//! - `CDCFLOW_BENCH_SCHEMAS` (`on`/`off`, default off), `CDCFLOW_BENCH_DECIMAL` (default string).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use cdcflow::decode::Decoded;
use cdcflow::decode::debezium::DebeziumDecoder;
use cdcflow::pipeline::{RunOptions, replay as run};
use cdcflow::source::Input;
use cdcflow::sql::Dataflows;
use cdcflow::workload::{DecimalMode, GenOptions, generate};

const CHILD: &str = "CDCFLOW_SCALING_CHILD";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// A field of `/proc/self/status` in MiB (`VmHWM`: peak resident size, `VmRSS`: now).
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets the peak resident size to the current one (Linux `clear_refs` 5).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The workload of every child: the same bytes for the same environment.
fn workload() -> (Vec<u8>, cdcflow::workload::GenStats) {
    let orders: u64 = env_or("CDCFLOW_BENCH_ORDERS", "100000")
        .parse()
        .expect("CDCFLOW_BENCH_ORDERS is a number");
    let schemas = env_or("CDCFLOW_BENCH_SCHEMAS", "off") == "on";
    let decimal = match env_or("CDCFLOW_BENCH_DECIMAL", "string").as_str() {
        "precise" => DecimalMode::Precise,
        "double" => DecimalMode::Double,
        _ => DecimalMode::String,
    };
    let span_secs: u64 = env_or("CDCFLOW_BENCH_SPAN_SECS", "3600")
        .parse()
        .expect("CDCFLOW_BENCH_SPAN_SECS is a number");
    let mut bytes = Vec::with_capacity(orders as usize * 4500);
    let stats = generate(
        &GenOptions {
            orders,
            seed: 1,
            shuffle: 0,
            duplicates: 0.0,
            schemas,
            decimal,
            span_secs,
            tx_metadata: Default::default(),
        },
        &mut bytes,
    )
    .expect("generate");
    (bytes, stats)
}

fn dataflows() -> Dataflows {
    let views = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dataflows");
    Dataflows::load(&views).expect("dataflows load")
}

/// The physical limit: one thread decodes every line and discards the events. Also counts the
/// source rows alive at the end (the workload is in commit order: the last event of a key wins).
fn parse_only() {
    let (bytes, _) = workload();
    let dataflows = dataflows();
    let mut decoder = DebeziumDecoder::new(dataflows.catalog.clone());
    let started = Instant::now();
    let mut events = 0u64;
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if let Ok(Decoded::Events(evs)) = decoder.decode(line) {
            events += evs.len() as u64;
            std::hint::black_box(evs);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let mut live: HashMap<(usize, cdcflow::decode::Row), bool> = HashMap::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if let Ok(Decoded::Events(evs)) = decoder.decode(line) {
            for e in evs {
                live.insert((e.table, e.key), e.row.is_some());
            }
        }
    }
    let live_rows = live.values().filter(|alive| **alive).count();
    println!("RESULT events={events} secs={secs:.3} live_rows={live_rows}");
}

fn child(workers: usize) {
    let (bytes, stats) = workload();
    let dataflows = dataflows();
    let input_bytes = bytes.len();
    reset_peak();
    let before = status_mib("VmRSS:");
    let started = Instant::now();
    let out = run(
        &dataflows,
        vec![Input::from_bytes("bench", bytes)],
        &RunOptions::new(workers),
        None,
    )
    .expect("replay");
    let secs = started.elapsed().as_secs_f64();
    let m = &out.metrics;
    assert_eq!(m.records, stats.lines, "every generated message replayed");
    assert_eq!(m.dead_lettered, 0);
    let peak = status_mib("VmHWM:");
    println!(
        "RESULT workers={workers} events={} bytes={input_bytes} secs={secs:.3} changes={} peak_mib={peak:.0} engine_mib={:.0}",
        m.events,
        m.upserts + m.deletes,
        peak - before
    );
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if let Ok(w) = std::env::var(CHILD) {
        match w.as_str() {
            "parse" => parse_only(),
            w => child(w.parse().expect("worker count")),
        }
        return;
    }
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes nothing: keep it short.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("scaling: run with `cargo bench --bench scaling`");
        return;
    }
    let workers: Vec<usize> = env_or("CDCFLOW_BENCH_WORKERS", "1,2,4")
        .split(',')
        .map(|w| w.trim().parse().expect("worker counts"))
        .collect();
    let exe = std::env::current_exe().expect("own path");
    println!(
        "scaling: {} orders, schemas {}, decimal {}, {} cores available",
        env_or("CDCFLOW_BENCH_ORDERS", "100000"),
        env_or("CDCFLOW_BENCH_SCHEMAS", "off"),
        env_or("CDCFLOW_BENCH_DECIMAL", "string"),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let parse = run_child(&exe, "parse");
    let parse_rate = parse("events") / parse("secs");
    let live_rows = parse("live_rows");
    println!(
        "parse-only limit: {parse_rate:.0} events/s per thread (decode and discard); {live_rows:.0} live source rows at the end"
    );
    println!(
        "{:>7} {:>10} {:>10} {:>12} {:>9} {:>14} {:>11} {:>13} {:>11} {:>10}",
        "workers",
        "events",
        "MB",
        "events/s",
        "speedup",
        "changes/event",
        "peak MiB",
        "engine MiB",
        "bytes/row",
        "of limit"
    );
    let mut base = None;
    for w in workers {
        let field = run_child(&exe, &w.to_string());
        let (events, secs) = (field("events"), field("secs"));
        let rate = events / secs;
        let speedup = rate / *base.get_or_insert(rate);
        let engine = field("engine_mib");
        println!(
            "{:>7} {:>10} {:>10.0} {:>12.0} {:>8.2}x {:>14.3} {:>11.0} {:>13.0} {:>11.0} {:>9.0}%",
            w,
            events,
            field("bytes") / 1e6,
            rate,
            speedup,
            field("changes") / events,
            field("peak_mib"),
            engine,
            engine * 1024.0 * 1024.0 / live_rows,
            100.0 * rate / (parse_rate * w as f64),
        );
    }
}

/// Runs one child (`parse` or a worker count) and returns its RESULT fields.
fn run_child(exe: &std::path::Path, what: &str) -> impl Fn(&str) -> f64 + use<> {
    let out = Command::new(exe)
        .env(CHILD, what)
        .output()
        .expect("child runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().find(|l| l.starts_with("RESULT")) else {
        eprintln!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
        std::process::exit(1);
    };
    let line = line.to_string();
    move |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    }
}
