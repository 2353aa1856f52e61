//! Debezium MySQL connector messages (JsonConverter), with `schemas.enable` on or off.
//!
//! - Envelope `before`/`after`/`source`/`op`; ops `c`, `r`, `u`, `d`. Tombstones (`null`, or
//!   `{"schema":null,"payload":null}`), transaction BEGIN markers, key records, schema-change
//!   records (`SchemaChangeValue`, the legacy top-level `ddl`/`databaseName` form, Flink CDC's
//!   `historyRecord`) and heartbeats (`Heartbeat`, `{"ts_ms": ..}`) are [`Decoded::Ignored`].
//! - Schema drift follows [`SchemaDrift`]; column types and encodings are listed in README.md
//!   ("Source tables and their types"). Flink CDC snapshot reads (`file: ""`, `pos: 0`) have
//!   version 0, older than any binlog position.
//! - Table from `source.db` + `source.table`; version from `source.file`/`pos`/`row`; time from
//!   `source.ts_ms` (pre-1.0 connectors: `ts_sec` x 1000).
//! - Column values as Debezium encodes them: DECIMAL in `string`, `double` or `precise` mode
//!   (precise = base64 of the big-endian two's-complement unscaled value; the scale is only in
//!   the schema, so a precise decimal without schema is refused; with `decimal.format=NUMERIC`
//!   a JSON number, parsed from its text); DATE as days since the epoch;
//!   DATETIME as epoch milliseconds (`io.debezium.time.Timestamp`) or microseconds
//!   (`MicroTimestamp`); TIMESTAMP as an ISO-8601 string (`ZonedTimestamp`); ENUM as its string.
//!   Without a schema the declared column type decides: DATETIME(0..3) is milliseconds,
//!   DATETIME(4..6) microseconds (Debezium's default `adaptive_time_microseconds` mode).
//! - An update whose primary key changed becomes a delete of the old key and an upsert of the new.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{ChangeEvent, Decoded, Decoder, Row, TxMarker, TxTag};
use crate::schema::{Catalog, ColumnType, Table};
use crate::time::Version;
use crate::value::{
    DAY_RANGE, Decimal, F64, MICROS_PER_DAY, MICROS_RANGE, TIME_RANGE, Value, parse_date,
    parse_datetime, parse_time,
};

pub use super::DecodeError;

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

/// A message's top-level fields. `S` is how `source` is read: straight into [`Source`] (one pass,
/// the common case) or kept raw ([`RawValue`]) and parsed afterwards, which is what a message
/// falls back to when the one-pass read fails, so that its error names the block at fault.
#[derive(Deserialize)]
struct Message<'a, S = &'a RawValue> {
    #[serde(borrow, default)]
    schema: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(borrow, default)]
    before: Option<&'a RawValue>,
    #[serde(borrow, default)]
    after: Option<&'a RawValue>,
    #[serde(default = "absent", bound(deserialize = "S: Deserialize<'de>"))]
    source: Option<S>,
    #[serde(borrow, default)]
    op: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    transaction: Option<&'a RawValue>,
    // Transaction markers (BEGIN/END) carry these at the top level.
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(default)]
    ts_ms: Option<u64>,
    #[serde(default)]
    data_collections: Option<Vec<DataCollection<'a>>>,
    // Schema-change records (`io.debezium.connector.mysql.SchemaChangeValue`, and the legacy
    // form with these at the top level) and Flink CDC's `historyRecord`.
    #[serde(borrow, default)]
    ddl: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "databaseName")]
    database_name: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "tableChanges")]
    table_changes: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "historyRecord")]
    history_record: Option<&'a RawValue>,
    // A heartbeat's key (`io.debezium.connector.common.ServerNameKey`).
    #[serde(borrow, default, rename = "serverName")]
    server_name: Option<&'a RawValue>,
}

fn absent<S>() -> Option<S> {
    None
}

impl<S> Message<'_, S> {
    /// A schema-change record (DDL) rather than a row change.
    fn is_schema_change(&self) -> bool {
        self.ddl.is_some()
            || self.table_changes.is_some()
            || self.history_record.is_some()
            || (self.database_name.is_some() && self.op.is_none())
    }

    /// A heartbeat: `{"ts_ms": ..}` and nothing else (or its `{"serverName": ..}` key).
    fn is_heartbeat(&self) -> bool {
        let nothing_else = self.op.is_none()
            && self.source.is_none()
            && self.before.is_none()
            && self.after.is_none()
            && self.status.is_none()
            && self.id.is_none()
            && self.transaction.is_none()
            && self.data_collections.is_none();
        nothing_else && (self.ts_ms.is_some() != self.server_name.is_some())
    }
}

/// The `transaction` block of a change event.
#[derive(Deserialize)]
struct TxBlock<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

/// One entry of an END marker's `data_collections`.
#[derive(Deserialize)]
struct DataCollection<'a> {
    #[serde(borrow)]
    data_collection: Cow<'a, str>,
    event_count: u64,
}

/// How a message's `source` block was read (see [`Message`]).
trait SourceBlock<'a> {
    fn parse(self) -> Result<Source<'a>, DecodeError>;
}

impl<'a> SourceBlock<'a> for &'a RawValue {
    fn parse(self) -> Result<Source<'a>, DecodeError> {
        serde_json::from_str(self.get())
            .map_err(|e| DecodeError(format!("malformed `source`: {e}")))
    }
}

impl<'a> SourceBlock<'a> for Source<'a> {
    fn parse(self) -> Result<Source<'a>, DecodeError> {
        Ok(self)
    }
}

#[derive(Deserialize)]
struct Source<'a> {
    #[serde(borrow, default)]
    db: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    table: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    file: Option<Cow<'a, str>>,
    #[serde(default)]
    pos: Option<u64>,
    #[serde(default)]
    row: Option<u32>,
    #[serde(default)]
    ts_ms: Option<u64>,
    #[serde(default)]
    ts_sec: Option<u64>,
}

/// The fields of a JSON object as raw values, in document order (inline up to 16: no
/// allocation for most rows).
struct RawFields<'a>(smallvec::SmallVec<[(Cow<'a, str>, &'a RawValue); 16]>);

