//! One view's SELECT -> a logical plan: scans with pushed-down filters and projections, a
//! left-deep chain of equi-joins, a filter, a grouping with aggregates, HAVING and the output
//! columns.
//!
//! Contract: a plan is only built for SQL inside the supported subset (see
//! [`SUPPORTED`]); anything else is refused with the file, line, column and what is supported.
//! Row layouts: the *joined row* is the concatenation of every source's projected columns in
//! FROM order; the *group row* is the GROUP BY values followed by the aggregate values.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use sqlparser::ast::{
    self as ast, BinaryOperator, DuplicateTreatment, FunctionArg, FunctionArgExpr,
    FunctionArguments, GroupByExpr, JoinConstraint, JoinOperator, SelectItem, SetExpr, Spanned,
    Statement, TableFactor, UnaryOperator,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Span;

use super::expr::{BinOp, EvalError, Expr, Type, binary_type, coerce, comparable, unify};
use crate::event::Row;
use crate::schema::{Catalog, ColumnType, SqlError, TableId, object_parts};
use crate::value::{
    DIV_PRECISION_INCREMENT, Decimal, MAX_SHOWN, Value, div_scale, parse_date, parse_datetime,
};

/// What the SQL subset supports, quoted in refusals.
pub const SUPPORTED: &str = "supported: SELECT <expressions> FROM db.table [alias] \
[[INNER] JOIN | LEFT [OUTER] JOIN db.table [alias] ON <equalities> [AND <conditions>]]... [WHERE ..] [GROUP BY .. [HAVING ..]]; \
expressions: columns, literals, + - * /, = <> < <= > >=, AND OR NOT, IN (..), IS [NOT] NULL, \
BETWEEN, CASE [x] WHEN, IF, COALESCE, IFNULL, DATE(x), ROUND, text and date functions, d ± INTERVAL n unit; aggregates: COUNT(*), COUNT(x), COUNT(DISTINCT x), SUM, MIN, MAX, AVG, SUM(DISTINCT x), AVG(DISTINCT x)";

/// Join kinds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum JoinKind {
    /// `[INNER] JOIN`
    Inner,
    /// `LEFT [OUTER] JOIN`: unmatched left rows padded with NULLs.
    Left,
}

/// One table of the FROM clause.
#[derive(Clone, Debug)]
pub struct SourcePlan {
    /// Alias (or the table name).
    pub alias: String,
    /// The table.
    pub table: TableId,
    /// The table's `db.table` name.
    pub table_name: String,
    /// Names of the kept columns, in projected order.
    pub column_names: Vec<String>,
    /// Table columns kept, in order: the projected row. Only columns read after the scan (join
    /// keys, later filters, groups, aggregates): a column only the filter reads is not kept.
    pub columns: Vec<usize>,
    /// Filter over the **table** row, pushed down from WHERE / ON.
    pub filter: Option<Expr>,
    /// Names of the table's columns (what [`Self::filter`] reads), for display.
    pub table_columns: Vec<String>,
}

impl SourcePlan {
    /// Whether the filter holds on a table row (true without a filter).
    pub fn holds(&self, row: &Row) -> Result<bool, EvalError> {
        self.filter.as_ref().map_or(Ok(true), |f| f.holds(row))
    }

    /// A table row projected to [`Self::columns`].
    pub fn project(&self, row: &Row) -> Row {
        row.project(&self.columns)
    }

    /// The table columns the source reads: those it keeps and those its filter reads, sorted.
    pub fn read_columns(&self) -> Vec<usize> {
        let mut read = self.columns.clone();
        if let Some(f) = &self.filter {
            f.columns(&mut read);
        }
        read.sort_unstable();
        read.dedup();
        read
    }

    /// The kept columns' names qualified by the alias (`s.order_id`), as plans show them.
    pub fn qualified_columns(&self) -> Vec<String> {
        self.column_names
            .iter()
            .map(|c| format!("{}.{c}", self.alias))
            .collect()
    }
}

impl JoinKind {
    /// `join` or `left join`.
    pub fn keyword(self) -> &'static str {
        match self {
            JoinKind::Inner => "join",
            JoinKind::Left => "left join",
        }
    }
}

impl JoinPlan {
    /// The equalities of the join (`l = r and ..`), over the names of the joined row so far and
    /// of the new source's columns.
    pub fn condition(&self, joined: &[String], own: &[String]) -> String {
        let keys: Vec<String> = self
            .left_keys
            .iter()
            .zip(&self.right_keys)
            .map(|(l, r)| format!("{} = {}", show(l, joined), show(r, own)))
            .collect();
        keys.join(" and ")
    }
}

/// Joins the next source to the rows joined so far.
#[derive(Clone, Debug)]
pub struct JoinPlan {
    /// Inner or left.
    pub kind: JoinKind,
    /// Key expressions over the joined row so far.
    pub left_keys: Vec<Expr>,
    /// Key expressions over the new source's projected row.
    pub right_keys: Vec<Expr>,
}

/// Aggregate functions.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum AggFunc {
    /// `COUNT(*)`
    CountStar,
    /// `COUNT(x)`: non-NULL values.
    Count,
    /// `COUNT(DISTINCT x)`
    CountDistinct,
    /// `SUM(x)`
    Sum,
    /// `MIN(x)`
    Min,
    /// `MAX(x)`
    Max,
    /// `AVG(x)`
    Avg,
    /// `SUM(DISTINCT x)`
    SumDistinct,
    /// `AVG(DISTINCT x)`
    AvgDistinct,
}

impl AggFunc {
    /// Aggregates that accumulate in the difference type (exact, associative).
    pub fn accumulable(self) -> bool {
        matches!(
            self,
            AggFunc::CountStar | AggFunc::Count | AggFunc::Sum | AggFunc::Avg
        )
    }
}

/// One aggregate of the view.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Aggregate {
    /// The function.
    pub func: AggFunc,
    /// Its argument over the joined row (`None` for COUNT(*)).
    pub arg: Option<Expr>,
    /// Static type of the argument.
    pub arg_type: Type,
    /// Static type of the result.
    pub ty: Type,
    /// MIN/MAX of case-insensitive text: the argument is a [`Expr::SortKey`], and the result
    /// the spelling inside the extreme key.
    pub collated: bool,
    /// The spelling shown for case-insensitive text group `i` (not an aggregate of the SQL).
    pub shows_group: Option<usize>,
}

/// One output column (a document field).
#[derive(Clone, Debug)]
pub struct OutputColumn {
    /// Field name.
    pub name: String,
    /// Expression over the group row.
    pub expr: Expr,
    /// Static type.
    pub ty: Type,
    /// Fractional-second digits shown for a DATETIME/TIMESTAMP/TIME value that comes straight
    /// from a column (as a group key, or through MIN/MAX): MariaDB shows the column's
    /// precision (`.000` for DATETIME(3)); `None` shows the digits the value has.
    pub fsp: Option<u8>,
}

/// The logical plan of one view.
#[derive(Clone, Debug)]
pub struct ViewPlan {
    /// View name (file stem; the Elasticsearch index).
    pub name: String,
    /// Sources in FROM order.
    pub sources: Vec<SourcePlan>,
    /// `joins[i]` joins `sources[i + 1]`.
    pub joins: Vec<JoinPlan>,
    /// Filter over the joined row (WHERE conjuncts that could not be pushed down).
    pub filter: Option<Expr>,
    /// GROUP BY expressions over the joined row.
    pub group_by: Vec<Expr>,
    /// Aggregates over the joined row.
    pub aggregates: Vec<Aggregate>,
    /// HAVING over the group row.
    pub having: Option<Expr>,
    /// Output columns over the group row.
    pub output: Vec<OutputColumn>,
    /// The document id is the first `id_width` GROUP BY values (all of them, except in a view
    /// without GROUP BY and aggregates, whose group values are the source rows' primary keys
    /// followed by the columns that depend on them).
    pub id_width: usize,
    /// Aggregates without GROUP BY: one document, present even over no rows (COUNT 0, SUM
    /// NULL), as MySQL's answer always has one row.
    pub global: bool,
}

