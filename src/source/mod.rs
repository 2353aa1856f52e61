//! Sources: where the bytes of messages come from, and what the engine learns about progress.
//!
//! Contract ([`Source`], [`SourceReader`]):
//! - A source is a set of **partitions**. Each partition is owned by exactly one timely worker
//!   of the whole cluster (threads and processes): [`Source::reader`] gives worker `w` of `n`
//!   a reader over the partitions it owns, and only those. Ownership is a pure function of the
//!   partition's name and `n`, so every process agrees on it without talking.
//! - A reader yields [`Record`]s `(partition, position, payload)` in bounded batches
//!   ([`SourceReader::poll`]); positions increase within a partition, and re-reading from a
//!   record's position yields that record again.
//! - Sources: JSON-lines files ([`files`]), Kafka ([`kafka`]), saved binlog files ([`binlog`])
//!   and a live MySQL/MariaDB server followed as a replica ([`replica`]).
//! - A reader reports each partition's [`PartitionStatus`]: active, idle (caught up and quiet:
//!   it must not hold back the frontier), or finished (no more records, ever).
//! - The engine tells a reader which positions are safe to resume from
//!   ([`SourceReader::commit`]): only positions whose records' changes the sinks have
//!   acknowledged (see [`crate::pipeline`]).
//! - Every partition has a stable [`SourceReader::partition_name`]: checkpoints key positions by
//!   it, error messages cite it.
//!
//! Bytes become events in a separate [`crate::decode::Decoder`]; the watermark that turns
//! per-partition progress into the engine's input frontier is [`watermark`].

pub mod binlog;
pub mod dead_letter;
pub mod files;
pub mod gtid;
pub mod kafka;
pub mod mysql_conn;
pub mod replica;
pub mod snapshot;
pub mod watermark;

use std::collections::BTreeMap;

pub use dead_letter::{DeadLetters, Rejected};
pub use files::{FileSource, Input};

/// One record read from a partition.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// Index of the partition among the reader's partitions ([`SourceReader::partition_name`]).
    pub partition: usize,
    /// Where to resume to read this record again.
    pub position: u64,
    /// The position to cite in errors: a file's 1-based line, a Kafka message's offset.
    pub line: u64,
    /// The message value.
    pub payload: &'a [u8],
}

/// What a partition says about its progress.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PartitionStatus {
    /// More records may come at any time; it holds the frontier at its newest commit time.
    Active,
    /// Caught up with the end of the partition and quiet for the idle timeout: it does not hold
    /// the frontier (a record that comes later is applied at the frontier if it is older).
    Idle,
    /// No more records, ever.
    Finished,
}

/// Resume positions by partition name.
pub type Positions = BTreeMap<String, u64>;

/// What a source keeps next to a partition's position, by partition name, where the position
/// alone does not say everything a resume needs ([`SourceReader::resume_token`]).
pub type Tokens = BTreeMap<String, String>;

/// Where each partition resumes: its position and, for some sources, a token.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    /// Each partition's position.
    pub positions: Positions,
    /// The tokens kept beside some of them.
    pub tokens: Tokens,
}

impl From<Positions> for Resume {
    fn from(positions: Positions) -> Resume {
        Resume {
            positions,
            tokens: Tokens::new(),
        }
    }
}

/// A worker's view of a source: the partitions it owns.
pub trait SourceReader {
    /// Number of partitions this reader owns now (Kafka readers may gain partitions).
    fn partitions(&self) -> usize;
    /// The stable name of partition `p` (`file#stripe`, `topic[partition]`).
    fn partition_name(&self, p: usize) -> String;
    /// What [`Record::line`] counts, for messages: `"line"` or `"offset"`.
    fn position_unit(&self) -> &'static str;
    /// Reads at most `max_records` records, calling `f` for each. Never blocks for long.
    fn poll(&mut self, max_records: usize, f: &mut dyn FnMut(Record<'_>)) -> anyhow::Result<()>;
    /// The position of the next record partition `p` will yield (resuming there skips
    /// nothing that was not read).
    fn next_position(&self, p: usize) -> u64;
    /// The status of partition `p`.
    fn status(&self, p: usize) -> PartitionStatus;
    /// Records that every record before `position` in partition `p` is safe (its changes are
    /// durable in the sinks, or in a checkpoint).
    fn commit(&mut self, positions: &[(usize, u64)]) -> anyhow::Result<()>;
    /// What to keep next to `position` of partition `p` in a checkpoint, for a resume there
    /// ([`Resume::tokens`]): `position` is one the engine got from [`Self::next_position`] or
    /// a record, at or after the last committed one. The live binlog keeps its server epoch
    /// and GTID position ([`gtid::Token`]); other sources keep nothing.
    fn resume_token(&self, _p: usize, _position: u64) -> Option<String> {
        None
    }
    /// Consumer lag of partition `p` in records, when the source knows it.
    fn lag(&self, _p: usize) -> Option<u64> {
        None
    }
    /// Bytes read so far, when the source knows its size (progress output).
    fn consumed_bytes(&self) -> Option<u64> {
        None
    }
}

/// A source: hands each worker a reader over the partitions it owns.
pub trait Source: Send + Sync {
    /// A reader for worker `worker` of `workers` (cluster-wide indices), resuming from `resume`
    /// where a partition has a position there (from the start otherwise).
    fn reader(
        &self,
        worker: usize,
        workers: usize,
        resume: &Resume,
    ) -> anyhow::Result<Box<dyn SourceReader>>;
    /// Total bytes, when known (progress output).
    fn total_bytes(&self) -> Option<u64> {
        None
    }
    /// Whether the partitions are all known at start (files, a live binlog): a worker that owns
    /// none then holds no input frontier. Sources whose partitions may appear later (Kafka)
    /// say `false`, and their workers' frontiers follow the wall clock while they own none.
    fn partitions_fixed(&self) -> bool {
        self.total_bytes().is_some()
    }
}

/// A stable 64-bit FNV-1a hash (the same in every process and build), for partition ownership.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
