//! Declared source tables: `dataflows/schema.sql`, MySQL DDL parsed with `sqlparser`.
//!
//! Contract: every change event is checked against the table declared here (column names,
//! types, NULL/NOT NULL, primary key). A mysqldump-style file is accepted (see
//! [`Catalog::parse`]); other statements, and column types outside the supported list, are
//! refused with file:line:column.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use sqlparser::ast::{
    CharacterLength, ColumnOption, CreateTableOptions, DataType, EnumMember, ExactNumberInfo,
    ObjectName, ObjectNamePart, Spanned, Statement, TableConstraint, Use,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Span;

/// Index of a table in the [`Catalog`].
pub type TableId = usize;

/// A column type of a declared table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// Any MySQL integer type whose values fit a signed 64-bit integer (`TINYINT` ..
    /// `BIGINT`, `INT UNSIGNED` and smaller unsigned types, `BOOL`/`BOOLEAN`/`TINYINT(1)`).
    Int {
        /// Declared `UNSIGNED`.
        unsigned: bool,
    },
    /// `BIGINT UNSIGNED` and `SERIAL`: 0..=18446744073709551615, carried as exact decimals of
    /// scale 0 (one column, one type: every value is a `Value::Dec` of scale 0, expression
    /// type `DECIMAL(20,0)`).
    BigIntUnsigned,
    /// `DECIMAL(p, s)` / `NUMERIC` / `FIXED` / `DEC`, p up to 65. Values are exact with an
    /// `i128` mantissa: a value of more than 38 significant digits is refused (dead-lettered).
    Decimal {
        /// Total digits (1..=65).
        precision: u8,
        /// Digits after the point (0..=30).
        scale: u8,
        /// Declared `UNSIGNED` (negative values are refused).
        unsigned: bool,
    },
    /// `FLOAT`/`DOUBLE`/`REAL`/`DOUBLE PRECISION`: approximate, carried as a finite double.
    Double {
        /// `FLOAT`: single precision; the value is that single-precision number as a double
        /// (what MySQL computes with; a view shows it with single-precision digits).
        single: bool,
    },
    /// `BIT(n)`, n in 1..=64: an unsigned integer (`Value::Int`, or for `BIT(64)` a decimal of
    /// scale 0 like `BIGINT UNSIGNED`).
    Bit {
        /// Declared width in bits.
        width: u8,
    },
    /// `CHAR`/`VARCHAR`/`TEXT` (also TINY/MEDIUM/LONG), with an optional maximum length in
    /// characters.
    Text {
        /// Declared maximum length in characters.
        max_chars: Option<u64>,
    },
    /// `JSON`: the document as text (Debezium `io.debezium.data.Json`).
    Json,
    /// `ENUM('a', ..)`; values are the member strings.
    Enum(Vec<String>),
    /// `SET('a', ..)`; values are comma-joined member strings (`"a,c"`, or `""`).
    Set(Vec<String>),
    /// `DATE`.
    Date,
    /// `DATETIME(p)`.
    DateTime {
        /// Fractional-second digits (0..=6).
        precision: u8,
    },
    /// `TIMESTAMP(p)` (stored as UTC).
    Timestamp {
        /// Fractional-second digits (0..=6).
        precision: u8,
    },
    /// `TIME(p)`: a signed duration, -838:59:59..=838:59:59.
    Time {
        /// Fractional-second digits (0..=6).
        precision: u8,
    },
    /// `YEAR`: an integer.
    Year,
    /// `BINARY`/`VARBINARY`/`BLOB` (also TINY/MEDIUM/LONG).
    Bytes,
    /// Spatial types (`GEOMETRY`, `POINT`, `LINESTRING`, `POLYGON`, `MULTI*`,
    /// `GEOMETRYCOLLECTION`): opaque bytes, the WKB of Debezium's geometry struct.
    Geometry,
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Int { unsigned: false } => f.write_str("integer"),
            ColumnType::Int { unsigned: true } => f.write_str("unsigned integer"),
            ColumnType::BigIntUnsigned => f.write_str("BIGINT UNSIGNED"),
            ColumnType::Decimal {
                precision,
                scale,
                unsigned,
            } => {
                write!(f, "DECIMAL({precision},{scale})")?;
                if *unsigned {
                    f.write_str(" UNSIGNED")?;
                }
                Ok(())
            }
            ColumnType::Double { single: true } => f.write_str("FLOAT"),
            ColumnType::Double { single: false } => f.write_str("DOUBLE"),
            ColumnType::Bit { width } => write!(f, "BIT({width})"),
            ColumnType::Text { max_chars: Some(n) } => write!(f, "VARCHAR({n})"),
            ColumnType::Text { max_chars: None } => f.write_str("TEXT"),
            ColumnType::Json => f.write_str("JSON"),
            ColumnType::Enum(v) => write!(f, "ENUM('{}')", v.join("','")),
            ColumnType::Set(v) => write!(f, "SET('{}')", v.join("','")),
            ColumnType::Date => f.write_str("DATE"),
            ColumnType::DateTime { precision } => write!(f, "DATETIME({precision})"),
            ColumnType::Timestamp { precision } => write!(f, "TIMESTAMP({precision})"),
            ColumnType::Time { precision } => write!(f, "TIME({precision})"),
            ColumnType::Year => f.write_str("YEAR"),
            ColumnType::Bytes => f.write_str("VARBINARY"),
            ColumnType::Geometry => f.write_str("GEOMETRY"),
        }
    }
}