impl fmt::Display for ViewPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "view {}", self.name)?;
        let mut joined: Vec<String> = Vec::new();
        for (i, s) in self.sources.iter().enumerate() {
            let own = s.qualified_columns();
            let table: Vec<String> = s
                .table_columns
                .iter()
                .map(|c| format!("{}.{c}", s.alias))
                .collect();
            let filter = s
                .filter
                .as_ref()
                .map(|e| format!(" where {}", show(e, &table)))
                .unwrap_or_default();
            if i == 0 {
                writeln!(
                    f,
                    "  scan {} {} [{}]{filter}",
                    s.table_name,
                    s.alias,
                    own.join(", ")
                )?;
            } else {
                let j = &self.joins[i - 1];
                writeln!(
                    f,
                    "  {} {} {} [{}]{filter} on {}",
                    j.kind.keyword(),
                    s.table_name,
                    s.alias,
                    own.join(", "),
                    j.condition(&joined, &own)
                )?;
            }
            joined.extend(own);
        }
        if let Some(e) = &self.filter {
            writeln!(f, "  filter {}", show(e, &joined))?;
        }
        let mut group: Vec<String> = self.group_by.iter().map(|e| show(e, &joined)).collect();
        if self.global {
            writeln!(f, "  one document over all rows")?;
        } else if self.id_width < self.group_by.len() || self.aggregates.is_empty() {
            writeln!(
                f,
                "  one document per row, id {}, carrying {}",
                group[..self.id_width].join(", "),
                group[self.id_width..].join(", ")
            )?;
        } else {
            writeln!(f, "  group by {}", group.join(", "))?;
        }
        for a in &self.aggregates {
            let arg = a.arg.as_ref().map_or("*".to_string(), |e| show(e, &joined));
            let how = if a.func.accumulable() {
                "accumulated in the difference"
            } else {
                "reduced"
            };
            let name = match a.func {
                AggFunc::CountStar => "COUNT(*)".to_string(),
                AggFunc::Count => format!("COUNT({arg})"),
                AggFunc::CountDistinct => format!("COUNT(DISTINCT {arg})"),
                AggFunc::Sum => format!("SUM({arg})"),
                AggFunc::Min => format!("MIN({arg})"),
                AggFunc::Max => format!("MAX({arg})"),
                AggFunc::Avg => format!("AVG({arg})"),
                AggFunc::SumDistinct => format!("SUM(DISTINCT {arg})"),
                AggFunc::AvgDistinct => format!("AVG(DISTINCT {arg})"),
            };
            writeln!(f, "  aggregate {name} : {} ({how})", a.ty)?;
            group.push(name);
        }
        if let Some(h) = &self.having {
            writeln!(f, "  having {}", show(h, &group))?;
        }
        for o in &self.output {
            writeln!(
                f,
                "  output {} = {} : {}",
                o.name,
                show(&o.expr, &group),
                o.ty
            )?;
        }
        Ok(())
    }
}

/// Renders an expression with column names.
pub(crate) fn show(e: &Expr, names: &[String]) -> String {
    use super::expr::BinOp as B;
    let s = |x: &Expr| show(x, names);
    match e {
        Expr::Column(i) => names.get(*i).cloned().unwrap_or_else(|| format!("#{i}")),
        Expr::Literal(Value::Text(t)) => format!("'{t}'"),
        Expr::Literal(v) => v.to_string(),
        Expr::Binary(op, l, r) => {
            let o = match op {
                B::Add => "+",
                B::Sub => "-",
                B::Mul => "*",
                B::Div => "/",
                B::Eq => "=",
                B::Ne => "<>",
                B::Lt => "<",
                B::Le => "<=",
                B::Gt => ">",
                B::Ge => ">=",
                B::And => "AND",
                B::Or => "OR",
            };
            format!("({} {o} {})", s(l), s(r))
        }
        Expr::Not(a) => format!("NOT {}", s(a)),
        Expr::Neg(a) => format!("-{}", s(a)),
        Expr::IsNull(a, false) => format!("{} IS NULL", s(a)),
        Expr::IsNull(a, true) => format!("{} IS NOT NULL", s(a)),
        Expr::InList(a, l, n) => format!(
            "{} {}IN ({})",
            s(a),
            if *n { "NOT " } else { "" },
            l.iter().map(s).collect::<Vec<_>>().join(", ")
        ),
        Expr::Case(w, o) => {
            let mut out = "CASE".to_string();
            for (c, r) in w {
                out.push_str(&format!(" WHEN {} THEN {}", s(c), s(r)));
            }
            if let Some(o) = o {
                out.push_str(&format!(" ELSE {}", s(o)));
            }
            out + " END"
        }
        Expr::Coalesce(a) => format!(
            "COALESCE({})",
            a.iter().map(s).collect::<Vec<_>>().join(", ")
        ),
        Expr::Date(a) => format!("DATE({})", s(a)),
        Expr::Cast(a, t) => format!("CAST({} AS {t})", s(a)),
        Expr::Func(f, a) => format!("{f:?}({})", a.iter().map(s).collect::<Vec<_>>().join(", ")),
        Expr::Collate(a) => format!("COLLATE_CI({})", s(a)),
        Expr::SortKey(a) => format!("SORT_KEY_CI({})", s(a)),
    }
}

/// Parses and plans one view.
pub fn plan_view(
    catalog: &Catalog,
    file: &str,
    name: &str,
    sql: &str,
) -> Result<ViewPlan, SqlError> {
    let statements =
        Parser::parse_sql(&MySqlDialect {}, sql).map_err(|e| SqlError::from_parser(file, e))?;
    let p = Planner {
        catalog,
        file,
        having_aliases: Default::default(),
        round_aggregate_args: Default::default(),
        groups_unique: Default::default(),
        binary_columns: Default::default(),
    };
    let st = match statements.as_slice() {
        [st] => st,
        [] => {
            return Err(p.err(
                Span::empty(),
                "the file holds no statement: expected one SELECT",
            ));
        }
        [_, second, ..] => return Err(p.err(second.span(), "one SELECT per view file")),
    };
    let query = match st {
        Statement::Query(q) => q,
        other => {
            return Err(p.err(
                other.span(),
                &format!("only SELECT is supported ({SUPPORTED})"),
            ));
        }
    };
    if query.with.is_some()
        || query.order_by.is_some()
        || query.limit_clause.is_some()
        || query.fetch.is_some()
    {
        return Err(p.err(
            query.span(),
            &format!("WITH, ORDER BY, LIMIT and FETCH are not supported in a view ({SUPPORTED})"),
        ));
    }
    let select = match query.body.as_ref() {
        SetExpr::Select(s) => s,
        other => {
            return Err(p.err(
                other.span(),
                &format!("only a plain SELECT is supported, not UNION or VALUES ({SUPPORTED})"),
            ));
        }
    };
    p.plan_select(name, select)
}

/// Called for each aggregate function met while resolving an expression.
type OnAggregate<'f> = dyn FnMut(&str, &ast::Expr) -> Result<(Expr, Type), SqlError> + 'f;

struct Planner<'a> {
    catalog: &'a Catalog,
    file: &'a str,
    /// While HAVING is resolved: the output aliases it may name (MySQL allows
    /// `HAVING total > 10` for `SUM(x) AS total`), lower-cased.
    having_aliases: std::cell::RefCell<HashMap<String, ast::Expr>>,
    /// Whether aggregate arguments are rounded to the digits they show, row by row: MariaDB
    /// does so when it groups through a temporary table (GROUP BY without DISTINCT
    /// aggregates), whose fields hold the shown scale. Without GROUP BY, or with a DISTINCT
    /// aggregate, it aggregates the carried values.
    round_aggregate_args: std::cell::Cell<bool>,
    /// Whether the GROUP BY columns include every source's primary key.
    groups_unique: std::cell::Cell<bool>,
    /// Full-row columns of a binary collation (`*_bin`, `binary`): they compare as bytes.
    binary_columns: std::cell::RefCell<BTreeSet<usize>>,
}

/// A source while resolving: its alias, table, and offset in the full (unprojected) row.
struct Scope {
    alias: String,
    table: TableId,
    offset: usize,
}

/// Which sources a column of the full row belongs to.
fn source_of(scopes: &[Scope], col: usize) -> usize {
    scopes.iter().rposition(|s| s.offset <= col).unwrap_or(0)
}

impl<'a> Planner<'a> {
    fn err(&self, span: Span, msg: &str) -> SqlError {
        SqlError::at(self.file, span, msg.to_string())
    }

