//! A [`ViewPlan`] rendered as differential-dataflow operators.
//!
//! scan (pushed filter over the table row, then project the columns read later) -> equi-joins (arranged; LEFT = join + padded antijoin)
//! -> filter -> group: accumulable aggregates move into the difference ([`Accum`]) and
//! `count_total` sums them; MIN/MAX reduce over distinct values; COUNT(DISTINCT) counts distinct
//! pairs; the parts of a group meet in one small reduce -> HAVING -> `(group key, document)`.
//!
//! Contract: the output collection holds exactly one `(key, doc)` per group present in the view
//! at each time, so its changes at `t` are the view's changes at `t`.

use std::sync::Arc;

use differential_dataflow::Hashable;
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::operators::{CountTotal, ThresholdTotal};
use differential_dataflow::{AsCollection, VecCollection};
use ethnum::I256;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::Exchange;
use timely::dataflow::operators::vec::{Map as _, ToStream};

use super::accum::{
    Accum, DECIMAL_LIMBS, DOUBLE_LIMBS, add_double, decimal_limbs, decimal_total, double_total,
    split_decimal,
};
use super::row_spine::{RowBatcher, RowSpine};
use crate::decode::Row;
use crate::metrics::Metrics;
use crate::row::RowRef;
use crate::sql::expr::{EvalError, Expr, Type};
use crate::sql::plan::{AggFunc, Aggregate, JoinKind, ViewPlan};
use crate::time::Time;
use crate::value::{Decimal, F64, Value};

/// A collection of rows at dataflow time.
pub type Rows<'s> = VecCollection<'s, Time, Row>;

fn report(metrics: &Metrics, view: &str, e: EvalError) {
    let n = metrics
        .eval_errors
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if n < 20 {
        tracing::warn!(view, error = %e, "row excluded from view: evaluation error");
    }
}

/// Rows arranged by a key, in packed batches ([`RowSpine`]).
pub type KeyedArrangement<'s> = Arranged<'s, TraceAgent<RowSpine>>;

/// `(key, row)` pairs arranged by key in packed batches.
fn arrange_rows<'s>(rows: VecCollection<'s, Time, (Row, Row)>) -> KeyedArrangement<'s> {
    rows.arrange_named::<RowBatcher, RowSpine>("ArrangeRows", RowBatcher::new)
}

/// What the views of one dataflow share: the arrangements of their scanned, keyed sources.
/// Views that scan one table with the same filter and the same key (in table columns) share
/// one arrangement, which keeps the union of the columns they keep; each view picks its own
/// columns from it when it joins. (An evaluation error of a shared source's key is counted
/// once, not once per view.)
#[derive(Default)]
pub struct Shared<'s> {
    keyed: std::collections::HashMap<String, KeyedArrangement<'s>>,
    /// Per sharing id ([`share_id`]): the table columns the shared arrangement keeps (the
    /// first view's, then those others add).
    columns: std::collections::HashMap<String, Vec<usize>>,
}

impl Shared<'_> {
    /// Sharing planned for these views (every view rendered with it must be among them).
    pub fn new(views: &[ViewPlan]) -> Self {
        let mut columns: std::collections::HashMap<String, Vec<usize>> = Default::default();
        for plan in views {
            for (i, keys) in arranged_sources(plan) {
                let s = &plan.sources[i];
                let kept = columns.entry(share_id(s, keys)).or_default();
                for c in &s.columns {
                    if !kept.contains(c) {
                        kept.push(*c);
                    }
                }
            }
        }
        Shared {
            keyed: Default::default(),
            columns,
        }
    }
}

/// The sources a view arranges with [`Shared`] (the two sides of a first inner join, the
/// right side of later ones), with the keys they are arranged by.
fn arranged_sources(plan: &ViewPlan) -> Vec<(usize, &[Expr])> {
    let mut out = Vec::new();
    for (ji, jp) in plan.joins.iter().enumerate() {
        if jp.kind == JoinKind::Inner {
            if ji == 0 {
                out.push((0, &jp.left_keys[..]));
            }
            out.push((ji + 1, &jp.right_keys[..]));
        }
    }
    out
}

