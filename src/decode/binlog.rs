//! MySQL/MariaDB row-based binlog: one transaction's events (a record of
//! [`crate::source::binlog`]) -> [`ChangeEvent`]s checked against the declared schema, all at the
//! transaction's commit time. Table maps are read by the `mysql_cdc` crate, row cells by
//! `mysql_common` ([`super::row_image`]); everything around them (checksums, framing checks,
//! table-map validation, ENUM/SET strings, character sets, keys, what cannot be decoded) is
//! here.
//!
//! Rules:
//! - Every event's CRC32 is checked (when the format description says events carry one) before
//!   it is used.
//! - A table map names its table; tables schema.sql does not declare (and, when the decoder is
//!   told which tables the views use, declared tables no view needs) are skipped without
//!   decoding their rows. A declared table's map must carry the full metadata (`binlog_row_metadata=FULL`:
//!   column names, ENUM strings, signedness, primary key) and match schema.sql: every declared
//!   column present (by name) with a compatible type and the same signedness, ENUM members and
//!   primary key; other columns are ignored.
//! - Rows need the full row image (`binlog_row_image=FULL`). Integers follow the metadata's
//!   signedness; DECIMAL is exact; ENUM indexes and SET bitmaps are mapped to their strings;
//!   TIMESTAMP is UTC; DATETIME/TIMESTAMP/TIME keep their microseconds (a TIME may be
//!   negative); text is UTF-8, or latin1 (Windows-1252) where the column's character set says
//!   so; BINARY(n) is padded to its n bytes (the row image strips trailing zero bytes); MySQL's
//!   binary JSON is turned into JSON text.
//! - Time: every row of a record gets the header time of its XID event (or COMMIT/ROLLBACK
//!   query), in milliseconds (binlog timestamps have whole seconds). Version:
//!   (file sequence, position of the row event, row index). An update that changes the primary
//!   key is a delete of the old key and an insert of the new one, with the same version.
//! - Nothing is lost silently: a CRC mismatch, a truncated event, a transaction without its
//!   commit, an unknown or compressed event type, encrypted binlogs, a row event whose table map
//!   is missing, a table map that does not match schema.sql, and a row that cannot be decoded
//!   (text that is not UTF-8 in a character set other than latin1, a zero date, ...) are each a [`PartRejected`] naming the binlog file and
//!   position, with the raw event. Unless the user asked to skip them, they are fatal: the run
//!   stops (going on would give wrong results). With skipping, the rest of the transaction is
//!   used.

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use mysql_cdc::events::table_map_event::TableMapEvent;
use mysql_common::binlog::value::BinlogValue;

use super::row_image::Column;
pub(crate) use super::row_image::{Cells, Layout, Rows};
use super::{DecodeError, Decoded, Decoder, PartRejected};
use crate::event::{ChangeEvent, Row};
use crate::schema::{Catalog, ColumnType, TableId};
use crate::source::binlog::{HEADER, query_text};
use crate::time::Version;
use crate::value::{Decimal, F64, MICROS_PER_DAY, Value, days_from_civil};

/// Event type codes.
pub(crate) mod ty {
    pub const QUERY: u8 = 2;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const WRITE_V1: u8 = 23;
    pub const UPDATE_V1: u8 = 24;
    pub const DELETE_V1: u8 = 25;
    pub const WRITE_V2: u8 = 30;
    pub const UPDATE_V2: u8 = 31;
    pub const DELETE_V2: u8 = 32;
    pub const MARIADB_START_ENCRYPTION: u8 = 164;
}

/// Types that carry nothing the engine needs (besides grouping, done by the source).
pub(crate) fn is_harmless(t: u8) -> bool {
    matches!(
        t,
        3 | 4 | 5 | 13 | 14 | 27 | 29 | 33 | 34 | 35 | 36 | 41 | 160 | 161 | 162 | 163
    )
}

/// The `LOG_EVENT_IGNORABLE_F` header flag: a reader that does not know the event may skip it.
pub(crate) const IGNORABLE: u16 = 0x80;

/// Per declared column: where it is in the binlog row and how to convert it.
#[derive(Debug)]
pub(crate) struct ColMap {
    pub(crate) binlog: usize,
    pub(crate) enum_values: Option<Vec<String>>,
    pub(crate) set_values: Option<Vec<String>>,
}

/// A validated table map of a declared table.
#[derive(Debug)]
struct Mapped {
    table: TableId,
    cols: Vec<ColMap>,
    /// How to read its rows' cells.
    layout: Layout,
}

/// How the decoder names binlog files in its messages and dead letters.
#[derive(Clone, Debug)]
pub enum FileNames {
    /// Saved files, by sequence number.
    Saved(Arc<BTreeMap<u64, String>>),
    /// A live server's binlog: its files are `BASE.NNNNNN` (as MySQL and MariaDB name them),
    /// cited as `SERVER/BASE.NNNNNN`.
    Server {
        /// `host:port`.
        server: String,
        /// The binlog base name (`mysql-bin`).
        base: String,
        /// The server epoch ([`crate::source::gtid::Token`]): the high half of every version's
        /// file field. Set by the source before its first record, when it knows the state dir.
        epoch: Arc<AtomicU32>,
    },
}