    fn plan_select(&self, name: &str, select: &ast::Select) -> Result<ViewPlan, SqlError> {
        if select.distinct.is_some() {
            return Err(self.err(
                select.span(),
                &format!("SELECT DISTINCT is not supported; use GROUP BY ({SUPPORTED})"),
            ));
        }
        if select.from.len() != 1 {
            return Err(self.err(
                select.span(),
                &format!("FROM needs exactly one table list with explicit JOIN .. ON; comma joins are not supported ({SUPPORTED})"),
            ));
        }
        // 1. Sources.
        let twj = &select.from[0];
        let mut scopes: Vec<Scope> = Vec::new();
        let mut full_width = 0;
        let mut add_source = |f: &TableFactor, scopes: &mut Vec<Scope>| -> Result<(), SqlError> {
            let TableFactor::Table {
                name, alias, args, ..
            } = f
            else {
                return Err(self.err(
                    f.span(),
                    &format!(
                        "only named tables are supported in FROM, not subqueries ({SUPPORTED})"
                    ),
                ));
            };
            if args.is_some() {
                return Err(self.err(f.span(), "table functions are not supported"));
            }
            let parts = object_parts(name);
            let [db, table] = parts.as_slice() else {
                return Err(self.err(
                    name.span(),
                    &format!("name the table as db.table (got `{}`)", parts.join(".")),
                ));
            };
            let id = self.catalog.lookup(db, table).ok_or_else(|| {
                self.err(
                    name.span(),
                    &format!(
                        "unknown table `{db}.{table}` (declared: {})",
                        self.catalog.names()
                    ),
                )
            })?;
            let alias = alias
                .as_ref()
                .map(|a| a.name.value.clone())
                .unwrap_or_else(|| table.clone());
            if scopes.iter().any(|s| s.alias.eq_ignore_ascii_case(&alias)) {
                return Err(self.err(f.span(), &format!("alias `{alias}` is used twice")));
            }
            scopes.push(Scope {
                alias,
                table: id,
                offset: full_width,
            });
            full_width += self.catalog.tables[id].columns.len();
            Ok(())
        };
        add_source(&twj.relation, &mut scopes)?;
        // Join constraints are resolved after all sources are known (ON may only use earlier ones).
        let mut join_specs = Vec::new();
        for j in &twj.joins {
            let (kind, constraint) = match &j.join_operator {
                JoinOperator::Join(c) | JoinOperator::Inner(c) => (JoinKind::Inner, c),
                JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (JoinKind::Left, c),
                other => {
                    return Err(self.err(j.span(), &format!("join kind {other:?} is not supported: use [INNER] JOIN or LEFT JOIN ({SUPPORTED})").replace("(JoinConstraint::None)", "")));
                }
            };
            let on = match constraint {
                JoinConstraint::On(e) => e,
                _ => return Err(self.err(j.span(), "a join needs ON <equalities>; USING, NATURAL and cross joins are not supported")),
            };
            add_source(&j.relation, &mut scopes)?;
            join_specs.push((kind, on));
        }

        *self.binary_columns.borrow_mut() = scopes
            .iter()
            .flat_map(|sc| {
                let t = &self.catalog.tables[sc.table];
                (0..t.columns.len())
                    .filter(|i| super::collation::is_binary(t.collation(*i)))
                    .map(move |i| sc.offset + i)
            })
            .collect();

        // 2. Resolve ON clauses into keys and filters, over the full row.
        let mut source_filters: Vec<Vec<Expr>> = vec![Vec::new(); scopes.len()];
        let mut post_filters: Vec<Expr> = Vec::new();
        let mut join_keys: Vec<(JoinKind, Vec<Expr>, Vec<Expr>)> = Vec::new();
        for (ji, (kind, on)) in join_specs.iter().enumerate() {
            let right = ji + 1;
            let visible = &scopes[..=right];
            let mut lk = Vec::new();
            let mut rk = Vec::new();
            let mut conditions = Vec::new();
            for conj in conjuncts(on) {
                let (e, t) = self.resolve(visible, conj)?;
                if t != Type::Int && t != Type::Null {
                    return Err(self.err(conj.span(), "an ON condition must be a comparison"));
                }
                let sides = sources_of(&scopes, &e);
                // The static types of the two sides, as resolved (not guessed from the result).
                let side_types = match strip_nested(conj) {
                    ast::Expr::BinaryOp {
                        left,
                        op: BinaryOperator::Eq,
                        right,
                    } => Some((
                        self.resolve(visible, left)?.1,
                        self.resolve(visible, right)?.1,
                    )),
                    _ => None,
                };
                if let (Expr::Binary(BinOp::Eq, l, r), Some((lt, rt))) = (&e, side_types) {
                    let ls = sources_of(&scopes, l);
                    let rs = sources_of(&scopes, r);
                    let left_only =
                        |s: &BTreeSet<usize>| !s.is_empty() && s.iter().all(|x| *x < right);
                    let right_only =
                        |s: &BTreeSet<usize>| !s.is_empty() && s.iter().all(|x| *x == right);
                    let pair = if left_only(&ls) && right_only(&rs) {
                        Some((l, lt, r, rt))
                    } else if right_only(&ls) && left_only(&rs) {
                        Some((r, rt, l, lt))
                    } else {
                        None
                    };
                    if let Some((a, ta, b, tb)) = pair {
                        // `=` compares what each side shows (see `binary`).
                        let (a, ta) = (coerce((**a).clone(), ta, ta.shown()), ta.shown());
                        let (b, tb) = (coerce((**b).clone(), tb, tb.shown()), tb.shown());
                        let common = unify(&[ta, tb])
                            .map_err(|m| self.err(conj.span(), &format!("join keys: {m}")))?;
                        let ci = self.is_ci(&a, common) && self.is_ci(&b, common);
                        let (a, b) = (coerce(a, ta, common), coerce(b, tb, common));
                        if ci {
                            lk.push(Expr::Collate(Box::new(a)));
                            rk.push(Expr::Collate(Box::new(b)));
                        } else {
                            lk.push(a);
                            rk.push(b);
                        }
                        continue;
                    }
                }
                if sides.iter().all(|s| *s == right) {
                    source_filters[right].push(e);
                } else if *kind == JoinKind::Inner {
                    post_filters.push(e);
                } else if sides.iter().all(|s| *s < right) {
                    // A LEFT JOIN's condition on earlier tables only: a left row for which it
                    // is not true matches nothing and stays, padded. As one more key: 1 when
                    // it holds, else NULL (which never matches), against a constant 1.
                    conditions.push((
                        Expr::Case(vec![(e, Expr::Literal(Value::Int(1)))], None),
                        Expr::Literal(Value::Int(1)),
                    ));
                } else {
                    return Err(self.err(
                        conj.span(),
                        "LEFT JOIN ... ON supports equalities between the joined table and earlier ones, and conditions on either side alone, not conditions mixing both",
                    ));
                }
            }
            if lk.is_empty() {
                return Err(self.err(
                    on.span(),
                    &format!(
                        "a join needs at least one equality between `{}` and the tables before it",
                        scopes[right].alias
                    ),
                ));
            }
            for (l, r) in conditions {
                lk.push(l);
                rk.push(r);
            }
            join_keys.push((*kind, lk, rk));
        }
        // Sources on the nullable side of a LEFT JOIN: WHERE conditions on them must stay after the join.
        let nullable: Vec<bool> = std::iter::once(false)
            .chain(join_keys.iter().map(|(k, _, _)| *k == JoinKind::Left))
            .collect();

        // 3. WHERE.
        if let Some(w) = &select.selection {
            for conj in conjuncts(w) {
                let (e, _) = self.resolve(&scopes, conj)?;
                let sides = sources_of(&scopes, &e);
                match sides.iter().next() {
                    Some(&s) if sides.len() == 1 && !nullable[s] => source_filters[s].push(e),
                    _ => post_filters.push(e),
                }
            }
        }

        // 4. SELECT items, GROUP BY, aggregates.
        let mut aliases: HashMap<String, &ast::Expr> = HashMap::new();
        let mut items: Vec<(String, &ast::Expr)> = Vec::new();
        for item in &select.projection {
            let (name, e) = match item {
                SelectItem::UnnamedExpr(e) => (column_name(e), e),
                SelectItem::ExprWithAlias { expr, alias } => (alias.value.clone(), expr),
                other => {
                    return Err(self.err(
                        other.span(),
                        &format!("`*` is not supported in a view: name the columns ({SUPPORTED})"),
                    ));
                }
            };
            if items.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                return Err(self.err(
                    item.span(),
                    &format!("two output columns are named `{name}`: add an alias"),
                ));
            }
            aliases.insert(name.to_ascii_lowercase(), e);
            items.push((name, e));
        }
        let group_exprs: Vec<&ast::Expr> = match &select.group_by {
            GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => {
                exprs.iter().collect()
            }
            other => {
                return Err(self.err(
                    select.span(),
                    &format!("GROUP BY {other} is not supported ({SUPPORTED})"),
                ));
            }
        };
        let mut group_raw = Vec::new();
        // Without GROUP BY: aggregates make one global document (id `all`); otherwise each
        // result row is a document, its id the primary keys of its source rows (every other
        // column depends on them, so they group nothing away).
        let mut id_width = None;
        if group_exprs.is_empty() {
            let any_aggregate = items
                .iter()
                .map(|(_, e)| *e)
                .chain(select.having.as_ref())
                .any(|e| self.mentions_aggregate(&scopes, e));
            if any_aggregate {
                id_width = Some(0);
            } else {
                for sc in &scopes {
                    let t = &self.catalog.tables[sc.table];
                    for &pk in &t.primary_key {
                        group_raw
                            .push((Expr::Column(sc.offset + pk), column_type(&t.columns[pk].ty)));
                    }
                }
                id_width = Some(group_raw.len());
                let mut cols = Vec::new();
                for (_, e) in &items {
                    self.resolve(&scopes, e)?.0.columns(&mut cols);
                }
                if let Some(h) = &select.having {
                    self.resolve(&scopes, h)?.0.columns(&mut cols);
                }
                cols.sort_unstable();
                cols.dedup();
                for c in cols {
                    if !group_raw.iter().any(|(g, _)| *g == Expr::Column(c)) {
                        let sc = &scopes[source_of(&scopes, c)];
                        let t = &self.catalog.tables[sc.table];
                        group_raw
                            .push((Expr::Column(c), column_type(&t.columns[c - sc.offset].ty)));
                    }
                }
            }
        }
        for g in &group_exprs {
            // MySQL also allows GROUP BY <output alias> and GROUP BY <position>.
            let target: &ast::Expr = match g {
                ast::Expr::Identifier(id) if !self.is_column(&scopes, &id.value) => aliases
                    .get(&id.value.to_ascii_lowercase())
                    .copied()
                    .unwrap_or(g),
                ast::Expr::Value(v) => match &v.value {
                    ast::Value::Number(n, _) => {
                        let pos: usize = n.parse().unwrap_or(0);
                        items
                            .get(pos.wrapping_sub(1))
                            .map(|(_, e)| *e)
                            .ok_or_else(|| {
                                self.err(
                                    g.span(),
                                    &format!("GROUP BY position {n} is out of range"),
                                )
                            })?
                    }
                    _ => g,
                },
                _ => g,
            };
            group_raw.push(self.resolve(&scopes, target)?);
        }
        // A group key is the value MySQL shows (its temporary table stores it at the shown
        // scale); SELECT and HAVING match their expressions against the unrounded ones.
        // A text group of a case-insensitive collation groups by its comparison key; the
        // spelling shown is a MIN over the group's rows (added below).
        let group_ci: Vec<bool> = group_raw
            .iter()
            .map(|(e, t)| id_width.is_none() && self.is_ci(e, *t))
            .collect();
        let group_by: Vec<Expr> = group_raw
            .iter()
            .zip(&group_ci)
            .map(|((e, t), ci)| {
                let e = coerce(e.clone(), *t, t.shown());
                if *ci { Expr::Collate(Box::new(e)) } else { e }
            })
            .collect();
        let group_raw: Vec<Expr> = group_raw.into_iter().map(|(e, _)| e).collect();
        let distinct_aggregate = items
            .iter()
            .map(|(_, e)| *e)
            .chain(select.having.as_ref())
            .any(|e| self.mentions_aggregate_where(&scopes, e, true));
        // MariaDB aggregates the carried values when it reads the groups in order from the
        // first table: with a DISTINCT aggregate (it sorts that table), or when the groups are
        // that table's primary key (its index order). Otherwise it groups through a temporary
        // table and the arguments are rounded. This follows MariaDB 10.11's usual plans; where
        // its optimizer reorders inner joins, digits below a division can differ.
        let on_first = group_raw
            .iter()
            .all(|g| sources_of(&scopes, g).iter().all(|s| *s == 0));
        let pk_first: BTreeSet<usize> = self.catalog.tables[scopes[0].table]
            .primary_key
            .iter()
            .map(|c| scopes[0].offset + c)
            .collect();
        let grouped_columns: Option<BTreeSet<usize>> = group_raw
            .iter()
            .map(|g| match g {
                Expr::Column(c) => Some(*c),
                _ => None,
            })
            .collect();
        let by_pk = grouped_columns.as_ref().is_some_and(|g| *g == pk_first);
        let all_pks: BTreeSet<usize> = scopes
            .iter()
            .flat_map(|sc| {
                self.catalog.tables[sc.table]
                    .primary_key
                    .iter()
                    .map(move |c| sc.offset + c)
            })
            .collect();
        let grouped_set: BTreeSet<usize> = group_raw
            .iter()
            .filter_map(|g| match g {
                Expr::Column(c) => Some(*c),
                _ => None,
            })
            .collect();
        self.groups_unique.set(all_pks.is_subset(&grouped_set));
        self.round_aggregate_args
            .set(!group_exprs.is_empty() && !(on_first && (distinct_aggregate || by_pk)));
        let mut aggregates: Vec<Aggregate> = Vec::new();
        let mut output = Vec::new();
        for (name, e) in &items {
            let (expr, ty) = self.resolve_grouped(&scopes, e, &group_raw, &mut aggregates)?;
            // A document holds what MySQL shows.
            let straight = self.straight_column(&scopes, &expr, &group_raw, &aggregates);
            let fsp = match straight {
                Some(
                    ColumnType::DateTime { precision }
                    | ColumnType::Timestamp { precision }
                    | ColumnType::Time { precision },
                ) => Some(precision),
                _ => None,
            };
            let mut expr = coerce(expr, ty, ty.shown());
            if straight == Some(ColumnType::Double { single: true }) {
                expr = Expr::Func(super::func::Func::FloatShown, vec![expr]);
            }
            output.push(OutputColumn {
                name: name.clone(),
                expr,
                ty: ty.shown(),
                fsp,
            });
        }
        let mut having = match &select.having {
            Some(h) => {
                *self.having_aliases.borrow_mut() = aliases
                    .iter()
                    .map(|(k, e)| (k.clone(), (*e).clone()))
                    .collect();
                let resolved = self.resolve_grouped(&scopes, h, &group_raw, &mut aggregates);
                self.having_aliases.borrow_mut().clear();
                Some(resolved?.0)
            }
            None => None,
        };
        if select.qualify.is_some() || !select.named_window.is_empty() || select.prewhere.is_some()
        {
            return Err(self.err(select.span(), &format!("unsupported clause ({SUPPORTED})")));
        }
        // What SELECT and HAVING read of a case-insensitive text group is its shown spelling.
        let k = group_raw.len();
        let mut shown_as: HashMap<usize, usize> = HashMap::new();
        for (i, g) in group_raw.iter().enumerate() {
            if group_ci[i] {
                shown_as.insert(i, k + aggregates.len());
                aggregates.push(Aggregate {
                    func: AggFunc::Min,
                    arg: Some(Expr::SortKey(Box::new(g.clone()))),
                    arg_type: Type::Text,
                    ty: Type::Text,
                    collated: true,
                    shows_group: Some(i),
                });
            }
        }
        if !shown_as.is_empty() {
            let f = |c: usize| shown_as.get(&c).copied().unwrap_or(c);
            for o in &mut output {
                o.expr = o.expr.map_columns(&f);
            }
            having = having.map(|h| h.map_columns(&f));
        }

