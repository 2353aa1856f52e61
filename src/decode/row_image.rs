//! The row images of binlog row events, read cell by cell with `mysql_common` (the crate of
//! the replica's connection).
//!
//! `mysql_cdc`'s row decoder, used before, read every CHAR/VARCHAR/BINARY/VARBINARY cell as
//! UTF-8 (a binary value or a latin1 text that is not UTF-8 failed the whole event), cut
//! DATETIME/TIME/TIMESTAMP fractions to milliseconds and could not read a negative TIME or
//! MySQL's binary JSON. `mysql_common` reads each cell as the server wrote it: bytes, the whole
//! microseconds, signed times, JSONB. The table map's metadata (column names, signedness,
//! ENUM/SET strings, primary key) is still read and checked against schema.sql by
//! [`super::binlog`]; this module only needs each column's type, metadata, signedness and
//! character set, computed once per table map ([`Layout`]).
//!
//! A row event's body (after the 19-byte header, without the checksum): table id (6), flags
//! (2), for v2 events extra data (its length, 2 bytes, counts itself), the number of columns
//! (length-encoded), the columns-present bitmap (two for an update: before, after), then each
//! row: a NULL bitmap over the present columns and the non-NULL cells.

use std::panic::{AssertUnwindSafe, catch_unwind};

use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::{
    Event, FormatDescriptionEvent, OptionalMetaExtractor, TableMapEvent,
};
use mysql_common::binlog::value::BinlogValue;
use mysql_common::constants::ColumnType;
use mysql_common::io::ParseBuf;
use mysql_common::proto::MyDeserialize;

use crate::source::binlog::HEADER;

/// The binary character set: a CHAR column of it is `BINARY(n)`.
const BINARY_CHARSET: u16 = 63;

/// One cell: `None` is SQL NULL.
pub(crate) type Cell = Option<BinlogValue<'static>>;

/// The cells of one row image, one per column of the table map.
pub(crate) type Cells = Vec<Cell>;

/// The rows of one row event.
pub(crate) enum Rows {
    Write(Vec<Cells>),
    Update(Vec<(Cells, Cells)>),
    Delete(Vec<Cells>),
}

/// How to read one column's cells.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    ty: ColumnType,
    meta: Vec<u8>,
    unsigned: bool,
    /// The character set of a character column (0 where the metadata has none).
    pub(crate) charset: u16,
    /// `BINARY(n)`: the server strips trailing zero bytes from the row image; the value has
    /// `n` bytes.
    pub(crate) pad_to: Option<usize>,
}

impl Column {
    /// A signed MEDIUMINT: `mysql_common` reads its three bytes without extending the sign
    /// (a negative value comes out as its two's complement, 2^24 more).
    pub(crate) fn signed_int24(&self) -> bool {
        self.ty == ColumnType::MYSQL_TYPE_INT24 && !self.unsigned
    }
}

/// How to read the cells of a table map's rows.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    columns: Vec<Column>,
}

impl Layout {
    /// The layout of the table map event `ev` (its header) whose body is `body` (without the
    /// checksum).
    pub(crate) fn of_table_map(ev: &[u8], body: &[u8]) -> Result<Layout, String> {
        caught(|| {
            // The event again without its checksum, for a format description without one.
            let mut plain = Vec::with_capacity(HEADER + body.len());
            plain.extend_from_slice(ev.get(..HEADER).ok_or("table map: truncated")?);
            plain.extend_from_slice(body);
            let len = (plain.len() as u32).to_le_bytes();
            plain[9..13].copy_from_slice(&len);
            let fde = FormatDescriptionEvent::new(BinlogVersion::Version4);
            let event = Event::read(&fde, &plain[..]).map_err(|e| format!("table map: {e}"))?;
            let tme = event
                .read_event::<TableMapEvent<'_>>()
                .map_err(|e| format!("table map: {e}"))?;
            let extract = OptionalMetaExtractor::new(tme.iter_optional_meta())
                .map_err(|e| format!("table map metadata: {e}"))?;
            let mut signedness = extract.iter_signedness();
            let mut charsets = extract.iter_charset();
            let mut columns = Vec::new();
            for i in 0..tme.columns_count() as usize {
                let ty = tme
                    .get_column_type(i)
                    .map_err(|e| format!("column {}: {e}", i + 1))?
                    .ok_or_else(|| format!("column {}: no type", i + 1))?;
                let meta = tme
                    .get_column_metadata(i)
                    .ok_or_else(|| format!("column {}: no metadata", i + 1))?
                    .to_vec();
                let unsigned = ty.is_numeric_type() && signedness.next().unwrap_or(false);
                let charset = if ty.is_character_type() {
                    charsets.next().transpose().map_err(|e| e.to_string())?
                } else {
                    None
                }
                .unwrap_or(0);
                let pad_to = (ty == ColumnType::MYSQL_TYPE_STRING && charset == BINARY_CHARSET)
                    .then(|| string_length(&meta));
                columns.push(Column {
                    ty,
                    meta,
                    unsigned,
                    charset,
                    pad_to,
                });
            }
            Ok(Layout { columns })
        })
    }