impl FileNames {
    /// The name of the binlog file with sequence number `seq`.
    pub fn name(&self, seq: u64) -> String {
        match self {
            FileNames::Saved(files) => files
                .get(&seq)
                .cloned()
                .unwrap_or_else(|| format!("binlog file #{seq}")),
            FileNames::Server { server, base, .. } => {
                format!("{server}/{}", server_file(base, seq))
            }
        }
    }

    /// The server epoch (0 for saved files).
    pub fn epoch(&self) -> u32 {
        match self {
            FileNames::Saved(_) => 0,
            FileNames::Server { epoch, .. } => epoch.load(Ordering::Acquire),
        }
    }
}

/// The server's name of binlog file `seq` with base name `base`: `mysql-bin.000003` (six
/// digits at least, as MySQL and MariaDB write them).
pub fn server_file(base: &str, seq: u64) -> String {
    format!("{base}.{seq:06}")
}

/// The binlog decoder (see the module doc). One per worker.
pub struct BinlogDecoder {
    catalog: Arc<Catalog>,
    files: FileNames,
    /// Declared tables no view needs: their rows are skipped like undeclared tables' rows.
    unused: Vec<bool>,
    skip_bad: bool,
    crc: bool,
    /// Table maps by table id: `Some` for a declared table, `None` for one that is skipped.
    maps: HashMap<u64, Option<Arc<Mapped>>>,
    rejected: Vec<PartRejected>,
    /// Row events of tables no view needs, skipped without decoding their rows.
    pub skipped_row_events: u64,
    /// The watched tables whose rows this decoder has applied: a statement that empties one
    /// of them without row events is refused ([`super::ddl`]).
    applied: std::collections::HashSet<TableId>,
}

impl BinlogDecoder {
    /// A decoder for the tables of `catalog`; `files` names binlog files by sequence number
    /// (for messages); `skip_bad`: undecodable events are dead-lettered and skipped instead of
    /// stopping the run.
    pub fn new(
        catalog: Arc<Catalog>,
        files: Arc<BTreeMap<u64, String>>,
        skip_bad: bool,
    ) -> BinlogDecoder {
        BinlogDecoder::with_names(catalog, FileNames::Saved(files), None, skip_bad)
    }

    /// A decoder naming files by `files`; with `used`, declared tables outside it (that no
    /// view needs) are skipped without decoding or checking their rows.
    pub fn with_names(
        catalog: Arc<Catalog>,
        files: FileNames,
        used: Option<&std::collections::BTreeSet<TableId>>,
        skip_bad: bool,
    ) -> BinlogDecoder {
        let unused = (0..catalog.tables.len())
            .map(|t| used.is_some_and(|u| !u.contains(&t)))
            .collect();
        BinlogDecoder {
            catalog,
            files,
            unused,
            skip_bad,
            crc: false,
            maps: HashMap::new(),
            rejected: Vec::new(),
            skipped_row_events: 0,
            applied: Default::default(),
        }
    }

    fn file_name(&self, seq: u64) -> String {
        self.files.name(seq)
    }

    fn reject(&mut self, seq: u64, pos: u64, error: String, raw: &[u8]) {
        let source = self.file_name(seq);
        let fatal = !self.skip_bad;
        let error = if fatal {
            format!(
                "{error} (stopping: going on would give wrong results; --skip-bad-events \
                 dead-letters such events and goes on)"
            )
        } else {
            error
        };
        self.rejected.push(PartRejected {
            source,
            unit: "pos",
            line: pos,
            error: format!("binlog event at position {pos}: {error}"),
            raw: raw.to_vec(),
            fatal,
        });
    }