/// A declared column.
#[derive(Clone, Debug)]
pub struct Column {
    /// Column name as declared.
    pub name: String,
    /// Its type.
    pub ty: ColumnType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The column's own `COLLATE` (lower case), if declared; see [`Table::collation`] for the
    /// effective one.
    pub collation: Option<String>,
}

/// A declared table.
#[derive(Clone, Debug)]
pub struct Table {
    /// Database (schema) name.
    pub db: String,
    /// Table name.
    pub name: String,
    /// Columns in declaration order.
    pub columns: Vec<Column>,
    /// Indices of the primary-key columns.
    pub primary_key: Vec<usize>,
    /// The table's default collation (`COLLATE=...` table option, lower case), if declared.
    pub default_collation: Option<String>,
    /// The table's default character set (`[DEFAULT] CHARSET=...`, lower case), if declared.
    pub default_charset: Option<String>,
    by_name: HashMap<String, usize>,
}

impl Table {
    /// `db.table`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }

    /// Index of a column, case-insensitively (as MySQL resolves column names).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// The collation of column `i`: its own `COLLATE`, else the table's default (`None` when
    /// neither is declared: the server default applies).
    pub fn collation(&self, i: usize) -> Option<&str> {
        self.columns[i]
            .collation
            .as_deref()
            .or(self.default_collation.as_deref())
    }
}

/// All declared tables.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Tables in declaration order; a [`TableId`] indexes this.
    pub tables: Vec<Table>,
    by_name: HashMap<(String, String), TableId>,
}

impl Catalog {
    /// Looks a table up by database and name (case-insensitively).
    pub fn lookup(&self, db: &str, table: &str) -> Option<TableId> {
        self.by_name
            .get(&(db.to_ascii_lowercase(), table.to_ascii_lowercase()))
            .copied()
    }

    /// The names of all tables, for error messages.
    pub fn names(&self) -> String {
        self.tables
            .iter()
            .map(Table::qualified)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Reads and parses a schema file.
    pub fn load(path: &Path) -> Result<Catalog, SqlError> {
        let text = std::fs::read_to_string(path).map_err(|e| SqlError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            message: format!("cannot read: {e}"),
        })?;
        Catalog::parse(&path.display().to_string(), &text)
    }

