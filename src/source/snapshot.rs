//! The initial snapshot of a live server (`run --mysql --start snapshot`): the rows the watched
//! tables hold at one consistent point, then the binlog from exactly that point.
//!
//! - Consistency ([`super::replica::Flavor::snapshot_position`]): MariaDB reads the binlog
//!   position of an InnoDB consistent snapshot (`binlog_snapshot_file/position`, no lock);
//!   MySQL takes `FLUSH TABLES WITH READ LOCK` for the moment it opens the snapshot and reads
//!   the position (the user needs RELOAD), then releases it.
//! - Rows: every declared table a view needs, its columns in schema.sql's order, read in the
//!   binary protocol (typed values) with the session in UTC, and converted by the code that
//!   converts binlog row images (microseconds kept), so a value does not depend on which path
//!   it came by.
//! - Records: chunks of [`CHUNK_ROWS`] rows, each a [`Chunk`] behind [`MAGIC`] (bytes no
//!   binlog transaction starts with: its first event would have a length of 0), decoded by
//!   the binlog decoder as inserts, all at the snapshot's time (its whole second, like binlog
//!   commit times) and at a version below every binlog event after the snapshot's position.
//! - Positions: a chunk's position is [`SNAPSHOT_POSITION`] (0, below every binlog position),
//!   so a checkpoint taken before the whole snapshot is acknowledged says so, and a restart
//!   from it is refused (rows deleted meanwhile could not be retracted); the last chunk ends at
//!   the snapshot's binlog position, where the stream goes on.

use serde::{Deserialize, Serialize};

use crate::event::{ChangeEvent, Row};
use crate::schema::{Catalog, Table};
use crate::time::Version;
use crate::value::Value;
// A value the server sent in the binary protocol is converted as a binlog row image's is.
use crate::decode::binlog::from_value as convert;

/// What a snapshot record starts with.
pub const MAGIC: &[u8; 13] = b"SNAPSHOT\0\0\0\0\0";

/// The position of a snapshot record (no binlog position is this small).
pub const SNAPSHOT_POSITION: u64 = 0;

/// Rows per record.
pub const CHUNK_ROWS: usize = 1024;

/// One record of a snapshot: rows of one table.
#[derive(Debug, Serialize, Deserialize)]
pub struct Chunk {
    /// `db.table`.
    pub table: String,
    /// The snapshot's time (ms, a whole second).
    pub time: u64,
    /// The binlog file sequence and offset the snapshot is consistent with.
    pub seq: u64,
    /// See `seq`.
    pub pos: u64,
    /// The rows, columns in schema.sql's order.
    pub rows: Vec<Row>,
    /// Rows that could not be converted: why, and the row as the server sent it (the decoder
    /// dead-letters them, and stops unless `--skip-bad-events`).
    pub rejected: Vec<(String, String)>,
}

impl Chunk {
    /// The record's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        bincode::serialize_into(&mut out, self).expect("a snapshot chunk serializes");
        out
    }

    /// The chunk behind [`MAGIC`], if `bytes` is one.
    pub fn decode(bytes: &[u8]) -> Option<Result<Chunk, String>> {
        let body = bytes.strip_prefix(MAGIC.as_slice())?;
        Some(bincode::deserialize(body).map_err(|e| format!("malformed snapshot record: {e}")))
    }

    /// The chunk's rows as inserts of `catalog`'s table.
    pub fn events(&mut self, catalog: &Catalog) -> Result<Vec<ChangeEvent>, String> {
        if self.rows.is_empty() {
            return Ok(Vec::new());
        }
        let (db, name) = self
            .table
            .split_once('.')
            .ok_or_else(|| format!("snapshot of `{}`: not db.table", self.table))?;
        let table = catalog
            .lookup(db, name)
            .ok_or_else(|| format!("snapshot of {}: not in schema.sql", self.table))?;
        let pk = &catalog.tables[table].primary_key;
        // Below every row event at or after the snapshot's position.
        let version = Version {
            file: self.seq,
            pos: self.pos.saturating_sub(1),
            row: 0,
        };
        Ok(std::mem::take(&mut self.rows)
            .into_iter()
            .map(|row| ChangeEvent {
                table,
                key: row.project(pk),
                row: Some(row),
                version,
                time: self.time,
                tx: None,
            })
            .collect())
    }
}