        // 5. Projection: the full-row columns anything after the scan reads, per source (a
        // pushed-down filter reads the table row, so its own columns are dropped after it).
        let mut used: Vec<usize> = Vec::new();
        let all_exprs = post_filters
            .iter()
            .chain(join_keys.iter().flat_map(|(_, l, r)| l.iter().chain(r)))
            .chain(&group_by)
            .chain(aggregates.iter().filter_map(|a| a.arg.as_ref()));
        for e in all_exprs {
            e.columns(&mut used);
        }
        used.sort_unstable();
        used.dedup();
        let mut remap: HashMap<usize, usize> = HashMap::new(); // full -> joined position
        let mut local: HashMap<usize, usize> = HashMap::new(); // full -> position within its source
        let mut sources = Vec::new();
        let mut pos = 0;
        for (si, s) in scopes.iter().enumerate() {
            let mine: Vec<usize> = used
                .iter()
                .copied()
                .filter(|c| source_of(&scopes, *c) == si)
                .collect();
            for (li, c) in mine.iter().enumerate() {
                remap.insert(*c, pos + li);
                local.insert(*c, li);
            }
            pos += mine.len();
            let filter = and_all(
                source_filters[si]
                    .iter()
                    .map(|e| e.map_columns(&|c| c - s.offset))
                    .collect(),
            );
            sources.push(SourcePlan {
                alias: s.alias.clone(),
                table: s.table,
                table_name: self.catalog.tables[s.table].qualified(),
                column_names: mine
                    .iter()
                    .map(|c| {
                        self.catalog.tables[s.table].columns[c - s.offset]
                            .name
                            .clone()
                    })
                    .collect(),
                columns: mine.iter().map(|c| c - s.offset).collect(),
                filter,
                table_columns: self.catalog.tables[s.table]
                    .columns
                    .iter()
                    .map(|c| c.name.clone())
                    .collect(),
            });
        }
        let to_joined = |e: &Expr| e.map_columns(&|c| remap[&c]);
        let joins = join_keys
            .iter()
            .map(|(kind, l, r)| JoinPlan {
                kind: *kind,
                left_keys: l.iter().map(to_joined).collect(),
                right_keys: r.iter().map(|e| e.map_columns(&|c| local[&c])).collect(),
            })
            .collect();
        Ok(ViewPlan {
            name: name.to_string(),
            sources,
            joins,
            filter: and_all(post_filters.iter().map(to_joined).collect()),
            group_by: group_by.iter().map(to_joined).collect(),
            aggregates: aggregates
                .into_iter()
                .map(|a| Aggregate {
                    arg: a.arg.as_ref().map(to_joined),
                    ..a
                })
                .collect(),
            having,
            output,
            id_width: id_width.unwrap_or(group_by.len()),
            global: id_width == Some(0),
        })
    }

    /// The type of the column a group-row expression shows as it is (a group key, or MIN/MAX
    /// of one): MySQL shows it as the column's type (a DATETIME(3)'s `.000`, a FLOAT's single
    /// precision).
    fn straight_column(
        &self,
        scopes: &[Scope],
        e: &Expr,
        group_raw: &[Expr],
        aggregates: &[Aggregate],
    ) -> Option<ColumnType> {
        let column = |x: &Expr| -> Option<ColumnType> {
            let Expr::Column(c) = x else { return None };
            let sc = &scopes[source_of(scopes, *c)];
            Some(
                self.catalog.tables[sc.table]
                    .columns
                    .get(c - sc.offset)?
                    .ty
                    .clone(),
            )
        };
        let k = group_raw.len();
        match e {
            Expr::Column(i) if *i < k => column(&group_raw[*i]),
            Expr::Column(i) => {
                let a = aggregates.get(i - k)?;
                match a.func {
                    AggFunc::Min | AggFunc::Max => column(a.arg.as_ref()?),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Whether `e` reads a column of a binary collation.
    fn reads_binary(&self, e: &Expr) -> bool {
        let mut cols = Vec::new();
        e.columns(&mut cols);
        let bin = self.binary_columns.borrow();
        cols.iter().any(|c| bin.contains(c))
    }

    /// Whether values of `e` (of type `t`) compare case- and accent-insensitively.
    fn is_ci(&self, e: &Expr, t: Type) -> bool {
        t == Type::Text && !self.reads_binary(e)
    }

    /// `e` as its comparison key when it is case-insensitive text.
    fn collated(&self, e: Expr, t: Type) -> Expr {
        if let Expr::Literal(Value::Text(s)) = &e {
            return Expr::Literal(Value::Text(super::collation::fold(s)));
        }
        if self.is_ci(&e, t) {
            Expr::Collate(Box::new(e))
        } else {
            e
        }
    }

    /// Whether `e` calls an aggregate function (resolution errors are reported later).
    fn mentions_aggregate(&self, scopes: &[Scope], e: &ast::Expr) -> bool {
        self.mentions_aggregate_where(scopes, e, false)
    }

    /// Whether `e` calls an aggregate function, a DISTINCT one when `distinct`.
    fn mentions_aggregate_where(&self, scopes: &[Scope], e: &ast::Expr, distinct: bool) -> bool {
        let mut seen = false;
        let _ = self.resolve_with(scopes, e, &mut |_, f| {
            let is_distinct = matches!(f, ast::Expr::Function(f) if matches!(&f.args,
                FunctionArguments::List(l) if matches!(l.duplicate_treatment, Some(DuplicateTreatment::Distinct))));
            seen |= !distinct || is_distinct;
            Ok((Expr::Literal(Value::Null), Type::Null))
        });
        seen
    }

    fn is_column(&self, scopes: &[Scope], name: &str) -> bool {
        scopes
            .iter()
            .any(|s| self.catalog.tables[s.table].column(name).is_some())
    }

    /// Resolves an expression over the full row; aggregates are refused here.
    fn resolve(&self, scopes: &[Scope], e: &ast::Expr) -> Result<(Expr, Type), SqlError> {
        self.resolve_with(scopes, e, &mut |_, e| {
            Err(self.err(
                e.span(),
                "aggregate functions are only allowed in SELECT and HAVING",
            ))
        })
    }

    /// Resolves an expression of SELECT/HAVING into one over the group row.
    fn resolve_grouped(
        &self,
        scopes: &[Scope],
        e: &ast::Expr,
        group_by: &[Expr],
        aggregates: &mut Vec<Aggregate>,
    ) -> Result<(Expr, Type), SqlError> {
        let k = group_by.len();
        // Aggregates are resolved to a marker column beyond the full row, then mapped.
        const AGG_BASE: usize = usize::MAX / 2;
        let mut on_agg = |func_name: &str, f: &ast::Expr| -> Result<(Expr, Type), SqlError> {
            let agg = self.aggregate(scopes, func_name, f)?;
            let ty = agg.ty;
            let idx = match aggregates.iter().position(|a| *a == agg) {
                Some(i) => i,
                None => {
                    aggregates.push(agg);
                    aggregates.len() - 1
                }
            };
            Ok((Expr::Column(AGG_BASE + idx), ty))
        };
        let (expr, ty) = self.resolve_with(scopes, e, &mut on_agg)?;
        // Replace group expressions by group-row columns; any other column reference is an error.
        fn rewrite(e: &Expr, group_by: &[Expr], k: usize) -> Result<Expr, usize> {
            if let Some(i) = group_by.iter().position(|g| g == e) {
                return Ok(Expr::Column(i));
            }
            match e {
                Expr::Column(c) if *c >= AGG_BASE => Ok(Expr::Column(k + (c - AGG_BASE))),
                Expr::Column(c) => Err(*c),
                Expr::Literal(_) => Ok(e.clone()),
                _ => {
                    // Rebuild children one level down.
                    let mut bad = None;
                    let out = rebuild(e, &mut |child| match rewrite(child, group_by, k) {
                        Ok(x) => x,
                        Err(c) => {
                            bad = Some(c);
                            child.clone()
                        }
                    });
                    match bad {
                        Some(c) => Err(c),
                        None => Ok(out),
                    }
                }
            }
        }
        match rewrite(&expr, group_by, k) {
            Ok(x) => Ok((x, ty)),
            Err(c) => {
                let s = &scopes[source_of(scopes, c)];
                let col = &self.catalog.tables[s.table].columns[c - s.offset].name;
                Err(self.err(
                    e.span(),
                    &format!(
                        "`{}.{col}` is neither in GROUP BY nor inside an aggregate",
                        s.alias
                    ),
                ))
            }
        }
    }

    fn aggregate(
        &self,
        scopes: &[Scope],
        name: &str,
        e: &ast::Expr,
    ) -> Result<Aggregate, SqlError> {
        let ast::Expr::Function(f) = e else {
            unreachable!("called for functions only")
        };
        let FunctionArguments::List(list) = &f.args else {
            return Err(self.err(e.span(), &format!("{name} needs an argument")));
        };
        if f.filter.is_some() || f.over.is_some() || !list.clauses.is_empty() {
            return Err(self.err(
                e.span(),
                &format!("FILTER, OVER and ORDER BY in aggregates are not supported ({SUPPORTED})"),
            ));
        }
        let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
        let arg = match list.args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if name == "COUNT" && !distinct => {
                None
            }
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(a))] => Some(a),
            _ => return Err(self.err(e.span(), &format!("{name} takes exactly one argument"))),
        };
        let (arg, arg_type) = match arg {
            Some(a) => {
                let (x, t) = self.resolve(scopes, a)?;
                (Some(x), t)
            }
            None => (None, Type::Int),
        };
        let func = match (name, distinct, &arg) {
            ("COUNT", false, None) => AggFunc::CountStar,
            ("COUNT", false, Some(_)) => AggFunc::Count,
            ("COUNT", true, Some(_)) => AggFunc::CountDistinct,
            ("SUM", true, _) => AggFunc::SumDistinct,
            ("AVG", true, _) => AggFunc::AvgDistinct,
            ("SUM", ..) => AggFunc::Sum,
            ("MIN", ..) => AggFunc::Min,
            ("MAX", ..) => AggFunc::Max,
            ("AVG", ..) => AggFunc::Avg,
            _ => unreachable!(),
        };
        // A grouping through a temporary table aggregates what the arguments show (its
        // fields hold the shown scale).
        // DISTINCT values are kept in a temporary structure at the shown scale, unless the
        // groups hold every source's primary key (MariaDB then drops the DISTINCT: each group
        // is one row).
        let rounded = self.round_aggregate_args.get()
            || (!self.groups_unique.get()
                && matches!(
                    func,
                    AggFunc::CountDistinct | AggFunc::SumDistinct | AggFunc::AvgDistinct
                ));
        let (arg, arg_type) = match (rounded, arg) {
            (true, Some(x)) => (
                Some(coerce(x, arg_type, arg_type.shown())),
                arg_type.shown(),
            ),
            (_, arg) => (arg, arg_type),
        };
        // COUNT(DISTINCT) of text counts what its collation tells apart; MIN/MAX order by it.
        let collated = matches!(func, AggFunc::Min | AggFunc::Max)
            && arg.as_ref().is_some_and(|x| self.is_ci(x, arg_type));
        let arg = match (func, arg) {
            (AggFunc::CountDistinct, Some(x)) => Some(self.collated(x, arg_type)),
            (_, Some(x)) if collated => Some(Expr::SortKey(Box::new(x))),
            (_, arg) => arg,
        };
        let ty = match func {
            AggFunc::CountStar | AggFunc::Count | AggFunc::CountDistinct => Type::Int,
            AggFunc::Sum | AggFunc::SumDistinct => match arg_type {
                Type::Int | Type::Null => Type::dec(0),
                d @ Type::Dec { .. } => d,
                // Exact, rounded once to a double (see `dataflow::accum`).
                Type::Double => Type::Double,
                t => return Err(self.err(e.span(), &format!("SUM needs a number, got {t}"))),
            },
            AggFunc::Avg | AggFunc::AvgDistinct => match arg_type {
                // MySQL divides the sum by the count: the quotient carries div_scale digits and
                // shows div_precision_increment more than the argument.
                Type::Int | Type::Null => Type::Dec {
                    scale: div_scale(0, 0),
                    shown: DIV_PRECISION_INCREMENT,
                },
                Type::Dec { scale, shown } => Type::Dec {
                    scale: div_scale(scale, 0),
                    shown: (shown + DIV_PRECISION_INCREMENT).min(MAX_SHOWN),
                },
                // The exact sum rounded to a double, divided by the count.
                Type::Double => Type::Double,
                t => return Err(self.err(e.span(), &format!("AVG needs a number, got {t}"))),
            },
            AggFunc::Min | AggFunc::Max => arg_type,
        };
        Ok(Aggregate {
            func,
            arg,
            arg_type,
            ty,
            collated,
            shows_group: None,
        })
    }

    fn resolve_with(
        &self,
        scopes: &[Scope],
        e: &ast::Expr,
        on_agg: &mut OnAggregate<'_>,
    ) -> Result<(Expr, Type), SqlError> {
        use ast::Expr as A;
        let rec =
            |x: &ast::Expr, on_agg: &mut OnAggregate<'_>| self.resolve_with(scopes, x, on_agg);
        match e {
            A::Identifier(id) if !self.is_column(scopes, &id.value) => {
                let alias = self
                    .having_aliases
                    .borrow()
                    .get(&id.value.to_ascii_lowercase())
                    .cloned();
                match alias {
                    // The alias's own expression; an alias naming itself is not looked up again.
                    Some(x) => {
                        let saved = std::mem::take(&mut *self.having_aliases.borrow_mut());
                        let r = rec(&x, on_agg);
                        *self.having_aliases.borrow_mut() = saved;
                        r
                    }
                    None => self.column(scopes, None, &id.value, e.span()),
                }
            }
            A::Identifier(id) => self.column(scopes, None, &id.value, e.span()),
            A::CompoundIdentifier(parts) => match parts.as_slice() {
                [t, c] => self.column(scopes, Some(&t.value), &c.value, e.span()),
                _ => Err(self.err(e.span(), "qualify columns as alias.column")),
            },
            A::Nested(x) => rec(x, on_agg),
            A::Value(v) => {
                let val = match &v.value {
                    ast::Value::Number(n, _) => {
                        if let Ok(i) = n.parse::<i64>() {
                            Value::Int(i)
                        } else if n.contains(['e', 'E']) {
                            // MySQL reads a number with an exponent as a DOUBLE.
                            match n.parse::<f64>().ok().and_then(crate::value::F64::new) {
                                Some(x) => Value::Double(x),
                                None => {
                                    return Err(self.err(
                                        e.span(),
                                        &format!("number `{n}` is out of DOUBLE's range"),
                                    ));
                                }
                            }
                        } else {
                            match Decimal::parse(n) {
                                Some(d) => Value::Dec(d),
                                None => {
                                    return Err(self.err(
                                        e.span(),
                                        &format!("number `{n}` cannot be represented exactly"),
                                    ));
                                }
                            }
                        }
                    }
                    ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => {
                        Value::Text(s.clone())
                    }
                    ast::Value::Boolean(b) => Value::Int(*b as i64),
                    ast::Value::Null => Value::Null,
                    other => {
                        return Err(
                            self.err(e.span(), &format!("literal {other} is not supported"))
                        );
                    }
                };
                let t = literal_type(&val);
                Ok((Expr::Literal(val), t))
            }
            A::TypedString(ts) => {
                let text = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                match ts.data_type {
                    ast::DataType::Date => parse_date(&text)
                        .map(|d| (Expr::Literal(Value::Date(d)), Type::Date))
                        .ok_or_else(|| self.err(e.span(), &format!("`{text}` is not a date"))),
                    ast::DataType::Timestamp(..) | ast::DataType::Datetime(_) => {
                        parse_datetime(&text)
                            .map(|d| (Expr::Literal(Value::DateTime(d)), Type::DateTime))
                            .ok_or_else(|| {
                                self.err(e.span(), &format!("`{text}` is not a date-time"))
                            })
                    }
                    _ => Err(self.err(e.span(), &format!("typed literal {e} is not supported"))),
                }
            }
            A::UnaryOp { op, expr } => {
                let (x, t) = rec(expr, on_agg)?;
                match op {
                    UnaryOperator::Not => Ok((Expr::Not(Box::new(x)), Type::Int)),
                    UnaryOperator::Minus if t.is_numeric() || t == Type::Null => match x {
                        Expr::Literal(Value::Int(i)) => Ok((Expr::Literal(Value::Int(-i)), t)),
                        Expr::Literal(Value::Dec(d)) => Ok((Expr::Literal(Value::Dec(-d)), t)),
                        x => Ok((Expr::Neg(Box::new(x)), t)),
                    },
                    UnaryOperator::Plus if t.is_numeric() => Ok((x, t)),
                    _ => Err(self.err(e.span(), &format!("operator {op} is not supported on {t}"))),
                }
            }
            A::BinaryOp { left, op, right } => {
                let bop = match op {
                    BinaryOperator::Plus => BinOp::Add,
                    BinaryOperator::Minus => BinOp::Sub,
                    BinaryOperator::Multiply => BinOp::Mul,
                    BinaryOperator::Divide => BinOp::Div,
                    BinaryOperator::Eq => BinOp::Eq,
                    BinaryOperator::NotEq => BinOp::Ne,
                    BinaryOperator::Lt => BinOp::Lt,
                    BinaryOperator::LtEq => BinOp::Le,
                    BinaryOperator::Gt => BinOp::Gt,
                    BinaryOperator::GtEq => BinOp::Ge,
                    BinaryOperator::And => BinOp::And,
                    BinaryOperator::Or => BinOp::Or,
                    other => {
                        return Err(self.err(
                            e.span(),
                            &format!("operator {other} is not supported ({SUPPORTED})"),
                        ));
                    }
                };
                let (l, lt) = rec(left, on_agg)?;
                if matches!(bop, BinOp::Add | BinOp::Sub)
                    && matches!(strip_nested(right), A::Interval(_))
                {
                    return self.interval(scopes, (l, lt), right, bop == BinOp::Sub, on_agg);
                }
                let (r, rt) = rec(right, on_agg)?;
                self.binary(bop, l, lt, r, rt, e.span())
            }
            A::IsNull(x) => Ok((Expr::IsNull(Box::new(rec(x, on_agg)?.0), false), Type::Int)),
            A::IsNotNull(x) => Ok((Expr::IsNull(Box::new(rec(x, on_agg)?.0), true), Type::Int)),
            A::In {
                expr,
                target,
                negated,
                ..
            } => {
                let ast::InTarget::List(list) = target else {
                    return Err(self.err(
                        e.span(),
                        &format!("IN supports a list of values, not a subquery ({SUPPORTED})"),
                    ));
                };
                let (x, t) = rec(expr, on_agg)?;
                let mut items = Vec::new();
                let mut item_types = Vec::new();
                for item in list {
                    let (i, it) = rec(item, on_agg)?;
                    let i = self.coerce_literal(i, it, t, item.span())?;
                    if !comparable(t, literal_or(it, &i)) {
                        return Err(self.err(item.span(), &format!("cannot compare {t} with {it}")));
                    }
                    item_types.push(literal_or(it, &i));
                    items.push(i);
                }
                // Text compares under its collation (see `binary_with`).
                if t == Type::Text
                    && !self.reads_binary(&x)
                    && !items.iter().any(|i| self.reads_binary(i))
                {
                    let x = Expr::Collate(Box::new(x));
                    let items = items
                        .into_iter()
                        .zip(&item_types)
                        .map(|(i, it)| self.collated(i, *it))
                        .collect();
                    return Ok((Expr::InList(Box::new(x), items, *negated), Type::Int));
                }
                // MariaDB turns `x IN (y)` into `x = y`, which rounds both sides to what they show.
                if let [y] = items.as_mut_slice() {
                    let yt = item_types[0];
                    *y = coerce(y.clone(), yt, yt.shown());
                    return Ok((
                        Expr::InList(Box::new(coerce(x, t, t.shown())), items, *negated),
                        Type::Int,
                    ));
                }
                Ok((Expr::InList(Box::new(x), items, *negated), Type::Int))
            }
            A::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let (x, t) = rec(expr, on_agg)?;
                let (lo, lot) = rec(low, on_agg)?;
                let (hi, hit) = rec(high, on_agg)?;
                let (ge, _) =
                    self.binary_with(BinOp::Ge, (x.clone(), t), (lo, lot), low.span(), false)?;
                let (le, _) = self.binary_with(BinOp::Le, (x, t), (hi, hit), high.span(), false)?;
                let both = Expr::Binary(BinOp::And, Box::new(ge), Box::new(le));
                Ok((
                    if *negated {
                        Expr::Not(Box::new(both))
                    } else {
                        both
                    },
                    Type::Int,
                ))
            }
            A::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = match operand {
                    Some(o) => Some(rec(o, on_agg)?),
                    None => None,
                };
                let mut whens = Vec::new();
                let mut results = Vec::new();
                for cw in conditions {
                    let (c, ct) = rec(&cw.condition, on_agg)?;
                    let cond = match &operand {
                        Some((o, ot)) => {
                            self.binary_with(
                                BinOp::Eq,
                                (o.clone(), *ot),
                                (c, ct),
                                cw.condition.span(),
                                false,
                            )?
                            .0
                        }
                        None => c,
                    };
                    let r = rec(&cw.result, on_agg)?;
                    whens.push(cond);
                    results.push(r);
                }
                let otherwise = match else_result {
                    Some(x) => Some(rec(x, on_agg)?),
                    None => None,
                };
                let types: Vec<Type> = results
                    .iter()
                    .map(|r| r.1)
                    .chain(otherwise.iter().map(|o| o.1))
                    .collect();
                let ty = unify(&types).map_err(|m| self.err(e.span(), &format!("CASE: {m}")))?;
                let whens = whens
                    .into_iter()
                    .zip(results)
                    .map(|(c, (r, rt))| (c, coerce(r, rt, ty)))
                    .collect();
                let otherwise = otherwise.map(|(o, ot)| Box::new(coerce(o, ot, ty)));
                Ok((Expr::Case(whens, otherwise), ty))
            }
            A::Function(f) => {
                let name = object_parts(&f.name).join(".").to_ascii_uppercase();
                match name.as_str() {
                    "COUNT" | "SUM" | "MIN" | "MAX" | "AVG" => on_agg(&name, e),
                    _ => {
                        let FunctionArguments::List(list) = &f.args else {
                            return Err(self.err(e.span(), &format!("{name} needs arguments")));
                        };
                        if f.filter.is_some() || f.over.is_some() || !list.clauses.is_empty() {
                            return Err(self.err(
                                e.span(),
                                &format!(
                                    "{name}: FILTER, OVER and clauses in calls are not supported"
                                ),
                            ));
                        }
                        let mut raw = Vec::new();
                        for a in &list.args {
                            match a {
                                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => raw.push(x),
                                _ => return Err(self.err(a.span(), "unsupported argument")),
                            }
                        }
                        // DATE_ADD(d, INTERVAL n unit) and DATE_SUB.
                        if let ("DATE_ADD" | "DATE_SUB" | "ADDDATE" | "SUBDATE", [d, i]) =
                            (name.as_str(), raw.as_slice())
                        {
                            let d = rec(d, on_agg)?;
                            let negate = name == "DATE_SUB" || name == "SUBDATE";
                            return self.interval(scopes, d, i, negate, on_agg);
                        }
                        let mut args = Vec::new();
                        for x in &raw {
                            args.push(rec(x, on_agg)?);
                        }
                        match (name.as_str(), args.len()) {
                            ("IF", 3) => {
                                let mut it = args.into_iter();
                                let (c, _) = it.next().unwrap();
                                let (a, at) = it.next().unwrap();
                                let (b, bt) = it.next().unwrap();
                                let ty = unify(&[at, bt])
                                    .map_err(|m| self.err(e.span(), &format!("IF: {m}")))?;
                                return Ok((
                                    Expr::Case(
                                        vec![(c, coerce(a, at, ty))],
                                        Some(Box::new(coerce(b, bt, ty))),
                                    ),
                                    ty,
                                ));
                            }
                            ("ROUND", 1 | 2) => {
                                let digits = match raw.get(1).map(|x| strip_nested(x)) {
                                    None => 0,
                                    Some(ast::Expr::Value(v)) => match &v.value {
                                        ast::Value::Number(n, _) => n.parse::<u8>().ok().filter(|d| *d <= 30).ok_or_else(|| self.err(e.span(), "ROUND's digits must be an integer literal 0..=30"))?,
                                        _ => return Err(self.err(e.span(), "ROUND's digits must be an integer literal 0..=30")),
                                    },
                                    Some(_) => return Err(self.err(e.span(), "ROUND's digits must be an integer literal 0..=30")),
                                };
                                let x = args.into_iter().next().unwrap();
                                return super::func::round(x, digits)
                                    .map_err(|m| self.err(e.span(), &m));
                            }
                            _ => {}
                        }
                        if !matches!(name.as_str(), "DATE" | "COALESCE" | "IFNULL") {
                            return match super::func::resolve(&name, args) {
                                Ok(Some(r)) => Ok(r),
                                Ok(None) => Err(self.err(
                                    e.span(),
                                    &format!("function {name} is not supported (functions: {}; {SUPPORTED})", super::func::NAMES),
                                )),
                                Err(m) => Err(self.err(e.span(), &m)),
                            };
                        }
                        match (name.as_str(), args.len()) {
                            ("DATE", 1) => {
                                let (x, t) = args.pop().unwrap();
                                match t {
                                    Type::DateTime | Type::Date | Type::Null => {
                                        Ok((Expr::Date(Box::new(x)), Type::Date))
                                    }
                                    t => Err(self.err(
                                        e.span(),
                                        &format!("DATE() needs a date or datetime, got {t}"),
                                    )),
                                }
                            }
                            ("COALESCE", n) | ("IFNULL", n)
                                if n >= 1 && (name != "IFNULL" || n == 2) =>
                            {
                                let types: Vec<Type> = args.iter().map(|a| a.1).collect();
                                let ty = unify(&types)
                                    .map_err(|m| self.err(e.span(), &format!("{name}: {m}")))?;
                                Ok((
                                    Expr::Coalesce(
                                        args.into_iter().map(|(a, t)| coerce(a, t, ty)).collect(),
                                    ),
                                    ty,
                                ))
                            }
                            _ => {
                                Err(self
                                    .err(e.span(), &format!("wrong number of arguments to {name}")))
                            }
                        }
                    }
                }
            }
            other => Err(self.err(
                other.span(),
                &format!("expression `{other}` is not supported ({SUPPORTED})"),
            )),
        }
    }

    /// `d + INTERVAL n unit` (or minus, when `negate`).
    fn interval(
        &self,
        scopes: &[Scope],
        d: (Expr, Type),
        interval: &ast::Expr,
        negate: bool,
        on_agg: &mut OnAggregate<'_>,
    ) -> Result<(Expr, Type), SqlError> {
        let ast::Expr::Interval(iv) = strip_nested(interval) else {
            return Err(self.err(
                interval.span(),
                "expected INTERVAL n unit (e.g. INTERVAL 1 DAY)",
            ));
        };
        let unit = iv
            .leading_field
            .as_ref()
            .and_then(|f| super::func::Unit::parse(&f.to_string().to_ascii_uppercase()))
            .filter(|_| iv.last_field.is_none())
            .ok_or_else(|| {
                self.err(
                    interval.span(),
                    "INTERVAL needs one unit of MICROSECOND, SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER, YEAR",
                )
            })?;
        let (n, nt) = self.resolve_with(scopes, &iv.value, on_agg)?;
        let n = if negate { Expr::Neg(Box::new(n)) } else { n };
        super::func::interval(d, (n, nt), unit).map_err(|m| self.err(interval.span(), &m))
    }

    /// A literal compared with a date/datetime column is parsed as one, and a string literal
    /// compared with a number as a number, as MySQL does.
    fn coerce_literal(&self, e: Expr, t: Type, target: Type, span: Span) -> Result<Expr, SqlError> {
        match (&e, t, target) {
            (Expr::Literal(Value::Text(s)), Type::Text, Type::Int | Type::Dec { .. }) => {
                let d = Decimal::parse(s).ok_or_else(|| {
                    self.err(
                        span,
                        &format!("`{s}` is compared with a number but is not one (MySQL would compare it as 0 with a warning)"),
                    )
                })?;
                Ok(Expr::Literal(match d.scale {
                    0 => d
                        .mantissa_i128()
                        .and_then(|m| i64::try_from(m).ok())
                        .map_or(Value::Dec(d), Value::Int),
                    _ => Value::Dec(d),
                }))
            }
            (Expr::Literal(Value::Text(s)), Type::Text, Type::Date) => parse_date(s)
                .map(|d| Expr::Literal(Value::Date(d)))
                .ok_or_else(|| self.err(span, &format!("`{s}` is not a date (YYYY-MM-DD)"))),
            (Expr::Literal(Value::Text(s)), Type::Text, Type::DateTime) => parse_datetime(s)
                .map(|d| Expr::Literal(Value::DateTime(d)))
                .ok_or_else(|| self.err(span, &format!("`{s}` is not a date-time"))),
            _ => Ok(e),
        }
    }

    /// A binary operation. The operands of a comparison are rounded to the digits they show
    /// first, as MariaDB's comparison operators do (`1/3 = 0.3333` is true).
    fn binary(
        &self,
        op: BinOp,
        l: Expr,
        lt: Type,
        r: Expr,
        rt: Type,
        span: Span,
    ) -> Result<(Expr, Type), SqlError> {
        self.binary_with(op, (l, lt), (r, rt), span, true)
    }

    /// A binary operation; `round` rounds a comparison's operands to what they show (BETWEEN,
    /// IN lists and CASE x WHEN compare the carried values in MariaDB).
    fn binary_with(
        &self,
        op: BinOp,
        (l, lt): (Expr, Type),
        (r, rt): (Expr, Type),
        span: Span,
        round: bool,
    ) -> Result<(Expr, Type), SqlError> {
        let is_cmp = matches!(
            op,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        );
        let (l, lt, r, rt) = if is_cmp {
            let r2 = self.coerce_literal(r, rt, lt, span)?;
            let rt2 = literal_or(rt, &r2);
            let l2 = self.coerce_literal(l, lt, rt2, span)?;
            let lt2 = literal_or(lt, &l2);
            if round {
                (
                    coerce(l2, lt2, lt2.shown()),
                    lt2.shown(),
                    coerce(r2, rt2, rt2.shown()),
                    rt2.shown(),
                )
            } else {
                (l2, lt2, r2, rt2)
            }
        } else {
            (l, lt, r, rt)
        };
        // Text compares under its collation: insensitively unless a side is binary.
        let (l, r) = if is_cmp
            && matches!(lt, Type::Text | Type::Null)
            && matches!(rt, Type::Text | Type::Null)
            && !self.reads_binary(&l)
            && !self.reads_binary(&r)
        {
            (self.collated(l, lt), self.collated(r, rt))
        } else {
            (l, r)
        };
        let ty = binary_type(op, lt, rt).map_err(|m| self.err(span, &m))?;
        Ok((Expr::Binary(op, Box::new(l), Box::new(r)), ty))
    }

    fn column(
        &self,
        scopes: &[Scope],
        qualifier: Option<&str>,
        name: &str,
        span: Span,
    ) -> Result<(Expr, Type), SqlError> {
        let mut found = None;
        for s in scopes {
            if qualifier.is_some_and(|q| !s.alias.eq_ignore_ascii_case(q)) {
                continue;
            }
            let table = &self.catalog.tables[s.table];
            if let Some(i) = table.column(name) {
                if found.is_some() {
                    return Err(self.err(
                        span,
                        &format!("column `{name}` is ambiguous: qualify it with a table alias"),
                    ));
                }
                found = Some((
                    Expr::Column(s.offset + i),
                    column_type(&table.columns[i].ty),
                ));
            }
        }
        found.ok_or_else(|| {
            let known: Vec<String> = scopes.iter().map(|s| s.alias.clone()).collect();
            match qualifier {
                Some(q) if !scopes.iter().any(|s| s.alias.eq_ignore_ascii_case(q)) => self.err(
                    span,
                    &format!("unknown table alias `{q}` (in scope: {})", known.join(", ")),
                ),
                Some(q) => {
                    let s = scopes
                        .iter()
                        .find(|s| s.alias.eq_ignore_ascii_case(q))
                        .unwrap();
                    let t = &self.catalog.tables[s.table];
                    let cols: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
                    self.err(
                        span,
                        &format!(
                            "unknown column `{q}.{name}`: {} has {}",
                            t.qualified(),
                            cols.join(", ")
                        ),
                    )
                }
                None => self.err(
                    span,
                    &format!(
                        "unknown column `{name}` (tables in scope: {})",
                        known.join(", ")
                    ),
                ),
            }
        })
    }
}

