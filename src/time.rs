//! The time contract, in one place.
//!
//! - [`Time`] is the differential-dataflow time of every collection: the source commit time in
//!   milliseconds since the epoch (Debezium `source.ts_ms`). All rows of one source transaction
//!   carry the same time, so a transaction is never seen half-applied.
//! - [`Version`] orders the changes of one row: its source position (binlog file sequence, byte
//!   offset, row index within the event). For each `(table, primary key)` the change with the
//!   greatest version wins, whatever order changes arrive in. The same version again is a
//!   duplicate; a smaller one is stale. Both change nothing and are counted.
//! - Watermark rule: every source partition reports the greatest commit time it has seen (a
//!   finished partition reports "infinity"). A worker's input frontier is the minimum over its
//!   partitions minus the allowed lateness; the engine frontier is the minimum over all workers
//!   (timely's progress tracking computes it). An event whose time is below its worker's frontier
//!   is *late*: it is applied at the frontier instead of its own time (so it is still counted
//!   exactly, only its time moves) and counted.
//! - A time `t` is complete when the frontier has passed it; only then are the changes of each
//!   view at `t` emitted, consolidated, as upserts and deletes.

use serde::{Deserialize, Serialize};

/// Dataflow time: source commit time in milliseconds since the epoch.
pub type Time = u64;

/// Multiplicity change of a record: +1 insert, -1 retraction.
pub type Diff = isize;

/// Source position of one row change; greater is newer.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Version {
    /// Sequence number of the binlog file (the numeric suffix of `mysql-bin.000003`).
    pub file: u64,
    /// Byte offset of the event in that file.
    pub pos: u64,
    /// Index of the row within the event.
    pub row: u32,
}

/// Tracks the commit-time progress of several source partitions and derives the frontier.
#[derive(Clone, Debug)]
pub struct Watermark {
    seen: Vec<Option<Time>>,
    done: Vec<bool>,
    lateness: Time,
}

impl Watermark {
    /// A watermark over `partitions` partitions, holding back by `lateness` milliseconds.
    pub fn new(partitions: usize, lateness: Time) -> Self {
        Watermark {
            seen: vec![None; partitions],
            done: vec![false; partitions],
            lateness,
        }
    }

    /// Records that partition `p` has seen an event committed at `t`.
    pub fn observe(&mut self, p: usize, t: Time) {
        let s = &mut self.seen[p];
        *s = Some(s.map_or(t, |x| x.max(t)));
    }

    /// Records that partition `p` has no more input.
    pub fn finish(&mut self, p: usize) {
        self.done[p] = true;
    }

    /// The frontier: every time below it is complete as far as these partitions are concerned.
    /// `None` means all partitions are finished (the input is closed).
    pub fn frontier(&self) -> Option<Time> {
        let mut min: Option<Time> = None;
        for (seen, done) in self.seen.iter().zip(&self.done) {
            if *done {
                continue;
            }
            // A partition that has seen nothing holds the frontier at zero.
            let t = seen.unwrap_or(0).saturating_sub(self.lateness);
            min = Some(min.map_or(t, |m: Time| m.min(t)));
        }
        if self.done.iter().all(|d| *d) {
            None
        } else {
            min
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_is_min_over_partitions_minus_lateness() {
        let mut w = Watermark::new(2, 10);
        assert_eq!(w.frontier(), Some(0));
        w.observe(0, 100);
        assert_eq!(w.frontier(), Some(0), "partition 1 has seen nothing");
        w.observe(1, 50);
        assert_eq!(w.frontier(), Some(40));
        w.observe(1, 30); // older event does not move it back
        assert_eq!(w.frontier(), Some(40));
        w.finish(1);
        assert_eq!(w.frontier(), Some(90));
        w.finish(0);
        assert_eq!(w.frontier(), None);
    }
}
