//! A reference evaluator, independent of the dataflow: materialize the source tables from the
//! change events (newest version per key), then evaluate each view from scratch with hash
//! joins, a map of groups and direct aggregation over values. Tests compare the engine with it
//! at every completed time.
//!
//! It shares the plan and the scalar expression evaluator with the engine, but none of the
//! incremental machinery (ingest, arrangements, difference types, emission).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::dataflow::emit::document_id;
use crate::decode::{ChangeEvent, Row};
use crate::sql::ViewPlan;
use crate::sql::expr::Type;
use crate::sql::plan::{AggFunc, JoinKind};
use crate::time::{Time, Version};
use crate::value::{Decimal, Value};

/// Source tables: per table id, its rows.
pub type Tables = Vec<Vec<Row>>;

/// The tables as of time `t` (every event with time `<= t`; all events when `t` is `None`):
/// per key, the row of the newest version.
pub fn tables_at(n_tables: usize, events: &[ChangeEvent], t: Option<Time>) -> Tables {
    let mut latest: HashMap<(usize, &Row), (Version, Option<&Row>)> = HashMap::new();
    for e in events {
        if t.is_some_and(|t| e.time > t) {
            continue;
        }
        let slot = latest
            .entry((e.table, &e.key))
            .or_insert((e.version, e.row.as_ref()));
        if e.version > slot.0 {
            *slot = (e.version, e.row.as_ref());
        }
    }
    let mut tables = vec![Vec::new(); n_tables];
    for ((table, _), (_, row)) in latest {
        if let Some(r) = row {
            tables[table].push(r.clone());
        }
    }
    for t in &mut tables {
        t.sort();
    }
    tables
}