impl<'de> Deserialize<'de> for RawFields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut v = smallvec::SmallVec::new();
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    v.push((k, map.next_value::<&'de RawValue>()?));
                }
                Ok(RawFields(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// What a Connect schema says about one field of the row struct.
#[derive(Clone, Debug, Default)]
struct FieldSchema {
    /// Connect type (`int64`, `bytes`, `string`, ...).
    ty: String,
    /// Logical name (`org.apache.kafka.connect.data.Decimal`, `io.debezium.time.Date`, ...).
    name: Option<String>,
    /// `parameters.scale` of a Decimal: its value, or why it is unusable.
    scale: Option<Result<u8, String>>,
}

/// Field schemas of the `after`/`before` struct, by column name.
type RowSchema = HashMap<String, FieldSchema>;

#[derive(Deserialize)]
struct ConnectSchema {
    #[serde(default)]
    r#type: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    fields: Vec<ConnectSchema>,
    #[serde(default)]
    parameters: Option<HashMap<String, serde_json::Value>>,
}

/// What a message's Connect schema says it is.
#[derive(Clone, Debug)]
enum SchemaKind {
    /// A change-event envelope with these row field schemas.
    Envelope(Arc<RowSchema>),
    /// A key record.
    Key,
    /// A transaction BEGIN/END marker (decoded from its payload).
    TxMarker,
    /// A schema-change record (DDL).
    SchemaChange,
    /// A heartbeat.
    Heartbeat,
}

/// How events whose columns differ from schema.sql are treated (`--schema-drift`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum SchemaDrift {
    /// Columns an event carries that schema.sql does not declare are ignored (and counted, see
    /// [`Decoder::take_undeclared_columns`]); nullable declared columns the event lacks are
    /// NULL. A NOT NULL column that is missing is still an error. The default: an upstream
    /// `ALTER TABLE .. ADD COLUMN` does not stop the views.
    #[default]
    Lenient,
    /// Every column must be declared and every declared column present: any difference is an
    /// error (the record is dead-lettered).
    Strict,
}

impl std::str::FromStr for SchemaDrift {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lenient" => Ok(SchemaDrift::Lenient),
            "strict" => Ok(SchemaDrift::Strict),
            other => Err(format!("schema drift `{other}`: use strict or lenient")),
        }
    }
}

/// Decodes Debezium JSON messages against a [`Catalog`]. Holds a cache of parsed Connect schemas.
pub struct DebeziumDecoder {
    catalog: Arc<Catalog>,
    schema_cache: HashMap<Box<str>, SchemaKind>,
    drift: SchemaDrift,
    undeclared: std::cell::Cell<u64>,
    /// Per table and column, whether to decode it (see [`DebeziumDecoder::reading`]).
    read: Option<Arc<Vec<Vec<bool>>>>,
}

impl DebeziumDecoder {
    /// A decoder for the tables of `catalog` ([`SchemaDrift::Lenient`]).
    pub fn new(catalog: Arc<Catalog>) -> Self {
        DebeziumDecoder::with_drift(catalog, SchemaDrift::default())
    }

    /// A decoder for the tables of `catalog` with the given schema-drift policy.
    pub fn with_drift(catalog: Arc<Catalog>, drift: SchemaDrift) -> Self {
        DebeziumDecoder {
            catalog,
            schema_cache: HashMap::new(),
            drift,
            undeclared: std::cell::Cell::new(0),
            read: None,
        }
    }

    /// Decodes only the columns `read[table][column]` marks (see
    /// [`crate::sql::Dataflows::read_columns`]); the others are NULL in the row, their values
    /// neither converted nor checked (a NOT NULL column that is null is still rejected).
    pub fn reading(mut self, read: Arc<Vec<Vec<bool>>>) -> Self {
        self.read = Some(read);
        self
    }