/// What makes two keyed sources one arrangement: the table, the filter (over table rows) and
/// the key expressions, rewritten over table columns.
fn share_id(s: &crate::sql::plan::SourcePlan, keys: &[Expr]) -> String {
    let keys: Vec<Expr> = keys
        .iter()
        .map(|k| k.map_columns(&|c| s.columns[c]))
        .collect();
    format!("{}|{:?}|{:?}", s.table, s.filter, keys)
}

/// A joined row: the left row then the right one, each restricted to the view's columns
/// (`None`: the row is the view's already).
fn join_rows(l: RowRef, lp: Option<&[usize]>, r: RowRef, rp: Option<&[usize]>) -> Row {
    let mut out = Row::with_encoded_capacity(l.bytes().len() + r.bytes().len());
    for (row, p) in [(l, lp), (r, rp)] {
        match p {
            None => out.extend_from_ref(row),
            Some(p) => out.extend_projected(row, p),
        }
    }
    out
}

/// Renders one view over the per-table collections (`tables[id]`, present for every table the
/// plan reads). Returns `(group key, document)` pairs.
pub fn render_view<'s>(
    plan: &ViewPlan,
    tables: &[Option<Rows<'s>>],
    shared: &mut Shared<'s>,
    metrics: Arc<Metrics>,
) -> VecCollection<'s, Time, (Row, Row)> {
    let view: Arc<str> = plan.name.as_str().into();
    // A source's table rows that pass its pushed-down filter, projected to `cols` (table
    // columns).
    let scan = |i: usize, cols: Arc<[usize]>| -> Rows<'s> {
        let s = Arc::new(plan.sources[i].clone());
        let table = tables[s.table]
            .clone()
            .expect("every table a plan reads is rendered");
        checked(table, &metrics, &view, move |row: Row| {
            match s.holds(&row) {
                Ok(true) => (Some(row.project(&cols)), None),
                Ok(false) => (None, None),
                Err(e) => (None, Some(e)),
            }
        })
    };
    // A source's projected rows that pass its pushed-down filter, and, when `keep_failed`
    // (the right side of a LEFT JOIN), those whose filter failed to evaluate.
    let source = |i: usize, keep_failed: bool| -> (Rows<'s>, Option<Rows<'s>>) {
        let s = Arc::new(plan.sources[i].clone());
        if !keep_failed || s.filter.is_none() {
            return (scan(i, s.columns.clone().into()), None);
        }
        let table = tables[s.table]
            .clone()
            .expect("every table a plan reads is rendered");
        let marked = checked(table, &metrics, &view, move |row: Row| {
            match s.holds(&row) {
                Ok(true) => (Some((true, s.project(&row))), None),
                Ok(false) => (None, None),
                Err(e) => (Some((false, s.project(&row))), Some(e)),
            }
        });
        let pass = marked.clone().flat_map(|(ok, r)| ok.then_some(r));
        let failed = marked.flat_map(|(ok, r)| (!ok).then_some(r));
        (pass, Some(failed))
    };

    // `(key, row)` for rows whose key evaluates; a row whose key fails is out as a whole.
    let keyed = |rows: Rows<'s>, keys: Vec<Expr>| {
        checked(rows, &metrics, &view, move |row: Row| {
            match eval_all(&keys, &row) {
                Ok(k) => (Some((k, row)), None),
                Err(e) => (None, Some(e)),
            }
        })
    };
    // NULL keys never match; they only matter as unmatched rows of a LEFT JOIN.
    let no_null =
        |c: VecCollection<'s, Time, (Row, Row)>| c.filter(|(k, _)| !k.iter().any(|v| v.is_null()));
    // A source's rows with a non-NULL key, arranged by it: shared with every view that scans
    // the same table with the same filter and key (built by the first of them, with the union
    // of their columns), and the positions of this view's columns in its rows (`None`: all).
    let arranged_source = |shared: &mut Shared<'s>, i: usize, keys: &[Expr]| {
        let s = &plan.sources[i];
        let id = share_id(s, keys);
        let kept = shared
            .columns
            .get(&id)
            .cloned()
            .unwrap_or_else(|| s.columns.clone());
        let at = |c: usize| kept.iter().position(|k| *k == c).expect("a kept column");
        let picked: Vec<usize> = s.columns.iter().map(|&c| at(c)).collect();
        let all = picked.len() == kept.len() && picked.iter().enumerate().all(|(i, p)| i == *p);
        let picked = (!all).then(|| Arc::<[usize]>::from(picked));
        if let Some(a) = shared.keyed.get(&id) {
            return (a.clone(), picked);
        }
        let keys: Vec<Expr> = keys
            .iter()
            .map(|k| k.map_columns(&|c| at(s.columns[c])))
            .collect();
        let a = arrange_rows(no_null(keyed(scan(i, kept.into()), keys)));
        shared.keyed.insert(id, a.clone());
        (a, picked)
    };

    // Joins, left-deep in FROM order. `joined` is `None` while source 0 is not rendered yet
    // (an inner join may take it from a shared arrangement instead).
    let mut joined: Option<Rows<'s>> = None;
    for (ji, jp) in plan.joins.iter().enumerate() {
        if jp.kind == JoinKind::Inner {
            let (left, lp) = match joined.take() {
                None => arranged_source(shared, 0, &jp.left_keys),
                Some(rows) => (
                    arrange_rows(no_null(keyed(rows, jp.left_keys.clone()))),
                    None,
                ),
            };
            let (right, rp) = arranged_source(shared, ji + 1, &jp.right_keys);
            joined = Some(left.join_core(right, move |_k, l: RowRef, r: RowRef| {
                Some(join_rows(l, lp.as_deref(), r, rp.as_deref()))
            }));
            continue;
        }
        let rows = joined.take().unwrap_or_else(|| source(0, false).0);
        let (right_rows, right_failed) = source(ji + 1, true);
        let right_width = plan.sources[ji + 1].columns.len();
        let left_keyed = keyed(rows, jp.left_keys.clone());
        let right_keyed = no_null(keyed(right_rows, jp.right_keys.clone()));
        let matchable = no_null(left_keyed.clone());
        let inner = matchable
            .clone()
            .join_map(right_keyed.clone(), |_k, l: &Row, r: &Row| l.concat(r));
        let pad = move |row: Row| {
            let mut out = row;
            out.extend(std::iter::repeat_n(Value::Null, right_width));
            out
        };
        // A right row whose ON condition failed to evaluate might have matched: the left rows
        // of its key are neither matched nor unmatched, they are out.
        let right_keys = match right_failed {
            Some(failed) => right_keyed
                .concat(no_null(keyed(failed, jp.right_keys.clone())))
                .map(|(k, _)| k)
                .distinct_total(),
            None => right_keyed.map(|(k, _)| k).distinct_total(),
        };
        let unmatched = matchable.antijoin(right_keys).map(move |(_, row)| pad(row));
        let null_keyed = left_keyed
            .filter(|(k, _)| k.iter().any(|v| v.is_null()))
            .map(move |(_, row)| pad(row));
        joined = Some(inner.concat(unmatched).concat(null_keyed));
    }
    let mut joined = joined.unwrap_or_else(|| source(0, false).0);
    if let Some(f) = plan.filter.clone() {
        joined = checked(joined, &metrics, &view, move |row: Row| {
            match f.holds(&row) {
                Ok(true) => (Some(row), None),
                Ok(false) => (None, None),
                Err(e) => (None, Some(e)),
            }
        });
    }

    // Group: `(key, aggregate arguments)`, each evaluated once per row. A row whose key or any
    // argument fails to evaluate is out of every aggregate of its group, never in some of them.
    let group_by = plan.group_by.clone();
    let args: Vec<Option<Expr>> = plan.aggregates.iter().map(|a| a.arg.clone()).collect();
    let grouped = checked(joined, &metrics, &view, move |row: Row| {
        let evaluated = eval_all(&group_by, &row).and_then(|key| {
            let vals = args
                .iter()
                .map(|a| a.as_ref().map_or(Ok(Value::Null), |a| a.eval(&row)))
                .collect::<Result<Row, EvalError>>()?;
            Ok((key, vals))
        });
        match evaluated {
            Ok(x) => (Some(x), None),
            Err(e) => (None, Some(e)),
        }
    });

    // Accumulable aggregates, plus the row count in slot 0.
    let layout = Arc::new(AccumLayout::new(&plan.aggregates));
    let (m, v, l) = (metrics.clone(), view.clone(), layout.clone());
    let accumulated = grouped
        .clone()
        .explode(move |(key, row): (Row, Row)| match l.accumulate(&row) {
            Ok(acc) => Some((key, acc)),
            Err(e) => {
                report(&m, &v, e);
                None
            }
        })
        .count_total();

    let others: Vec<(usize, &Aggregate)> = plan
        .aggregates
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.func.accumulable())
        .collect();
    let aggregates = Arc::new(plan.aggregates.clone());
    let global = plan.global;
    // Only the spellings of case-insensitive group keys besides accumulable aggregates (the
    // common case of text groups): a group's spelling is present exactly while the group has
    // rows (its key and its spelling are NULL together), so the spellings are joined to the
    // accumulated values instead of meeting them in a reduce per group and time, and only
    // distinct spellings reach the MIN (they change rarely; the sums change with every row).
    // COUNT(DISTINCT x) joins the same way: its distinct values counted with NULL among them
    // are present exactly while the group has rows.
    let joinable = !global
        && others.iter().all(|(_, a)| {
            a.func == AggFunc::Min && a.shows_group.is_some() || a.func == AggFunc::CountDistinct
        });
    let group_rows: VecCollection<'s, Time, (Row, Row)> = if joinable {
        let (l, a) = (layout.clone(), aggregates.clone());
        let (m, v) = (metrics.clone(), view.clone());
        let mut rows =
            accumulated.flat_map(
                move |(key, acc): (Row, Accum)| match finish(&a, &l, &acc, &[]) {
                    Ok(vals) => Some((key, vals)),
                    Err(e) => {
                        report(&m, &v, e);
                        None
                    }
                },
            );
        for (i, agg) in others {
            let distinct = grouped
                .clone()
                .map(move |(key, mut vals): (Row, Row)| {
                    let x = vals.replace(i, Value::Null);
                    (key, x)
                })
                .distinct_total();
            let part = if agg.func == AggFunc::CountDistinct {
                distinct
                    .explode(|(k, x): (Row, Value)| {
                        Some((k, Accum(vec![1, i128::from(!x.is_null())])))
                    })
                    .count_total()
                    .map(|(k, acc)| (k, Value::Int(acc.get(1) as i64)))
            } else {
                let agg = agg.clone();
                distinct
                    .reduce(
                        |_k, input: &[(&Value, isize)], out: &mut Vec<(Value, isize)>| {
                            out.push((input[0].0.clone(), 1))
                        },
                    )
                    .map(move |(k, x)| (k, uncollate(&agg, x)))
            };
            rows = rows.join_map(part, move |key: &Row, vals: &Row, x: &Value| {
                let mut vals = vals.clone();
                vals.replace(i, x.clone());
                (key.clone(), vals)
            });
        }
        rows
    } else {
        let mut parts = accumulated.map(|(k, acc)| (k, Part::Acc(acc)));
        if global {
            // The one document of a view without GROUP BY exists from the first time on, even
            // over no rows: one marker, on one worker.
            let scope = parts.scope();
            let marker = if scope.index() == 0 {
                vec![((Row::new(), Part::Exists), Time::default(), 1isize)]
            } else {
                Vec::new()
            };
            parts = parts.concat(marker.to_stream(scope).as_collection());
        }
        for (i, agg) in others {
            let values = grouped
                .clone()
                .flat_map(move |(key, mut vals): (Row, Row)| {
                    let x = vals.replace(i, Value::Null);
                    (!x.is_null()).then_some((key, x))
                });
            let idx = i as u16;
            let part = match agg.func {
                AggFunc::Min => values
                    .reduce(
                        |_k, input: &[(&Value, isize)], out: &mut Vec<(Value, isize)>| {
                            out.push((input[0].0.clone(), 1))
                        },
                    )
                    .map(move |(k, x)| (k, Part::Val(idx, x))),
                AggFunc::Max => values
                    .reduce(
                        |_k, input: &[(&Value, isize)], out: &mut Vec<(Value, isize)>| {
                            out.push((input[input.len() - 1].0.clone(), 1))
                        },
                    )
                    .map(move |(k, x)| (k, Part::Val(idx, x))),
                AggFunc::CountDistinct => values
                    .distinct_total()
                    .map(|(k, _)| k)
                    .count_total()
                    .map(move |(k, n)| (k, Part::Count(idx, n as i64))),
                AggFunc::SumDistinct | AggFunc::AvgDistinct => values
                    .distinct_total()
                    .explode(|(k, x): (Row, Value)| {
                        if let Value::Double(x) = x {
                            let mut acc = vec![0; 1 + DOUBLE_LIMBS];
                            acc[0] = 1;
                            add_double(x.get(), &mut acc[1..]);
                            return Some((k, Accum(acc)));
                        }
                        // Distinct values share the argument's static scale.
                        let mut acc = vec![0; 1 + DECIMAL_LIMBS];
                        acc[0] = 1;
                        let m = x.as_decimal().map_or(I256::ZERO, |d| d.mantissa());
                        split_decimal(m, &mut acc[1..]).expect("65 digits fit three limbs");
                        Some((k, Accum(acc)))
                    })
                    .count_total()
                    .map(move |(k, acc)| (k, Part::Distinct(idx, acc))),
                _ => unreachable!("accumulable aggregates are summed above"),
            };
            parts = parts.concat(part);
        }
        let (l, a) = (layout.clone(), aggregates.clone());
        let (m, v) = (metrics.clone(), view.clone());
        parts.reduce(
            move |_key, input: &[(&Part, isize)], out: &mut Vec<(Row, isize)>| {
                let mut acc = None;
                let mut extra = Vec::new();
                for (p, _) in input {
                    match p {
                        Part::Acc(x) => acc = Some(x),
                        other => extra.push((*other).clone()),
                    }
                }
                // A group exists while it has rows; the accumulable part always carries the
                // count. The global document exists always.
                let zero = Accum::default();
                if let Some(acc) = acc.or(global.then_some(&zero)) {
                    match finish(&a, &l, acc, &extra) {
                        Ok(vals) => out.push((vals, 1)),
                        Err(e) => report(&m, &v, e),
                    }
                }
            },
        )
    };

    // HAVING and the output columns over the group row (key values, then aggregates); the
    // document id is the key's first `id_width` values.
    let having = plan.having.clone();
    let output: Vec<Expr> = plan.output.iter().map(|o| o.expr.clone()).collect();
    let id_width = plan.id_width;
    let regroup = id_width < plan.group_by.len();
    let (m, v) = (metrics, view);
    let docs = group_rows.flat_map(move |(mut key, aggs): (Row, Row)| {
        let mut row = key.clone();
        row.extend_from_row(&aggs);
        let keep = match &having {
            None => Ok(true),
            Some(h) => h.holds(&row),
        };
        let doc = keep.and_then(|k| {
            if k {
                eval_all(&output, &row).map(Some)
            } else {
                Ok(None)
            }
        });
        match doc {
            Ok(Some(doc)) => {
                key.truncate(id_width);
                Some((key, doc))
            }
            Ok(None) => None,
            Err(e) => {
                report(&m, &v, e);
                None
            }
        }
    });
    if !regroup {
        return docs;
    }
    // A document per row is grouped by more than its id (the columns that depend on the
    // keys): an update moves it between groups, maybe between workers. Its retraction and its
    // new version must meet on one worker, so that emit sees one change per id and time.
    docs.inner
        .exchange(|((k, _), _, _): &((Row, Row), Time, isize)| k.hashed())
        .as_collection()
}

