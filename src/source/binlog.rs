//! Saved MySQL/MariaDB binlog files as a [`Source`].
//!
//! This module is transport only: it frames a binlog file into events (the 19-byte v4 header
//! gives each event's type and length) and groups them into **transactions**, one [`Record`]
//! per transaction (its events' bytes, contiguous in the file). What the events mean is
//! [`crate::decode::binlog`]'s concern, which checks every event's CRC32, decodes the rows and
//! gives all rows of a record the commit time of its XID/COMMIT event.
//!
//! - A group starts at a GTID event (MariaDB 162, MySQL 33/34) or a `BEGIN` query and ends at
//!   its XID event or `COMMIT`/`ROLLBACK` query; a statement outside a transaction (DDL, a
//!   standalone GTID group) is a group of its own. Format-description, rotate, stop, GTID-list,
//!   checkpoint, previous-GTIDs, start-encryption and heartbeat events outside a group are
//!   **control records**: every stripe yields them (each worker's decoder needs the format
//!   description: it says whether events carry a CRC32). So is a statement outside a
//!   transaction (DDL), which each decoder checks against the rows it applied.
//! - Partitions: as for JSON-lines files ([`super::files`]), the file sequence is split into as
//!   many stripes as there are workers; stripe `s` yields the groups whose position hashes to
//!   `s` (so a transaction is never split, and ownership survives a resume) and every control
//!   record. Each
//!   stripe's groups come in commit order, and every row of a group carries the group's commit
//!   time, so a worker's watermark never passes a transaction another worker has not read.
//! - Positions: `file sequence << 32 | byte offset` of the group's first event (binlog files are
//!   below 4 GiB); [`Record::line`] is the byte offset in its file. Resuming at a position
//!   yields that file's format description again first.
//! - A file that ends inside an event or inside a transaction yields what is left as a last
//!   record, and the decoder reports it (truncated file): nothing at the end is dropped silently.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{Input, PartitionStatus, Record, Resume, Source, SourceReader};

/// The magic bytes that open every binlog file.
pub const MAGIC: &[u8; 4] = b"\xfebin";
/// Size of a v4 event header.
pub const HEADER: usize = 19;

/// One saved binlog file.
#[derive(Clone)]
pub struct BinlogFile {
    /// Its sequence number (the numeric suffix of `mysql-bin.000003`).
    pub seq: u64,
    /// The bytes.
    pub input: Input,
}

/// Whether the file at `path` is a binlog file (starts with [`MAGIC`]).
pub fn is_binlog_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == MAGIC
}

/// The sequence number of a binlog file name: its numeric extension.
pub fn sequence_of(path: &Path) -> Option<u64> {
    path.extension()?.to_str()?.parse().ok()
}

/// The binlog files of `paths` (files, or directories whose binlog files are all taken, other
/// files such as `mysql-bin.index` being skipped), sorted by sequence number.
pub fn open_files(paths: &[PathBuf]) -> anyhow::Result<Vec<BinlogFile>> {
    let mut files: Vec<PathBuf> = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = 0;
            for e in std::fs::read_dir(p).with_context(|| format!("cannot list {}", p.display()))? {
                let f = e?.path();
                if f.is_file() && is_binlog_file(&f) {
                    files.push(f);
                    found += 1;
                }
            }
            if found == 0 {
                bail!("input directory {} has no binlog files", p.display());
            }
        } else {
            if !is_binlog_file(p) {
                bail!("input {} is not a binlog file", p.display());
            }
            files.push(p.clone());
        }
    }
    let mut out = Vec::new();
    for f in files {
        let Some(seq) = sequence_of(&f) else {
            bail!(
                "binlog file {} has no sequence number (a numeric extension such as .000001)",
                f.display()
            );
        };
        if seq > u32::MAX as u64 {
            bail!("binlog file {}: sequence number too large", f.display());
        }
        out.push(BinlogFile {
            seq,
            input: Input::open(&f)?,
        });
    }
    out.sort_by_key(|f| f.seq);
    for w in out.windows(2) {
        if w[0].seq == w[1].seq {
            bail!(
                "binlog files {} and {} have the same sequence number",
                w[0].input.name,
                w[1].input.name
            );
        }
    }
    Ok(out)
}