    /// Decodes one message value (see [`Decoder`]).
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Decoded, DecodeError> {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => return err(format!("message is not UTF-8: {e}")),
        };
        let trimmed = text.trim();
        if trimmed == "null" || trimmed.is_empty() {
            return Ok(Decoded::Ignored("tombstone"));
        }
        match serde_json::from_str::<Message<Source>>(trimmed) {
            Ok(msg) => self.message(msg, trimmed),
            Err(_) => {
                let msg: Message = serde_json::from_str(trimmed).map_err(|e| {
                    let lead = text.len() - text.trim_start().len();
                    DecodeError(malformed_json(&e, lead))
                })?;
                self.message(msg, trimmed)
            }
        }
    }

    /// A parsed message (see [`Message`] for `S`).
    fn message<'a, S: SourceBlock<'a>>(
        &mut self,
        msg: Message<'a, S>,
        trimmed: &str,
    ) -> Result<Decoded, DecodeError> {
        if msg.payload.is_none() && msg.op.is_none() && msg.source.is_none() && msg.status.is_none()
        {
            // `{"schema": null, "payload": null}`: serde reads a JSON null as an absent field.
            if trimmed.contains("\"payload\"") {
                return Ok(Decoded::Ignored("tombstone"));
            }
        }
        if msg.payload.is_some() || msg.schema.is_some() {
            // schemas.enable=true: {"schema": .., "payload": ..}
            let payload = match msg.payload {
                Some(p) if p.get() != "null" => p,
                _ => return Ok(Decoded::Ignored("tombstone")),
            };
            let row_schema = match msg.schema {
                Some(s) if s.get() != "null" => match self.row_schema(s)? {
                    SchemaKind::Envelope(r) => Some(r),
                    SchemaKind::Key => return Ok(Decoded::Ignored("key record")),
                    SchemaKind::SchemaChange => return Ok(Decoded::Ignored("schema change")),
                    SchemaKind::Heartbeat => return Ok(Decoded::Ignored("heartbeat")),
                    SchemaKind::TxMarker => None,
                },
                _ => None,
            };
            match serde_json::from_str::<Message<Source>>(payload.get()) {
                Ok(inner) => self.envelope(inner, row_schema.as_deref()),
                Err(_) => {
                    let inner: Message = serde_json::from_str(payload.get())
                        .map_err(|e| DecodeError(format!("malformed payload: {e}")))?;
                    self.envelope(inner, row_schema.as_deref())
                }
            }
        } else {
            self.envelope(msg, None)
        }
    }

    fn row_schema(&mut self, schema: &RawValue) -> Result<SchemaKind, DecodeError> {
        if let Some(s) = self.schema_cache.get(schema.get()) {
            return Ok(s.clone());
        }
        let parsed: ConnectSchema = serde_json::from_str(schema.get())
            .map_err(|e| DecodeError(format!("malformed schema: {e}")))?;
        let mut fields = RowSchema::new();
        let name = parsed.name.as_deref().unwrap_or_default();
        let field_named = |n: &str| parsed.fields.iter().any(|f| f.field.as_deref() == Some(n));
        let kind = if name.ends_with(".Key") || name.ends_with("ServerNameKey") {
            Some(SchemaKind::Key)
        } else if name.ends_with(".SchemaChangeValue")
            || name.ends_with(".SchemaChangeKey")
            || field_named("ddl")
            || field_named("historyRecord")
        {
            Some(SchemaKind::SchemaChange)
        } else if name.ends_with(".Heartbeat") || (parsed.fields.len() == 1 && field_named("ts_ms"))
        {
            Some(SchemaKind::Heartbeat)
        } else {
            None
        };
        if let Some(kind) = kind {
            self.cache(schema, kind.clone());
            return Ok(kind);
        }
        {
            for part in &parsed.fields {
                if matches!(part.field.as_deref(), Some("after" | "before")) {
                    for f in &part.fields {
                        let scale = f
                            .parameters
                            .as_ref()
                            .and_then(|p| p.get("scale"))
                            .map(schema_scale);
                        fields.insert(
                            f.field.clone().unwrap_or_default().to_ascii_lowercase(),
                            FieldSchema {
                                ty: f.r#type.clone(),
                                name: f.name.clone(),
                                scale,
                            },
                        );
                    }
                }
            }
            if fields.is_empty()
                && parsed
                    .fields
                    .iter()
                    .all(|f| f.field.as_deref() != Some("op"))
            {
                // Not an envelope and not a key: a transaction marker or something else.
                if field_named("status") {
                    return Ok(SchemaKind::TxMarker);
                }
                return err(format!(
                    "schema `{name}` is not a Debezium change-event envelope"
                ));
            }
        }
        let kind = SchemaKind::Envelope(Arc::new(fields));
        self.cache(schema, kind.clone());
        Ok(kind)
    }

    fn cache(&mut self, schema: &RawValue, kind: SchemaKind) {
        if self.schema_cache.len() < 1024 {
            self.schema_cache.insert(schema.get().into(), kind);
        }
    }

    fn envelope<'a, S: SourceBlock<'a>>(
        &self,
        msg: Message<'a, S>,
        schema: Option<&RowSchema>,
    ) -> Result<Decoded, DecodeError> {
        let op = match msg.op.as_deref() {
            Some(op) => op,
            None if msg.status.is_some() => return marker(&msg),
            None if msg.is_schema_change() => return Ok(Decoded::Ignored("schema change")),
            None if msg.is_heartbeat() => return Ok(Decoded::Ignored("heartbeat")),
            None => return err("not a Debezium change event: no `op` field"),
        };
        let source = match msg.source {
            Some(s) => s,
            None => return err("no `source` block"),
        };
        let source = source.parse()?;
        let (db, table) = match (&source.db, &source.table) {
            (Some(d), Some(t)) => (d, t),
            _ => return err("`source.db` and `source.table` are required"),
        };
        let table_id = match self.catalog.lookup(db, table) {
            Some(id) => id,
            None => {
                return err(format!(
                    "unknown table `{db}.{table}` (declared: {})",
                    self.catalog.names()
                ));
            }
        };
        let version = Version {
            file: match source.file.as_deref() {
                Some(f) => binlog_sequence(f)?,
                None => {
                    return err(
                        "`source.file` is required (the version of a change is its binlog position)",
                    );
                }
            },
            pos: match source.pos {
                Some(p) => p,
                None => return err("`source.pos` is required"),
            },
            row: source.row.unwrap_or(0),
        };
        let time = match (source.ts_ms, source.ts_sec) {
            (Some(ms), _) => ms,
            (None, Some(s)) => s.saturating_mul(1000),
            _ => return err("`source.ts_ms` is required (the commit time)"),
        };
        let tx = match msg.transaction {
            Some(raw) if raw.get() != "null" => {
                let block: TxBlock = serde_json::from_str(raw.get())
                    .map_err(|e| DecodeError(format!("malformed `transaction` block: {e}")))?;
                Some(Box::new(TxTag {
                    id: block.id.into_owned(),
                    collection: format!("{db}.{table}"),
                }))
            }
            _ => None,
        };
        let table_def = &self.catalog.tables[table_id];
        let row_of = |raw: Option<&RawValue>, which: &str| -> Result<Option<Row>, DecodeError> {
            match raw {
                None => Ok(None),
                Some(r) if r.get() == "null" => Ok(None),
                Some(r) => self
                    .decode_row(table_id, table_def, r, schema, which == "before")
                    .map(Some)
                    .map_err(|e| {
                        DecodeError(format!("`{which}` of {}: {}", table_def.qualified(), e.0))
                    }),
            }
        };
        let event = |key: Row, row: Option<Row>| ChangeEvent {
            table: table_id,
            key,
            row,
            version,
            time,
            tx: tx.clone(),
        };
        match op {
            "c" | "r" | "u" => {
                let after = match row_of(msg.after, "after")? {
                    Some(a) => a,
                    None => return err(format!("op `{op}` without an `after` row")),
                };
                let key = key_of(table_def, &after);
                let mut events = Vec::with_capacity(2);
                if op == "u"
                    && let Some(before) = row_of(msg.before, "before")?
                {
                    let old_key = key_of(table_def, &before);
                    if old_key != key {
                        events.push(event(old_key, None));
                    }
                }
                events.push(event(key, Some(after)));
                Ok(Decoded::Events(events))
            }
            "d" => {
                let before = match row_of(msg.before, "before")? {
                    Some(b) => b,
                    None => return err("op `d` without a `before` row"),
                };
                Ok(Decoded::Events(vec![event(
                    key_of(table_def, &before),
                    None,
                )]))
            }
            "t" => err(format!(
                "truncate of {} is not supported: replay from a snapshot instead",
                table_def.qualified()
            )),
            other => err(format!("unsupported op `{other}` (supported: c, r, u, d)")),
        }
    }
}

/// A transaction marker: BEGIN is ignored (it carries nothing the engine needs), END becomes
/// [`Decoded::TxEnd`] with its per-collection event counts.
fn marker<S>(msg: &Message<'_, S>) -> Result<Decoded, DecodeError> {
    let status = msg.status.as_deref().unwrap_or_default();
    let id = match msg.id.as_deref() {
        Some(id) => id.to_string(),
        None => return err(format!("transaction {status} marker without `id`")),
    };
    let time = match msg.ts_ms {
        Some(t) => t,
        None => return err(format!("transaction {status} marker without `ts_ms`")),
    };
    match status {
        "BEGIN" => Ok(Decoded::Ignored("transaction BEGIN")),
        "END" => {
            let counts = match &msg.data_collections {
                Some(c) => c
                    .iter()
                    .map(|d| (d.data_collection.to_string(), d.event_count))
                    .collect(),
                None => return err("transaction END marker without `data_collections`"),
            };
            Ok(Decoded::TxEnd(TxMarker {
                id,
                time,
                end: Some(counts),
            }))
        }
        other => err(format!("unknown transaction marker status `{other}`")),
    }
}