    /// Parses schema DDL; `file` names the source in errors.
    ///
    /// Accepted: `CREATE DATABASE|SCHEMA [IF NOT EXISTS]`, `USE db` (then unqualified table
    /// names belong to `db`), `CREATE TABLE [IF NOT EXISTS]` with column options (`NULL`,
    /// `NOT NULL`, `PRIMARY KEY`, `DEFAULT`, `AUTO_INCREMENT`, `COMMENT`, `CHARACTER SET`,
    /// `COLLATE`, `ON UPDATE`, `UNIQUE`), table constraints (`PRIMARY KEY`, `KEY`/`INDEX`,
    /// `UNIQUE KEY`, `FOREIGN KEY`, `CHECK`) and table options (`ENGINE`, `DEFAULT CHARSET`,
    /// `COLLATE`, `COMMENT`, ..). Ignored: `DROP TABLE`/`DROP DATABASE`, `SET ...` (mysqldump's
    /// `SET NAMES`, `SET FOREIGN_KEY_CHECKS=0`), `LOCK`/`UNLOCK TABLES`.
    pub fn parse(file: &str, text: &str) -> Result<Catalog, SqlError> {
        let err = |span: Span, message: String| SqlError::at(file, span, message);
        let text = blank_real_precision(text);
        let statements = Parser::parse_sql(&MySqlDialect {}, &text)
            .map_err(|e| SqlError::from_parser(file, e))?;
        let mut catalog = Catalog::default();
        let mut databases: Vec<String> = Vec::new();
        let mut current_db: Option<String> = None;
        for st in statements {
            match st {
                Statement::CreateDatabase { ref db_name, .. } => {
                    databases.push(object_parts(db_name).join(".").to_ascii_lowercase());
                }
                Statement::Use(ref u) => {
                    let name = match u {
                        Use::Object(n) | Use::Database(n) | Use::Schema(n) => object_parts(n),
                        _ => {
                            return Err(err(st.span(), format!("unsupported `{u}`: use `USE db`")));
                        }
                    };
                    let db = name.join(".");
                    if !databases.contains(&db.to_ascii_lowercase()) {
                        // mysqldump writes `CREATE DATABASE` before `USE`, but a schema of one
                        // database may well start with `USE db`: that declares it.
                        databases.push(db.to_ascii_lowercase());
                    }
                    current_db = Some(db);
                }
                Statement::Drop { .. } | Statement::Set(_) => {}
                Statement::LockTables { .. } | Statement::UnlockTables => {}
                Statement::CreateTable(ref ct) => {
                    let parts = object_parts(&ct.name);
                    let (db, name) = match (parts.as_slice(), &current_db) {
                        ([db, name], _) => (db.clone(), name.clone()),
                        ([name], Some(db)) => (db.clone(), name.clone()),
                        _ => {
                            return Err(err(
                                ct.name.span(),
                                format!(
                                    "table `{}` must be qualified as db.table (or follow `USE db;`)",
                                    parts.join(".")
                                ),
                            ));
                        }
                    };
                    if !databases.contains(&db.to_ascii_lowercase()) {
                        return Err(err(
                            ct.name.span(),
                            format!(
                                "database `{db}` is not declared: add `CREATE DATABASE {db};` first"
                            ),
                        ));
                    }
                    let mut columns = Vec::new();
                    let mut primary_key = Vec::new();
                    let mut by_name = HashMap::new();
                    for (i, cd) in ct.columns.iter().enumerate() {
                        let (ty, mut nullable) = column_type(&cd.data_type).map_err(|m| {
                            err(cd.span(), format!("column `{}`: {m}", cd.name.value))
                        })?;
                        let mut collation = None;
                        for opt in &cd.options {
                            match &opt.option {
                                ColumnOption::Null => nullable = true,
                                ColumnOption::NotNull => nullable = false,
                                ColumnOption::PrimaryKey(_) => {
                                    nullable = false;
                                    primary_key.push(i);
                                }
                                ColumnOption::Collation(c) => {
                                    collation = Some(object_parts(c).join(".").to_ascii_lowercase())
                                }
                                _ => {}
                            }
                        }
                        if by_name
                            .insert(cd.name.value.to_ascii_lowercase(), i)
                            .is_some()
                        {
                            return Err(err(
                                cd.span(),
                                format!("duplicate column `{}`", cd.name.value),
                            ));
                        }
                        columns.push(Column {
                            name: cd.name.value.clone(),
                            ty,
                            nullable,
                            collation,
                        });
                    }
                    for c in &ct.constraints {
                        if let TableConstraint::PrimaryKey(pk) = c {
                            for ic in &pk.columns {
                                let name = match &ic.column.expr {
                                    sqlparser::ast::Expr::Identifier(id) => id.value.clone(),
                                    other => other.to_string(),
                                };
                                let idx = by_name
                                    .get(&name.to_ascii_lowercase())
                                    .copied()
                                    .ok_or_else(|| {
                                        err(
                                            c.span(),
                                            format!("primary key names unknown column `{name}`"),
                                        )
                                    })?;
                                columns[idx].nullable = false;
                                primary_key.push(idx);
                            }
                        }
                    }
                    if primary_key.is_empty() {
                        return Err(err(
                            ct.name.span(),
                            format!(
                                "table `{db}.{name}` has no PRIMARY KEY: change events need one to identify rows"
                            ),
                        ));
                    }
                    let key = (db.to_ascii_lowercase(), name.to_ascii_lowercase());
                    if catalog.by_name.contains_key(&key) {
                        return Err(err(
                            ct.name.span(),
                            format!("table `{db}.{name}` declared twice"),
                        ));
                    }
                    let (default_charset, default_collation) = table_charset(&ct.table_options);
                    catalog.by_name.insert(key, catalog.tables.len());
                    catalog.tables.push(Table {
                        db,
                        name,
                        columns,
                        primary_key,
                        default_collation,
                        default_charset,
                        by_name,
                    });
                }
                other => {
                    return Err(err(
                        other.span(),
                        "only CREATE DATABASE, USE, CREATE TABLE (and the ignored DROP TABLE, SET, \
                         LOCK/UNLOCK TABLES of a mysqldump) are supported in schema.sql"
                            .into(),
                    ));
                }
            }
        }
        if catalog.tables.is_empty() {
            return Err(SqlError {
                file: file.into(),
                line: 1,
                column: 1,
                message: "no tables declared".into(),
            });
        }
        Ok(catalog)
    }
}