/// Maps every record with `f`, which gives the record kept (if any) and the evaluation error
/// that excluded or marked it (if any). An error is counted once per record entering the
/// collection, not again when that record is retracted: `eval_errors` counts rows.
fn checked<'s, D, D2>(
    rows: VecCollection<'s, Time, D>,
    metrics: &Arc<Metrics>,
    view: &Arc<str>,
    f: impl Fn(D) -> (Option<D2>, Option<EvalError>) + 'static,
) -> VecCollection<'s, Time, D2>
where
    D: Clone + 'static,
    D2: Clone + 'static,
{
    let (m, v) = (metrics.clone(), view.clone());
    rows.inner
        .flat_map(move |(d, t, r)| {
            let (out, err) = f(d);
            if let Some(e) = err
                && r > 0
            {
                report(&m, &v, e);
            }
            out.map(|x| (x, t, r))
        })
        .as_collection()
}

fn eval_all(exprs: &[Expr], row: &Row) -> Result<Row, EvalError> {
    let mut out = Row::with_capacity(exprs.len());
    for e in exprs {
        match e {
            // A column is copied as bytes, not decoded and encoded again.
            Expr::Column(c) => out.push_from(row, *c),
            e => out.push(e.eval(row)?),
        }
    }
    Ok(out)
}

