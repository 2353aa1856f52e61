//! `cdcflow capture`: a MySQL/MariaDB binlog followed as a replica and published to Kafka as
//! Debezium MySQL connector messages (JsonConverter, schemas on or off), so that a deployment
//! needs no Kafka Connect. The messages are read back by [`crate::decode::debezium`] like real
//! Debezium output.
//!
//! - The stream: [`ReplicaSource`] (the same connection, server checks, transaction framing and
//!   start/resume positions as `run --mysql`), one record per transaction.
//! - Tables: every table of the binlog outside the system databases (`mysql`, `sys`,
//!   `information_schema`, `performance_schema`), described by its table map alone
//!   (`binlog_row_metadata=FULL`: column names, types, signedness, ENUM/SET strings, charsets,
//!   the primary key); no `schema.sql` is needed. A table map without that metadata is an error
//!   naming the setting.
//! - Messages: topic `<NAME>.<db>.<table>`; key `{"<pk column>": ..}` (none for a table without a
//!   primary key); value `before`/`after`/`source`/`transaction`/`op`/`ts_ms`; `source` as
//!   Debezium 3.0 writes it for MySQL (`file`, `pos` of the row event, `row` within it, `ts_ms`
//!   of the row event, `server_id`, `gtid`, `thread` where a query event told it). An update
//!   that changes the primary key is a delete of the old key (`d`, then a tombstone) and a
//!   create of the new one (`c`), as Debezium does; every delete is followed by a tombstone.
//!   Values: [`crate::workload::encode`]'s Debezium encodings (DATE epoch days, DATETIME(0..3)
//!   epoch ms, DATETIME(4..6) µs, TIMESTAMP ISO-8601 UTC, ENUM/SET strings, DECIMAL as
//!   `--decimal-handling-mode`), integer schemas of Debezium's widths (TINYINT/SMALLINT int16,
//!   MEDIUMINT/INT int32, INT UNSIGNED/BIGINT int64).
//! - With `--transaction-metadata`: each row's `transaction` block `{id, total_order,
//!   data_collection_order}` and BEGIN/END markers on `<NAME>.transaction`; the id is the GTID
//!   when the transaction has one, else `file=F,pos=P` of its first event.
//! - Delivery: an idempotent producer (`enable.idempotence=true`, `acks=all`); topics are created
//!   when missing. After each batch of transactions the producer is flushed and, once the broker
//!   acknowledged every message, the binlog position after the batch is written to
//!   `--state-dir` (`capture.pos`, atomically). A restart resumes there: messages produced
//!   after the last checkpoint are sent again (at least once); cdcflow's decoder recognises
//!   them as duplicates by their version (file, pos, row).
//! - Nothing is lost silently: an event that cannot be decoded stops the capture with an error
//!   naming the binlog file and position (the checkpoint stays before it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mysql_cdc::events::table_map_event::TableMapEvent;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};

use crate::decode::binlog::{
    Cells, ColMap, FileNames, IGNORABLE, Layout, Rows, convert, crc_ok, fde_checksum, fde_crc_ok,
    is_harmless, parse_table_map, primary_key, real_type, server_file, ty,
};
use crate::event::Row;
use crate::schema::ColumnType;
use crate::source::binlog::{HEADER, query_text};
use crate::source::replica::{ReplicaConfig, ReplicaSource, UNKNOWN_POSITION};
use crate::source::{PartitionStatus, Positions, Source};
use crate::value::{Value, write_json_str};
use crate::workload::DecimalMode;
use crate::workload::encode::{encode_fields, encode_marker, encode_row, field_schema};

/// The `source.version` written: the Debezium message format followed, and this program.
pub const VERSION: &str = concat!("3.0.1.Final-cdcflow-", env!("CARGO_PKG_VERSION"));

/// The state file in `--state-dir`.
pub const STATE_FILE: &str = "capture.pos";

/// What `cdcflow capture` was asked to do.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    /// The server.
    pub replica: ReplicaConfig,
    /// Kafka brokers.
    pub brokers: String,
    /// Extra librdkafka settings.
    pub kafka_options: Vec<(String, String)>,
    /// Debezium's `topic.prefix` (`database.server.name`).
    pub server_name: String,
    /// JsonConverter `schemas.enable`.
    pub schemas: bool,
    /// Debezium's `provide.transaction.metadata`.
    pub transaction_metadata: bool,
    /// `decimal.handling.mode`.
    pub decimal: DecimalMode,
    /// Where the position is checkpointed.
    pub state_dir: Option<PathBuf>,
    /// Partitions of the topics created.
    pub partitions: i32,
    /// Exit 0 once caught up and quiet for this long (tests, batch jobs).
    pub exit_when_idle: Option<Duration>,
}