    /// Column `i` (binlog order).
    pub(crate) fn column(&self, i: usize) -> Option<&Column> {
        self.columns.get(i)
    }

    /// The rows of the row event of type `t` whose body is `body`.
    pub(crate) fn rows(&self, t: u8, body: &[u8]) -> Result<Rows, String> {
        caught(|| {
            self.read_rows(t, body)
                .map_err(|e| format!("cannot decode: {e}"))
        })
    }

    fn read_rows<'a>(&'a self, t: u8, body: &'a [u8]) -> Result<Rows, String> {
        use super::binlog::ty;
        let v2 = matches!(t, ty::WRITE_V2 | ty::UPDATE_V2 | ty::DELETE_V2);
        let update = matches!(t, ty::UPDATE_V1 | ty::UPDATE_V2);
        let mut b = ParseBuf(body);
        take(&mut b, 8)?;
        if v2 {
            let extra = u16::from_le_bytes(take(&mut b, 2)?.try_into().expect("2 bytes"));
            take(&mut b, (extra as usize).saturating_sub(2))?;
        }
        let n = b
            .checked_eat_lenenc_int()
            .ok_or("the row event is truncated")? as usize;
        if n != self.columns.len() {
            return Err(format!(
                "the row event has {n} columns, its table map {}",
                self.columns.len()
            ));
        }
        let bitmap = n.div_ceil(8);
        let full = |b: &mut ParseBuf<'_>| -> Result<(), String> {
            let present = take(b, bitmap)?;
            if (0..n).any(|i| present[i / 8] >> (i % 8) & 1 == 0) {
                return Err(
                    "the row image lacks columns: set binlog_row_image=FULL on the server".into(),
                );
            }
            Ok(())
        };
        full(&mut b)?;
        if update {
            full(&mut b)?;
        }
        let mut rows = match t {
            ty::WRITE_V1 | ty::WRITE_V2 => Rows::Write(Vec::new()),
            ty::UPDATE_V1 | ty::UPDATE_V2 => Rows::Update(Vec::new()),
            _ => Rows::Delete(Vec::new()),
        };
        while !b.is_empty() {
            match &mut rows {
                Rows::Write(rs) | Rows::Delete(rs) => rs.push(self.row(&mut b)?),
                Rows::Update(rs) => {
                    let before = self.row(&mut b)?;
                    rs.push((before, self.row(&mut b)?));
                }
            }
        }
        Ok(rows)
    }

    /// One row image (all columns present).
    fn row<'a>(&'a self, b: &mut ParseBuf<'a>) -> Result<Cells, String> {
        let nulls = take(b, self.columns.len().div_ceil(8))?;
        let mut cells = Vec::with_capacity(self.columns.len());
        for (i, c) in self.columns.iter().enumerate() {
            if nulls[i / 8] >> (i % 8) & 1 == 1 {
                cells.push(None);
                continue;
            }
            let v = BinlogValue::deserialize((c.ty, &c.meta[..], c.unsigned, false), b)
                .map_err(|e| format!("column {}: {e}", i + 1))?;
            cells.push(Some(v.into_owned()));
        }
        Ok(cells)
    }
}

/// The declared length of a CHAR/BINARY column from its metadata (`real type, length` with
/// the length's high bits folded into the first byte, MySQL bug #37426).
fn string_length(meta: &[u8]) -> usize {
    match meta {
        [b0, b1, ..] if b0 & 0x30 != 0x30 => *b1 as usize | (((*b0 as usize & 0x30) ^ 0x30) << 4),
        [_, b1, ..] => *b1 as usize,
        _ => 0,
    }
}

fn take<'a>(b: &mut ParseBuf<'a>, n: usize) -> Result<&'a [u8], String> {
    b.checked_eat(n)
        .ok_or_else(|| "the row event is truncated".to_string())
}

/// Runs `f`, a panic of the decoder being an error.
fn caught<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err("the decoder panicked".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_read() {
        // char(200): 0xfe (STRING) with the length in the second byte.
        assert_eq!(string_length(&[0xfe, 200]), 200);
        // char(255) in utf8mb4 = 1020 bytes: high bits folded into the first byte.
        assert_eq!(string_length(&[0xce, 0xfc]), 1020);
    }
}