/// One part of a group's aggregate state.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Part {
    /// Accumulated slots.
    Acc(Accum),
    /// MIN/MAX of aggregate `i`.
    Val(u16, Value),
    /// COUNT(DISTINCT) of aggregate `i`.
    Count(u16, i64),
    /// SUM/AVG(DISTINCT) of aggregate `i`: the count and the sum's limbs.
    Distinct(u16, Accum),
    /// The global document of a view without GROUP BY exists.
    Exists,
}

/// What an accumulable aggregate sums after its count slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sum {
    /// Nothing (COUNT).
    None,
    /// A decimal at the argument's scale, in this many limbs ([`decimal_limbs`]).
    Decimal(usize),
    /// A double, exactly, in [`DOUBLE_LIMBS`] limbs.
    Double,
}

/// An accumulable aggregate's first slot, whether it has an argument, the argument's scale, and
/// what it sums.
type Slot = (usize, bool, u8, Sum);

/// Where each accumulable aggregate keeps its slots in an [`Accum`].
struct AccumLayout {
    /// Per aggregate: its slot, `None` when it is not accumulable.
    slots: Vec<Option<Slot>>,
    width: usize,
}

impl AccumLayout {
    fn new(aggs: &[Aggregate]) -> Self {
        let mut next = 1;
        let slots = aggs
            .iter()
            .map(|a| {
                let scale = match a.arg_type {
                    Type::Dec { scale, .. } => scale,
                    _ => 0,
                };
                let first = next;
                match a.func {
                    AggFunc::CountStar => Some((0, false, 0, Sum::None)),
                    AggFunc::Count => {
                        next += 1;
                        Some((first, true, scale, Sum::None))
                    }
                    AggFunc::Sum | AggFunc::Avg if a.arg_type == Type::Double => {
                        next += 1 + DOUBLE_LIMBS;
                        Some((first, true, scale, Sum::Double))
                    }
                    AggFunc::Sum | AggFunc::Avg => {
                        let limbs = decimal_limbs(a.arg_type == Type::Int);
                        next += 1 + limbs;
                        Some((first, true, scale, Sum::Decimal(limbs)))
                    }
                    _ => None,
                }
            })
            .collect();
        AccumLayout { slots, width: next }
    }