/// One captured column, from the table map.
struct CapColumn {
    name: String,
    ty: ColumnType,
    map: ColMap,
    optional: bool,
    /// The Connect integer type Debezium gives this integer column.
    int: Option<&'static str>,
}

/// A captured table as its latest table map describes it, with its schemas.
struct CapTable {
    db: String,
    name: String,
    cols: Vec<CapColumn>,
    key: Vec<usize>,
    topic: String,
    /// JsonConverter schemas (with --schemas on): the key's and the value envelope's.
    key_schema: String,
    value_schema: String,
    /// How to read its rows' cells.
    layout: Layout,
}

/// One row change of a transaction.
struct CapRow {
    table: Arc<CapTable>,
    op: char,
    before: Option<Row>,
    after: Option<Row>,
    pos: u64,
    row: u32,
    ts_ms: u64,
    server_id: u32,
}

/// One transaction's captured rows.
#[derive(Default)]
struct CapTx {
    gtid: Option<String>,
    thread: Option<u32>,
    begin_ms: Option<u64>,
    commit_ms: Option<u64>,
    rows: Vec<CapRow>,
}

const SYSTEM_DBS: [&str; 4] = ["mysql", "sys", "information_schema", "performance_schema"];

/// Binlog transactions -> captured rows (the table maps it has seen, by table id).
struct CaptureDecoder {
    names: FileNames,
    server_name: String,
    schemas: bool,
    decimal: DecimalMode,
    crc: bool,
    maps: HashMap<u64, Option<Arc<CapTable>>>,
    /// Tables by name with the table-map body (less its id) they were built from.
    known: HashMap<(String, String), (Vec<u8>, Arc<CapTable>)>,
}

impl CaptureDecoder {
    fn error(&self, seq: u64, pos: u64, msg: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!(
            "binlog file {} position {pos}: {msg} (the capture stops here; its checkpoint is \
             before this transaction)",
            self.names.name(seq)
        )
    }

    /// Decodes one transaction (`bytes`, starting at `position`).
    fn decode(&mut self, position: u64, bytes: &[u8]) -> anyhow::Result<CapTx> {
        let seq = position >> 32;
        let base = position & 0xffff_ffff;
        let mut tx = CapTx::default();
        let mut off = 0usize;
        while off < bytes.len() {
            let pos = base + off as u64;
            let rest = &bytes[off..];
            if rest.len() < HEADER {
                return Err(self.error(seq, pos, "truncated event header"));
            }
            let len = u32::from_le_bytes([rest[9], rest[10], rest[11], rest[12]]) as usize;
            if len < HEADER || len > rest.len() {
                return Err(self.error(seq, pos, format!("truncated event of {len} bytes")));
            }
            let ev = &rest[..len];
            off += len;
            let t = ev[4];
            let timestamp = u32::from_le_bytes([ev[0], ev[1], ev[2], ev[3]]) as u64 * 1000;
            let server_id = u32::from_le_bytes([ev[5], ev[6], ev[7], ev[8]]);
            let flags = u16::from_le_bytes([ev[17], ev[18]]);
            if t == ty::FORMAT_DESCRIPTION {
                self.crc = fde_checksum(ev).map_err(|e| self.error(seq, pos, e))?;
                if self.crc && !fde_crc_ok(ev) {
                    return Err(self.error(seq, pos, "CRC32 mismatch"));
                }
                self.maps.clear();
                continue;
            }
            if self.crc && !crc_ok(ev) {
                return Err(self.error(seq, pos, "CRC32 mismatch"));
            }
            let body_end = if self.crc { len - 4 } else { len };
            let body = &ev[HEADER..body_end];
            match t {
                ty::XID => tx.commit_ms = Some(timestamp),
                ty::QUERY => {
                    if let Some(th) = body.get(..4) {
                        tx.thread = Some(u32::from_le_bytes([th[0], th[1], th[2], th[3]]));
                    }
                    let text = query_text(&ev[..body_end]).unwrap_or(b"");
                    if text.eq_ignore_ascii_case(b"BEGIN") {
                        tx.begin_ms.get_or_insert(timestamp);
                    } else if text.eq_ignore_ascii_case(b"COMMIT")
                        || text.eq_ignore_ascii_case(b"ROLLBACK")
                    {
                        tx.commit_ms = Some(timestamp);
                    }
                }
                // MariaDB GTID: seq_no(8) domain_id(4) flags(1).
                162 => {
                    if let Some(g) = crate::source::gtid::Gtid::of_event(ev) {
                        tx.gtid = Some(g.to_string());
                    }
                    tx.begin_ms.get_or_insert(timestamp);
                }
                // MySQL GTID: flags(1) sid(16) gno(8).
                33 => {
                    if let (Some(sid), Some(gno)) = (body.get(1..17), body.get(17..25)) {
                        let h: String = sid.iter().map(|b| format!("{b:02x}")).collect();
                        let gno = u64::from_le_bytes(gno.try_into().expect("8 bytes"));
                        tx.gtid = Some(format!(
                            "{}-{}-{}-{}-{}:{gno}",
                            &h[..8],
                            &h[8..12],
                            &h[12..16],
                            &h[16..20],
                            &h[20..]
                        ));
                    }
                    tx.begin_ms.get_or_insert(timestamp);
                }
                ty::TABLE_MAP => self.table_map(seq, pos, ev, body)?,
                ty::WRITE_V1
                | ty::UPDATE_V1
                | ty::DELETE_V1
                | ty::WRITE_V2
                | ty::UPDATE_V2
                | ty::DELETE_V2 => {
                    self.rows_event(seq, pos, t, body, timestamp, server_id, &mut tx.rows)?
                }
                ty::MARIADB_START_ENCRYPTION => {
                    return Err(self.error(seq, pos, "the binlog is encrypted: not supported"));
                }
                165..=171 => {
                    return Err(self.error(
                        seq,
                        pos,
                        format!("compressed event (type {t}): set log_bin_compress=OFF"),
                    ));
                }
                39 | 40 => {
                    return Err(self.error(
                        seq,
                        pos,
                        format!(
                            "event type {t} is not supported (set binlog_row_value_options='' \
                             and binlog_transaction_compression=OFF)"
                        ),
                    ));
                }
                38 => {
                    return Err(self.error(
                        seq,
                        pos,
                        "an XA transaction (XA PREPARE): XA transactions are not supported",
                    ));
                }
                _ if is_harmless(t) => {}
                _ if flags & IGNORABLE != 0 => {}
                _ => return Err(self.error(seq, pos, format!("unknown event type {t}"))),
            }
        }
        if !tx.rows.is_empty() && tx.commit_ms.is_none() {
            return Err(self.error(seq, base, "the transaction has no XID or COMMIT event"));
        }
        Ok(tx)
    }

