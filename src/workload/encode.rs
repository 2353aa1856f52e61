//! Writes row changes as Debezium MySQL connector messages (JsonConverter), the inverse of
//! [`crate::decode::debezium`]: schemas on or off; DECIMAL in string, precise or double mode;
//! DATE as epoch days; DATETIME(0..3) as `io.debezium.time.Timestamp` (ms), DATETIME(4..6) as
//! `MicroTimestamp` (µs); TIMESTAMP as a `ZonedTimestamp` string; ENUM as its string.

use std::fmt::Write;

use base64::Engine as _;

use crate::decode::Row;
use crate::schema::{Catalog, ColumnType, Table, TableId};
use crate::value::{Decimal, MICROS_PER_DAY, Value, write_json_str};

/// How DECIMAL values are encoded (Debezium `decimal.handling.mode`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DecimalMode {
    /// A JSON string with the exact digits.
    String,
    /// Base64 of the big-endian two's-complement unscaled value; scale in the schema.
    Precise,
    /// A JSON number (a double).
    Double,
}

/// Debezium op codes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `c`: insert.
    Create,
    /// `r`: snapshot read.
    Read,
    /// `u`: update.
    Update,
    /// `d`: delete.
    Delete,
}

impl Op {
    fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Read => "r",
            Op::Update => "u",
            Op::Delete => "d",
        }
    }
}

/// One row change with its source position and commit time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowChange {
    /// Table.
    pub table: TableId,
    /// Op.
    pub op: Op,
    /// Row before (updates, deletes).
    pub before: Option<Row>,
    /// Row after (inserts, reads, updates).
    pub after: Option<Row>,
    /// Commit time, ms.
    pub ts_ms: u64,
    /// Binlog file sequence.
    pub file: u64,
    /// Binlog position.
    pub pos: u64,
    /// Row within the event.
    pub row: u32,
}

/// Encodes [`RowChange`]s as Debezium JSON.
pub struct Encoder<'a> {
    catalog: &'a Catalog,
    schemas: bool,
    decimal: DecimalMode,
    schema_json: Vec<Option<String>>,
}

impl<'a> Encoder<'a> {
    /// An encoder for the tables of `catalog`.
    pub fn new(catalog: &'a Catalog, schemas: bool, decimal: DecimalMode) -> Self {
        Encoder {
            catalog,
            schemas,
            decimal,
            schema_json: vec![None; catalog.tables.len()],
        }
    }

    /// Appends one message (no newline) to `out`.
    pub fn encode(&mut self, c: &RowChange, out: &mut String) {
        self.encode_in(c, None, out)
    }

    /// Encodes one change that belongs to transaction `tx` = `(id, total_order)`: Debezium's
    /// `transaction` block is filled in.
    pub fn encode_in(&mut self, c: &RowChange, tx: Option<(&str, u64)>, out: &mut String) {
        let table = &self.catalog.tables[c.table];
        if self.schemas {
            if self.schema_json[c.table].is_none() {
                self.schema_json[c.table] = Some(envelope_schema(table, self.decimal));
            }
            out.push_str("{\"schema\":");
            out.push_str(self.schema_json[c.table].as_deref().expect("built above"));
            out.push_str(",\"payload\":");
        }
        out.push_str("{\"before\":");
        self.row(table, c.before.as_ref(), out);
        out.push_str(",\"after\":");
        self.row(table, c.after.as_ref(), out);
        let _ = write!(
            out,
            ",\"source\":{{\"version\":\"2.7.3.Final\",\"connector\":\"mysql\",\"name\":\"shop\",\"ts_ms\":{},\
             \"snapshot\":\"{}\",\"db\":",
            c.ts_ms,
            if c.op == Op::Read { "true" } else { "false" }
        );
        write_json_str(&table.db, out);
        out.push_str(",\"sequence\":null,\"table\":");
        write_json_str(&table.name, out);
        let _ = write!(
            out,
            ",\"server_id\":1,\"gtid\":null,\"file\":\"mysql-bin.{:06}\",\"pos\":{},\"row\":{},\"thread\":7,\"query\":null}},\
             \"transaction\":",
            c.file, c.pos, c.row,
        );
        match tx {
            None => out.push_str("null"),
            Some((id, order)) => {
                out.push_str("{\"id\":");
                write_json_str(id, out);
                let _ = write!(
                    out,
                    ",\"total_order\":{order},\"data_collection_order\":{order}}}"
                );
            }
        }
        let _ = write!(
            out,
            ",\"op\":\"{}\",\"ts_ms\":{}}}",
            c.op.code(),
            c.ts_ms + 250
        );
        if self.schemas {
            out.push('}');
        }
    }