/// The type of a literal's value.
fn literal_type(v: &Value) -> Type {
    match v {
        Value::Null => Type::Null,
        Value::Int(_) => Type::Int,
        Value::Dec(d) => Type::dec(d.scale),
        Value::Text(_) => Type::Text,
        Value::Bytes(_) => Type::Bytes,
        Value::Date(_) => Type::Date,
        Value::DateTime(_) => Type::DateTime,
        Value::Double(_) => Type::Double,
        Value::Time(_) => Type::Time,
    }
}

fn literal_or(t: Type, e: &Expr) -> Type {
    match e {
        Expr::Literal(v) => literal_type(v),
        _ => t,
    }
}

/// The expression type of a column type.
pub fn column_type(t: &ColumnType) -> Type {
    match t {
        ColumnType::Int { .. } | ColumnType::Year => Type::Int,
        ColumnType::Bit { width } if *width <= 63 => Type::Int,
        ColumnType::Bit { .. } | ColumnType::BigIntUnsigned => Type::dec(0),
        ColumnType::Decimal { scale, .. } => Type::dec(*scale),
        ColumnType::Double { .. } => Type::Double,
        ColumnType::Text { .. } | ColumnType::Enum(_) | ColumnType::Set(_) | ColumnType::Json => {
            Type::Text
        }
        ColumnType::Bytes | ColumnType::Geometry => Type::Bytes,
        ColumnType::Date => Type::Date,
        ColumnType::DateTime { .. } | ColumnType::Timestamp { .. } => Type::DateTime,
        ColumnType::Time { .. } => Type::Time,
    }
}