impl Decoder for DebeziumDecoder {
    fn decode(&mut self, bytes: &[u8]) -> Result<Decoded, DecodeError> {
        DebeziumDecoder::decode(self, bytes)
    }

    fn take_undeclared_columns(&mut self) -> u64 {
        self.undeclared.replace(0)
    }
}

/// `parameters.scale` of a Connect Decimal schema (a string or a number).
fn schema_scale(v: &serde_json::Value) -> Result<u8, String> {
    let n = match v {
        serde_json::Value::String(s) => s.parse::<i64>().ok(),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    };
    match n {
        Some(n @ 0..=38) => Ok(n as u8),
        Some(n) => Err(format!(
            "precise decimal scale {n} is out of range 0..=38 (MySQL's largest scale is 30)"
        )),
        None => Err(format!("precise decimal scale `{v}` is not an integer")),
    }
}

fn key_of(table: &Table, row: &Row) -> Row {
    row.project(&table.primary_key)
}

/// The numeric suffix of a binlog file name: `mysql-bin.000003` -> 3. An empty name is 0:
/// Flink CDC's snapshot reads carry `file: ""` and `pos: 0`, and a snapshot read is older than
/// any binlog position.
fn binlog_sequence(file: &str) -> Result<u64, DecodeError> {
    if file.is_empty() {
        return Ok(0);
    }
    file.rsplit('.')
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            DecodeError(format!(
                "`source.file` `{file}` has no numeric binlog sequence"
            ))
        })
}

impl DebeziumDecoder {
    /// Decodes a row object. With `key_only`, only the primary-key columns are decoded and
    /// required (other columns become NULL): a `before` image serves only to find the key, so
    /// a value that no longer matches schema.sql there must not block a delete. Columns that
    /// schema.sql does not declare, and nullable declared columns that are missing, follow the
    /// [`SchemaDrift`] policy.
    fn decode_row(
        &self,
        table_id: usize,
        table: &Table,
        raw: &RawValue,
        schema: Option<&RowSchema>,
        key_only: bool,
    ) -> Result<Row, DecodeError> {
        let fields: RawFields = serde_json::from_str(raw.get())
            .map_err(|e| DecodeError(format!("not an object: {e}")))?;
        let strict = self.drift == SchemaDrift::Strict;
        let mut row: smallvec::SmallVec<[Option<Value>; 16]> =
            smallvec::smallvec![None; table.columns.len()];
        for (position, (name, value)) in fields.0.into_iter().enumerate() {
            // Debezium writes the columns in declaration order: try that position first.
            let at_position = table.columns.get(position).is_some_and(|c| c.name == name);
            let idx = match if at_position {
                Some(position)
            } else {
                table.column(&name)
            } {
                Some(i) if key_only && !table.primary_key.contains(&i) => continue,
                Some(i) => i,
                None if key_only => continue,
                None if !strict => {
                    self.undeclared.set(self.undeclared.get() + 1);
                    continue;
                }
                None => {
                    return err(format!(
                        "column `{name}` is not declared in schema.sql for {} \
                         (--schema-drift strict)",
                        table.qualified()
                    ));
                }
            };
            let col = &table.columns[idx];
            if !key_only
                && let Some(read) = &self.read
                && read.get(table_id).is_some_and(|r| !r[idx])
            {
                if !col.nullable && value.get() == "null" {
                    return err(format!(
                        "column `{}` is NOT NULL but the value is null",
                        col.name
                    ));
                }
                row[idx] = Some(Value::Null);
                continue;
            }
            let fs = schema.and_then(|s| {
                s.get(name.as_ref())
                    .or_else(|| s.get(name.to_ascii_lowercase().as_str()))
            });
            let v = decode_value(&col.ty, value.get(), fs)
                .map_err(|e| DecodeError(format!("column `{}` ({}): {}", col.name, col.ty, e.0)))?;
            if v.is_null() && !col.nullable {
                return err(format!(
                    "column `{}` is NOT NULL but the value is null",
                    col.name
                ));
            }
            row[idx] = Some(v);
        }
        row.into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Some(v) => Ok(v),
                None if key_only && !table.primary_key.contains(&i) => Ok(Value::Null),
                None if !strict && table.columns[i].nullable => Ok(Value::Null),
                None => err(format!("column `{}` is missing", table.columns[i].name)),
            })
            .collect()
    }
}

/// Text of a JSON string literal, unescaped; `None` if `raw` is not a string.
fn json_str(raw: &str) -> Result<Option<Cow<'_, str>>, DecodeError> {
    if !raw.starts_with('"') {
        return Ok(None);
    }
    let inner = &raw[1..raw.len() - 1];
    if !inner.contains('\\') {
        return Ok(Some(Cow::Borrowed(inner)));
    }
    serde_json::from_str::<String>(raw)
        .map(|s| Some(Cow::Owned(s)))
        .map_err(|e| DecodeError(format!("bad string: {e}")))
}

fn kind(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        _ => "a number",
    }
}