    /// The contribution of one row, from its aggregate arguments (`vals[i]` for aggregate `i`).
    fn accumulate(&self, vals: &Row) -> Result<Accum, EvalError> {
        let mut acc = vec![0i128; self.width];
        acc[0] = 1;
        for (i, slot) in self.slots.iter().enumerate() {
            let Some((first, true, scale, sum)) = slot else {
                continue;
            };
            let v = vals.get(i);
            if v.is_null() {
                continue;
            }
            acc[*first] = 1;
            if *sum == Sum::Double
                && let Value::Double(x) = v
            {
                add_double(x.get(), &mut acc[*first + 1..]);
            } else if let Sum::Decimal(limbs) = *sum
                && let Some(d) = v.as_decimal()
            {
                let d = d
                    .rescale(*scale)
                    .ok_or_else(|| EvalError(format!("{d} does not fit scale {scale}")))?;
                // Limbs summed separately: each slot stays far from i128's range for any
                // realistic row count, and the total is rebuilt with checked arithmetic in
                // `finish`, so a sum never wraps silently.
                split_decimal(d.mantissa(), &mut acc[*first + 1..*first + 1 + limbs])
                    .ok_or_else(|| EvalError(format!("{d} does not fit an integer sum")))?;
            }
        }
        Ok(Accum(acc))
    }
}

