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
    let scan = |i: usize| -> Vec<Row> {
        let s = &plan.sources[i];
        tables[s.table]
            .iter()
            .map(|r| s.columns.iter().map(|c| r[*c].clone()).collect::<Row>())
            .filter(|r| {
                s.filter
                    .as_ref()
                    .is_none_or(|f| f.holds(r).unwrap_or(false))
            })
            .collect()
    };
    let mut joined = scan(0);
    for (ji, j) in plan.joins.iter().enumerate() {
        let right = scan(ji + 1);
        let width = plan.sources[ji + 1].columns.len();
        let mut index: HashMap<Row, Vec<&Row>> = HashMap::new();
        for r in &right {
            if let Ok(k) = j
                .right_keys
                .iter()
                .map(|e| e.eval(r))
                .collect::<Result<Row, _>>()
                && !k.iter().any(Value::is_null)
            {
                index.entry(k).or_default().push(r);
            }
        }
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
            let matches = if k.iter().any(Value::is_null) {
                None
            } else {
                index.get(&k)
            };
            match matches {
                Some(rs) => {
                    for r in rs {
                        let mut row = l.clone();
                        row.extend(r.iter().cloned());
                        next.push(row);
                    }
                }
                None if j.kind == JoinKind::Left => {
                    let mut row = l.clone();
                    row.extend(std::iter::repeat_n(Value::Null, width));
                    next.push(row);
                }
                None => {}
            }
        }
        joined = next;
    }
    let mut groups: BTreeMap<Row, Vec<Row>> = BTreeMap::new();
    for row in joined {
        if plan
            .filter
            .as_ref()
            .is_some_and(|f| !f.holds(&row).unwrap_or(false))
        {
            continue;
        }
        if let Ok(k) = plan
            .group_by
            .iter()
            .map(|e| e.eval(&row))
            .collect::<Result<Row, _>>()
        {
            groups.entry(k).or_default().push(row);
        }
    }
    let mut out = BTreeMap::new();
    'groups: for (key, rows) in groups {
        let mut group_row = key.clone();
        for a in &plan.aggregates {
            let mut vals = Vec::new();
            for r in &rows {
                match &a.arg {
                    None => vals.push(Value::Int(1)),
                    Some(e) => match e.eval(r) {
                        Ok(Value::Null) => {}
                        Ok(v) => vals.push(v),
                        Err(_) => continue 'groups,
                    },
                }
            }
            let v = match a.func {
                AggFunc::CountStar => Value::Int(rows.len() as i64),
                AggFunc::Count => Value::Int(vals.len() as i64),
                AggFunc::CountDistinct => {
                    Value::Int(vals.iter().collect::<BTreeSet<_>>().len() as i64)
                }
                AggFunc::Sum | AggFunc::Avg => {
                    if vals.is_empty() {
                        Value::Null
                    } else {
                        let scale = match a.arg_type {
                            Type::Dec(s) => s,
                            _ => 0,
                        };
                        let mut sum = Decimal::new(0, scale);
                        for v in &vals {
                            sum = sum
                                .checked_add(v.as_decimal().expect("numeric"))
                                .expect("sum in range");
                        }
                        if a.func == AggFunc::Sum {
                            Value::Dec(sum)
                        } else {
                            let Type::Dec(rs) = a.ty else { unreachable!() };
                            Value::Dec(
                                sum.checked_div(Decimal::new(vals.len() as i128, 0), rs)
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
        out.insert(document_id(&key), doc);
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