    fn row(&self, table: &Table, row: Option<&Row>, out: &mut String) {
        let columns = table.columns.iter().map(|c| (c.name.as_str(), &c.ty));
        encode_row(columns, row, self.decimal, out);
    }
}

/// Writes a row image (`before` or `after`) as Debezium encodes it: an object of the columns'
/// values, or `null` for no row.
pub(crate) fn encode_row<'a>(
    columns: impl IntoIterator<Item = (&'a str, &'a ColumnType)>,
    row: Option<&'a Row>,
    decimal: DecimalMode,
    out: &mut String,
) {
    match row {
        Some(row) => encode_fields(
            columns.into_iter().zip(row).map(|((n, t), v)| (n, t, v)),
            decimal,
            out,
        ),
        None => out.push_str("null"),
    }
}

/// Writes a JSON object of named column values, each as Debezium encodes it: a row's `before`
/// or `after`, or a message key.
pub(crate) fn encode_fields<'a, V: std::borrow::Borrow<Value>>(
    fields: impl IntoIterator<Item = (&'a str, &'a ColumnType, V)>,
    decimal: DecimalMode,
    out: &mut String,
) {
    out.push('{');
    for (i, (name, ty, v)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(name, out);
        out.push(':');
        encode_value(ty, v.borrow(), decimal, out);
    }
    out.push('}');
}

/// Writes one column value as Debezium encodes it (see the module doc).
pub(crate) fn encode_value(ty: &ColumnType, v: &Value, decimal: DecimalMode, out: &mut String) {
    match (ty, v) {
        (_, Value::Null) => out.push_str("null"),
        (ColumnType::Decimal { scale, .. }, Value::Dec(d)) => {
            let d = d.rescale(*scale).unwrap_or(*d);
            match decimal {
                DecimalMode::String => write_json_str(&d.to_string(), out),
                DecimalMode::Double => {
                    let f: f64 = d.to_string().parse().unwrap_or(f64::NAN);
                    let _ = write!(out, "{f:?}");
                }
                DecimalMode::Precise => {
                    write_json_str(
                        &base64::engine::general_purpose::STANDARD.encode(d.to_be_bytes()),
                        out,
                    );
                }
            }
        }
        (ColumnType::DateTime { precision }, Value::DateTime(us)) => {
            let _ = if *precision <= 3 {
                write!(out, "{}", us.div_euclid(1000))
            } else {
                write!(out, "{us}")
            };
        }
        (ColumnType::Timestamp { .. }, Value::DateTime(us)) => {
            let s = Value::DateTime(*us).to_string().replacen(' ', "T", 1) + "Z";
            write_json_str(&s, out);
        }
        (ColumnType::Date, Value::Date(d)) => {
            let _ = write!(out, "{d}");
        }
        (ColumnType::Date, Value::DateTime(us)) => {
            let _ = write!(out, "{}", us.div_euclid(MICROS_PER_DAY));
        }
        (ColumnType::Bytes, Value::Bytes(b)) => {
            write_json_str(&base64::engine::general_purpose::STANDARD.encode(b), out)
        }
        (ColumnType::Bytes, Value::Text(t)) => write_json_str(
            &base64::engine::general_purpose::STANDARD.encode(t.as_bytes()),
            out,
        ),
        (ColumnType::BigIntUnsigned, Value::Dec(d)) => {
            let u = d
                .mantissa_i128()
                .and_then(|m| u64::try_from(m).ok())
                .unwrap_or(0);
            if decimal == DecimalMode::Precise {
                write_json_str(
                    &base64::engine::general_purpose::STANDARD
                        .encode(Decimal::new(u as i128, 0).to_be_bytes()),
                    out,
                );
            } else {
                // bigint.unsigned.handling.mode=long: Connect's int64 wraps above 2^63-1.
                let _ = write!(out, "{}", u as i64);
            }
        }
        (ColumnType::Bit { width: 1 }, Value::Int(i)) => {
            out.push_str(if *i != 0 { "true" } else { "false" })
        }
        (ColumnType::Bit { width }, v @ (Value::Int(_) | Value::Dec(_))) => {
            let u = v
                .as_decimal()
                .and_then(|d| d.mantissa_i128())
                .map_or(0, |m| m as u64);
            let n = (*width as usize).div_ceil(8);
            write_json_str(
                &base64::engine::general_purpose::STANDARD.encode(&u.to_le_bytes()[..n]),
                out,
            );
        }
        (ColumnType::Geometry, Value::Bytes(b)) => {
            out.push_str("{\"wkb\":");
            write_json_str(&base64::engine::general_purpose::STANDARD.encode(b), out);
            out.push_str(",\"srid\":null}");
        }
        (ColumnType::Time { .. }, Value::Time(us)) => {
            let _ = write!(out, "{us}");
        }
        (_, v) => v.write_json(out),
    }
}