    fn table_map(&mut self, seq: u64, pos: u64, ev: &[u8], body: &[u8]) -> anyhow::Result<()> {
        let map =
            parse_table_map(body).map_err(|e| self.error(seq, pos, format!("table map: {e}")))?;
        let id = map.table_id;
        if SYSTEM_DBS
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&map.database_name))
        {
            self.maps.insert(id, None);
            return Ok(());
        }
        let k = (map.database_name.clone(), map.table_name.clone());
        let shape = body.get(6..).unwrap_or(&[]);
        let table = match self.known.get(&k) {
            Some((b, t)) if b.as_slice() == shape => t.clone(),
            _ => {
                let layout = Layout::of_table_map(ev, body)
                    .map_err(|e| self.error(seq, pos, format!("table map: {e}")))?;
                let t = Arc::new(
                    self.describe(&map, layout)
                        .map_err(|e| self.error(seq, pos, e))?,
                );
                self.known.insert(k, (shape.to_vec(), t.clone()));
                t
            }
        };
        self.maps.insert(id, Some(table));
        Ok(())
    }

    /// A table's columns from its map (see the module doc).
    fn describe(&self, map: &TableMapEvent, layout: Layout) -> Result<CapTable, String> {
        let qualified = format!("{}.{}", map.database_name, map.table_name);
        let setting = "set binlog_row_metadata=FULL on the server";
        let Some(meta) = &map.table_metadata else {
            return Err(format!(
                "the table map of {qualified} has no column metadata: {setting}"
            ));
        };
        let Some(names) = &meta.column_names else {
            return Err(format!(
                "the table map of {qualified} has no column names: {setting}"
            ));
        };
        if names.len() != map.column_types.len() {
            return Err(format!("the table map of {qualified} is inconsistent"));
        }
        let (mut numeric, mut enums, mut sets, mut chars) = (0usize, 0usize, 0usize, 0usize);
        let mut cols = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let code = map.column_types[i];
            let meta_i = map.column_metadata[i];
            let real = real_type(code, meta_i);
            let mut unsigned = false;
            if matches!(real, 1 | 2 | 3 | 4 | 5 | 8 | 9 | 246) {
                unsigned = meta
                    .signedness
                    .as_ref()
                    .and_then(|s| s.get(numeric).copied())
                    .unwrap_or(false);
                numeric += 1;
            }
            let mut enum_values = None;
            let mut set_values = None;
            let mut binary = false;
            if real == 247 {
                enum_values = meta
                    .enum_string_values
                    .as_ref()
                    .and_then(|v| v.get(enums))
                    .cloned();
                enums += 1;
                if enum_values.is_none() {
                    return Err(format!(
                        "the table map of {qualified} has no ENUM strings: {setting}"
                    ));
                }
            } else if real == 248 {
                set_values = meta
                    .set_string_values
                    .as_ref()
                    .and_then(|v| v.get(sets))
                    .cloned();
                sets += 1;
                if set_values.is_none() {
                    return Err(format!(
                        "the table map of {qualified} has no SET strings: {setting}"
                    ));
                }
            } else if matches!(real, 15 | 252 | 253 | 254) {
                let collation = match (&meta.column_charsets, &meta.default_charset) {
                    (Some(c), _) => c.get(chars).copied(),
                    (None, Some(d)) => Some(
                        d.charset_collations
                            .iter()
                            .find(|(c, _)| *c as usize == chars)
                            .map_or(d.default_charset_collation, |(_, x)| *x),
                    ),
                    _ => None,
                };
                binary = collation == Some(63);
                chars += 1;
            }
            let int = |narrow: &'static str, wide: &'static str| {
                Some(if unsigned { wide } else { narrow })
            };
            let (ty, int) = match real {
                1 => (ColumnType::Int { unsigned }, Some("int16")),
                2 => (ColumnType::Int { unsigned }, int("int16", "int32")),
                9 => (ColumnType::Int { unsigned }, Some("int32")),
                3 => (ColumnType::Int { unsigned }, int("int32", "int64")),
                8 if unsigned => (ColumnType::BigIntUnsigned, None),
                8 => (ColumnType::Int { unsigned }, Some("int64")),
                246 => (
                    ColumnType::Decimal {
                        precision: (meta_i & 0xff) as u8,
                        scale: (meta_i >> 8) as u8,
                        unsigned,
                    },
                    None,
                ),
                4 => (ColumnType::Double { single: true }, None),
                5 => (ColumnType::Double { single: false }, None),
                16 => (
                    ColumnType::Bit {
                        width: ((meta_i >> 8) * 8 + (meta_i & 0xff)) as u8,
                    },
                    None,
                ),
                15 | 252 | 253 | 254 if binary => (ColumnType::Bytes, None),
                15 | 252 | 253 | 254 => (ColumnType::Text { max_chars: None }, None),
                245 => (ColumnType::Json, None),
                247 => (
                    ColumnType::Enum(enum_values.clone().unwrap_or_default()),
                    None,
                ),
                248 => (
                    ColumnType::Set(set_values.clone().unwrap_or_default()),
                    None,
                ),
                10 | 14 => (ColumnType::Date, None),
                12 => (ColumnType::DateTime { precision: 0 }, None),
                18 => (
                    ColumnType::DateTime {
                        precision: meta_i as u8,
                    },
                    None,
                ),
                7 => (ColumnType::Timestamp { precision: 0 }, None),
                17 => (
                    ColumnType::Timestamp {
                        precision: meta_i as u8,
                    },
                    None,
                ),
                11 => (ColumnType::Time { precision: 0 }, None),
                19 => (
                    ColumnType::Time {
                        precision: meta_i as u8,
                    },
                    None,
                ),
                13 => (ColumnType::Year, None),
                255 => (ColumnType::Geometry, None),
                other => {
                    return Err(format!(
                        "{qualified}.{name}: binlog column type {other} is not supported"
                    ));
                }
            };
            cols.push(CapColumn {
                name: name.clone(),
                ty,
                map: ColMap {
                    binlog: i,
                    enum_values,
                    set_values,
                },
                optional: map.null_bitmap.get(i).copied().unwrap_or(true),
                int,
            });
        }
        let key: Vec<usize> = primary_key(meta).unwrap_or_default();
        if key.iter().any(|&k| k >= cols.len()) {
            return Err(format!(
                "the table map of {qualified} has a bad primary key"
            ));
        }
        let topic = format!(
            "{}.{}.{}",
            self.server_name, map.database_name, map.table_name
        );
        let mut t = CapTable {
            db: map.database_name.clone(),
            name: map.table_name.clone(),
            cols,
            key,
            topic,
            key_schema: String::new(),
            value_schema: String::new(),
            layout,
        };
        if self.schemas {
            t.key_schema = self.key_schema(&t);
            t.value_schema = self.value_schema(&t);
        }
        Ok(t)
    }

    fn field(&self, c: &CapColumn, optional: bool) -> String {
        match c.int {
            Some(int) => {
                let mut s = format!("{{\"type\":\"{int}\",\"optional\":{optional},\"field\":");
                write_json_str(&c.name, &mut s);
                s.push('}');
                s
            }
            None => field_schema(&c.name, &c.ty, optional, self.decimal),
        }
    }

    fn key_schema(&self, t: &CapTable) -> String {
        let fields: Vec<String> = t
            .key
            .iter()
            .map(|&k| self.field(&t.cols[k], false))
            .collect();
        let mut s = format!(
            "{{\"type\":\"struct\",\"fields\":[{}],\"optional\":false,\"name\":",
            fields.join(",")
        );
        write_json_str(&format!("{}.Key", t.topic), &mut s);
        s.push('}');
        s
    }

    fn value_schema(&self, t: &CapTable) -> String {
        let fields: Vec<String> = t.cols.iter().map(|c| self.field(c, c.optional)).collect();
        let mut value_name = String::new();
        write_json_str(&format!("{}.Value", t.topic), &mut value_name);
        let mut envelope_name = String::new();
        write_json_str(&format!("{}.Envelope", t.topic), &mut envelope_name);
        let row = |which: &str| {
            format!(
                "{{\"type\":\"struct\",\"fields\":[{}],\"optional\":true,\"name\":{value_name},\"field\":\"{which}\"}}",
                fields.join(",")
            )
        };
        format!(
            "{{\"type\":\"struct\",\"fields\":[{},{},{SOURCE_SCHEMA},{ENVELOPE_TAIL}],\"optional\":false,\"name\":{envelope_name},\"version\":2}}",
            row("before"),
            row("after"),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn rows_event(
        &mut self,
        seq: u64,
        pos: u64,
        t: u8,
        body: &[u8],
        ts_ms: u64,
        server_id: u32,
        out: &mut Vec<CapRow>,
    ) -> anyhow::Result<()> {
        let Some(table_id) = body
            .get(..6)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0]))
        else {
            return Err(self.error(seq, pos, "malformed row event"));
        };
        let table = match self.maps.get(&table_id) {
            Some(None) => return Ok(()),
            Some(Some(t)) => t.clone(),
            None => {
                return Err(self.error(
                    seq,
                    pos,
                    format!("row event for table id {table_id} without its table map"),
                ));
            }
        };
        let qualified = format!("{}.{}", table.db, table.name);
        let rows = table
            .layout
            .rows(t, body)
            .map_err(|e| self.error(seq, pos, format!("row event of {qualified}: {e}")))?;
        let conv = |r: &Cells| -> anyhow::Result<Row> {
            table
                .cols
                .iter()
                .map(
                    |c| match (r.get(c.map.binlog), table.layout.column(c.map.binlog)) {
                        (None, _) | (_, None) => {
                            Err(format!("the row of {qualified} has too few columns"))
                        }
                        (Some(None), _) => Ok(Value::Null),
                        (Some(Some(v)), Some(layout)) => convert(v, &c.ty, &c.map, layout)
                            .map_err(|e| format!("{qualified}.{}: {e}", c.name)),
                    },
                )
                .collect::<Result<Row, String>>()
                .map_err(|e| self.error(seq, pos, e))
        };
        let mk = |op: char, before, after, row: usize| CapRow {
            table: table.clone(),
            op,
            before,
            after,
            pos,
            row: row as u32,
            ts_ms,
            server_id,
        };
        match &rows {
            Rows::Write(rs) => {
                for (i, r) in rs.iter().enumerate() {
                    out.push(mk('c', None, Some(conv(r)?), i));
                }
            }
            Rows::Delete(rs) => {
                for (i, r) in rs.iter().enumerate() {
                    out.push(mk('d', Some(conv(r)?), None, i));
                }
            }
            Rows::Update(rs) => {
                for (i, (b, a)) in rs.iter().enumerate() {
                    let (b, a) = (conv(b)?, conv(a)?);
                    let moved = table.key.iter().any(|&k| b.get(k) != a.get(k));
                    if moved && !table.key.is_empty() {
                        out.push(mk('d', Some(b), None, i));
                        out.push(mk('c', None, Some(a), i));
                    } else {
                        out.push(mk('u', Some(b), Some(a), i));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The `source` block's schema, as Debezium 3.0 writes it for MySQL.
const SOURCE_SCHEMA: &str = "{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"version\"},\
{\"type\":\"string\",\"optional\":false,\"field\":\"connector\"},{\"type\":\"string\",\"optional\":false,\"field\":\"name\"},\
{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"},{\"type\":\"string\",\"optional\":true,\"name\":\"io.debezium.data.Enum\",\
\"version\":1,\"parameters\":{\"allowed\":\"true,last,false,incremental\"},\"default\":\"false\",\"field\":\"snapshot\"},\
{\"type\":\"string\",\"optional\":false,\"field\":\"db\"},{\"type\":\"string\",\"optional\":true,\"field\":\"sequence\"},\
{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"},\
{\"type\":\"string\",\"optional\":true,\"field\":\"table\"},{\"type\":\"int64\",\"optional\":false,\"field\":\"server_id\"},\
{\"type\":\"string\",\"optional\":true,\"field\":\"gtid\"},{\"type\":\"string\",\"optional\":false,\"field\":\"file\"},\
{\"type\":\"int64\",\"optional\":false,\"field\":\"pos\"},{\"type\":\"int32\",\"optional\":false,\"field\":\"row\"},\
{\"type\":\"int64\",\"optional\":true,\"field\":\"thread\"},{\"type\":\"string\",\"optional\":true,\"field\":\"query\"}],\
\"optional\":false,\"name\":\"io.debezium.connector.mysql.Source\",\"field\":\"source\"}";

/// The envelope's fields after `source`.
const ENVELOPE_TAIL: &str = "{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},\
{\"type\":\"int64\",\"optional\":false,\"field\":\"total_order\"},{\"type\":\"int64\",\"optional\":false,\"field\":\"data_collection_order\"}],\
\"optional\":true,\"name\":\"event.block\",\"version\":1,\"field\":\"transaction\"},\
{\"type\":\"string\",\"optional\":false,\"field\":\"op\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ms\"},\
{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_us\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ns\"}";

const MARKER_KEY_SCHEMA: &str = "{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"id\"}],\
\"optional\":false,\"name\":\"io.debezium.connector.common.TransactionMetadataKey\",\"version\":1}";

/// One message to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    /// Topic.
    pub topic: String,
    /// Key bytes (JSON), if any.
    pub key: Option<String>,
    /// Value bytes (JSON); `None` for a tombstone.
    pub value: Option<String>,
}

/// Encodes decoded transactions as Debezium messages.
struct Encoder {
    server_name: String,
    schemas: bool,
    decimal: DecimalMode,
    transaction_metadata: bool,
    base: String,
}

impl Encoder {
    fn row(&self, t: &CapTable, row: Option<&Row>, out: &mut String) {
        let columns = t.cols.iter().map(|c| (c.name.as_str(), &c.ty));
        encode_row(columns, row, self.decimal, out);
    }

    fn key(&self, t: &CapTable, row: &Row) -> Option<String> {
        if t.key.is_empty() {
            return None;
        }
        let mut s = String::new();
        if self.schemas {
            s.push_str("{\"schema\":");
            s.push_str(&t.key_schema);
            s.push_str(",\"payload\":");
        }
        let fields = t.key.iter().map(|&k| {
            let c = &t.cols[k];
            (c.name.as_str(), &c.ty, row.get(k))
        });
        encode_fields(fields, self.decimal, &mut s);
        if self.schemas {
            s.push('}');
        }
        Some(s)
    }

    fn marker_key(&self, id: &str) -> String {
        let mut s = String::new();
        if self.schemas {
            s.push_str("{\"schema\":");
            s.push_str(MARKER_KEY_SCHEMA);
            s.push_str(",\"payload\":");
        }
        s.push_str("{\"id\":");
        write_json_str(id, &mut s);
        s.push('}');
        if self.schemas {
            s.push('}');
        }
        s
    }

    /// The messages of one transaction starting at `position`.
    fn encode(&self, position: u64, tx: &CapTx, now_ms: u64, out: &mut Vec<Out>) {
        if tx.rows.is_empty() {
            return;
        }
        let file = server_file(&self.base, position >> 32);
        let id = tx
            .gtid
            .clone()
            .unwrap_or_else(|| format!("file={file},pos={}", position & 0xffff_ffff));
        let marker_topic = format!("{}.transaction", self.server_name);
        if self.transaction_metadata {
            let mut v = String::new();
            let begin = tx.begin_ms.unwrap_or(tx.rows[0].ts_ms);
            encode_marker(&id, begin, &[], self.schemas, &mut v);
            out.push(Out {
                topic: marker_topic.clone(),
                key: Some(self.marker_key(&id)),
                value: Some(v),
            });
        }
        let mut per_table: BTreeMap<String, u64> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for (n, r) in tx.rows.iter().enumerate() {
            let t = &*r.table;
            let collection = format!("{}.{}", t.db, t.name);
            let dco = {
                let c = per_table.entry(collection.clone()).or_default();
                if *c == 0 {
                    order.push(collection.clone());
                }
                *c += 1;
                *c
            };
            let mut v = String::with_capacity(512);
            if self.schemas {
                v.push_str("{\"schema\":");
                v.push_str(&t.value_schema);
                v.push_str(",\"payload\":");
            }
            v.push_str("{\"before\":");
            self.row(t, r.before.as_ref(), &mut v);
            v.push_str(",\"after\":");
            self.row(t, r.after.as_ref(), &mut v);
            v.push_str(",\"source\":{\"version\":");
            write_json_str(VERSION, &mut v);
            v.push_str(",\"connector\":\"mysql\",\"name\":");
            write_json_str(&self.server_name, &mut v);
            let _ = write!(v, ",\"ts_ms\":{},\"snapshot\":\"false\",\"db\":", r.ts_ms);
            write_json_str(&t.db, &mut v);
            let _ = write!(
                v,
                ",\"sequence\":null,\"ts_us\":{},\"ts_ns\":{},\"table\":",
                r.ts_ms * 1000,
                r.ts_ms * 1_000_000
            );
            write_json_str(&t.name, &mut v);
            let _ = write!(v, ",\"server_id\":{},\"gtid\":", r.server_id);
            match &tx.gtid {
                Some(g) => write_json_str(g, &mut v),
                None => v.push_str("null"),
            }
            v.push_str(",\"file\":");
            write_json_str(&file, &mut v);
            let _ = write!(v, ",\"pos\":{},\"row\":{},\"thread\":", r.pos, r.row);
            match tx.thread {
                Some(th) => {
                    let _ = write!(v, "{th}");
                }
                None => v.push_str("null"),
            }
            v.push_str(",\"query\":null},\"transaction\":");
            if self.transaction_metadata {
                v.push_str("{\"id\":");
                write_json_str(&id, &mut v);
                let _ = write!(
                    v,
                    ",\"total_order\":{},\"data_collection_order\":{dco}}}",
                    n + 1
                );
            } else {
                v.push_str("null");
            }
            let _ = write!(
                v,
                ",\"op\":\"{}\",\"ts_ms\":{now_ms},\"ts_us\":{},\"ts_ns\":{}}}",
                r.op,
                now_ms * 1000,
                now_ms * 1_000_000
            );
            if self.schemas {
                v.push('}');
            }
            let key_row = r.after.as_ref().or(r.before.as_ref()).expect("a row");
            let key = self.key(t, key_row);
            out.push(Out {
                topic: t.topic.clone(),
                key: key.clone(),
                value: Some(v),
            });
            if r.op == 'd' {
                out.push(Out {
                    topic: t.topic.clone(),
                    key,
                    value: None,
                });
            }
        }
        if self.transaction_metadata {
            let counts: Vec<(String, u64)> =
                order.iter().map(|c| (c.clone(), per_table[c])).collect();
            let mut v = String::new();
            let end = tx.commit_ms.unwrap_or(0);
            encode_marker(&id, end, &counts, self.schemas, &mut v);
            out.push(Out {
                topic: marker_topic,
                key: Some(self.marker_key(&id)),
                value: Some(v),
            });
        }
    }
}

/// Counts the broker's delivery reports.
#[derive(Default)]
struct Deliveries {
    failed: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

struct Ctx(Arc<Deliveries>);

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            self.0.failed.fetch_add(1, Ordering::SeqCst);
            let mut first = self.0.first_error.lock().expect("not poisoned");
            if first.is_none() {
                *first = Some(format!("{} (topic {})", e, m.topic()));
            }
        }
    }
}

/// Reads the checkpointed position of `dir`.
pub fn read_state(dir: &Path) -> anyhow::Result<Positions> {
    let path = dir.join(STATE_FILE);
    let mut p = Positions::new();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let (k, v) = line
                    .split_once(' ')
                    .with_context(|| format!("{}: malformed line `{line}`", path.display()))?;
                let v: u64 = v
                    .trim()
                    .parse()
                    .with_context(|| format!("{}: malformed line `{line}`", path.display()))?;
                p.insert(k.to_string(), v);
            }
            Ok(p)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(p),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the position atomically (tmp file, fsync, rename, fsync of the directory).
fn write_state(dir: &Path, partition: &str, position: u64) -> anyhow::Result<()> {
    crate::pipeline::checkpoint::replace_atomically(&dir.join(STATE_FILE), |f| {
        writeln!(f, "{partition} {position}")
    })
}

fn now_ms() -> u64 {
    crate::time::now_ms()
}

/// Runs the capture until `shutdown` (or idle, with `exit_when_idle`).
pub fn run(config: CaptureConfig, shutdown: Arc<AtomicBool>) -> anyhow::Result<()> {
    if config.server_name.is_empty()
        || !config
            .server_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        bail!(
            "--server-name `{}`: use letters, digits, `.`, `_` and `-` (it prefixes the topic names)",
            config.server_name
        );
    }
    let resume = match &config.state_dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .with_context(|| format!("cannot create state dir {}", d.display()))?;
            read_state(d)?
        }
        None => {
            tracing::warn!("no --state-dir: a restart reads the binlog again from --start");
            eprintln!("note: no --state-dir: a restart reads the binlog again from --start");
            Positions::new()
        }
    };
    let source = ReplicaSource::connect(config.replica.clone())?;
    let names = source.file_names();
    let base = match &names {
        FileNames::Server { base, .. } => base.clone(),
        FileNames::Saved(_) => unreachable!("a server's names"),
    };

    // The producer and the topics.
    let deliveries = Arc::new(Deliveries::default());
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000");
    for (k, v) in &config.kafka_options {
        cc.set(k, v);
    }
    let producer: BaseProducer<Ctx> = cc
        .create_with_context(Ctx(deliveries.clone()))
        .context("cannot create the Kafka producer")?;
    let metadata = producer
        .client()
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|e| anyhow::anyhow!("cannot reach the Kafka brokers {}: {e}", config.brokers))?;
    let mut topics: HashSet<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    let mut admin_cc = ClientConfig::new();
    admin_cc.set("bootstrap.servers", &config.brokers);
    for (k, v) in &config.kafka_options {
        admin_cc.set(k, v);
    }
    let admin: AdminClient<DefaultClientContext> = admin_cc
        .create()
        .context("cannot create the Kafka admin client")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the admin runtime")?;

    let mut reader = source.reader(0, 1, &resume.clone().into())?;
    let mut decoder = CaptureDecoder {
        names,
        server_name: config.server_name.clone(),
        schemas: config.schemas,
        decimal: config.decimal,
        crc: false,
        maps: HashMap::new(),
        known: HashMap::new(),
    };
    let encoder = Encoder {
        server_name: config.server_name.clone(),
        schemas: config.schemas,
        decimal: config.decimal,
        transaction_metadata: config.transaction_metadata,
        base,
    };
    let mut last_record = Instant::now();
    let partition = source.partition().to_string();
    let mut checkpointed = resume.get(&partition).copied();
    let mut messages_total = 0u64;
    loop {
        let mut batch: Vec<Out> = Vec::new();
        let mut failure: Option<(u64, anyhow::Error)> = None;
        let mut records = 0usize;
        let now = now_ms();
        reader.poll(1024, &mut |r| {
            records += 1;
            if failure.is_some() {
                return;
            }
            match decoder.decode(r.position, r.payload) {
                Ok(tx) => encoder.encode(r.position, &tx, now, &mut batch),
                Err(e) => failure = Some((r.position, e)),
            }
        })?;
        if records > 0 {
            last_record = Instant::now();
        }
        // Topics first.
        let missing: Vec<String> = batch
            .iter()
            .map(|o| o.topic.clone())
            .filter(|t| !topics.contains(t))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            let new: Vec<NewTopic> = missing
                .iter()
                .map(|t| NewTopic::new(t, config.partitions, TopicReplication::Fixed(1)))
                .collect();
            let results = rt
                .block_on(admin.create_topics(&new, &AdminOptions::new()))
                .context("cannot create topics")?;
            for r in results {
                match r {
                    Ok(t) => tracing::info!(topic = %t, "created topic"),
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((t, e)) => bail!("cannot create topic {t}: {e}"),
                }
            }
            topics.extend(missing);
        }
        for o in &batch {
            let mut rec: BaseRecord<'_, str, str, ()> = BaseRecord::to(&o.topic);
            if let Some(k) = &o.key {
                rec = rec.key(k.as_str());
            }
            if let Some(v) = &o.value {
                rec = rec.payload(v.as_str());
            }
            let mut rec = rec;
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        rec = back;
                        producer.poll(Duration::from_millis(50));
                    }
                    Err((e, _)) => bail!("cannot produce to {}: {e}", o.topic),
                }
            }
        }
        messages_total += batch.len() as u64;
        if !batch.is_empty() {
            producer
                .flush(Duration::from_secs(120))
                .map_err(|e| anyhow::anyhow!("the brokers did not acknowledge: {e}"))?;
        } else {
            producer.poll(Duration::ZERO);
        }
        if deliveries.failed.load(Ordering::SeqCst) > 0 {
            let e = deliveries
                .first_error
                .lock()
                .expect("not poisoned")
                .clone()
                .unwrap_or_default();
            bail!(
                "the brokers refused messages ({e}); nothing after the last checkpoint is lost: \
                 a restart sends it again"
            );
        }
        if let Some((at, e)) = failure {
            // What came before the bad transaction is delivered: checkpoint at its start.
            if let Some(dir) = &config.state_dir {
                write_state(dir, &partition, at)?;
            }
            return Err(e);
        }
        let next = reader.next_position(0);
        // Everything before `next` is delivered: the reader forgets what it kept for it.
        reader.commit(&[(0, next)])?;
        if let Some(dir) = &config.state_dir
            && next != UNKNOWN_POSITION
            && checkpointed != Some(next)
        {
            write_state(dir, &partition, next)?;
            checkpointed = Some(next);
        }
        if shutdown.load(Ordering::SeqCst) {
            tracing::info!(messages = messages_total, "stopped");
            return Ok(());
        }
        if let Some(idle) = config.exit_when_idle
            && reader.status(0) == PartitionStatus::Idle
            && last_record.elapsed() >= idle
        {
            tracing::info!(messages = messages_total, "caught up and idle: exiting");
            return Ok(());
        }
        if records == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let d = tempfile::tempdir().unwrap();
        assert!(read_state(d.path()).unwrap().is_empty());
        write_state(d.path(), "binlog@1", 3 << 32 | 1234).unwrap();
        assert_eq!(read_state(d.path()).unwrap()["binlog@1"], 3 << 32 | 1234);
    }
}