    /// Validates a declared table's map against schema.sql.
    fn check_map(&self, table: TableId, map: &TableMapEvent) -> Result<Vec<ColMap>, String> {
        let t = &self.catalog.tables[table];
        let name = t.qualified();
        let Some(meta) = &map.table_metadata else {
            return Err(format!(
                "the table map of {name} has no column metadata: set binlog_row_metadata=FULL on \
                 the server (column names, ENUM strings, signedness and the primary key come from it)"
            ));
        };
        let Some(names) = &meta.column_names else {
            return Err(format!(
                "the table map of {name} has no column names: set binlog_row_metadata=FULL on the server"
            ));
        };
        if names.len() != map.column_types.len() {
            return Err(format!("the table map of {name} is inconsistent"));
        }
        // Per binlog column: numeric index (signedness), enum index, set index.
        let mut numeric = 0usize;
        let mut enums = 0usize;
        let mut sets = 0usize;
        let mut info: Vec<(Option<bool>, Option<usize>, Option<usize>)> = Vec::new();
        for (i, &code) in map.column_types.iter().enumerate() {
            let real = real_type(code, map.column_metadata[i]);
            let n = if matches!(real, 1 | 2 | 3 | 4 | 5 | 8 | 9 | 246) {
                numeric += 1;
                Some(
                    meta.signedness
                        .as_ref()
                        .and_then(|s| s.get(numeric - 1).copied())
                        .unwrap_or(false),
                )
            } else {
                None
            };
            let e = (real == 247).then(|| {
                enums += 1;
                enums - 1
            });
            let s = (real == 248).then(|| {
                sets += 1;
                sets - 1
            });
            info.push((n, e, s));
        }
        let mut cols = Vec::new();
        for c in &t.columns {
            let Some(b) = names.iter().position(|n| n.eq_ignore_ascii_case(&c.name)) else {
                return Err(format!(
                    "{name}.{} is declared in schema.sql but not in the binlog's table map (columns: {})",
                    c.name,
                    names.join(", ")
                ));
            };
            let real = real_type(map.column_types[b], map.column_metadata[b]);
            let meta_b = map.column_metadata[b];
            let ok = match &c.ty {
                ColumnType::Int { .. } => matches!(real, 1 | 2 | 3 | 8 | 9),
                ColumnType::BigIntUnsigned => real == 8,
                ColumnType::Decimal { scale, .. } => real == 246 && (meta_b >> 8) as u8 == *scale,
                ColumnType::Double { .. } => matches!(real, 4 | 5),
                ColumnType::Bit { .. } => real == 16,
                ColumnType::Text { .. } | ColumnType::Json => matches!(real, 15 | 253 | 254 | 252),
                ColumnType::Bytes | ColumnType::Geometry => {
                    matches!(real, 15 | 253 | 254 | 252 | 255)
                }
                ColumnType::Enum(_) => real == 247,
                ColumnType::Set(_) => real == 248,
                ColumnType::Date => real == 10,
                ColumnType::DateTime { .. } => matches!(real, 12 | 18),
                ColumnType::Timestamp { .. } => matches!(real, 7 | 17),
                ColumnType::Time { .. } => matches!(real, 11 | 19),
                ColumnType::Year => real == 13,
            };
            if !ok {
                return Err(format!(
                    "{name}.{} is {} in schema.sql but binlog column type {real} (metadata {meta_b})",
                    c.name, c.ty
                ));
            }
            let (signed_info, e, s) = info[b];
            let unsigned = signed_info.unwrap_or(false);
            let declared_unsigned = match &c.ty {
                ColumnType::Int { unsigned } => Some(*unsigned),
                ColumnType::BigIntUnsigned => Some(true),
                _ => None,
            };
            if let Some(d) = declared_unsigned
                && meta.signedness.is_some()
                && d != unsigned
            {
                return Err(format!(
                    "{name}.{} is {} in schema.sql but {} in the binlog",
                    c.name,
                    if d { "UNSIGNED" } else { "signed" },
                    if unsigned { "UNSIGNED" } else { "signed" }
                ));
            }
            if declared_unsigned.is_some() && meta.signedness.is_none() {
                return Err(format!(
                    "the table map of {name} has no signedness: set binlog_row_metadata=FULL on the server"
                ));
            }
            let enum_values = match e {
                Some(i) => {
                    let Some(v) = meta.enum_string_values.as_ref().and_then(|v| v.get(i)) else {
                        return Err(format!(
                            "the table map of {name} has no ENUM strings: set binlog_row_metadata=FULL on the server"
                        ));
                    };
                    if let ColumnType::Enum(want) = &c.ty
                        && want != v
                    {
                        return Err(format!(
                            "{name}.{} is {} in schema.sql but ENUM('{}') in the binlog",
                            c.name,
                            c.ty,
                            v.join("','")
                        ));
                    }
                    Some(v.clone())
                }
                None => None,
            };
            let set_values = match s {
                Some(i) => match meta.set_string_values.as_ref().and_then(|v| v.get(i)) {
                    Some(v) => Some(v.clone()),
                    None => {
                        return Err(format!(
                            "the table map of {name} has no SET strings: set binlog_row_metadata=FULL on the server"
                        ));
                    }
                },
                None => None,
            };
            cols.push(ColMap {
                binlog: b,
                enum_values,
                set_values,
            });
        }
        // The primary key.
        let pk = primary_key(meta);
        let declared: Vec<usize> = t.primary_key.iter().map(|&i| cols[i].binlog).collect();
        match pk {
            Some(pk) if pk == declared => {}
            Some(pk) => {
                return Err(format!(
                    "the primary key of {name} is ({}) in the binlog but ({}) in schema.sql",
                    pk.iter()
                        .map(|&i| names.get(i).map_or("?", String::as_str))
                        .collect::<Vec<_>>()
                        .join(", "),
                    t.primary_key
                        .iter()
                        .map(|&i| t.columns[i].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            None => {
                return Err(format!(
                    "the table map of {name} names no primary key (set binlog_row_metadata=FULL \
                     on the server; the table must have a primary key)"
                ));
            }
        }
        Ok(cols)
    }

    /// Converts one binlog row image into a declared row.
    fn row(&self, m: &Mapped, data: &Cells) -> Result<Row, String> {
        let t = &self.catalog.tables[m.table];
        let mut row = Row::with_capacity(m.cols.len());
        for (ci, cm) in m.cols.iter().enumerate() {
            let col = &t.columns[ci];
            let (Some(cell), Some(layout)) = (data.get(cm.binlog), m.layout.column(cm.binlog))
            else {
                return Err(format!("the row of {} has too few columns", t.qualified()));
            };
            let v = match cell {
                None => {
                    if !col.nullable {
                        return Err(format!(
                            "{}.{} is NULL (or missing from the row image: set binlog_row_image=FULL on the server) but NOT NULL in schema.sql",
                            t.qualified(),
                            col.name
                        ));
                    }
                    Value::Null
                }
                Some(v) => convert(v, &col.ty, cm, layout)
                    .map_err(|e| format!("{}.{}: {e}", t.qualified(), col.name))?,
            };
            row.push(v);
        }
        Ok(row)
    }

    fn key(&self, m: &Mapped, row: &Row) -> Row {
        row.project(&self.catalog.tables[m.table].primary_key)
    }
}

/// The real type of a column: ENUM and SET travel as STRING (254) with the real type in the
/// metadata's high byte.
pub(crate) fn real_type(code: u8, meta: u16) -> u8 {
    if code == 254 {
        let real = (meta >> 8) as u8;
        if real == 247 || real == 248 {
            return real;
        }
    }
    code
}

/// A binlog cell of a column declared `ty` (`cm`: its ENUM/SET strings; `col`: its binlog
/// character set and BINARY padding) as a value.
pub(crate) fn convert(
    v: &BinlogValue<'_>,
    ty: &ColumnType,
    cm: &ColMap,
    col: &Column,
) -> Result<Value, String> {
    use mysql_common::Value as M;
    let v = match v {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => {
            // MySQL's binary JSON (MariaDB's JSON is text).
            return match ty {
                ColumnType::Json | ColumnType::Text { .. } => {
                    serde_json::Value::try_from(j.clone())
                        .map(|j| Value::Text(j.to_string()))
                        .map_err(|e| format!("binary JSON: {e}"))
                }
                _ => Err(format!("a JSON value does not fit {ty}")),
            };
        }
        BinlogValue::JsonDiff(_) => {
            return Err(
                "a partial JSON update (binlog_row_value_options=PARTIAL_JSON): set \
                        binlog_row_value_options='' on the server"
                    .into(),
            );
        }
    };
    match (ty, v) {
        (_, M::NULL) => Ok(Value::Null),
        // ENUM: the 1-based index of its string (0: the empty string of an invalid value).
        (ColumnType::Enum(_), M::Int(i)) => {
            let values = cm.enum_values.as_deref().unwrap_or(&[]);
            match (*i as usize).checked_sub(1).and_then(|i| values.get(i)) {
                Some(s) => Ok(Value::Text(s.clone())),
                None if *i == 0 => Ok(Value::Text(String::new())),
                None => Err(format!("ENUM index {i} out of range")),
            }
        }
        // SET: a little-endian bitmap of its members.
        (ColumnType::Set(_), M::Bytes(bits)) => {
            let values = cm.set_values.as_deref().unwrap_or(&[]);
            let members: Vec<&str> = values
                .iter()
                .enumerate()
                .filter(|(i, _)| bits.get(i / 8).is_some_and(|b| b >> (i % 8) & 1 == 1))
                .map(|(_, s)| s.as_str())
                .collect();
            Ok(Value::Text(members.join(",")))
        }
        (ColumnType::Int { .. }, M::Int(i)) if col.signed_int24() && *i >= 1 << 23 => {
            Ok(Value::Int(i - (1 << 24)))
        }
        // YEAR: mysql_common adds 1900 to the stored byte, whose 0 is the year 0000.
        (ColumnType::Year, M::Bytes(b)) if b.as_slice() == b"1900" => Ok(Value::Int(0)),
        // TIMESTAMP(p): seconds since the epoch with `.micros` when they are not 0.
        (ColumnType::Timestamp { .. }, M::Bytes(b)) => {
            let s = std::str::from_utf8(b).map_err(|_| "bad TIMESTAMP".to_string())?;
            let (secs, micros) = s.split_once('.').unwrap_or((s, "0"));
            match (secs.parse::<i64>(), micros.parse::<i64>()) {
                (Ok(secs), Ok(micros)) => Ok(Value::DateTime(secs * 1_000_000 + micros)),
                _ => Err(format!("bad TIMESTAMP {s}")),
            }
        }
        // The old TIMESTAMP: whole seconds.
        (ColumnType::Timestamp { .. }, M::Int(secs)) => Ok(Value::DateTime(secs * 1_000_000)),
        (ColumnType::Text { .. } | ColumnType::Json, M::Bytes(b)) => {
            text(b, col.charset).map(Value::Text)
        }
        (ColumnType::Bytes, M::Bytes(b)) => {
            let mut b = b.clone();
            if let Some(n) = col.pad_to
                && b.len() < n
            {
                b.resize(n, 0);
            }
            Ok(Value::Bytes(b))
        }
        (ty, v) => from_value(v, ty),
    }
}

/// The text of a character column's bytes in character set `charset`: UTF-8 (utf8mb4, utf8mb3,
/// ASCII), or latin1 (MySQL's latin1 is Windows-1252), else refused.
fn text(b: &[u8], charset: u16) -> Result<String, String> {
    if let Ok(s) = std::str::from_utf8(b) {
        return Ok(s.to_string());
    }
    if LATIN1.contains(&charset) {
        return Ok(b.iter().map(|&x| cp1252(x)).collect());
    }
    Err(format!("text is not UTF-8 (character set id {charset})"))
}

/// MySQL's latin1 collation ids.
const LATIN1: [u16; 8] = [5, 8, 15, 31, 47, 48, 49, 94];

/// A Windows-1252 byte as a character (the five bytes it leaves undefined as C1 controls, as
/// MySQL's latin1 maps them).
fn cp1252(x: u8) -> char {
    const HIGH: [char; 32] = [
        '\u{20ac}', '\u{81}', '\u{201a}', '\u{192}', '\u{201e}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{2c6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8d}', '\u{17d}',
        '\u{8f}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201c}', '\u{201d}', '\u{2022}', '\u{2013}',
        '\u{2014}', '\u{2dc}', '\u{2122}', '\u{161}', '\u{203a}', '\u{153}', '\u{9d}', '\u{17e}',
        '\u{178}',
    ];
    match x {
        0x80..=0x9f => HIGH[(x - 0x80) as usize],
        _ => x as char,
    }
}

/// A value of column `ty` as the server sends it, in a binlog row image (mysql_common) or in
/// the binary protocol of a query (the initial snapshot): the forms both share.
pub(crate) fn from_value(v: &mysql_common::Value, ty: &ColumnType) -> Result<Value, String> {
    use mysql_common::Value as M;
    let int = |v: &M| -> Option<i128> {
        match v {
            M::Int(i) => Some(*i as i128),
            M::UInt(u) => Some(*u as i128),
            M::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
            _ => None,
        }
    };
    match (ty, v) {
        (_, M::NULL) => Ok(Value::Null),
        (ColumnType::Int { .. } | ColumnType::Year, v) => match int(v) {
            Some(n) => i64::try_from(n)
                .map(Value::Int)
                .map_err(|_| format!("{n} does not fit {ty}")),
            None => Err(format!("{v:?} is not an integer")),
        },
        (ColumnType::BigIntUnsigned, v) => match int(v) {
            Some(n) => Ok(Value::Dec(Decimal::new(n, 0))),
            None => Err(format!("{v:?} is not an integer")),
        },
        // BIT(n): big-endian bytes.
        (ColumnType::Bit { .. }, M::Bytes(b)) => {
            let n = b.iter().fold(0i128, |acc, x| (acc << 8) | *x as i128);
            Ok(match i64::try_from(n) {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Dec(Decimal::new(n, 0)),
            })
        }
        (ColumnType::Decimal { scale, .. }, M::Bytes(b)) => {
            let s = std::str::from_utf8(b).map_err(|_| "DECIMAL text is not ASCII".to_string())?;
            decimal_at(s, *scale)
        }
        (ColumnType::Double { .. }, M::Double(x)) => double(*x),
        (ColumnType::Double { .. }, M::Float(x)) => double(*x as f64),
        (
            ColumnType::Text { .. } | ColumnType::Json | ColumnType::Enum(_) | ColumnType::Set(_),
            M::Bytes(b),
        ) => std::str::from_utf8(b)
            .map(|s| Value::Text(s.into()))
            .map_err(|_| "text is not UTF-8".to_string()),
        (ColumnType::Bytes | ColumnType::Geometry, M::Bytes(b)) => Ok(Value::Bytes(b.clone())),
        (ColumnType::Date, &M::Date(y, m, d, ..)) => {
            date_days(y as i64, m as u32, d as u32).map(|n| Value::Date(n as i32))
        }
        (ColumnType::Timestamp { .. }, &M::Date(0, 0, 0, ..)) => Ok(Value::DateTime(0)),
        (
            ColumnType::DateTime { .. } | ColumnType::Timestamp { .. },
            &M::Date(y, m, d, h, mi, s, us),
        ) => {
            let days = date_days(y as i64, m as u32, d as u32)?;
            Ok(Value::DateTime(
                days * MICROS_PER_DAY + clock_micros(h as i64, mi as i64, s as i64, us as i64),
            ))
        }
        (ColumnType::Time { .. }, &M::Time(neg, days, h, mi, s, us)) => {
            let t = clock_micros(days as i64 * 24 + h as i64, mi as i64, s as i64, us as i64);
            Ok(Value::Time(if neg { -t } else { t }))
        }
        (ty, v) => Err(format!("{v:?} does not fit {ty}")),
    }
}

/// A DECIMAL's text at its column's scale (exact, up to 65 digits).
pub(crate) fn decimal_at(s: &str, scale: u8) -> Result<Value, String> {
    Decimal::parse(s)
        .and_then(|d| d.rescale(scale))
        .map(Value::Dec)
        .ok_or_else(|| format!("DECIMAL {s} does not fit scale {scale} within 65 digits"))
}

/// A FLOAT or DOUBLE (finite).
pub(crate) fn double(x: f64) -> Result<Value, String> {
    F64::new(x)
        .map(Value::Double)
        .ok_or_else(|| "not a finite number".into())
}

/// The days of a civil date since 1970-01-01; a zero date (month or day 0) is refused.
pub(crate) fn date_days(y: i64, m: u32, d: u32) -> Result<i64, String> {
    if m == 0 || d == 0 {
        return Err(format!("zero date {y:04}-{m:02}-{d:02}"));
    }
    Ok(days_from_civil(y, m, d))
}

/// A clock reading in microseconds.
pub(crate) fn clock_micros(h: i64, mi: i64, s: i64, micros: i64) -> i64 {
    (h * 3600 + mi * 60 + s) * 1_000_000 + micros
}

/// Reads the CRC32 flag of a format description event (`ev` whole).
pub(crate) fn fde_checksum(ev: &[u8]) -> Result<bool, String> {
    let p = &ev[HEADER..];
    if p.len() < 57 {
        return Err("format description event too short".into());
    }
    let version = u16::from_le_bytes([p[0], p[1]]);
    if version != 4 {
        return Err(format!("binlog version {version} (only v4 is supported)"));
    }
    if p[56] as usize != HEADER {
        return Err(format!("event header length {} (expected 19)", p[56]));
    }
    // Post-header lengths follow, one per event type; the format description's own (type 15)
    // says where the checksum-algorithm byte is.
    let Some(&fde_post) = p.get(57 + 14) else {
        return Err("format description event too short".into());
    };
    let fde_post = fde_post as usize;
    if p.len() > fde_post {
        match p[fde_post] {
            0 => Ok(false),
            1 => Ok(true),
            a => Err(format!("unknown checksum algorithm {a}")),
        }
    } else {
        Ok(false)
    }
}

pub(crate) fn crc_ok(ev: &[u8]) -> bool {
    let n = ev.len();
    n >= HEADER + 4
        && crc32fast::hash(&ev[..n - 4])
            == u32::from_le_bytes([ev[n - 4], ev[n - 3], ev[n - 2], ev[n - 1]])
}

/// The event type of `XA PREPARE`.
const XA_PREPARE: u8 = 38;

fn starts_with_ci(text: &[u8], prefix: &[u8]) -> bool {
    text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The default database of a QUERY event (`ev` whole, without its CRC).
fn query_db(ev: &[u8]) -> Option<String> {
    let p = ev.get(HEADER..)?;
    let db_len = *p.get(8)? as usize;
    let status_len = u16::from_le_bytes([*p.get(11)?, *p.get(12)?]) as usize;
    let db = p.get(13 + status_len..13 + status_len + db_len)?;
    Some(String::from_utf8_lossy(db).into_owned())
}

/// The flag a server sets in the format description of the binlog file it is writing, and
/// clears when it closes the file.
const BINLOG_IN_USE: u8 = 0x01;

/// [`crc_ok`] for a format description event: its checksum is computed with the in-use flag
/// clear (the server sets the flag in place without rewriting the checksum), so the file a
/// running server is still writing passes as the closed file would.
pub(crate) fn fde_crc_ok(ev: &[u8]) -> bool {
    let n = ev.len();
    if n < HEADER + 4 {
        return false;
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&ev[..17]);
    h.update(&[ev[17] & !BINLOG_IN_USE, ev[18]]);
    h.update(&ev[HEADER..n - 4]);
    h.finalize() == u32::from_le_bytes([ev[n - 4], ev[n - 3], ev[n - 2], ev[n - 1]])
}

impl Decoder for BinlogDecoder {
    fn decode(&mut self, _bytes: &[u8]) -> Result<Decoded, DecodeError> {
        Err(DecodeError(
            "a binlog record needs its position (decode_at)".into(),
        ))
    }

    fn take_rejected(&mut self) -> Vec<PartRejected> {
        std::mem::take(&mut self.rejected)
    }

    fn restored(&mut self, tables: &[TableId]) {
        self.applied.extend(tables.iter().copied());
    }

    fn decode_at(&mut self, position: u64, bytes: &[u8]) -> Result<Decoded, DecodeError> {
        let mut decoded = self.decode_record(position, bytes)?;
        let epoch = self.files.epoch();
        if epoch != 0
            && let Decoded::Events(events) = &mut decoded
        {
            // Every change read from this server is newer than every one read before a change
            // of server, whatever its file and offset.
            for e in events {
                e.version.file |= (epoch as u64) << 32;
            }
        }
        Ok(decoded)
    }
}

impl BinlogDecoder {
    /// [`Decoder::decode_at`] before the server epoch is applied to the versions.
    fn decode_record(&mut self, position: u64, bytes: &[u8]) -> Result<Decoded, DecodeError> {
        if let Some(chunk) = crate::source::snapshot::Chunk::decode(bytes) {
            // A live server's initial snapshot: its rows as inserts.
            let mut chunk = chunk.map_err(DecodeError)?;
            let events = chunk.events(&self.catalog).map_err(DecodeError)?;
            self.applied.extend(events.iter().map(|e| e.table));
            for (error, row) in std::mem::take(&mut chunk.rejected) {
                self.reject(
                    chunk.seq,
                    chunk.pos,
                    format!("snapshot of {}: {error}", chunk.table),
                    row.as_bytes(),
                );
            }
            return Ok(if events.is_empty() {
                Decoded::Ignored("empty snapshot record")
            } else {
                Decoded::Events(events)
            });
        }
        let seq = position >> 32;
        let base = position & 0xffff_ffff;
        let mut events: Vec<ChangeEvent> = Vec::new();
        let mut commit: Option<u64> = None;
        let mut rows_seen = false;
        let mut xa_prepared = false;
        let mut off = 0usize;
        while off < bytes.len() {
            let pos = base + off as u64;
            let rest = &bytes[off..];
            if rest.len() < HEADER {
                self.reject(
                    seq,
                    pos,
                    format!(
                        "truncated file: {} bytes where an event header of 19 is due",
                        rest.len()
                    ),
                    rest,
                );
                return Ok(Decoded::Ignored("rejected binlog event"));
            }
            let len = u32::from_le_bytes([rest[9], rest[10], rest[11], rest[12]]) as usize;
            if len < HEADER || len > rest.len() {
                self.reject(
                    seq,
                    pos,
                    format!(
                        "truncated file: the event is {len} bytes long but {} are left",
                        rest.len()
                    ),
                    rest,
                );
                return Ok(Decoded::Ignored("rejected binlog event"));
            }
            let ev = &rest[..len];
            off += len;
            let t = ev[4];
            let timestamp = u32::from_le_bytes([ev[0], ev[1], ev[2], ev[3]]) as u64;
            let flags = u16::from_le_bytes([ev[17], ev[18]]);
            if t == ty::FORMAT_DESCRIPTION {
                match fde_checksum(ev) {
                    Ok(crc) => {
                        // Read even when its own checksum fails (and the run goes on only
                        // with --skip-bad-events): the events after it still carry CRCs.
                        self.crc = crc;
                        if crc && !fde_crc_ok(ev) {
                            self.reject(seq, pos, "CRC32 mismatch".into(), ev);
                            continue;
                        }
                        // A new file (or server restart): table ids start over.
                        self.maps.clear();
                    }
                    Err(e) => self.reject(seq, pos, format!("format description: {e}"), ev),
                }
                continue;
            }
            if self.crc && !crc_ok(ev) {
                self.reject(seq, pos, "CRC32 mismatch".into(), ev);
                continue;
            }
            let body_end = if self.crc { len - 4 } else { len };
            let body = &ev[HEADER..body_end];
            match t {
                ty::XID => commit = Some(timestamp * 1000),
                ty::QUERY => {
                    let text = query_text(&ev[..body_end]).unwrap_or(b"");
                    if text.eq_ignore_ascii_case(b"COMMIT")
                        || text.eq_ignore_ascii_case(b"ROLLBACK")
                    {
                        commit = Some(timestamp * 1000);
                    } else if starts_with_ci(text, b"XA COMMIT ")
                        || starts_with_ci(text, b"XA ROLLBACK ")
                    {
                        // The end of an XA transaction refused at its XA PREPARE.
                    } else if !text.eq_ignore_ascii_case(b"BEGIN") {
                        self.statement(seq, pos, ev, text);
                    }
                }
                ty::TABLE_MAP => self.table_map(seq, pos, ev, body),
                ty::WRITE_V1
                | ty::UPDATE_V1
                | ty::DELETE_V1
                | ty::WRITE_V2
                | ty::UPDATE_V2
                | ty::DELETE_V2 => {
                    let before = events.len();
                    self.rows_event(seq, pos, t, ev, body, &mut events);
                    rows_seen |= events.len() > before;
                }
                XA_PREPARE => {
                    xa_prepared = true;
                    self.reject(
                        seq,
                        pos,
                        "an XA transaction (XA PREPARE): XA transactions are not supported \
                         (their rows count only at a later XA COMMIT)"
                            .into(),
                        ev,
                    );
                }
                ty::MARIADB_START_ENCRYPTION => self.reject(
                    seq,
                    pos,
                    "the binlog is encrypted (encrypt_binlog=ON): not supported".into(),
                    ev,
                ),
                165..=171 => self.reject(
                    seq,
                    pos,
                    format!(
                        "compressed event (type {t}, log_bin_compress=ON): not supported; set \
                         log_bin_compress=OFF on the server"
                    ),
                    ev,
                ),
                39 | 40 => self.reject(
                    seq,
                    pos,
                    format!(
                        "event type {t} ({}) is not supported",
                        if t == 39 {
                            "partial JSON update: set binlog_row_value_options=''"
                        } else {
                            "compressed transaction payload: set binlog_transaction_compression=OFF"
                        }
                    ),
                    ev,
                ),
                _ if is_harmless(t) => {}
                _ if flags & IGNORABLE != 0 => {}
                _ => self.reject(seq, pos, format!("unknown event type {t}"), ev),
            }
            if self.rejected.iter().any(|r| r.fatal) {
                return Ok(Decoded::Ignored("rejected binlog event"));
            }
        }
        if xa_prepared {
            // Refused above, with its rows: nothing of it is applied.
            return Ok(Decoded::Ignored("rejected XA transaction"));
        }
        if rows_seen {
            let Some(time) = commit else {
                self.reject(
                    seq,
                    base,
                    "truncated file: the transaction has no XID or COMMIT event".into(),
                    bytes,
                );
                return Ok(Decoded::Ignored("rejected binlog event"));
            };
            for e in &mut events {
                e.time = time;
            }
            Ok(Decoded::Events(events))
        } else {
            Ok(Decoded::Ignored("binlog event without watched rows"))
        }
    }
}

impl BinlogDecoder {
    fn table_map(&mut self, seq: u64, pos: u64, ev: &[u8], body: &[u8]) {
        // table_id(6) flags(2) db_len(1) db NUL table_len(1) table NUL ...
        let table_id = body
            .get(..6)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0]));
        let names = (|| {
            let db_len = *body.get(8)? as usize;
            let db = body.get(9..9 + db_len)?;
            let t_len = *body.get(9 + db_len + 1)? as usize;
            let t = body.get(9 + db_len + 2..9 + db_len + 2 + t_len)?;
            Some((String::from_utf8_lossy(db), String::from_utf8_lossy(t)))
        })();
        let (Some(table_id), Some((db, name))) = (table_id, names) else {
            self.reject(seq, pos, "malformed table map event".into(), ev);
            return;
        };
        let Some(table) = self.catalog.lookup(&db, &name).filter(|t| !self.unused[*t]) else {
            self.maps.insert(table_id, None);
            return;
        };
        let mapped = parse_table_map(body)
            .map_err(|e| format!("table map of {db}.{name}: {e}"))
            .and_then(|map| self.check_map(table, &map))
            .and_then(|cols| {
                let layout = Layout::of_table_map(ev, body)
                    .map_err(|e| format!("table map of {db}.{name}: {e}"))?;
                Ok(Mapped {
                    table,
                    cols,
                    layout,
                })
            });
        match mapped {
            Ok(m) => {
                self.maps.insert(table_id, Some(Arc::new(m)));
            }
            Err(e) => {
                self.maps.remove(&table_id);
                self.reject(seq, pos, e, ev);
            }
        }
    }

    /// Refuses a statement that empties or replaces a watched table whose rows were applied
    /// (TRUNCATE, DROP, RENAME): the views cannot follow it.
    fn statement(&mut self, seq: u64, pos: u64, ev: &[u8], text: &[u8]) {
        let sql = String::from_utf8_lossy(text);
        let db = query_db(ev).unwrap_or_default();
        let mut hit = Vec::new();
        for e in super::ddl::emptied(&db, &sql) {
            for (id, t) in self.catalog.tables.iter().enumerate() {
                let same_db = t.db.eq_ignore_ascii_case(&e.db);
                let same = match &e.table {
                    Some(name) => same_db && t.name.eq_ignore_ascii_case(name),
                    None => same_db,
                };
                if same && self.applied.contains(&id) && !hit.contains(&id) {
                    hit.push(id);
                }
            }
        }
        if hit.is_empty() {
            return;
        }
        let names: Vec<String> = hit
            .iter()
            .map(|&id| self.catalog.tables[id].qualified())
            .collect();
        let shown: String = sql.chars().take(120).collect();
        self.reject(
            seq,
            pos,
            format!(
                "`{shown}` removes the rows of {} without row events, which the views cannot \
                 follow: rebuild them from after it (a new state dir, --start snapshot)",
                names.join(", ")
            ),
            ev,
        );
    }

    fn rows_event(
        &mut self,
        seq: u64,
        pos: u64,
        t: u8,
        ev: &[u8],
        body: &[u8],
        out: &mut Vec<ChangeEvent>,
    ) {
        let Some(table_id) = body
            .get(..6)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0]))
        else {
            self.reject(seq, pos, "malformed row event".into(), ev);
            return;
        };
        let m = match self.maps.get(&table_id) {
            Some(None) => {
                self.skipped_row_events += 1;
                return;
            }
            Some(Some(m)) => m.clone(),
            None => {
                self.reject(
                    seq,
                    pos,
                    format!(
                        "row event for table id {table_id} without a usable table map (missing, \
                         or rejected above)"
                    ),
                    ev,
                );
                return;
            }
        };
        self.applied.insert(m.table);
        let parsed = m.layout.rows(t, body);
        let rows = match parsed {
            Ok(r) => r,
            Err(e) => {
                let table = self.catalog.tables[m.table].qualified();
                self.reject(seq, pos, format!("row event of {table}: {e}"), ev);
                return;
            }
        };
        let mut made = Vec::new();
        let mut failed = None;
        let mut push = |row_index: usize, key: Row, row: Option<Row>| {
            made.push(ChangeEvent {
                table: m.table,
                key,
                row,
                version: Version {
                    file: seq,
                    pos,
                    row: row_index as u32,
                },
                time: 0,
                tx: None,
            });
        };
        match &rows {
            Rows::Write(rs) => {
                for (i, r) in rs.iter().enumerate() {
                    match self.row(&m, r) {
                        Ok(row) => push(i, self.key(&m, &row), Some(row)),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            }
            Rows::Delete(rs) => {
                for (i, r) in rs.iter().enumerate() {
                    match self.row(&m, r) {
                        Ok(row) => push(i, self.key(&m, &row), None),
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                }
            }
            Rows::Update(rs) => {
                for (i, (b, a)) in rs.iter().enumerate() {
                    let (before, after) = match (self.row(&m, b), self.row(&m, a)) {
                        (Ok(b), Ok(a)) => (b, a),
                        (Err(e), _) | (_, Err(e)) => {
                            failed = Some(e);
                            break;
                        }
                    };
                    let old = self.key(&m, &before);
                    let new = self.key(&m, &after);
                    if old != new {
                        push(i, old, None);
                    }
                    push(i, new, Some(after));
                }
            }
        }
        match failed {
            Some(e) => self.reject(seq, pos, e, ev),
            None => out.append(&mut made),
        }
    }
}

/// Parses a table map event's body with `mysql_cdc` (errors and panics as text).
pub(crate) fn parse_table_map(body: &[u8]) -> Result<TableMapEvent, String> {
    match catch_unwind(AssertUnwindSafe(|| {
        TableMapEvent::parse(&mut Cursor::new(body))
    })) {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(e)) => Err(format!("{e:?}")),
        Err(_) => Err("the decoder panicked".into()),
    }
}

/// The primary-key columns (binlog indices) of a table map's metadata, if it names them.
pub(crate) fn primary_key(
    meta: &mysql_cdc::metadata::table_metadata::TableMetadata,
) -> Option<Vec<usize>> {
    meta.simple_primary_keys
        .as_ref()
        .map(|v| v.iter().map(|&i| i as usize).collect())
        .or_else(|| {
            meta.primary_keys_with_prefix
                .as_ref()
                .map(|v| v.iter().map(|&(i, _)| i as usize).collect())
        })
}
