//! Transport: where the bytes of messages come from, and where rejected records go.
//!
//! Contract: a replay input is a sequence of records, one message value per line (Debezium
//! JSON lines). Each input is one source partition with its own watermark. Line `n` (1-based) of
//! an input is read by worker `n % workers`, so every worker ingests its share, and each
//! worker's partitions advance through time together. Blank lines are skipped.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::value::write_json_str;

/// The bytes of one replay input.
#[derive(Clone)]
pub struct Input {
    /// Name used in error positions (usually the file path).
    pub name: String,
    data: Arc<dyn AsRef<[u8]> + Send + Sync>,
}

impl Input {
    /// An in-memory input.
    pub fn from_bytes(
        name: impl Into<String>,
        bytes: impl AsRef<[u8]> + Send + Sync + 'static,
    ) -> Input {
        Input {
            name: name.into(),
            data: Arc::new(bytes),
        }
    }

    /// A file, memory-mapped.
    pub fn open(path: &Path) -> anyhow::Result<Input> {
        let file =
            File::open(path).with_context(|| format!("cannot open input {}", path.display()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let name = path.display().to_string();
        if len == 0 {
            return Ok(Input::from_bytes(name, Vec::new()));
        }
        // SAFETY: the file is only read; a concurrent writer truncating it is outside the contract
        // of a replay input (files are fixtures, not live logs).
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("cannot map input {}", path.display()))?;
        Ok(Input {
            name,
            data: Arc::new(map),
        })
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        (*self.data).as_ref()
    }
}

/// A worker's reading position in one input.
pub struct LineCursor {
    input: Input,
    pos: usize,
    line: u64,
    /// True once the whole input has been read.
    pub done: bool,
}

impl LineCursor {
    /// A cursor at the start of `input`.
    pub fn new(input: Input) -> Self {
        let done = input.bytes().is_empty();
        LineCursor {
            input,
            pos: 0,
            line: 0,
            done,
        }
    }

    /// The input.
    pub fn input(&self) -> &Input {
        &self.input
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Reads up to `max_lines` lines; calls `f(line_number, bytes)` for those of worker `index`.
    pub fn read_chunk(
        &mut self,
        max_lines: usize,
        index: usize,
        peers: usize,
        mut f: impl FnMut(u64, &[u8]),
    ) {
        let data = self.input.bytes();
        for _ in 0..max_lines {
            if self.pos >= data.len() {
                self.done = true;
                return;
            }
            let end = memchr::memchr(b'\n', &data[self.pos..]).map_or(data.len(), |i| self.pos + i);
            let mut line = &data[self.pos..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            self.line += 1;
            self.pos = end + 1;
            if (self.line as usize) % peers == index && !line.iter().all(u8::is_ascii_whitespace) {
                f(self.line, line);
            }
        }
        if self.pos >= data.len() {
            self.done = true;
        }
    }
}

/// One rejected record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Input name.
    pub source: String,
    /// 1-based line.
    pub line: u64,
    /// What was wrong.
    pub error: String,
    /// The raw record (lossily decoded if it was not UTF-8).
    pub record: String,
}

/// Where rejected records are kept: a JSON-lines file `{"source","line","error","record"}`,
/// created on the first rejection, and in memory. The first errors are also printed to stderr.
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

    /// Keeps a rejected record.
    pub fn reject(
        &mut self,
        source: &str,
        line: u64,
        error: &str,
        raw: &[u8],
    ) -> anyhow::Result<()> {
        if self.printed < PRINT_LIMIT {
            eprintln!("error: {source}:{line}: {error}");
            self.printed += 1;
            if self.printed == PRINT_LIMIT {
                eprintln!(
                    "error: further rejected records are only counted and kept in the dead-letter file"
                );
            }
        }
        let record = String::from_utf8_lossy(raw).into_owned();
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
            line_json.push_str(&format!(",\"line\":{line},\"error\":"));
            write_json_str(error, &mut line_json);
            line_json.push_str(",\"record\":");
            write_json_str(&record, &mut line_json);
            line_json.push_str("}\n");
            let file = self.file.as_mut().expect("opened above");
            file.write_all(line_json.as_bytes())?;
        }
        self.rejected.push(Rejected {
            source: source.into(),
            line,
            error: error.into(),
            record,
        });
        Ok(())
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
