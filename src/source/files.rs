//! Files (or bytes in memory) replayed to their end: Debezium JSON lines, one message value per
//! line; blank lines are skipped.
//!
//! Partitions: each input is split into as many **stripes** as there are workers; stripe `s`
//! of an input holds its lines `n` with `n % workers == s` (1-based `n`) and is owned by worker
//! `s`, except transaction markers (BEGIN/END lines), which all belong to stripe 0 so that they
//! reach the transaction assembler in file order (their order is the commit order). So each
//! worker decodes its share of every file, each partition is owned by exactly one worker, and
//! each file's stripes advance through time together. A stripe is finished at the end of its
//! file.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::{PartitionStatus, Record, Resume, Source, SourceReader};

/// The bytes of one replay input.
#[derive(Clone)]
pub struct Input {
    /// Name used in error positions (usually the file path).
    pub name: String,
    data: Arc<dyn AsRef<[u8]> + Send + Sync>,
    /// The same bytes when they are a memory-mapped file (see [`Input::release`]).
    mapped: Option<Arc<memmap2::Mmap>>,
}

/// How far a stripe reads past the bytes it last released before releasing again, and how much
/// it keeps behind its position (other workers' stripes of the same file read nearby).
const RELEASE_STEP: usize = 64 << 20;
const RELEASE_MARGIN: usize = 16 << 20;

impl Input {
    /// An in-memory input.
    pub fn from_bytes(
        name: impl Into<String>,
        bytes: impl AsRef<[u8]> + Send + Sync + 'static,
    ) -> Input {
        Input {
            name: name.into(),
            data: Arc::new(bytes),
            mapped: None,
        }
    }

    /// A file: memory-mapped when it is a regular file; read to its end when it is a pipe or a
    /// terminal (`/dev/stdin`, `<(..)`).
    pub fn open(path: &Path) -> anyhow::Result<Input> {
        let file =
            File::open(path).with_context(|| format!("cannot open input {}", path.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("cannot read input {}", path.display()))?;
        let name = path.display().to_string();
        if meta.is_dir() {
            bail!("input {} is a directory", path.display());
        }
        if !meta.is_file() {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut &file, &mut bytes)
                .with_context(|| format!("cannot read input {}", path.display()))?;
            return Ok(Input::from_bytes(name, bytes));
        }
        if meta.len() == 0 {
            return Ok(Input::from_bytes(name, Vec::new()));
        }
        // SAFETY: the file is only read; a concurrent writer truncating it is outside the contract
        // of a replay input (files are fixtures, not live logs).
        let map = unsafe { memmap2::Mmap::map(&file) }
            .with_context(|| format!("cannot map input {}", path.display()))?;
        let map = Arc::new(map);
        Ok(Input {
            name,
            data: map.clone(),
            mapped: Some(map),
        })
    }

    /// Standard input, read to its end (`-` on the command line).
    pub fn stdin() -> anyhow::Result<Input> {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
            .context("cannot read input - (stdin)")?;
        Ok(Input::from_bytes("-", bytes))
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        (*self.data).as_ref()
    }

    /// Says that bytes `from..to` will not be read again soon: the pages of a memory-mapped file
    /// leave this process's resident memory (they stay in the page cache and come back, from
    /// it, if read again), so replaying a file costs no resident memory for the bytes already
    /// read. Nothing for bytes in memory.
    pub fn release(&self, from: usize, to: usize) {
        if let Some(map) = &self.mapped
            && to > from
            && to <= map.len()
        {
            // SAFETY: the mapping is private and only read, so dropping its pages only means the
            // next read of them faults them in again from the file, with the same bytes (a file
            // changed under a replay is outside its contract, see `open`).
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
            };
        }
    }
}

/// Whether a line looks like a Debezium transaction marker (BEGIN/END). A false positive only
/// moves a line to stripe 0.
fn is_marker(line: &[u8]) -> bool {
    memchr::memmem::find(line, b"\"status\"").is_some()
        && memchr::memmem::find(line, b"\"op\"").is_none()
}