/// Two things MySQL accepts that `sqlparser`'s MySQL dialect does not, rewritten in place so
/// that every position of the file stays the same for error messages: `REAL(M,D)` (a DOUBLE
/// with a display width: the `(M,D)` is blanked out, it does not change the values), and a
/// double-quoted string after `COMMENT` or `DEFAULT` (MySQL's default SQL mode reads `"x"` as a
/// string; it becomes `'x'`). Other quoted text and comments are left alone.
fn blank_real_precision(text: &str) -> Cow<'_, str> {
    let b = text.as_bytes();
    let mut blank: Vec<(usize, usize)> = Vec::new();
    let mut requote: Vec<(usize, usize)> = Vec::new();
    let mut last_word = (0, 0);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                let word = &text[last_word.0..last_word.1];
                if q == b'"'
                    && i < b.len()
                    && (word.eq_ignore_ascii_case("comment")
                        || word.eq_ignore_ascii_case("default"))
                    && text[last_word.1..start].trim().is_empty()
                    && !text[start + 1..i].contains(['\'', '\\'])
                {
                    requote.push((start, i));
                }
                i += 1;
            }
            b'#' => i = text[i..].find('\n').map_or(b.len(), |n| i + n),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = text[i..].find('\n').map_or(b.len(), |n| i + n)
            }
            // MySQL's executable comments `/*!40101 ... */` are left to the parser.
            b'/' if b.get(i + 1) == Some(&b'*') && b.get(i + 2) != Some(&b'!') => {
                i = text[i + 2..].find("*/").map_or(b.len(), |n| i + n + 4)
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                last_word = (start, i);
                if text[start..i].eq_ignore_ascii_case("real") {
                    let mut j = i;
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if b.get(j) == Some(&b'(')
                        && let Some(n) = text[j..].find(')')
                        && text[j + 1..j + n]
                            .bytes()
                            .all(|c| c.is_ascii_digit() || c == b',' || c == b' ')
                    {
                        blank.push((j, j + n + 1));
                        i = j + n + 1;
                    }
                }
            }
            _ => i += 1,
        }
    }
    if blank.is_empty() && requote.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = text.as_bytes().to_vec();
    for (a, z) in blank {
        out[a..z].fill(b' ');
    }
    for (a, z) in requote {
        out[a] = b'\'';
        out[z] = b'\'';
    }
    Cow::Owned(String::from_utf8(out).expect("only ASCII was replaced"))
}