fn json_int(raw: &str) -> Result<i64, DecodeError> {
    if let Ok(i) = raw.parse::<i64>() {
        return Ok(i);
    }
    if raw.parse::<u64>().is_ok() {
        return err(format!("{raw} does not fit a signed 64-bit integer"));
    }
    err(format!(
        "expected an integer, got {} `{}`",
        kind(raw),
        clip(raw)
    ))
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn decode_value(
    ty: &ColumnType,
    raw: &str,
    fs: Option<&FieldSchema>,
) -> Result<Value, DecodeError> {
    if raw == "null" {
        return Ok(Value::Null);
    }
    let logical = fs.and_then(|f| f.name.as_deref());
    match ty {
        ColumnType::Int { unsigned } => {
            let i = if logical == Some(CONNECT_DECIMAL) {
                // bigint.unsigned.handling.mode=precise
                let d = precise_decimal(raw, fs)?;
                match d
                    .rescale(0)
                    .and_then(|d| d.mantissa_i128())
                    .and_then(|m| i64::try_from(m).ok())
                {
                    Some(i) => i,
                    None => return err(format!("{d} does not fit a signed 64-bit integer")),
                }
            } else if raw == "true" || raw == "false" {
                // BOOLEAN / TINYINT(1) with a boolean converter, BIT(1) declared as an integer.
                (raw == "true") as i64
            } else {
                json_int(raw)?
            };
            if *unsigned && i < 0 {
                return err(format!("{i} is negative for an UNSIGNED column"));
            }
            Ok(Value::Int(i))
        }
        ColumnType::Year => {
            // io.debezium.time.Year: the year as an int32.
            let y = match json_str(raw)? {
                Some(s) => json_int(&s)?,
                None => json_int(raw)?,
            };
            if !(0..=9999).contains(&y) {
                return err(format!("year {y} is out of range"));
            }
            Ok(Value::Int(y))
        }
        ColumnType::BigIntUnsigned => {
            unsigned_64(raw, fs).map(|u| Value::Dec(Decimal::new(u as i128, 0)))
        }
        ColumnType::Bit { width } => {
            let v: u64 = if raw == "true" || raw == "false" {
                // BIT(1): a Connect boolean.
                (raw == "true") as u64
            } else if let Some(s) = json_str(raw)? {
                // io.debezium.data.Bits: base64 of the bits, least significant byte first.
                let bytes = B64
                    .decode(s.as_bytes())
                    .map_err(|e| DecodeError(format!("bad base64 in BIT value: {e}")))?;
                if bytes.len() > 8 {
                    return err(format!(
                        "BIT value of {} bytes exceeds 64 bits",
                        bytes.len()
                    ));
                }
                bytes
                    .iter()
                    .rev()
                    .fold(0u64, |acc, b| (acc << 8) | *b as u64)
            } else {
                match raw.parse::<u64>() {
                    Ok(v) => v,
                    Err(_) => {
                        return err(format!(
                            "expected BIT bits, got {} `{}`",
                            kind(raw),
                            clip(raw)
                        ));
                    }
                }
            };
            if *width < 64 && v >> *width != 0 {
                return err(format!("{v} does not fit BIT({width})"));
            }
            Ok(if *width <= 63 {
                Value::Int(v as i64)
            } else {
                Value::Dec(Decimal::new(v as i128, 0))
            })
        }
        ColumnType::Decimal {
            precision,
            scale,
            unsigned,
        } => {
            let schema_double = fs.is_some_and(|f| {
                matches!(f.ty.as_str(), "double" | "float" | "float64" | "float32")
            });
            let d = if let Some(s) = json_str(raw)? {
                let precise =
                    fs.is_some_and(|f| f.ty == "bytes") || logical == Some(CONNECT_DECIMAL);
                if precise {
                    precise_decimal(raw, fs)?
                } else {
                    match Decimal::parse(&s) {
                        Some(_) if fs.is_none() && looks_precise(&s, *scale) => {
                            return err(format!(
                                "`{}` is ambiguous without a schema: a DECIMAL with scale {scale} \
                                 in decimal.handling.mode=string has a decimal point, so this \
                                 looks like base64 (decimal.handling.mode=precise), whose scale \
                                 is only in the schema: enable schemas \
                                 (value.converter.schemas.enable=true) or use \
                                 decimal.handling.mode=string",
                                clip(&s)
                            ));
                        }
                        Some(d) => d,
                        // Without a schema, a string that is not a number is a precise decimal
                        // (decimal.handling.mode=precise, Debezium's default and Flink CDC's
                        // schemaless output): base64 of the unscaled value at the column's
                        // declared scale.
                        None if fs.is_none() => match B64.decode(s.as_bytes()) {
                            Ok(bytes) => {
                                Decimal::from_be_bytes(&bytes, *scale).ok_or_else(|| {
                                    DecodeError(format!(
                                        "`{}` (a precise decimal, base64) is empty or beyond \
                                     MySQL's 65 digits",
                                        clip(&s)
                                    ))
                                })?
                            }
                            Err(_) => {
                                return err(format!(
                                    "`{}` is neither a decimal string \
                                     (decimal.handling.mode=string) nor base64 \
                                     (decimal.handling.mode=precise)",
                                    clip(&s)
                                ));
                            }
                        },
                        None => return err(format!("`{}` is not a decimal", clip(&s))),
                    }
                }
            } else if raw.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
                // A JSON number: decimal.handling.mode=precise with decimal.format=NUMERIC
                // (exact digits), or decimal.handling.mode=double. The raw JSON text is parsed,
                // never a double: every digit is kept.
                if schema_double && *precision > 15 {
                    return err(format!(
                        "DECIMAL({precision},{scale}) sent as a double \
                         (decimal.handling.mode=double) cannot be exact beyond 15 digits: \
                         use decimal.handling.mode=string or precise"
                    ));
                }
                match Decimal::parse(raw) {
                    Some(d) => d,
                    None if raw
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b"-+.eE".contains(&b)) =>
                    {
                        return err(format!(
                            "`{}` has more than 65 significant digits (MySQL's limit) or a \
                             scale beyond 38",
                            clip(raw)
                        ));
                    }
                    None => return err(format!("`{}` is not a number", clip(raw))),
                }
            } else {
                return err(format!("expected a decimal, got {}", kind(raw)));
            };
            let exact = d.rescale(*scale).ok_or_else(|| {
                DecodeError(format!(
                    "{d} does not fit DECIMAL({precision},{scale}) exactly"
                ))
            })?;
            if !exact.fits_precision(*precision) {
                return err(format!(
                    "{d} is out of range for DECIMAL({precision},{scale})"
                ));
            }
            if *unsigned && exact.is_negative() {
                return err(format!("{d} is negative for an UNSIGNED column"));
            }
            Ok(Value::Dec(exact))
        }
        ColumnType::Double { single } => {
            let text = match json_str(raw)? {
                Some(s) => s,
                None if raw
                    .starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) =>
                {
                    Cow::Borrowed(raw)
                }
                None => return err(format!("expected a number, got {}", kind(raw))),
            };
            // Rust's parser rounds the decimal text correctly to the nearest double; a FLOAT
            // holds the nearest single-precision number, which MySQL computes with as a double.
            let parsed = text.trim().parse::<f64>().ok();
            let parsed = if *single {
                parsed.map(|x| x as f32 as f64)
            } else {
                parsed
            };
            match parsed.and_then(F64::new) {
                Some(x) => Ok(Value::Double(x)),
                None => err(format!("`{}` is not a finite number", clip(&text))),
            }
        }
        ColumnType::Text { max_chars } => {
            let s = match json_str(raw)? {
                Some(s) => s,
                None => return err(format!("expected a string, got {}", kind(raw))),
            };
            if let Some(max) = max_chars
                && s.len() as u64 > *max
                && s.chars().count() as u64 > *max
            {
                return err(format!(
                    "text of {} characters exceeds the declared {max}",
                    s.chars().count()
                ));
            }
            Ok(Value::Text(s.into_owned()))
        }
        ColumnType::Json => match json_str(raw)? {
            // io.debezium.data.Json: the document as a string.
            Some(s) => Ok(Value::Text(s.into_owned())),
            None => err(format!(
                "expected a JSON document as a string, got {}",
                kind(raw)
            )),
        },
        ColumnType::Enum(members) => {
            let s = match json_str(raw)? {
                Some(s) => s,
                None => return err(format!("expected an ENUM string, got {}", kind(raw))),
            };
            if !members.iter().any(|m| m.as_str() == s) {
                return err(format!("`{}` is not a member of the ENUM", clip(&s)));
            }
            Ok(Value::Text(s.into_owned()))
        }
        ColumnType::Set(members) => {
            // io.debezium.data.EnumSet: the members, comma-joined.
            let s = match json_str(raw)? {
                Some(s) => s,
                None => return err(format!("expected a SET string, got {}", kind(raw))),
            };
            if !s.is_empty()
                && let Some(m) = s.split(',').find(|m| !members.iter().any(|x| x == m))
            {
                return err(format!("`{}` is not a member of the SET", clip(m)));
            }
            Ok(Value::Text(s.into_owned()))
        }
        ColumnType::Date => {
            if let Some(s) = json_str(raw)? {
                return parse_date(&s)
                    .map(Value::Date)
                    .ok_or_else(|| DecodeError(format!("`{}` is not a date", clip(&s))));
            }
            let days = json_int(raw)?;
            if !DAY_RANGE.contains(&days) {
                return err(format!("{days} days is outside 0000-01-01..9999-12-31"));
            }
            Ok(Value::Date(days as i32))
        }
        ColumnType::DateTime { precision } | ColumnType::Timestamp { precision } => {
            if let Some(s) = json_str(raw)? {
                return parse_datetime(&s).map(Value::DateTime).ok_or_else(|| {
                    DecodeError(format!("`{}` is not an ISO-8601 date-time", clip(&s)))
                });
            }
            let n = json_int(raw)?;
            let micros = match logical {
                Some("io.debezium.time.MicroTimestamp") => Some(n),
                Some("io.debezium.time.NanoTimestamp") => {
                    if n % 1000 != 0 {
                        return err("nanoseconds cannot be kept (at most microseconds)");
                    }
                    Some(n / 1000)
                }
                Some("io.debezium.time.Timestamp" | "org.apache.kafka.connect.data.Timestamp") => {
                    n.checked_mul(1000)
                }
                Some("io.debezium.time.Date" | "org.apache.kafka.connect.data.Date") => {
                    n.checked_mul(MICROS_PER_DAY)
                }
                _ if *precision <= 3 => n.checked_mul(1000),
                _ => Some(n),
            };
            micros
                .filter(|us| MICROS_RANGE.contains(us))
                .map(Value::DateTime)
                .ok_or_else(|| DecodeError(format!("{n} is outside 0000-01-01..9999-12-31")))
        }
        ColumnType::Time { .. } => {
            if let Some(s) = json_str(raw)? {
                return parse_time(&s)
                    .map(Value::Time)
                    .ok_or_else(|| DecodeError(format!("`{}` is not a TIME", clip(&s))));
            }
            let n = json_int(raw)?;
            let micros = match logical {
                Some("io.debezium.time.NanoTime") => {
                    if n % 1000 != 0 {
                        return err("nanoseconds cannot be kept (at most microseconds)");
                    }
                    Some(n / 1000)
                }
                // time.precision.mode=adaptive (TIME(0..3)) and connect: milliseconds.
                Some("io.debezium.time.Time" | "org.apache.kafka.connect.data.Time") => {
                    n.checked_mul(1000)
                }
                // io.debezium.time.MicroTime, and without a schema Debezium's default mode
                // (adaptive_time_microseconds): microseconds.
                _ => Some(n),
            };
            micros
                .filter(|us| TIME_RANGE.contains(us))
                .map(Value::Time)
                .ok_or_else(|| DecodeError(format!("{n} is outside -838:59:59..838:59:59")))
        }
        ColumnType::Bytes => match json_str(raw)? {
            Some(s) => B64
                .decode(s.as_bytes())
                .map(Value::Bytes)
                .map_err(|e| DecodeError(format!("bad base64: {e}"))),
            None => err(format!("expected base64 bytes, got {}", kind(raw))),
        },
        ColumnType::Geometry => {
            // io.debezium.data.geometry.{Geometry,Point,..}: {"wkb": base64, "srid": int}.
            #[derive(Deserialize)]
            struct Geometry<'a> {
                #[serde(borrow)]
                wkb: Cow<'a, str>,
            }
            let g: Geometry = serde_json::from_str(raw).map_err(|e| {
                DecodeError(format!(
                    "expected a geometry {{\"wkb\": .., \"srid\": ..}}: {e}"
                ))
            })?;
            B64.decode(g.wkb.as_bytes())
                .map(Value::Bytes)
                .map_err(|e| DecodeError(format!("bad base64 in `wkb`: {e}")))
        }
    }
}