/// Replay inputs as a [`Source`].
pub struct FileSource {
    inputs: Vec<Input>,
}

impl FileSource {
    /// A source over `inputs`.
    pub fn new(inputs: Vec<Input>) -> FileSource {
        FileSource { inputs }
    }
}

impl Source for FileSource {
    fn reader(
        &self,
        worker: usize,
        workers: usize,
        resume: &Resume,
    ) -> anyhow::Result<Box<dyn SourceReader>> {
        let mut stripes = Vec::new();
        for input in &self.inputs {
            let mut s = Stripe {
                input: input.clone(),
                stripe: worker,
                stripes: workers.max(1),
                pos: 0,
                line: 0,
                released: 0,
            };
            if let Some(&p) = resume.positions.get(&s.name()) {
                s.seek(p as usize);
            }
            stripes.push(s);
        }
        Ok(Box::new(FileReader { stripes }))
    }

    fn total_bytes(&self) -> Option<u64> {
        Some(self.inputs.iter().map(|i| i.bytes().len() as u64).sum())
    }
}

/// One stripe of one input.
struct Stripe {
    input: Input,
    stripe: usize,
    stripes: usize,
    /// Byte offset of the next line.
    pos: usize,
    /// Lines before `pos`.
    line: u64,
    /// Bytes before this were released ([`Input::release`]).
    released: usize,
}

impl Stripe {
    fn name(&self) -> String {
        format!("{}#{}/{}", self.input.name, self.stripe, self.stripes)
    }

    fn done(&self) -> bool {
        self.pos >= self.input.bytes().len()
    }

    /// Moves to byte offset `to` (the start of a line), counting lines on the way.
    fn seek(&mut self, to: usize) {
        let data = self.input.bytes();
        let to = to.min(data.len());
        self.line = memchr::memchr_iter(b'\n', &data[..to]).count() as u64;
        self.pos = to;
    }
}

struct FileReader {
    stripes: Vec<Stripe>,
}

impl SourceReader for FileReader {
    fn partitions(&self) -> usize {
        self.stripes.len()
    }

    fn partition_name(&self, p: usize) -> String {
        self.stripes[p].name()
    }

    fn position_unit(&self) -> &'static str {
        "line"
    }

    /// Scans up to `max_records` lines of each unfinished input (its stripe's share of them is
    /// yielded), so all inputs advance together.
    fn poll(&mut self, max_records: usize, f: &mut dyn FnMut(Record<'_>)) -> anyhow::Result<()> {
        for (p, s) in self.stripes.iter_mut().enumerate() {
            let data = s.input.bytes();
            for _ in 0..max_records {
                if s.pos >= data.len() {
                    break;
                }
                let start = s.pos;
                let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
                let mut line = &data[start..end];
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                s.line += 1;
                s.pos = end + 1;
                // Transaction markers all go to stripe 0, in file order: the order of END markers
                // is the commit order the transaction assembler follows.
                let mine = if s.stripes == 1 {
                    true
                } else if is_marker(line) {
                    s.stripe == 0
                } else {
                    (s.line as usize) % s.stripes == s.stripe
                };
                if mine && !line.iter().all(u8::is_ascii_whitespace) {
                    f(Record {
                        partition: p,
                        position: start as u64,
                        line: s.line,
                        payload: line,
                    });
                }
            }
            let behind = s.pos.saturating_sub(RELEASE_MARGIN);
            if behind >= s.released + RELEASE_STEP {
                s.input.release(s.released, behind);
                s.released = behind;
            }
        }
        Ok(())
    }

    fn next_position(&self, p: usize) -> u64 {
        self.stripes[p].pos as u64
    }

    fn status(&self, p: usize) -> PartitionStatus {
        if self.stripes[p].done() {
            PartitionStatus::Finished
        } else {
            PartitionStatus::Active
        }
    }

    fn commit(&mut self, _positions: &[(usize, u64)]) -> anyhow::Result<()> {
        Ok(())
    }

    fn consumed_bytes(&self) -> Option<u64> {
        Some(self.stripes.iter().map(|s| s.pos as u64).sum())
    }
}