/// `[DEFAULT] CHARSET|CHARACTER SET = x` and `[DEFAULT] COLLATE = y` of a table's options.
fn table_charset(options: &CreateTableOptions) -> (Option<String>, Option<String>) {
    let list = match options {
        CreateTableOptions::Plain(l)
        | CreateTableOptions::With(l)
        | CreateTableOptions::Options(l)
        | CreateTableOptions::TableProperties(l) => l.as_slice(),
        CreateTableOptions::None => &[],
    };
    let (mut charset, mut collation) = (None, None);
    for o in list {
        let text = o.to_string();
        let upper = text.to_ascii_uppercase();
        let upper = upper.strip_prefix("DEFAULT ").unwrap_or(&upper);
        let value = || {
            text.rsplit(['=', ' '])
                .next()
                .map(|v| v.trim_matches(['\'', '"', '`']).to_ascii_lowercase())
        };
        if upper.starts_with("COLLATE") {
            collation = value();
        } else if upper.starts_with("CHARSET") || upper.starts_with("CHARACTER SET") {
            charset = value();
        }
    }
    (charset, collation)
}

/// The identifier parts of a name (`db.table` -> `["db", "table"]`).
pub fn object_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        })
        .collect()
}

const SUPPORTED_TYPES: &str = "supported: TINYINT/SMALLINT/MEDIUMINT/INT/BIGINT [UNSIGNED] \
[ZEROFILL], SERIAL, BOOL/BOOLEAN, BIT(n), DECIMAL/NUMERIC/FIXED(p,s) [UNSIGNED], FLOAT, \
DOUBLE/REAL/DOUBLE PRECISION, CHAR/VARCHAR/TINYTEXT/TEXT/MEDIUMTEXT/LONGTEXT, JSON, ENUM, SET, \
DATE, DATETIME(p), TIMESTAMP(p), TIME(p), YEAR, BINARY/VARBINARY/TINYBLOB/BLOB/MEDIUMBLOB/LONGBLOB, \
GEOMETRY/POINT/LINESTRING/POLYGON/MULTIPOINT/MULTILINESTRING/MULTIPOLYGON/GEOMETRYCOLLECTION";