/// Saved binlog files as a source (see the module doc).
pub struct BinlogSource {
    files: Vec<BinlogFile>,
    name: String,
}

impl BinlogSource {
    /// A source over `files` (sorted by sequence, as [`open_files`] returns them).
    pub fn new(files: Vec<BinlogFile>) -> anyhow::Result<BinlogSource> {
        for f in &files {
            if !f.input.bytes().starts_with(MAGIC) {
                bail!("input {} is not a binlog file", f.input.name);
            }
        }
        let name = match files.first() {
            Some(f) => {
                let p = Path::new(&f.input.name);
                let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
                match (p.parent(), stem) {
                    (Some(d), Some(s)) if !d.as_os_str().is_empty() => {
                        format!("{}/{s}", d.display())
                    }
                    (_, Some(s)) => s,
                    _ => f.input.name.clone(),
                }
            }
            None => "binlog".into(),
        };
        Ok(BinlogSource { files, name })
    }

    /// File names by sequence number, for the decoder's messages.
    pub fn file_names(&self) -> std::collections::BTreeMap<u64, String> {
        self.files
            .iter()
            .map(|f| (f.seq, f.input.name.clone()))
            .collect()
    }
}

impl Source for BinlogSource {
    fn reader(
        &self,
        worker: usize,
        workers: usize,
        resume: &Resume,
    ) -> anyhow::Result<Box<dyn SourceReader>> {
        let mut s = Stripe {
            files: self.files.clone(),
            name: self.name.clone(),
            stripe: worker,
            stripes: workers.max(1),
            file: 0,
            pos: MAGIC.len(),
            pending_fde: false,
        };
        if let Some(&p) = resume.positions.get(&s.partition_name()) {
            let (seq, off) = (p >> 32, (p & 0xffff_ffff) as usize);
            if let Some(i) = s.files.iter().position(|f| f.seq >= seq) {
                s.file = i;
                if s.files[i].seq == seq && off > MAGIC.len() {
                    s.pos = off;
                    s.pending_fde = true;
                }
            } else {
                s.file = s.files.len();
            }
        }
        Ok(Box::new(BinlogReader { s }))
    }

    fn total_bytes(&self) -> Option<u64> {
        Some(
            self.files
                .iter()
                .map(|f| f.input.bytes().len() as u64)
                .sum(),
        )
    }
}

struct Stripe {
    files: Vec<BinlogFile>,
    name: String,
    stripe: usize,
    stripes: usize,
    /// Index of the current file.
    file: usize,
    /// Byte offset of the next event in it.
    pos: usize,
    /// After a resume into the middle of a file: yield its format description first.
    pending_fde: bool,
}

impl Stripe {
    fn partition_name(&self) -> String {
        format!("{}#{}/{}", self.name, self.stripe, self.stripes)
    }
}

/// The stripe that owns the group at `position`.
fn owner(position: u64, stripes: usize) -> usize {
    let mut z = position.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    ((z ^ (z >> 31)) % stripes as u64) as usize
}

/// Event type codes the framing needs.
mod ty {
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const HEARTBEAT: u8 = 27;
    pub const MYSQL_GTID: u8 = 33;
    pub const MYSQL_ANONYMOUS_GTID: u8 = 34;
    pub const MYSQL_PREVIOUS_GTIDS: u8 = 35;
    pub const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
    pub const MARIADB_GTID: u8 = 162;
    pub const MARIADB_GTID_LIST: u8 = 163;
    pub const MARIADB_START_ENCRYPTION: u8 = 164;
    /// `XA PREPARE` (MySQL and MariaDB): ends the first part of an XA transaction.
    pub const XA_PREPARE: u8 = 38;
}

fn is_control(t: u8) -> bool {
    matches!(
        t,
        ty::STOP
            | ty::ROTATE
            | ty::FORMAT_DESCRIPTION
            | ty::HEARTBEAT
            | ty::MYSQL_PREVIOUS_GTIDS
            | ty::MARIADB_BINLOG_CHECKPOINT
            | ty::MARIADB_GTID_LIST
            | ty::MARIADB_START_ENCRYPTION
    )
}

