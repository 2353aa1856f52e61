//! Declared source tables: `dataflows/schema.sql`, MySQL DDL parsed with `sqlparser`.
//!
//! Contract: every change event is checked against the table declared here (column names,
//! types, NULL/NOT NULL, primary key). Statements outside `CREATE DATABASE` / `CREATE TABLE`,
//! and column types outside the supported list, are refused with file:line:column.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use sqlparser::ast::{
    CharacterLength, ColumnOption, DataType, EnumMember, ExactNumberInfo, ObjectName,
    ObjectNamePart, Spanned, Statement, TableConstraint,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Span;

/// Index of a table in the [`Catalog`].
pub type TableId = usize;

/// A column type of a declared table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// Any MySQL integer type (values must fit a signed 64-bit integer).
    Int {
        /// Declared `UNSIGNED`.
        unsigned: bool,
    },
    /// `DECIMAL(p, s)`.
    Decimal {
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// `CHAR`/`VARCHAR`/`TEXT`, with an optional maximum length in characters.
    Text {
        /// Declared maximum length in characters.
        max_chars: Option<u64>,
    },
    /// `ENUM('a', ..)`; values are the member strings.
    Enum(Vec<String>),
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
    /// `BINARY`/`VARBINARY`/`BLOB`.
    Bytes,
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Int { unsigned: false } => f.write_str("integer"),
            ColumnType::Int { unsigned: true } => f.write_str("unsigned integer"),
            ColumnType::Decimal { precision, scale } => write!(f, "DECIMAL({precision},{scale})"),
            ColumnType::Text { max_chars: Some(n) } => write!(f, "VARCHAR({n})"),
            ColumnType::Text { max_chars: None } => f.write_str("TEXT"),
            ColumnType::Enum(v) => write!(f, "ENUM('{}')", v.join("','")),
            ColumnType::Date => f.write_str("DATE"),
            ColumnType::DateTime { precision } => write!(f, "DATETIME({precision})"),
            ColumnType::Timestamp { precision } => write!(f, "TIMESTAMP({precision})"),
            ColumnType::Bytes => f.write_str("VARBINARY"),
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
    pub fn parse(file: &str, text: &str) -> Result<Catalog, SqlError> {
        let err = |span: Span, message: String| SqlError::at(file, span, message);
        let statements = Parser::parse_sql(&MySqlDialect {}, text)
            .map_err(|e| SqlError::from_parser(file, e))?;
        let mut catalog = Catalog::default();
        let mut databases: Vec<String> = Vec::new();
        for st in statements {
            match st {
                Statement::CreateDatabase { ref db_name, .. } => {
                    databases.push(object_parts(db_name).join(".").to_ascii_lowercase());
                }
                Statement::CreateTable(ref ct) => {
                    let parts = object_parts(&ct.name);
                    let (db, name) = match parts.as_slice() {
                        [db, name] => (db.clone(), name.clone()),
                        _ => {
                            return Err(err(
                                ct.name.span(),
                                format!(
                                    "table `{}` must be qualified as db.table",
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
                        let ty = column_type(&cd.data_type).map_err(|m| {
                            err(cd.span(), format!("column `{}`: {m}", cd.name.value))
                        })?;
                        let mut nullable = true;
                        for opt in &cd.options {
                            match &opt.option {
                                ColumnOption::Null => nullable = true,
                                ColumnOption::NotNull => nullable = false,
                                ColumnOption::PrimaryKey(_) => {
                                    nullable = false;
                                    primary_key.push(i);
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
                        });
                    }
                    for c in &ct.constraints {
                        if let TableConstraint::PrimaryKey(pk) = c {
                            for ic in &pk.columns {
                                let name = ic.column.expr.to_string();
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
                    catalog.by_name.insert(key, catalog.tables.len());
                    catalog.tables.push(Table {
                        db,
                        name,
                        columns,
                        primary_key,
                        by_name,
                    });
                }
                other => {
                    return Err(err(
                        other.span(),
                        "only CREATE DATABASE and CREATE TABLE are supported in schema.sql".into(),
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

const SUPPORTED_TYPES: &str = "supported: TINYINT/SMALLINT/MEDIUMINT/INT/BIGINT [UNSIGNED], \
DECIMAL(p,s), CHAR/VARCHAR/TEXT, ENUM, DATE, DATETIME(p), TIMESTAMP(p), BINARY/VARBINARY/BLOB";

fn column_type(dt: &DataType) -> Result<ColumnType, String> {
    use DataType as D;
    Ok(match dt {
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
        | D::IntegerUnsigned(_)
        | D::BigIntUnsigned(_) => ColumnType::Int { unsigned: true },
        D::Decimal(info) | D::Numeric(info) | D::Dec(info) => {
            let (precision, scale) = match info {
                ExactNumberInfo::None => (10, 0),
                ExactNumberInfo::Precision(p) => (*p, 0),
                ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s as u64),
            };
            if precision == 0 || precision > 38 || scale > precision || scale > 30 {
                return Err(format!(
                    "DECIMAL({precision},{scale}) is out of range (precision 1..=38, scale 0..=min(30, precision))"
                ));
            }
            ColumnType::Decimal {
                precision: precision as u8,
                scale: scale as u8,
            }
        }
        D::Char(len) | D::Varchar(len) => ColumnType::Text {
            max_chars: match len {
                Some(CharacterLength::IntegerLength { length, .. }) => Some(*length),
                _ => None,
            },
        },
        D::Text => ColumnType::Text { max_chars: None },
        D::Enum(members, _) => ColumnType::Enum(
            members
                .iter()
                .map(|m| match m {
                    EnumMember::Name(n) | EnumMember::NamedValue(n, _) => n.clone(),
                })
                .collect(),
        ),
        D::Date => ColumnType::Date,
        D::Datetime(p) => ColumnType::DateTime {
            precision: fsp(*p)?,
        },
        D::Timestamp(p, _) => ColumnType::Timestamp {
            precision: fsp(*p)?,
        },
        D::Binary(_) | D::Varbinary(_) | D::Blob(_) => ColumnType::Bytes,
        D::Float(_) | D::Double(_) | D::Real => {
            return Err(format!(
                "{dt} is not supported: cdcflow keeps values exact; declare DECIMAL(p,s) ({SUPPORTED_TYPES})"
            ));
        }
        other => return Err(format!("type {other} is not supported ({SUPPORTED_TYPES})")),
    })
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
#[error("{file}:{line}:{column}: {message}")]
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