/// The column type of a declared data type, and whether it is nullable by default (`SERIAL`
/// is `NOT NULL`).
fn column_type(dt: &DataType) -> Result<(ColumnType, bool), String> {
    use DataType as D;
    let decimal = |info: &ExactNumberInfo, unsigned: bool| -> Result<ColumnType, String> {
        let (precision, scale) = match info {
            ExactNumberInfo::None => (10, 0),
            ExactNumberInfo::Precision(p) => (*p, 0),
            ExactNumberInfo::PrecisionAndScale(p, s) => (
                *p,
                u64::try_from(*s).map_err(|_| format!("DECIMAL scale {s} is negative"))?,
            ),
        };
        if precision == 0 || precision > 65 || scale > precision || scale > 30 {
            return Err(format!(
                "DECIMAL({precision},{scale}) is out of range (precision 1..=65, scale 0..=min(30, precision))"
            ));
        }
        Ok(ColumnType::Decimal {
            precision: precision as u8,
            scale: scale as u8,
            unsigned,
        })
    };
    Ok((
        match dt {
            D::Zerofill(inner) => {
                // ZEROFILL changes only how MySQL pads the digits on display; it implies UNSIGNED.
                let (ty, nullable) = column_type(inner)?;
                let ty = match ty {
                    ColumnType::Int { .. } => ColumnType::Int { unsigned: true },
                    ColumnType::Decimal {
                        precision, scale, ..
                    } => ColumnType::Decimal {
                        precision,
                        scale,
                        unsigned: true,
                    },
                    other => other,
                };
                return Ok((ty, nullable));
            }
            D::TinyInt(_)
            | D::SmallInt(_)
            | D::MediumInt(_)
            | D::Int(_)
            | D::Integer(_)
            | D::BigInt(_) => ColumnType::Int { unsigned: false },
            D::Bool | D::Boolean => ColumnType::Int { unsigned: false },
            D::TinyIntUnsigned(_)
            | D::SmallIntUnsigned(_)
            | D::MediumIntUnsigned(_)
            | D::IntUnsigned(_)
            | D::IntegerUnsigned(_) => ColumnType::Int { unsigned: true },
            D::BigIntUnsigned(_) => ColumnType::BigIntUnsigned,
            D::Decimal(info) | D::Numeric(info) | D::Dec(info) => decimal(info, false)?,
            D::DecimalUnsigned(info) | D::DecUnsigned(info) => decimal(info, true)?,
            D::Float(info) | D::FloatUnsigned(info) => match info {
                // FLOAT(p) with p > 24 is a DOUBLE in MySQL.
                ExactNumberInfo::Precision(p) if *p > 24 => ColumnType::Double { single: false },
                _ => ColumnType::Double { single: true },
            },
            D::Double(_)
            | D::DoubleUnsigned(_)
            | D::DoublePrecision
            | D::DoublePrecisionUnsigned
            | D::Real
            | D::RealUnsigned
            | D::Float8
            | D::Float64 => ColumnType::Double { single: false },
            D::Bit(width) => match width.unwrap_or(1) {
                w @ 1..=64 => ColumnType::Bit { width: w as u8 },
                w => return Err(format!("BIT({w}) is out of range 1..=64")),
            },
            D::Char(len) | D::Varchar(len) | D::Character(len) | D::CharacterVarying(len) => {
                ColumnType::Text {
                    max_chars: match len {
                        Some(CharacterLength::IntegerLength { length, .. }) => Some(*length),
                        _ => None,
                    },
                }
            }
            D::Text | D::TinyText | D::MediumText | D::LongText => {
                ColumnType::Text { max_chars: None }
            }
            D::Collate(inner, _) => return column_type(inner),
            D::JSON => ColumnType::Json,
            D::Enum(members, _) => ColumnType::Enum(
                members
                    .iter()
                    .map(|m| match m {
                        EnumMember::Name(n) | EnumMember::NamedValue(n, _) => n.clone(),
                    })
                    .collect(),
            ),
            D::Set(members) => {
                if let Some(m) = members.iter().find(|m| m.contains(',')) {
                    return Err(format!("SET member `{m}` contains a comma"));
                }
                ColumnType::Set(members.clone())
            }
            D::Date => ColumnType::Date,
            D::Datetime(p) => ColumnType::DateTime {
                precision: fsp(*p)?,
            },
            D::Timestamp(p, _) => ColumnType::Timestamp {
                precision: fsp(*p)?,
            },
            D::Time(p, _) => ColumnType::Time {
                precision: fsp(*p)?,
            },
            D::Binary(_)
            | D::Varbinary(_)
            | D::Blob(_)
            | D::TinyBlob
            | D::MediumBlob
            | D::LongBlob => ColumnType::Bytes,
            D::Custom(name, modifiers) => {
                let n = object_parts(name).join(".").to_ascii_uppercase();
                match n.as_str() {
                    "SERIAL" if modifiers.is_empty() => {
                        return Ok((ColumnType::BigIntUnsigned, false));
                    }
                    "YEAR" => ColumnType::Year,
                    "FIXED" => {
                        let n: Vec<u64> = modifiers
                            .iter()
                            .map(|m| m.to_string().parse().map_err(|_| format!("FIXED({m})?")))
                            .collect::<Result<_, _>>()?;
                        let info = match n.as_slice() {
                            [] => ExactNumberInfo::None,
                            [p] => ExactNumberInfo::Precision(*p),
                            [p, s] => ExactNumberInfo::PrecisionAndScale(*p, *s as i64),
                            _ => {
                                return Err(format!(
                                    "type {dt} is not supported ({SUPPORTED_TYPES})"
                                ));
                            }
                        };
                        decimal(&info, false)?
                    }
                    "GEOMETRY" | "POINT" | "LINESTRING" | "POLYGON" | "MULTIPOINT"
                    | "MULTILINESTRING" | "MULTIPOLYGON" | "GEOMETRYCOLLECTION"
                    | "GEOMCOLLECTION" => ColumnType::Geometry,
                    _ => return Err(format!("type {dt} is not supported ({SUPPORTED_TYPES})")),
                }
            }
            other => return Err(format!("type {other} is not supported ({SUPPORTED_TYPES})")),
        },
        true,
    ))
}

