//! Debezium MySQL connector messages (JsonConverter), with `schemas.enable` on or off.
//!
//! - Envelope `before`/`after`/`source`/`op`; ops `c`, `r`, `u`, `d`. Tombstones (`null`, or
//!   `{"schema":null,"payload":null}`), transaction BEGIN/END markers and key records are
//!   [`Decoded::Ignored`].
//! - Table from `source.db` + `source.table`; version from `source.file`/`pos`/`row`; time from
//!   `source.ts_ms` (pre-1.0 connectors: `ts_sec` x 1000).
//! - Column values as Debezium encodes them: DECIMAL in `string`, `double` or `precise` mode
//!   (precise = base64 of the big-endian two's-complement unscaled value; the scale is only in
//!   the schema, so a precise decimal without schema is refused); DATE as days since the epoch;
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
    DAY_RANGE, Decimal, MICROS_PER_DAY, MICROS_RANGE, Value, parse_date, parse_datetime,
};

pub use super::DecodeError;

fn err<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    schema: Option<&'a RawValue>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(borrow, default)]
    before: Option<&'a RawValue>,
    #[serde(borrow, default)]
    after: Option<&'a RawValue>,
    #[serde(borrow, default)]
    source: Option<&'a RawValue>,
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

/// The fields of a JSON object as raw values, in document order.
struct RawFields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for RawFields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::with_capacity(map.size_hint().unwrap_or(8));
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
    /// `parameters.scale` of a Decimal.
    scale: Option<u8>,
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

/// Decodes Debezium JSON messages against a [`Catalog`]. Holds a cache of parsed Connect schemas.
pub struct DebeziumDecoder {
    catalog: Arc<Catalog>,
    schema_cache: HashMap<Box<str>, Arc<RowSchema>>,
}

impl DebeziumDecoder {
    /// A decoder for the tables of `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        DebeziumDecoder {
            catalog,
            schema_cache: HashMap::new(),
        }
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
        let msg: Message = serde_json::from_str(trimmed)
            .map_err(|e| DecodeError(format!("malformed JSON: {e}")))?;
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
                Some(s) if s.get() != "null" => Some(self.row_schema(s)?),
                _ => None,
            };
            if row_schema.as_ref().is_some_and(|s| s.is_empty()) {
                let kind = ignored_kind(payload.get());
                if kind != "transaction marker" {
                    return Ok(Decoded::Ignored(kind));
                }
            }
            let inner: Message = serde_json::from_str(payload.get())
                .map_err(|e| DecodeError(format!("malformed payload: {e}")))?;
            self.envelope(inner, row_schema.as_deref())
        } else {
            self.envelope(msg, None)
        }
    }

    fn row_schema(&mut self, schema: &RawValue) -> Result<Arc<RowSchema>, DecodeError> {
        if let Some(s) = self.schema_cache.get(schema.get()) {
            return Ok(s.clone());
        }
        let parsed: ConnectSchema = serde_json::from_str(schema.get())
            .map_err(|e| DecodeError(format!("malformed schema: {e}")))?;
        let mut fields = RowSchema::new();
        let is_key = parsed.name.as_deref().is_some_and(|n| n.ends_with(".Key"));
        if !is_key {
            for part in &parsed.fields {
                if matches!(part.field.as_deref(), Some("after" | "before")) {
                    for f in &part.fields {
                        let scale = f.parameters.as_ref().and_then(|p| p.get("scale")).and_then(
                            |v| match v {
                                serde_json::Value::String(s) => s.parse().ok(),
                                serde_json::Value::Number(n) => n.as_u64().map(|n| n as u8),
                                _ => None,
                            },
                        );
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
                let kind = if parsed
                    .fields
                    .iter()
                    .any(|f| f.field.as_deref() == Some("status"))
                {
                    Arc::new(RowSchema::new())
                } else {
                    return err(format!(
                        "schema `{}` is not a Debezium change-event envelope",
                        parsed.name.unwrap_or_default()
                    ));
                };
                return Ok(kind);
            }
        }
        let arc = Arc::new(fields);
        if self.schema_cache.len() < 1024 {
            self.schema_cache.insert(schema.get().into(), arc.clone());
        }
        Ok(arc)
    }

    fn envelope(&self, msg: Message, schema: Option<&RowSchema>) -> Result<Decoded, DecodeError> {
        let op = match msg.op.as_deref() {
            Some(op) => op,
            None if msg.status.is_some() => return marker(&msg),
            None => return err("not a Debezium change event: no `op` field"),
        };
        let source = match msg.source {
            Some(s) => s,
            None => return err("no `source` block"),
        };
        let source: Source = serde_json::from_str(source.get())
            .map_err(|e| DecodeError(format!("malformed `source`: {e}")))?;
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
                Some(r) => decode_row(table_def, r, schema, which == "before")
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
fn marker(msg: &Message) -> Result<Decoded, DecodeError> {
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
}

fn ignored_kind(payload: &str) -> &'static str {
    if payload.contains("\"status\"") {
        "transaction marker"
    } else {
        "key record"
    }
}

fn key_of(table: &Table, row: &Row) -> Row {
    table.primary_key.iter().map(|&i| row[i].clone()).collect()
}

/// The numeric suffix of a binlog file name: `mysql-bin.000003` -> 3.
fn binlog_sequence(file: &str) -> Result<u64, DecodeError> {
    file.rsplit('.')
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            DecodeError(format!(
                "`source.file` `{file}` has no numeric binlog sequence"
            ))
        })
}