/// The aggregate values of a group from its accumulated slots and other parts.
fn finish(
    aggs: &[Aggregate],
    layout: &AccumLayout,
    acc: &Accum,
    extra: &[Part],
) -> Result<Row, EvalError> {
    let mut out = Row::with_capacity(aggs.len());
    for (i, a) in aggs.iter().enumerate() {
        let slot = layout.slots[i].as_ref();
        let v = match a.func {
            AggFunc::CountStar => Value::Int(as_i64(acc.get(0))?),
            AggFunc::Count => Value::Int(as_i64(acc.get(slot.map_or(0, |s| s.0)))?),
            AggFunc::Sum | AggFunc::Avg => {
                let (first, _, scale, sum) = slot.expect("accumulable");
                let avg = a.func == AggFunc::Avg;
                match *sum {
                    Sum::Double => double_sum_or_avg(avg, acc, *first)?,
                    Sum::Decimal(limbs) => sum_or_avg(avg, acc, *first, limbs, *scale)?,
                    Sum::None => unreachable!("SUM and AVG sum"),
                }
            }
            AggFunc::SumDistinct | AggFunc::AvgDistinct => {
                let scale = match a.arg_type {
                    Type::Dec { scale, .. } => scale,
                    _ => 0,
                };
                let empty = Accum::default();
                let d = extra
                    .iter()
                    .find_map(|p| match p {
                        Part::Distinct(j, d) if *j as usize == i => Some(d),
                        _ => None,
                    })
                    .unwrap_or(&empty);
                let avg = a.func == AggFunc::AvgDistinct;
                if a.arg_type == Type::Double {
                    double_sum_or_avg(avg, d, 0)?
                } else {
                    sum_or_avg(avg, d, 0, DECIMAL_LIMBS, scale)?
                }
            }
            AggFunc::Min | AggFunc::Max => {
                let v = extra
                    .iter()
                    .find_map(|p| match p {
                        Part::Val(j, x) if *j as usize == i => Some(x.clone()),
                        _ => None,
                    })
                    .unwrap_or(Value::Null);
                uncollate(a, v)
            }
            AggFunc::CountDistinct => Value::Int(
                extra
                    .iter()
                    .find_map(|p| match p {
                        Part::Count(j, n) if *j as usize == i => Some(*n),
                        _ => None,
                    })
                    .unwrap_or(0),
            ),
        };
        out.push(v);
    }
    Ok(out)
}

