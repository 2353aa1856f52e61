//! Dead letters: every record the pipeline could not use, kept verbatim with where it came from
//! and why, in a JSON-lines file (`{"source", "line"|"offset", "error", "record"}` per line),
//! created on the first rejection, and in memory. The first errors are also printed to stderr.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;

use crate::value::write_json_str;

/// One rejected record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Input name (a file, `topic[partition]`, or a sink).
    pub source: String,
    /// Position in the source: the 1-based line of a file, the offset of a Kafka message.
    pub line: u64,
    /// What [`Rejected::line`] counts: `"line"` or `"offset"`.
    pub unit: &'static str,
    /// What was wrong.
    pub error: String,
    /// The raw record (lossily decoded if it was not UTF-8).
    pub record: String,
}

/// Where rejected records are kept (see the module doc).
pub struct DeadLetters {
    path: Option<PathBuf>,
    file: Option<BufWriter<File>>,
    /// Every rejection, in arrival order.
    pub rejected: Vec<Rejected>,
    printed: usize,
}

/// How many rejections are printed to stderr before only counting.
const PRINT_LIMIT: usize = 20;

impl DeadLetters {
    /// Dead letters kept in `path` (if given) and in memory.
    pub fn new(path: Option<PathBuf>) -> Self {
        DeadLetters {
            path,
            file: None,
            rejected: Vec::new(),
            printed: 0,
        }
    }

    /// Keeps a rejected record found at `line` of `source`.
    pub fn reject(
        &mut self,
        source: &str,
        line: u64,
        error: &str,
        raw: &[u8],
    ) -> anyhow::Result<()> {
        self.reject_at(source, "line", line, error, raw)
    }

    /// Keeps a rejected record found at a position counted in `unit` (`"line"` or `"offset"`).
    pub fn reject_at(
        &mut self,
        source: &str,
        unit: &'static str,
        line: u64,
        error: &str,
        raw: &[u8],
    ) -> anyhow::Result<()> {
        let record = String::from_utf8_lossy(raw).into_owned();
        self.reject_at_as(source, unit, line, error, &record, "record")
    }

    fn reject_at_as(
        &mut self,
        source: &str,
        unit: &'static str,
        line: u64,
        error: &str,
        record: &str,
        field: &str,
    ) -> anyhow::Result<()> {
        if self.printed < PRINT_LIMIT {
            if unit == "line" && line == 0 {
                // A sink's rejection: no position in a source.
                eprintln!("error: {source}: {error}");
            } else if unit == "line" {
                eprintln!("error: {source}:{line}: {error}");
            } else {
                eprintln!("error: {source} {unit} {line}: {error}");
            }
            self.printed += 1;
            if self.printed == PRINT_LIMIT {
                eprintln!(
                    "error: further rejected records are only counted and kept in the dead-letter file"
                );
            }
        }
        let record = record.to_string();
        if let Some(path) = &self.path {
            if self.file.is_none() {
                let f = File::create(path).with_context(|| {
                    format!("cannot create dead-letter file {}", path.display())
                })?;
                self.file = Some(BufWriter::new(f));
            }
            let mut line_json = String::with_capacity(record.len() + 128);
            line_json.push_str("{\"source\":");
            write_json_str(source, &mut line_json);
            line_json.push_str(&format!(",\"{unit}\":{line},\"error\":"));
            write_json_str(error, &mut line_json);
            line_json.push_str(&format!(",\"{field}\":"));
            write_json_str(&record, &mut line_json);
            line_json.push_str("}\n");
            let file = self.file.as_mut().expect("opened above");
            file.write_all(line_json.as_bytes())?;
        }
        self.rejected.push(Rejected {
            source: source.into(),
            line,
            unit,
            error: error.into(),
            record,
        });
        Ok(())
    }

    /// Keeps a rejected binary record (a binlog event): as `"record"` when it is UTF-8 text,
    /// else base64 in `"record_base64"` (so the bytes are kept exactly).
    pub fn reject_raw(
        &mut self,
        source: &str,
        unit: &'static str,
        line: u64,
        error: &str,
        raw: &[u8],
    ) -> anyhow::Result<()> {
        if std::str::from_utf8(raw).is_ok() {
            return self.reject_at(source, unit, line, error, raw);
        }
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        self.reject_at_as(source, unit, line, error, &b64, "record_base64")
    }

    /// Keeps an output a sink could not write (`source` names the sink and its target, e.g.
    /// `elasticsearch:INDEX`; `record` is what was sent). Sink rejections have no line.
    pub fn reject_sink(&mut self, source: &str, error: &str, record: &str) -> anyhow::Result<()> {
        self.reject(source, 0, error, record.as_bytes())
    }

    /// Flushes the file.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.flush()?;
        }
        Ok(())
    }
}