/// The statement text of a QUERY event (`ev` is the whole event; a trailing CRC32, if any, is
/// included in the text's tail, so callers compare prefixes).
pub fn query_text(ev: &[u8]) -> Option<&[u8]> {
    let p = ev.get(HEADER..)?;
    let db_len = *p.get(8)? as usize;
    let status_len = u16::from_le_bytes([*p.get(11)?, *p.get(12)?]) as usize;
    p.get(13 + status_len + db_len + 1..)
}

/// How a QUERY event's statement bears on transaction grouping.
#[derive(PartialEq, Eq)]
enum Statement {
    Begin,
    End,
    Other,
}

fn statement(ev: &[u8]) -> Statement {
    let Some(text) = query_text(ev) else {
        return Statement::Other;
    };
    // The text may carry the 4 CRC bytes after it: compare whole words.
    let word = |w: &[u8]| {
        text.len() >= w.len()
            && text[..w.len()].eq_ignore_ascii_case(w)
            && (text.len() == w.len() || text.len() == w.len() + 4)
    };
    let xa_end = |w: &[u8]| text.len() > w.len() && text[..w.len()].eq_ignore_ascii_case(w);
    // MySQL opens an XA transaction with an `XA START` query (MariaDB in its GTID event).
    if word(b"BEGIN") || xa_end(b"XA START ") || xa_end(b"XA BEGIN ") {
        Statement::Begin
    } else if word(b"COMMIT")
        || word(b"ROLLBACK")
        || xa_end(b"XA COMMIT ")
        || xa_end(b"XA ROLLBACK ")
    {
        // An XA transaction's second part is a group of its own.
        Statement::End
    } else {
        Statement::Other
    }
}

struct BinlogReader {
    s: Stripe,
}

/// What the framing found next.
enum Framed {
    /// A group (or control record) of bytes `start..end`.
    Group {
        start: usize,
        end: usize,
        control: bool,
    },
    /// The end of the file.
    End,
}

/// How one event bears on the group being framed ([`Grouper::push`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The group goes on after this event.
    Continue,
    /// This event ends the group (its XID or `COMMIT`/`ROLLBACK`, a statement outside a
    /// transaction, or an event outside any group).
    End,
    /// A control event outside any group: a record of its own, for every stripe.
    Control,
}

/// The transaction-grouping rules of the module doc, one event at a time: shared by saved
/// files ([`next_group`]) and a live server's stream ([`super::replica`]).
#[derive(Clone, Debug, Default)]
pub struct Grouper {
    in_group: bool,
    in_tx: bool,
}

impl Grouper {
    /// Whether an event has opened a group that has not ended yet.
    pub fn in_group(&self) -> bool {
        self.in_group
    }

    /// Forgets a group that was opened (a stream that broke off in the middle of it).
    pub fn reset(&mut self) {
        *self = Grouper::default();
    }

    /// Takes the next event (`ev` whole: header, body, checksum) and says whether it ends the
    /// group.
    pub fn push(&mut self, ev: &[u8]) -> Step {
        let t = ev[4];
        if !self.in_group && is_control(t) {
            return Step::Control;
        }
        let step = match t {
            ty::MARIADB_GTID => {
                self.in_group = true;
                // flags2 bit 0 (FL_STANDALONE): a statement without BEGIN/COMMIT.
                self.in_tx = ev.get(HEADER + 12).is_none_or(|f| f & 1 == 0);
                Step::Continue
            }
            ty::MYSQL_GTID | ty::MYSQL_ANONYMOUS_GTID => {
                self.in_group = true;
                self.in_tx = false;
                Step::Continue
            }
            ty::QUERY => match statement(ev) {
                Statement::Begin => {
                    self.in_group = true;
                    self.in_tx = true;
                    Step::Continue
                }
                Statement::End => Step::End,
                Statement::Other if !self.in_tx => Step::End,
                Statement::Other => Step::Continue,
            },
            ty::XID | ty::XA_PREPARE => Step::End,
            // An event outside any transaction (a row event without its BEGIN, an unknown
            // type): a group of its own, for the decoder to judge.
            _ if !self.in_group => Step::End,
            _ => Step::Continue,
        };
        if step == Step::End {
            self.reset();
        }
        step
    }
}