/// The spelling of a collated MIN/MAX result (see [`Aggregate::collated`]).
pub fn uncollate(a: &Aggregate, v: Value) -> Value {
    match v {
        Value::Text(k) if a.collated => {
            Value::Text(crate::sql::collation::unsort_key(&k).to_string())
        }
        v => v,
    }
}

/// SUM (or AVG) from a count at slot `first` and a sum's `limbs` limbs after it, at `scale`.
fn sum_or_avg(
    avg: bool,
    acc: &Accum,
    first: usize,
    limbs: usize,
    scale: u8,
) -> Result<Value, EvalError> {
    let n = acc.get(first);
    if n == 0 {
        return Ok(Value::Null);
    }
    let out_of_range = || EvalError("SUM out of range (more than 65 digits)".into());
    let mut l = [0i128; DECIMAL_LIMBS];
    for (i, x) in l.iter_mut().enumerate().take(limbs) {
        *x = acc.get(first + 1 + i);
    }
    let total = decimal_total(&l[..limbs]).ok_or_else(out_of_range)?;
    let sum = Decimal::from_wide(total, scale).ok_or_else(out_of_range)?;
    Ok(Value::Dec(if avg {
        // MySQL's AVG: the sum divided by the count, as `/` divides.
        sum.checked_div_sql(Decimal::new(n, 0))
            .ok_or_else(|| EvalError("AVG out of range".into()))?
    } else {
        sum
    }))
}

/// SUM (or AVG) of doubles from a count at slot `first` and the exact sum's limbs after it.
fn double_sum_or_avg(avg: bool, acc: &Accum, first: usize) -> Result<Value, EvalError> {
    let n = acc.get(first);
    if n == 0 {
        return Ok(Value::Null);
    }
    let limbs: [i128; DOUBLE_LIMBS] = std::array::from_fn(|i| acc.get(first + 1 + i));
    let out_of_range = || EvalError("SUM out of DOUBLE's range".into());
    let sum = double_total(&limbs).ok_or_else(out_of_range)?;
    let x = if avg { sum / n as f64 } else { sum };
    F64::new(x).map(Value::Double).ok_or_else(out_of_range)
}

fn as_i64(x: i128) -> Result<i64, EvalError> {
    i64::try_from(x).map_err(|_| EvalError("count out of range".into()))
}