/// Connect's logical Decimal.
const CONNECT_DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";

/// Whether a schemaless decimal string made only of digits must be base64 rather than
/// `decimal.handling.mode=string` text: in string mode Debezium writes a DECIMAL with a scale
/// above 0 with its decimal point, so a digit-only string of a valid base64 length (a multiple
/// of 4) for such a column is taken as base64. For a scale-0 column a digit string is a number.
fn looks_precise(s: &str, scale: u8) -> bool {
    scale > 0 && !s.is_empty() && s.len().is_multiple_of(4) && s.bytes().all(|b| b.is_ascii_digit())
}

/// A `BIGINT UNSIGNED` value as Debezium sends it: `bigint.unsigned.handling.mode=long` (an
/// int64; values above 2^63-1 arrive wrapped to negative and are unwrapped, exactly) or
/// `precise` (a Connect Decimal of scale 0: base64 bytes, or with decimal.format=NUMERIC a JSON
/// number), or a digit string.
fn unsigned_64(raw: &str, fs: Option<&FieldSchema>) -> Result<u64, DecodeError> {
    let out_of_range =
        |d: &dyn fmt::Display| DecodeError(format!("{d} is out of range for BIGINT UNSIGNED"));
    let from_decimal = |d: Decimal| -> Result<u64, DecodeError> {
        let i = d
            .rescale(0)
            .ok_or_else(|| DecodeError(format!("{d} is not an integer")))?;
        i.mantissa_i128()
            .and_then(|m| u64::try_from(m).ok())
            .ok_or_else(|| out_of_range(&d))
    };
    if let Some(s) = json_str(raw)? {
        let precise = fs.is_some_and(|f| f.ty == "bytes")
            || fs.and_then(|f| f.name.as_deref()) == Some(CONNECT_DECIMAL);
        if precise {
            return from_decimal(precise_decimal(raw, fs)?);
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return from_decimal(Decimal::parse(&s).ok_or_else(|| out_of_range(&s))?);
        }
        // Schemaless precise mode: base64 of the two's-complement value, scale 0.
        let bytes = B64.decode(s.as_bytes()).map_err(|e| {
            DecodeError(format!(
                "expected a number or base64 (precise), got `{}`: {e}",
                clip(&s)
            ))
        })?;
        let d = Decimal::from_be_bytes(&bytes, 0).ok_or_else(|| out_of_range(&s))?;
        return from_decimal(d);
    }
    if let Ok(i) = raw.parse::<i64>() {
        // Connect has no unsigned int64: Debezium's `long` mode wraps values >= 2^63.
        return Ok(i as u64);
    }
    if let Ok(u) = raw.parse::<u64>() {
        return Ok(u);
    }
    match Decimal::parse(raw) {
        Some(d) => from_decimal(d),
        None => err(format!(
            "expected an unsigned integer, got {} `{}`",
            kind(raw),
            clip(raw)
        )),
    }
}