/// Frames the next group of `data` at `pos`.
fn next_group(data: &[u8], pos: usize) -> Framed {
    if pos >= data.len() {
        return Framed::End;
    }
    let start = pos;
    let mut at = pos;
    let mut grouper = Grouper::default();
    // Ends inside a group, or a truncated (or corrupt) event: what is left goes to the
    // decoder, which reports it (a missing commit, a truncated file).
    let rest_of_file = Framed::Group {
        start,
        end: data.len(),
        control: false,
    };
    loop {
        let Some(rest) = data.get(at..).filter(|r| r.len() >= HEADER) else {
            return rest_of_file;
        };
        let len = u32::from_le_bytes([rest[9], rest[10], rest[11], rest[12]]) as usize;
        if len < HEADER || len > rest.len() {
            return rest_of_file;
        }
        let next = at + len;
        // A statement outside any transaction (DDL) goes to every stripe, like a control
        // event: each worker's decoder judges it against the rows it applied (a TRUNCATE of a
        // watched table is refused whatever the number of workers).
        let standalone =
            rest[4] == ty::QUERY && !grouper.in_tx && statement(&rest[..len]) == Statement::Other;
        match grouper.push(&rest[..len]) {
            Step::Continue => at = next,
            Step::End => {
                return Framed::Group {
                    start,
                    end: next,
                    control: standalone,
                };
            }
            Step::Control => {
                return Framed::Group {
                    start,
                    end: next,
                    control: true,
                };
            }
        }
    }
}

impl SourceReader for BinlogReader {
    fn partitions(&self) -> usize {
        1
    }

    fn partition_name(&self, _p: usize) -> String {
        self.s.partition_name()
    }

    fn position_unit(&self) -> &'static str {
        "pos"
    }

    fn poll(&mut self, max_records: usize, f: &mut dyn FnMut(Record<'_>)) -> anyhow::Result<()> {
        let s = &mut self.s;
        let mut yielded = 0;
        // Scans at most a few times the quota of groups (the other stripes' groups are skipped).
        let mut scanned = 0;
        while yielded < max_records && scanned < max_records.saturating_mul(s.stripes) {
            let Some(file) = s.files.get(s.file) else {
                return Ok(());
            };
            let data = file.input.bytes();
            let seq = file.seq;
            if s.pending_fde {
                s.pending_fde = false;
                if let Framed::Group {
                    start,
                    end,
                    control: true,
                } = next_group(data, MAGIC.len())
                {
                    f(Record {
                        partition: 0,
                        position: seq << 32 | start as u64,
                        line: start as u64,
                        payload: &data[start..end],
                    });
                }
            }
            match next_group(data, s.pos) {
                Framed::End => {
                    s.file += 1;
                    s.pos = MAGIC.len();
                }
                Framed::Group {
                    start,
                    end,
                    control,
                } => {
                    scanned += 1;
                    s.pos = end;
                    let mine = control || owner(seq << 32 | start as u64, s.stripes) == s.stripe;
                    if mine {
                        yielded += 1;
                        f(Record {
                            partition: 0,
                            position: seq << 32 | start as u64,
                            line: start as u64,
                            payload: &data[start..end],
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn next_position(&self, _p: usize) -> u64 {
        match self.s.files.get(self.s.file) {
            Some(f) => f.seq << 32 | self.s.pos as u64,
            None => u64::MAX,
        }
    }

    fn status(&self, _p: usize) -> PartitionStatus {
        if self.s.file >= self.s.files.len() {
            PartitionStatus::Finished
        } else {
            PartitionStatus::Active
        }
    }

    fn commit(&mut self, _positions: &[(usize, u64)]) -> anyhow::Result<()> {
        Ok(())
    }

    fn consumed_bytes(&self) -> Option<u64> {
        let s = &self.s;
        let done: u64 = s.files[..s.file.min(s.files.len())]
            .iter()
            .map(|f| f.input.bytes().len() as u64)
            .sum();
        Some(
            done + if s.file < s.files.len() {
                s.pos as u64
            } else {
                0
            },
        )
    }
}