pub(crate) fn field_schema(
    name: &str,
    ty: &ColumnType,
    optional: bool,
    decimal: DecimalMode,
) -> String {
    if *ty == ColumnType::Geometry {
        let mut s = format!(
            "{{\"type\":\"struct\",\"fields\":[{{\"type\":\"bytes\",\"optional\":false,\"field\":\"wkb\"}},\
             {{\"type\":\"int32\",\"optional\":true,\"field\":\"srid\"}}],\"optional\":{optional},\
             \"name\":\"io.debezium.data.geometry.Geometry\",\"version\":1,\
             \"doc\":\"Geometry\",\"field\":"
        );
        write_json_str(name, &mut s);
        s.push('}');
        return s;
    }
    let set_params = |m: &[String]| {
        let mut allowed = String::new();
        write_json_str(&m.join(","), &mut allowed);
        format!("{{\"allowed\":{allowed}}}")
    };
    let (t, logical, params) = match ty {
        ColumnType::Int { .. } => ("int64", None, None),
        ColumnType::Geometry => unreachable!("above"),
        ColumnType::BigIntUnsigned => match decimal {
            DecimalMode::Precise => (
                "bytes",
                Some("org.apache.kafka.connect.data.Decimal"),
                Some("{\"scale\":\"0\"}".to_string()),
            ),
            _ => ("int64", None, None),
        },
        ColumnType::Bit { width: 1 } => ("boolean", None, None),
        ColumnType::Bit { width } => (
            "bytes",
            Some("io.debezium.data.Bits"),
            Some(format!("{{\"length\":\"{width}\"}}")),
        ),
        ColumnType::Double { single: true } => ("float", None, None),
        ColumnType::Double { single: false } => ("double", None, None),
        ColumnType::Json => ("string", Some("io.debezium.data.Json"), None),
        ColumnType::Set(m) => (
            "string",
            Some("io.debezium.data.EnumSet"),
            Some(set_params(m)),
        ),
        ColumnType::Time { .. } => ("int64", Some("io.debezium.time.MicroTime"), None),
        ColumnType::Year => ("int32", Some("io.debezium.time.Year"), None),
        ColumnType::Decimal {
            precision, scale, ..
        } => match decimal {
            DecimalMode::String => ("string", None, None),
            DecimalMode::Double => ("double", None, None),
            DecimalMode::Precise => (
                "bytes",
                Some("org.apache.kafka.connect.data.Decimal"),
                Some(format!(
                    "{{\"scale\":\"{scale}\",\"connect.decimal.precision\":\"{precision}\"}}"
                )),
            ),
        },
        ColumnType::Text { .. } => ("string", None, None),
        ColumnType::Enum(m) => ("string", Some("io.debezium.data.Enum"), Some(set_params(m))),
        ColumnType::Date => ("int32", Some("io.debezium.time.Date"), None),
        ColumnType::DateTime { precision } if *precision <= 3 => {
            ("int64", Some("io.debezium.time.Timestamp"), None)
        }
        ColumnType::DateTime { .. } => ("int64", Some("io.debezium.time.MicroTimestamp"), None),
        ColumnType::Timestamp { .. } => ("string", Some("io.debezium.time.ZonedTimestamp"), None),
        ColumnType::Bytes => ("bytes", None, None),
    };
    let mut s = format!("{{\"type\":\"{t}\",\"optional\":{optional}");
    if let Some(l) = logical {
        let _ = write!(s, ",\"name\":\"{l}\",\"version\":1");
    }
    if let Some(p) = params {
        let _ = write!(s, ",\"parameters\":{p}");
    }
    s.push_str(",\"field\":");
    write_json_str(name, &mut s);
    s.push('}');
    s
}