fn fsp(p: Option<u64>) -> Result<u8, String> {
    match p.unwrap_or(0) {
        p @ 0..=6 => Ok(p as u8),
        p => Err(format!(
            "fractional seconds precision {p} is out of range 0..=6"
        )),
    }
}

/// An error in a SQL file, with its position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.position_and_message())]
pub struct SqlError {
    /// The file.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
    /// What is wrong, and what is supported.
    pub message: String,
}

impl SqlError {
    /// `FILE:LINE:COLUMN: MESSAGE`, or `FILE: MESSAGE` where the position is unknown (a file
    /// that cannot be read, a directory without views).
    fn position_and_message(&self) -> String {
        match (self.line, self.column) {
            (0, _) => format!("{}: {}", self.file, self.message),
            (l, 0) => format!("{}:{l}: {}", self.file, self.message),
            (l, c) => format!("{}:{l}:{c}: {}", self.file, self.message),
        }
    }

    /// An error at the start of `span`.
    pub fn at(file: &str, span: Span, message: String) -> SqlError {
        SqlError {
            file: file.into(),
            line: span.start.line,
            column: span.start.column,
            message,
        }
    }

    /// Converts a parser error, lifting "at Line: L, Column: C" into the position.
    pub fn from_parser(file: &str, e: sqlparser::parser::ParserError) -> SqlError {
        let text = e.to_string();
        let (mut line, mut column) = (0, 0);
        if let Some(i) = text.find("Line: ") {
            let rest = &text[i + 6..];
            line = rest
                .split(',')
                .next()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            if let Some(j) = rest.find("Column: ") {
                column = rest[j + 8..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit())
                    .collect::<String>()
                    .parse()
                    .unwrap_or(0);
            }
        }
        SqlError {
            file: file.into(),
            line,
            column,
            message: format!("syntax error: {text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_types() -> Catalog {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/debezium/all_types.sql"
        );
        Catalog::load(Path::new(path)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn mysqldump_schema_with_every_type_parses() {
        let c = all_types();
        let t = &c.tables[c.lookup("shop", "all_types").unwrap()];
        let ty = |n: &str| t.columns[t.column(n).unwrap()].ty.clone();
        assert_eq!(ty("id"), ColumnType::BigIntUnsigned);
        assert_eq!(ty("flag"), ColumnType::Int { unsigned: false });
        assert_eq!(ty("small_u"), ColumnType::Int { unsigned: true });
        assert_eq!(ty("bit1"), ColumnType::Bit { width: 1 });
        assert_eq!(ty("bits"), ColumnType::Bit { width: 12 });
        assert_eq!(
            ty("wide"),
            ColumnType::Decimal {
                precision: 65,
                scale: 30,
                unsigned: false
            }
        );
        assert_eq!(
            ty("amount_u"),
            ColumnType::Decimal {
                precision: 12,
                scale: 4,
                unsigned: true
            }
        );
        assert_eq!(
            ty("fixed_pt"),
            ColumnType::Decimal {
                precision: 6,
                scale: 3,
                unsigned: false
            }
        );
        assert_eq!(ty("ratio"), ColumnType::Double { single: true });
        assert_eq!(ty("lat"), ColumnType::Double { single: false });
        assert_eq!(ty("dp"), ColumnType::Double { single: false });
        assert_eq!(ty("body_l"), ColumnType::Text { max_chars: None });
        assert_eq!(ty("doc"), ColumnType::Json);
        assert_eq!(
            ty("tags"),
            ColumnType::Set(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(ty("t6"), ColumnType::Time { precision: 6 });
        assert_eq!(ty("y"), ColumnType::Year);
        assert_eq!(ty("blob_l"), ColumnType::Bytes);
        for g in ["geo", "pt", "line", "poly", "mpt", "mline", "mpoly", "gc"] {
            assert_eq!(ty(g), ColumnType::Geometry, "{g}");
        }
        assert_eq!(t.primary_key, vec![0]);
        assert!(!t.columns[0].nullable);
        assert_eq!(t.default_collation.as_deref(), Some("utf8mb4_unicode_ci"));
        assert_eq!(t.default_charset.as_deref(), Some("utf8mb4"));
        let code = t.column("code").unwrap();
        assert_eq!(t.collation(code), Some("ascii_bin"));
        assert_eq!(t.collation(t.column("title").unwrap()), Some("utf8mb4_bin"));
        assert_eq!(
            t.collation(t.column("body").unwrap()),
            Some("utf8mb4_unicode_ci")
        );
        let s = &c.tables[c.lookup("shop", "serials").unwrap()];
        assert_eq!(s.columns[0].ty, ColumnType::BigIntUnsigned);
        assert!(!s.columns[0].nullable, "SERIAL is NOT NULL");
        assert_eq!(s.default_charset.as_deref(), Some("latin1"));
    }

    #[test]
    fn use_db_qualifies_tables_and_unsupported_types_are_refused_with_position() {
        let c = Catalog::parse("s.sql", "USE a;\nCREATE TABLE t (id INT PRIMARY KEY);").unwrap();
        assert!(c.lookup("a", "t").is_some());
        let e = Catalog::parse(
            "s.sql",
            "CREATE DATABASE a;\nCREATE TABLE a.t (\n  id INT PRIMARY KEY,\n  v INTERVAL\n);",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (4, 3), "{e}");
        assert!(e.message.contains("supported: TINYINT"), "{e}");
        let e =
            Catalog::parse("s.sql", "CREATE DATABASE a;\nINSERT INTO a.t VALUES (1);").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = Catalog::parse("s.sql", "CREATE TABLE t (id INT PRIMARY KEY);").unwrap_err();
        assert!(e.message.contains("USE db"), "{e}");
        let e = Catalog::parse(
            "s.sql",
            "CREATE DATABASE a; CREATE TABLE a.t (id INT PRIMARY KEY, b BIT(65));",
        )
        .unwrap_err();
        assert!(e.message.contains("BIT(65)"), "{e}");
    }
}