fn precise_decimal(raw: &str, fs: Option<&FieldSchema>) -> Result<Decimal, DecodeError> {
    let scale = match fs.and_then(|f| f.scale.clone()) {
        Some(Ok(s)) => s,
        Some(Err(e)) => return err(e),
        None => return err("precise decimal without `parameters.scale` in its schema"),
    };
    let s = match json_str(raw)? {
        Some(s) => s,
        // decimal.format=NUMERIC: the JsonConverter writes the exact digits as a JSON number.
        None => {
            return match Decimal::parse(raw) {
                Some(d) if d.scale <= scale => d
                    .rescale(scale)
                    .ok_or_else(|| DecodeError(format!("{raw} exceeds MySQL's 65 digits"))),
                Some(_) => err(format!(
                    "{} has more digits than the schema's scale {scale}",
                    clip(raw)
                )),
                None => err(format!(
                    "expected a precise decimal (base64 or a number), got {} `{}`",
                    kind(raw),
                    clip(raw)
                )),
            };
        }
    };
    let bytes = B64
        .decode(s.as_bytes())
        .map_err(|e| DecodeError(format!("bad base64 in precise decimal: {e}")))?;
    Decimal::from_be_bytes(&bytes, scale).ok_or_else(|| {
        DecodeError(format!(
            "precise decimal of {} bytes is empty or beyond MySQL's 65 digits",
            bytes.len()
        ))
    })
}