/// Decodes a row object. With `key_only`, only the primary-key columns are decoded and
/// required (other columns become NULL): a `before` image serves only to find the key, so a
/// value that no longer matches schema.sql there must not block a delete.
fn decode_row(
    table: &Table,
    raw: &RawValue,
    schema: Option<&RowSchema>,
    key_only: bool,
) -> Result<Row, DecodeError> {
    let fields: RawFields =
        serde_json::from_str(raw.get()).map_err(|e| DecodeError(format!("not an object: {e}")))?;
    let mut row: Vec<Option<Value>> = vec![None; table.columns.len()];
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
            None => {
                return err(format!(
                    "column `{name}` is not declared in schema.sql for {}",
                    table.qualified()
                ));
            }
        };
        let fs = schema.and_then(|s| {
            s.get(name.as_ref())
                .or_else(|| s.get(name.to_ascii_lowercase().as_str()))
        });
        let col = &table.columns[idx];
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
            None => err(format!("column `{}` is missing", table.columns[i].name)),
        })
        .collect()
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

/// Big-endian two's-complement bytes to an integer.
fn twos_complement(bytes: &[u8]) -> Option<i128> {
    if bytes.is_empty() || bytes.len() > 16 {
        return None;
    }
    let mut v: i128 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
    for b in bytes {
        v = (v << 8) | *b as i128;
    }
    Some(v)
}

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
        ColumnType::Int { .. } => {
            if logical == Some("org.apache.kafka.connect.data.Decimal") {
                // bigint.unsigned.handling.mode=precise
                let d = precise_decimal(raw, fs)?;
                return match d.rescale(0).and_then(|d| i64::try_from(d.mantissa).ok()) {
                    Some(i) => Ok(Value::Int(i)),
                    None => err(format!("{d} does not fit a signed 64-bit integer")),
                };
            }
            if raw == "true" || raw == "false" {
                return Ok(Value::Int((raw == "true") as i64));
            }
            Ok(Value::Int(json_int(raw)?))
        }
        ColumnType::Decimal { precision, scale } => {
            let d = if let Some(s) = json_str(raw)? {
                let precise = fs.is_some_and(|f| f.ty == "bytes")
                    || logical == Some("org.apache.kafka.connect.data.Decimal");
                if precise {
                    precise_decimal(raw, fs)?
                } else {
                    match Decimal::parse(&s) {
                        Some(d) => d,
                        None if fs.is_none() => {
                            return err(format!(
                                "`{}` is not a decimal string; if it is a precise decimal \
                                 (decimal.handling.mode=precise, base64), its scale is only in the \
                                 schema: enable schemas (value.converter.schemas.enable=true) or use \
                                 decimal.handling.mode=string",
                                clip(&s)
                            ));
                        }
                        None => return err(format!("`{}` is not a decimal", clip(&s))),
                    }
                }
            } else if raw.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
                // decimal.handling.mode=double: exact only while the digits fit a double.
                if *precision > 15 {
                    return err(format!(
                        "DECIMAL({precision},{scale}) sent as a JSON number \
                         (decimal.handling.mode=double) cannot be exact beyond 15 digits: \
                         use decimal.handling.mode=string or precise"
                    ));
                }
                match Decimal::parse(raw) {
                    Some(d) => d,
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
            let limit = 10i128.pow(*precision as u32);
            if exact.mantissa.unsigned_abs() >= limit as u128 {
                return err(format!(
                    "{d} is out of range for DECIMAL({precision},{scale})"
                ));
            }
            Ok(Value::Dec(exact))
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
        ColumnType::Bytes => match json_str(raw)? {
            Some(s) => base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map(Value::Bytes)
                .map_err(|e| DecodeError(format!("bad base64: {e}"))),
            None => err(format!("expected base64 bytes, got {}", kind(raw))),
        },
    }
}

fn precise_decimal(raw: &str, fs: Option<&FieldSchema>) -> Result<Decimal, DecodeError> {
    let scale = match fs.and_then(|f| f.scale) {
        Some(s) => s,
        None => return err("precise decimal without `parameters.scale` in its schema"),
    };
    let s = match json_str(raw)? {
        Some(s) => s,
        None => return err(format!("expected base64 bytes, got {}", kind(raw))),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .map_err(|e| DecodeError(format!("bad base64 in precise decimal: {e}")))?;
    let m = twos_complement(&bytes).ok_or_else(|| {
        DecodeError(format!(
            "precise decimal of {} bytes is out of range",
            bytes.len()
        ))
    })?;
    Ok(Decimal::new(m, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twos_complement_decodes_negative_and_positive() {
        assert_eq!(twos_complement(&[0x04, 0xD2]), Some(1234));
        assert_eq!(twos_complement(&[0xFB, 0x2E]), Some(-1234));
        assert_eq!(twos_complement(&[0x00]), Some(0));
        assert_eq!(twos_complement(&[0xFF]), Some(-1));
        assert_eq!(twos_complement(&[]), None);
    }

    #[test]
    fn binlog_sequence_parses_suffix() {
        assert_eq!(binlog_sequence("mysql-bin.000003").unwrap(), 3);
        assert!(binlog_sequence("nofile").is_err());
    }
}
