//! The watermark: a source policy that turns per-partition progress into a worker's input
//! frontier (see [`crate::time`] for the time contract it serves).
//!
//! - An **active** partition holds the frontier at its newest commit time seen minus the
//!   allowed lateness (a partition that has seen nothing holds it at zero).
//! - An **idle** partition (caught up, quiet for the idle timeout) and a **finished** one do not
//!   hold it.
//! - With no active partition but some idle one (or none at all while the source may still
//!   grow), the frontier moves to `max(newest seen + 1, wall clock - lateness - idle timeout)`:
//!   everything seen is complete, and a change committed now would arrive within that margin.
//! - With every partition finished the input is closed (`None`); so is a worker's input when
//!   the source's partitions are fixed and it owns none (a live binlog has one partition, on
//!   one worker).
//!
//! The engine frontier is the minimum over all workers (timely's progress tracking).

use crate::source::PartitionStatus;
use crate::time::Time;

/// Per-partition commit-time progress and the frontier derived from it.
#[derive(Clone, Debug)]
pub struct Watermark {
    seen: Vec<Option<Time>>,
    status: Vec<PartitionStatus>,
    lateness: Time,
    idle_margin: Time,
    /// Whether the source can gain partitions (Kafka) or is closed once all are finished.
    open: bool,
}

impl Watermark {
    /// A watermark over `partitions` partitions, holding back by `lateness` milliseconds.
    pub fn new(partitions: usize, lateness: Time) -> Self {
        Watermark {
            seen: vec![None; partitions],
            status: vec![PartitionStatus::Active; partitions],
            lateness,
            idle_margin: 0,
            open: false,
        }
    }

    /// The same watermark, with idle partitions letting the frontier follow the wall clock
    /// minus `lateness + idle_margin` (a fixed set of partitions that may go idle: a live
    /// binlog).
    pub fn with_idle_margin(mut self, idle_margin: Time) -> Self {
        self.idle_margin = idle_margin;
        self
    }

    /// A watermark whose source may gain partitions and whose partitions may go idle: the
    /// frontier then follows the wall clock minus `lateness + idle_margin`.
    pub fn open(lateness: Time, idle_margin: Time) -> Self {
        Watermark {
            seen: Vec::new(),
            status: Vec::new(),
            lateness,
            idle_margin,
            open: true,
        }
    }

    fn grow(&mut self, p: usize) {
        if p >= self.seen.len() {
            self.seen.resize(p + 1, None);
            self.status.resize(p + 1, PartitionStatus::Active);
        }
    }

    /// The newest commit time partition `p` has seen.
    pub fn newest(&self, p: usize) -> Option<Time> {
        self.seen.get(p).copied().flatten()
    }

    /// The newest commit time any partition has seen.
    pub fn newest_overall(&self) -> Option<Time> {
        self.seen.iter().flatten().max().copied()
    }

    /// Whether partition `p` is idle.
    pub fn is_idle(&self, p: usize) -> bool {
        self.status.get(p) == Some(&PartitionStatus::Idle)
    }

    /// Records that partition `p` has seen an event committed at `t`.
    pub fn observe(&mut self, p: usize, t: Time) {
        self.grow(p);
        let s = &mut self.seen[p];
        *s = Some(s.map_or(t, |x| x.max(t)));
    }

    /// Sets the status of partition `p`.
    pub fn set_status(&mut self, p: usize, status: PartitionStatus) {
        self.grow(p);
        self.status[p] = status;
    }

    /// Records that partition `p` has no more input.
    pub fn finish(&mut self, p: usize) {
        self.set_status(p, PartitionStatus::Finished);
    }

    /// The frontier: every time below it is complete as far as these partitions are concerned.
    /// `None` means the input is closed. `now_ms` is the wall clock.
    pub fn frontier_at(&self, now_ms: Time) -> Option<Time> {
        let mut min: Option<Time> = None;
        let mut idle = false;
        for (seen, status) in self.seen.iter().zip(&self.status) {
            match status {
                PartitionStatus::Finished => {}
                PartitionStatus::Idle => idle = true,
                PartitionStatus::Active => {
                    let t = seen.unwrap_or(0).saturating_sub(self.lateness);
                    min = Some(min.map_or(t, |m: Time| m.min(t)));
                }
            }
        }
        if min.is_some() {
            return min;
        }
        if idle || self.open {
            let seen = self.newest_overall().map_or(0, |t| t + 1);
            let clock = now_ms.saturating_sub(self.lateness + self.idle_margin);
            return Some(seen.max(clock));
        }
        None
    }

    /// [`Watermark::frontier_at`] the current wall clock.
    pub fn frontier(&self) -> Option<Time> {
        self.frontier_at(crate::time::now_ms())
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

    #[test]
    fn idle_partitions_do_not_hold_the_frontier() {
        let mut w = Watermark::open(10, 1000);
        assert_eq!(
            w.frontier_at(5_000),
            Some(3_990),
            "no partition yet: the clock"
        );
        w.observe(0, 100);
        w.set_status(1, PartitionStatus::Active);
        assert_eq!(
            w.frontier_at(5_000),
            Some(0),
            "partition 1 has seen nothing"
        );
        w.set_status(1, PartitionStatus::Idle);
        assert_eq!(w.frontier_at(5_000), Some(90));
        w.set_status(0, PartitionStatus::Idle);
        assert_eq!(w.frontier_at(50), Some(101), "everything seen is complete");
        assert_eq!(w.frontier_at(1_000_000), Some(998_990));
    }

    #[test]
    fn a_fixed_source_without_partitions_holds_no_frontier() {
        let w = Watermark::new(0, 0).with_idle_margin(1000);
        assert_eq!(w.frontier_at(5_000), None, "this worker owns no partition");
        let mut w = Watermark::new(0, 0).with_idle_margin(1000);
        w.observe(0, 4_500);
        assert_eq!(w.frontier_at(5_000), Some(4_500), "active: its newest time");
        w.set_status(0, PartitionStatus::Idle);
        assert_eq!(w.frontier_at(5_000), Some(4_501), "idle: everything seen");
        assert_eq!(
            w.frontier_at(9_000),
            Some(8_000),
            "idle: the clock minus the margin"
        );
    }
}