fn strip_nested(e: &ast::Expr) -> &ast::Expr {
    match e {
        ast::Expr::Nested(x) => strip_nested(x),
        other => other,
    }
}

fn conjuncts(e: &ast::Expr) -> Vec<&ast::Expr> {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut v = conjuncts(left);
            v.extend(conjuncts(right));
            v
        }
        ast::Expr::Nested(x) => conjuncts(x),
        other => vec![other],
    }
}

fn and_all(mut v: Vec<Expr>) -> Option<Expr> {
    let first = if v.is_empty() {
        return None;
    } else {
        v.remove(0)
    };
    Some(v.into_iter().fold(first, |a, b| {
        Expr::Binary(BinOp::And, Box::new(a), Box::new(b))
    }))
}

fn sources_of(scopes: &[Scope], e: &Expr) -> BTreeSet<usize> {
    let mut cols = Vec::new();
    e.columns(&mut cols);
    cols.into_iter().map(|c| source_of(scopes, c)).collect()
}

fn column_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(i) => i.value.clone(),
        ast::Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.clone()).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// Rebuilds `e` with each direct child replaced by `f(child)`.
fn rebuild(e: &Expr, f: &mut dyn FnMut(&Expr) -> Expr) -> Expr {
    match e {
        Expr::Column(_) | Expr::Literal(_) => e.clone(),
        Expr::Binary(op, l, r) => Expr::Binary(*op, Box::new(f(l)), Box::new(f(r))),
        Expr::Not(a) => Expr::Not(Box::new(f(a))),
        Expr::Neg(a) => Expr::Neg(Box::new(f(a))),
        Expr::IsNull(a, n) => Expr::IsNull(Box::new(f(a)), *n),
        Expr::InList(a, l, n) => {
            let a = f(a);
            Expr::InList(Box::new(a), l.iter().map(&mut *f).collect(), *n)
        }
        Expr::Case(w, o) => {
            let w = w.iter().map(|(c, r)| (f(c), f(r))).collect();
            Expr::Case(w, o.as_ref().map(|o| Box::new(f(o))))
        }
        Expr::Coalesce(a) => Expr::Coalesce(a.iter().map(&mut *f).collect()),
        Expr::Date(a) => Expr::Date(Box::new(f(a))),
        Expr::Cast(a, t) => Expr::Cast(Box::new(f(a)), *t),
        Expr::Func(fu, a) => Expr::Func(*fu, a.iter().map(&mut *f).collect()),
        Expr::Collate(a) => Expr::Collate(Box::new(f(a))),
        Expr::SortKey(a) => Expr::SortKey(Box::new(f(a))),
    }
}