/// A row of `table` as the server sent it (its columns in schema.sql's order), or why it
/// cannot be taken (the column and the reason).
pub fn row(values: &[mysql::Value], table: &Table) -> Result<Row, String> {
    let mut row = Row::with_capacity(values.len());
    for (v, col) in values.iter().zip(&table.columns) {
        match convert(v, &col.ty) {
            Ok(Value::Null) if !col.nullable => {
                return Err(format!("{} is NULL but NOT NULL in schema.sql", col.name));
            }
            Ok(v) => row.push(v),
            Err(e) => return Err(format!("{}: {e}", col.name)),
        }
    }
    Ok(row)
}

/// The statement that reads `t`'s columns in schema.sql's order.
pub fn select(t: &Table) -> String {
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("`{}`", c.name.replace('`', "``")))
        .collect();
    format!(
        "SELECT {} FROM `{}`.`{}`",
        cols.join(", "),
        t.db.replace('`', "``"),
        t.name.replace('`', "``")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ColumnType;
    use crate::value::{Decimal, days_from_civil};
    use mysql::Value as M;

    #[test]
    fn values_convert_as_the_binlog_decoder_gives_them() {
        let dt = ColumnType::DateTime { precision: 6 };
        assert_eq!(
            convert(&M::Date(2024, 6, 1, 10, 20, 30, 123_456), &dt),
            Ok(Value::DateTime(
                days_from_civil(2024, 6, 1) * 86_400_000_000 + 37_230_123_456
            ))
        );
        assert!(convert(&M::Date(2024, 0, 1, 0, 0, 0, 0), &dt).is_err());
        assert_eq!(
            convert(
                &M::Time(true, 1, 2, 0, 0, 500_000),
                &ColumnType::Time { precision: 3 }
            ),
            Ok(Value::Time(-(26 * 3_600_000_000 + 500_000)))
        );
        let dec = ColumnType::Decimal {
            precision: 10,
            scale: 2,
            unsigned: false,
        };
        assert_eq!(
            convert(&M::Bytes(b"-12.5".to_vec()), &dec),
            Ok(Value::Dec(Decimal::new(-1250, 2)))
        );
        assert_eq!(
            convert(&M::UInt(u64::MAX), &ColumnType::BigIntUnsigned),
            Ok(Value::Dec(Decimal::new(u64::MAX as i128, 0)))
        );
        assert_eq!(
            convert(&M::Int(-3), &ColumnType::Int { unsigned: false }),
            Ok(Value::Int(-3))
        );
        assert_eq!(
            convert(&M::Bytes(vec![1, 0]), &ColumnType::Bit { width: 9 }),
            Ok(Value::Int(256))
        );
        assert_eq!(convert(&M::NULL, &dec), Ok(Value::Null));
        assert!(convert(&M::Bytes(vec![0xff]), &ColumnType::Text { max_chars: None }).is_err());
        assert!(convert(&M::Double(1.0), &dec).is_err());
    }

    #[test]
    fn chunks_round_trip_and_are_no_binlog_transaction() {
        let c = Chunk {
            table: "orders.orders".into(),
            time: 1_717_236_000_000,
            seq: 3,
            pos: 1234,
            rows: vec![Row::from(vec![Value::Int(1), Value::Text("a".into())])],
            rejected: vec![("bad".into(), "[Int(1)]".into())],
        };
        let bytes = c.encode();
        // A binlog event's length (bytes 9..13) is at least 19.
        assert_eq!(&bytes[9..13], &[0, 0, 0, 0]);
        let back = Chunk::decode(&bytes).unwrap().unwrap();
        assert_eq!(
            (back.table.as_str(), back.time, back.seq, back.pos),
            ("orders.orders", c.time, 3, 1234)
        );
        assert_eq!(back.rows, c.rows);
        assert_eq!(back.rejected, c.rejected);
        assert!(Chunk::decode(b"\x00\x00\x00\x00\x0f").is_none());
        assert!(Chunk::decode(MAGIC).unwrap().is_err());
    }
}