/// A JSON syntax error with where it is in the message: its column (1-based, counted in
/// bytes of the message as read, `lead` bytes of leading whitespace included), and its line
/// when the message spans several.
fn malformed_json(e: &serde_json::Error, lead: usize) -> String {
    let text = e.to_string();
    let what = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    if e.line() > 1 {
        format!(
            "malformed JSON at line {} column {} of the message: {what}",
            e.line(),
            e.column()
        )
    } else {
        format!("malformed JSON at column {}: {what}", e.column() + lead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_no_view_reads_are_not_decoded() {
        let catalog = Arc::new(
            Catalog::parse(
                "s.sql",
                "CREATE DATABASE a;\nCREATE TABLE a.t (id INT PRIMARY KEY, x INT NOT NULL, note VARCHAR(9) NOT NULL);",
            )
            .unwrap(),
        );
        let read = Arc::new(vec![vec![true, true, false]]);
        let mut d = DebeziumDecoder::new(catalog.clone()).reading(read);
        let msg = |note: &str| {
            format!(
                r#"{{"op":"c","before":null,"after":{{"id":1,"x":2,"note":{note}}},"source":{{"db":"a","table":"t","file":"b.000001","pos":4,"ts_ms":1}}}}"#
            )
        };
        // `note` is not read: neither converted (a number where text is declared is fine)
        // nor kept, but a NOT NULL column that is null is still an error.
        let Ok(Decoded::Events(evs)) = d.decode(msg("7").as_bytes()) else {
            panic!("decodes")
        };
        assert_eq!(
            evs[0].row,
            Some(Row::from(vec![Value::Int(1), Value::Int(2), Value::Null]))
        );
        assert!(d.decode(msg("null").as_bytes()).is_err());
        // Without the mask, every column is decoded.
        let mut all = DebeziumDecoder::new(catalog);
        assert!(all.decode(msg("7").as_bytes()).is_err());
        let Ok(Decoded::Events(evs)) = all.decode(msg(r#""hi""#).as_bytes()) else {
            panic!("decodes")
        };
        assert_eq!(
            evs[0].row.as_ref().unwrap().get(2),
            Value::Text("hi".into())
        );
    }

    #[test]
    fn a_source_the_one_pass_read_refuses_is_named_in_the_error() {
        let catalog = Arc::new(
            Catalog::parse(
                "s.sql",
                "CREATE DATABASE a;\nCREATE TABLE a.t (id INT PRIMARY KEY);",
            )
            .unwrap(),
        );
        let mut d = DebeziumDecoder::new(catalog);
        let msg = |source: &str| {
            format!(r#"{{"op":"c","before":null,"after":{{"id":1}},"source":{source}}}"#)
        };
        let good = r#"{"db":"a","table":"t","file":"b.000002","pos":4,"row":1,"ts_ms":9}"#;
        let Ok(Decoded::Events(evs)) = d.decode(msg(good).as_bytes()) else {
            panic!("decodes")
        };
        assert_eq!(
            (evs[0].version, evs[0].time),
            (
                Version {
                    file: 2,
                    pos: 4,
                    row: 1
                },
                9
            )
        );
        // Read again with `source` raw: the error names the block, as before the one-pass read.
        let bad = r#"{"db":"a","table":"t","file":"b.000002","pos":"four","ts_ms":9}"#;
        let e = d.decode(msg(bad).as_bytes()).unwrap_err();
        assert!(e.0.starts_with("malformed `source`"), "{}", e.0);
        // And malformed JSON is still reported with its column.
        let e = d.decode(br#"{"op":"c","source":{"db":"a""#).unwrap_err();
        assert!(e.0.starts_with("malformed JSON at column"), "{}", e.0);
        // A schema-wrapped payload takes the same two reads.
        let wrapped = format!(r#"{{"schema":null,"payload":{}}}"#, msg(bad));
        let e = d.decode(wrapped.as_bytes()).unwrap_err();
        assert!(e.0.starts_with("malformed `source`"), "{}", e.0);
    }

    #[test]
    fn twos_complement_decodes_negative_and_positive() {
        let m = |b: &[u8]| Decimal::from_be_bytes(b, 0).map(|d| d.to_string());
        assert_eq!(m(&[0x04, 0xD2]).as_deref(), Some("1234"));
        assert_eq!(m(&[0xFB, 0x2E]).as_deref(), Some("-1234"));
        assert_eq!(m(&[0x00]).as_deref(), Some("0"));
        assert_eq!(m(&[0xFF]).as_deref(), Some("-1"));
        assert_eq!(
            m(&[0x00, 0x00, 0x80]).as_deref(),
            Some("128"),
            "sign padding"
        );
        assert_eq!(m(&[0xFF, 0x7F]).as_deref(), Some("-129"));
        assert_eq!(m(&[]), None);
        // 10^64 (65 digits) is in range; 10^65 is not.
        let p64 = Decimal::parse(&format!("1{}", "0".repeat(64))).unwrap();
        assert_eq!(Decimal::from_be_bytes(&p64.to_be_bytes(), 0), Some(p64));
        assert!(Decimal::parse(&format!("1{}", "0".repeat(65))).is_none());
        assert_eq!(m(&[0x7F; 40]), None, "beyond 256 bits");
    }

    #[test]
    fn binlog_sequence_parses_suffix() {
        assert_eq!(binlog_sequence("mysql-bin.000003").unwrap(), 3);
        assert!(binlog_sequence("nofile").is_err());
        assert_eq!(binlog_sequence("").unwrap(), 0, "Flink CDC snapshot reads");
    }

    fn dec_col(p: u8, s: u8) -> ColumnType {
        ColumnType::Decimal {
            precision: p,
            scale: s,
            unsigned: false,
        }
    }

    fn precise_schema(scale: serde_json::Value) -> FieldSchema {
        FieldSchema {
            ty: "bytes".into(),
            name: Some(CONNECT_DECIMAL.into()),
            scale: Some(schema_scale(&scale)),
        }
    }

    #[test]
    fn regression_precise_scale_truncated_as_u8() {
        // `"scale": 258` used to become 2 (`258 as u8`): 1234 read as 12.34.
        let fs = precise_schema(serde_json::json!(258));
        let e = decode_value(&dec_col(10, 2), "\"BNI=\"", Some(&fs)).unwrap_err();
        assert!(e.0.contains("258"), "{e}");
        let fs = precise_schema(serde_json::json!("-1"));
        assert!(decode_value(&dec_col(10, 2), "\"BNI=\"", Some(&fs)).is_err());
        let fs = precise_schema(serde_json::json!("2"));
        assert_eq!(
            decode_value(&dec_col(10, 2), "\"BNI=\"", Some(&fs)).unwrap(),
            Value::Dec(Decimal::new(1234, 2))
        );
        // decimal.format=NUMERIC: the number itself, exactly.
        assert_eq!(
            decode_value(&dec_col(30, 2), "123456789012345678901234.50", Some(&fs)).unwrap(),
            Value::Dec(Decimal::parse("123456789012345678901234.50").unwrap())
        );
    }

    #[test]
    fn regression_base64_all_digits_misread() {
        // "1234" is valid base64 (bytes D7 6D F8): a precise DECIMAL(10,2) without schema used
        // to be read as the decimal string 1234.00. In string mode a scale-2 decimal has its
        // point, so the digits-only string is refused as ambiguous instead.
        let e = decode_value(&dec_col(10, 2), "\"1234\"", None).unwrap_err();
        assert!(e.0.contains("ambiguous"), "{e}");
        // Not a base64 length, or with a point: a decimal string.
        assert_eq!(
            decode_value(&dec_col(10, 2), "\"123\"", None).unwrap(),
            Value::Dec(Decimal::new(12300, 2))
        );
        assert_eq!(
            decode_value(&dec_col(10, 2), "\"12.34\"", None).unwrap(),
            Value::Dec(Decimal::new(1234, 2))
        );
        // Scale 0: string mode writes no point, so digits are a number.
        assert_eq!(
            decode_value(&dec_col(10, 0), "\"1234\"", None).unwrap(),
            Value::Dec(Decimal::new(1234, 0))
        );
    }

    #[test]
    fn regression_schemaless_precise_decimals_use_the_declared_scale() {
        // Flink CDC's default output (no schema, decimal.handling.mode=precise) was refused:
        // "AZA=" (0x0190) is 4.00 in a DECIMAL(10,2), the unscaled value at the column's scale.
        assert_eq!(
            decode_value(&dec_col(10, 2), "\"AZA=\"", None).unwrap(),
            Value::Dec(Decimal::new(400, 2))
        );
        assert_eq!(
            decode_value(&dec_col(10, 2), "\"+0Q=\"", None).unwrap(),
            Value::Dec(Decimal::new(-1212, 2)),
            "negative: 0xFB44 is -1212"
        );
        // 65 digits, as Connect writes them (minimal two's complement).
        let wide = Decimal::parse(&format!("-{}.{}", "9".repeat(35), "9".repeat(30))).unwrap();
        let b64 = format!("\"{}\"", B64.encode(wide.to_be_bytes()));
        assert_eq!(
            decode_value(&dec_col(65, 30), &b64, None).unwrap(),
            Value::Dec(wide)
        );
        assert!(
            decode_value(&dec_col(64, 30), &b64, None).is_err(),
            "beyond the precision"
        );
        let e = decode_value(&dec_col(10, 2), "\"not base64!\"", None).unwrap_err();
        assert!(e.0.contains("neither a decimal string"), "{e}");
    }

    #[test]
    fn double_mode_with_a_schema_refuses_more_than_15_digits() {
        let fs = FieldSchema {
            ty: "double".into(),
            name: None,
            scale: None,
        };
        assert!(decode_value(&dec_col(20, 2), "12.5", Some(&fs)).is_err());
        assert_eq!(
            decode_value(&dec_col(15, 2), "12.5", Some(&fs)).unwrap(),
            Value::Dec(Decimal::new(1250, 2))
        );
    }
}
