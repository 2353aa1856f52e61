//! Arrangements of rows whose batches keep every key and value in one byte buffer.
//!
//! Differential's default layout stores a batch's keys and values in `Vec<Row>`: one heap
//! allocation per row, cloned at every merge of the spine and freed with every batch. A
//! [`RowContainer`] keeps the packed rows of a batch back to back in one buffer with their
//! offsets, so building and merging batches copies bytes and a batch is a handful of
//! allocations. Readers get [`RowRef`]s, ordered as rows are (byte order), so cursors, seeks
//! and joins behave exactly as over `Vec<Row>`.

use std::rc::Rc;

use differential_dataflow::trace::implementations::merge_batcher::MergeBatcher;
use differential_dataflow::trace::implementations::merge_batcher::vec::VecMerger;
use differential_dataflow::trace::implementations::ord_neu::{OrdValBatch, OrdValBuilder};
use differential_dataflow::trace::implementations::spine_fueled::Spine;
use differential_dataflow::trace::implementations::{BatchContainer, ContainerChunker, OffsetList};
use timely::container::PushInto;

use crate::row::{Row, RowRef};
use crate::time::Time;

/// The packed rows of one batch, back to back.
#[derive(Default)]
pub struct RowContainer {
    /// Where each row ends in `bytes` (row `i` is `ends[i-1]..ends[i]`).
    ends: Vec<usize>,
    bytes: Vec<u8>,
}

impl RowContainer {
    fn push_bytes(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
        self.ends.push(self.bytes.len());
    }
}

impl PushInto<Row> for RowContainer {
    fn push_into(&mut self, item: Row) {
        self.push_bytes(item.as_ref().bytes());
    }
}

impl BatchContainer for RowContainer {
    type Owned = Row;
    type ReadItem<'a> = RowRef<'a>;

    #[inline(always)]
    fn into_owned<'a>(item: RowRef<'a>) -> Row {
        item.to_row()
    }

    #[inline(always)]
    fn clone_onto<'a>(item: RowRef<'a>, other: &mut Row) {
        other.clone_from_ref(item);
    }

    fn reborrow<'b, 'a: 'b>(item: RowRef<'a>) -> RowRef<'b> {
        item
    }

    fn push_ref(&mut self, item: RowRef<'_>) {
        self.push_bytes(item.bytes());
    }

    fn push_own(&mut self, item: &Row) {
        self.push_bytes(item.as_ref().bytes());
    }

    fn clear(&mut self) {
        self.ends.clear();
        self.bytes.clear();
    }

    fn with_capacity(size: usize) -> Self {
        RowContainer {
            ends: Vec::with_capacity(size),
            // A guess: keys and short rows are a few dozen bytes.
            bytes: Vec::with_capacity(size * 16),
        }
    }

    fn merge_capacity(a: &Self, b: &Self) -> Self {
        RowContainer {
            ends: Vec::with_capacity(a.ends.len() + b.ends.len()),
            bytes: Vec::with_capacity(a.bytes.len() + b.bytes.len()),
        }
    }

    #[inline]
    fn index(&self, i: usize) -> RowRef<'_> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        RowRef::from_encoded(&self.bytes[start..self.ends[i]])
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

type Update = ((Row, Row), Time, isize);

/// Keys and values in [`RowContainer`]s; times, differences and offsets as by default.
pub type RowLayout = (
    RowContainer,
    RowContainer,
    Vec<Time>,
    Vec<isize>,
    OffsetList,
);

/// A trace of `(key row, value row)` pairs in packed batches.
pub type RowSpine = Spine<Rc<OrdValBatch<RowLayout>>>;

/// The batcher that builds [`RowSpine`] batches (sorting owned rows as by default).
pub type RowBatcher =
    MergeBatcher<ContainerChunker<Vec<Update>>, VecMerger<(Row, Row), Time, isize>, RowBuilder>;

/// Seals sorted updates into a packed batch.
pub type RowBuilder = OrdValBuilder<RowLayout, Vec<Update>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    #[test]
    fn rows_read_back_in_order_and_compare_as_rows() {
        let rows: Vec<Row> = vec![
            Row::new(),
            Row::from(vec![Value::Int(-3)]),
            Row::from(vec![Value::Int(-3), Value::Text("a\0b".into())]),
            Row::from(vec![Value::Text(String::new())]),
            Row::from(vec![Value::Text("zz".into()), Value::Null]),
        ];
        let mut c = RowContainer::with_capacity(2);
        for r in &rows {
            c.push_own(r);
        }
        let mut merged = RowContainer::merge_capacity(&c, &c);
        for i in 0..c.len() {
            merged.push_ref(c.index(i));
        }
        assert_eq!(merged.len(), rows.len());
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(RowContainer::into_owned(merged.index(i)), *r);
            assert!(merged.index(i) == r);
            for (j, s) in rows.iter().enumerate() {
                assert_eq!(merged.index(i).cmp(&merged.index(j)), r.cmp(s));
            }
        }
        let mut reused = Row::from(vec![Value::Int(1), Value::Int(2)]);
        RowContainer::clone_onto(merged.index(2), &mut reused);
        assert_eq!(reused, rows[2]);
        merged.clear();
        assert_eq!(merged.len(), 0);
    }
}