fn envelope_schema(table: &Table, decimal: DecimalMode) -> String {
    let fields: Vec<String> = table
        .columns
        .iter()
        .map(|c| field_schema(&c.name, &c.ty, c.nullable, decimal))
        .collect();
    let value_name = format!("shop.{}.{}.Value", table.db, table.name);
    let row = |which: &str| {
        format!(
            "{{\"type\":\"struct\",\"fields\":[{}],\"optional\":true,\"name\":\"{value_name}\",\"field\":\"{which}\"}}",
            fields.join(",")
        )
    };
    format!(
        "{{\"type\":\"struct\",\"fields\":[{},{},{SOURCE_SCHEMA},{OP_FIELDS}],\"optional\":false,\"name\":\"shop.{}.{}.Envelope\",\"version\":2}}",
        row("before"),
        row("after"),
        table.db,
        table.name
    )
}

const SOURCE_SCHEMA: &str = "{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"version\"},\
{\"type\":\"string\",\"optional\":false,\"field\":\"connector\"},{\"type\":\"string\",\"optional\":false,\"field\":\"name\"},\
{\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"},{\"type\":\"string\",\"optional\":true,\"name\":\"io.debezium.data.Enum\",\
\"version\":1,\"parameters\":{\"allowed\":\"true,first,first_in_data_collection,last_in_data_collection,last,false,incremental\"},\
\"default\":\"false\",\"field\":\"snapshot\"},{\"type\":\"string\",\"optional\":false,\"field\":\"db\"},\
{\"type\":\"string\",\"optional\":true,\"field\":\"sequence\"},{\"type\":\"string\",\"optional\":true,\"field\":\"table\"},\
{\"type\":\"int64\",\"optional\":false,\"field\":\"server_id\"},{\"type\":\"string\",\"optional\":true,\"field\":\"gtid\"},\
{\"type\":\"string\",\"optional\":false,\"field\":\"file\"},{\"type\":\"int64\",\"optional\":false,\"field\":\"pos\"},\
{\"type\":\"int32\",\"optional\":false,\"field\":\"row\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"thread\"},\
{\"type\":\"string\",\"optional\":true,\"field\":\"query\"}],\"optional\":false,\"name\":\"io.debezium.connector.mysql.Source\",\"field\":\"source\"}";

const OP_FIELDS: &str = "{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"id\"},\
{\"type\":\"int64\",\"optional\":false,\"field\":\"total_order\"},{\"type\":\"int64\",\"optional\":false,\"field\":\"data_collection_order\"}],\
\"optional\":true,\"name\":\"event.block\",\"version\":1,\"field\":\"transaction\"},\
{\"type\":\"string\",\"optional\":false,\"field\":\"op\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"ts_ms\"}";

/// Encodes a Debezium transaction marker: BEGIN (`counts` empty) or END with the number of
/// events per data collection (`db.table`).
pub fn encode_marker(
    id: &str,
    ts_ms: u64,
    counts: &[(String, u64)],
    schemas: bool,
    out: &mut String,
) {
    if schemas {
        out.push_str(
            "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"status\"},\
             {\"type\":\"string\",\"optional\":false,\"field\":\"id\"},{\"type\":\"int64\",\"optional\":true,\"field\":\"event_count\"},\
             {\"type\":\"array\",\"items\":{\"type\":\"struct\",\"fields\":[{\"type\":\"string\",\"optional\":false,\"field\":\"data_collection\"},\
             {\"type\":\"int64\",\"optional\":false,\"field\":\"event_count\"}],\"optional\":false},\"optional\":true,\"field\":\"data_collections\"},\
             {\"type\":\"int64\",\"optional\":false,\"field\":\"ts_ms\"}],\"optional\":false,\
             \"name\":\"io.debezium.connector.common.TransactionMetadataValue\",\"version\":1},\"payload\":",
        );
    }
    out.push_str(if counts.is_empty() {
        "{\"status\":\"BEGIN\",\"id\":"
    } else {
        "{\"status\":\"END\",\"id\":"
    });
    write_json_str(id, out);
    if counts.is_empty() {
        out.push_str(",\"event_count\":null,\"data_collections\":null");
    } else {
        let total: u64 = counts.iter().map(|c| c.1).sum();
        let _ = write!(out, ",\"event_count\":{total},\"data_collections\":[");
        for (i, (c, n)) in counts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"data_collection\":");
            write_json_str(c, out);
            let _ = write!(out, ",\"event_count\":{n}}}");
        }
        out.push(']');
    }
    let _ = write!(out, ",\"ts_ms\":{ts_ms}}}");
    if schemas {
        out.push('}');
    }
}