/// Evaluates a view over tables: document id -> document. Rows that fail to evaluate are
/// excluded, as in the engine.
pub fn evaluate(plan: &ViewPlan, tables: &Tables) -> BTreeMap<String, Row> {
    // A source's projected rows whose filter holds, and those whose filter fails to evaluate.
    let scan = |i: usize| -> (Vec<Row>, Vec<Row>) {
        let s = &plan.sources[i];
        let (mut pass, mut failed) = (Vec::new(), Vec::new());
        for r in &tables[s.table] {
            match s.holds(r) {
                Ok(true) => pass.push(s.project(r)),
                Ok(false) => {}
                Err(_) => failed.push(s.project(r)),
            }
        }
        (pass, failed)
    };
    let mut joined = scan(0).0;
    for (ji, j) in plan.joins.iter().enumerate() {
        let (right, failed) = scan(ji + 1);
        let width = plan.sources[ji + 1].columns.len();
        let key_of = |r: &Row| {
            j.right_keys
                .iter()
                .map(|e| e.eval(r))
                .collect::<Result<Row, _>>()
                .ok()
                .filter(|k| !k.iter().any(|v| v.is_null()))
        };
        let mut index: HashMap<Row, Vec<&Row>> = HashMap::new();
        for r in &right {
            if let Some(k) = key_of(r) {
                index.entry(k).or_default().push(r);
            }
        }
        // A right row whose ON condition fails might have matched: a LEFT JOIN's left rows of
        // its key are out of the view, neither matched nor padded.
        let poisoned: BTreeSet<Row> = failed.iter().filter_map(key_of).collect();
        let mut next = Vec::new();
        for l in joined {
            let Ok(k) = j
                .left_keys
                .iter()
                .map(|e| e.eval(&l))
                .collect::<Result<Row, _>>()
            else {
                continue;
            };
            let matches = if k.iter().any(|v| v.is_null()) {
                None
            } else {
                index.get(&k)
            };
            match matches {
                Some(rs) => {
                    for r in rs {
                        let mut row = l.clone();
                        row.extend_from_row(r);
                        next.push(row);
                    }
                }
                None if j.kind == JoinKind::Left && !poisoned.contains(&k) => {
                    let mut row = l.clone();
                    row.extend(std::iter::repeat_n(Value::Null, width));
                    next.push(row);
                }
                None => {}
            }
        }
        joined = next;
    }
    // A row is in the view as a whole or not at all: one whose key or any aggregate argument
    // fails to evaluate is left out of every aggregate.
    let mut groups: BTreeMap<Row, Vec<Row>> = BTreeMap::new();
    for row in joined {
        if plan
            .filter
            .as_ref()
            .is_some_and(|f| !f.holds(&row).unwrap_or(false))
        {
            continue;
        }
        let key = plan.group_by.iter().map(|e| e.eval(&row)).collect();
        let args = plan
            .aggregates
            .iter()
            .map(|a| a.arg.as_ref().map_or(Ok(Value::Int(1)), |e| e.eval(&row)))
            .collect();
        if let (Ok(k), Ok(args)) = (key, args) {
            groups.entry(k).or_default().push(args);
        }
    }
    if plan.global {
        groups.entry(Row::new()).or_default();
    }
    let mut out = BTreeMap::new();
    'groups: for (key, rows) in groups {
        let mut group_row = key.clone();
        for (i, a) in plan.aggregates.iter().enumerate() {
            let vals: Vec<Value> = rows
                .iter()
                .map(|r| r.get(i))
                .filter(|v| !v.is_null())
                .collect();
            let v = match a.func {
                AggFunc::CountStar => Value::Int(rows.len() as i64),
                AggFunc::Count => Value::Int(vals.len() as i64),
                AggFunc::CountDistinct => {
                    Value::Int(vals.iter().collect::<BTreeSet<_>>().len() as i64)
                }
                AggFunc::Sum | AggFunc::Avg | AggFunc::SumDistinct | AggFunc::AvgDistinct => {
                    let vals: Vec<Value> =
                        if matches!(a.func, AggFunc::SumDistinct | AggFunc::AvgDistinct) {
                            vals.iter()
                                .cloned()
                                .collect::<BTreeSet<_>>()
                                .into_iter()
                                .collect()
                        } else {
                            vals.clone()
                        };
                    if vals.is_empty() {
                        Value::Null
                    } else if a.arg_type == Type::Double {
                        // The correctly rounded sum, by a method other than the engine's.
                        let xs: Vec<f64> = vals.iter().filter_map(Value::as_f64).collect();
                        let sum = fsum(&xs);
                        let avg = matches!(a.func, AggFunc::Avg | AggFunc::AvgDistinct);
                        let x = if avg { sum / xs.len() as f64 } else { sum };
                        match crate::value::F64::new(x) {
                            Some(x) => Value::Double(x),
                            // Out of range: the engine reports it and leaves the group out.
                            None => continue 'groups,
                        }
                    } else {
                        let scale = match a.arg_type {
                            Type::Dec { scale, .. } => scale,
                            _ => 0,
                        };
                        let mut sum = Decimal::new(0, scale);
                        for v in &vals {
                            sum = sum
                                .checked_add(v.as_decimal().expect("numeric"))
                                .expect("sum in range");
                        }
                        if matches!(a.func, AggFunc::Sum | AggFunc::SumDistinct) {
                            Value::Dec(sum)
                        } else {
                            Value::Dec(
                                sum.checked_div_sql(Decimal::new(vals.len() as i128, 0))
                                    .expect("avg"),
                            )
                        }
                    }
                }
                AggFunc::Min => vals
                    .iter()
                    .min_by(|x, y| x.sql_cmp(y).expect("comparable"))
                    .cloned()
                    .unwrap_or(Value::Null),
                AggFunc::Max => vals
                    .iter()
                    .max_by(|x, y| x.sql_cmp(y).expect("comparable"))
                    .cloned()
                    .unwrap_or(Value::Null),
            };
            let v = crate::dataflow::render::uncollate(a, v);
            group_row.push(v);
        }
        if plan
            .having
            .as_ref()
            .is_some_and(|h| !h.holds(&group_row).unwrap_or(false))
        {
            continue;
        }
        let Ok(doc) = plan
            .output
            .iter()
            .map(|o| o.expr.eval(&group_row))
            .collect::<Result<Row, _>>()
        else {
            continue;
        };
        out.insert(document_id(key.iter().take(plan.id_width)), doc);
    }
    out
}

/// Evaluates every view: `(view index, id) -> doc`, the shape of the engine's final state.
pub fn evaluate_all(views: &[ViewPlan], tables: &Tables) -> BTreeMap<(usize, String), Row> {
    let mut out = BTreeMap::new();
    for (vi, plan) in views.iter().enumerate() {
        for (id, doc) in evaluate(plan, tables) {
            out.insert((vi, id), doc);
        }
    }
    out
}

/// The correctly rounded sum of `xs` (Shewchuk's partials, as Python's `math.fsum`).
fn fsum(xs: &[f64]) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for &x0 in xs {
        let mut x = x0;
        let mut i = 0;
        for j in 0..partials.len() {
            let mut y = partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        partials.truncate(i);
        partials.push(x);
    }
    let mut n = partials.len();
    if n == 0 {
        return 0.0;
    }
    n -= 1;
    let mut hi = partials[n];
    let mut lo = 0.0;
    while n > 0 {
        let x = hi;
        n -= 1;
        let y = partials[n];
        hi = x + y;
        let yr = hi - x;
        lo = y - yr;
        if lo != 0.0 {
            break;
        }
    }
    if n > 0 && (lo < 0.0 && partials[n - 1] < 0.0 || lo > 0.0 && partials[n - 1] > 0.0) {
        let y = lo * 2.0;
        let x = hi + y;
        if y == x - hi {
            hi = x;
        }
    }
    hi
}
