//! The live dashboard: an in-memory view-state sink and what the HTTP server ([`server`])
//! renders from it.
//!
//! [`DashboardSink`] is one more [`Sink`] behind the engine's sink seam (in the [`Fanout`] of
//! `run`/`replay --http`). It keeps, per view, the current document of every id, the latest
//! time it was given, and a bounded feed of the latest changes; it acknowledges every time at
//! once, since it is not durable (a restart rebuilds it from the checkpoint's documents, which
//! it receives through [`Sink::restored`]). Every update bumps a sequence number that the
//! server's event stream (server-sent events) follows.
//!
//! Contract of what is exposed: only view documents (the same documents and the same JSON as
//! the JSON-lines change log, [`Names::change_json`]), never source rows.
//!
//! [`Fanout`]: crate::sink::Fanout

pub mod server;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::event::{Change, Row};
use crate::http::PipelineMetrics;
use crate::sink::{Names, Sink};
use crate::sql::ViewPlan;
use crate::sql::expr::{Expr, Type};
use crate::sql::plan::AggFunc;
use crate::time::{Time, now_ms};
use crate::value::{Value, write_json_str};

/// Changes kept in the feed of `GET /api/changes` by default.
pub const DEFAULT_FEED_LIMIT: usize = 100_000;

/// What a column of a view is to the dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnInfo {
    /// The column name (the document field).
    pub name: String,
    /// `int`, `decimal`, `double`, `text`, `bytes`, `date`, `datetime`, `time` or `null`.
    pub ty: &'static str,
    /// A GROUP BY value (part of the document id) rather than a measure.
    pub key: bool,
    /// How values of this measure over several groups combine into one (`sum`, `min`, `max`),
    /// or `None` where they do not (AVG, COUNT(DISTINCT), an expression): a chart then only
    /// shows series that keep every group apart.
    pub combine: Option<&'static str>,
}

/// The dashboard's description of one view.
#[derive(Clone, Debug)]
pub struct ViewInfo {
    /// The view name.
    pub name: String,
    /// Its columns, in document order.
    pub columns: Vec<ColumnInfo>,
    /// The first key column holding a day (`DATE`): the x axis of the view's chart.
    pub day: Option<usize>,
}

fn type_name(ty: &Type) -> &'static str {
    match ty {
        Type::Int => "int",
        Type::Dec { .. } => "decimal",
        Type::Double => "double",
        Type::Text => "text",
        Type::Bytes => "bytes",
        Type::Date => "date",
        Type::DateTime => "datetime",
        Type::Time => "time",
        Type::Null => "null",
    }
}

impl ViewInfo {
    /// Reads the columns' roles off a plan: an output that is a GROUP BY value is a key, one
    /// that is an aggregate a measure.
    pub fn of(plan: &ViewPlan) -> ViewInfo {
        let groups = plan.group_by.len();
        let columns: Vec<ColumnInfo> = plan
            .output
            .iter()
            .map(|o| {
                let (key, combine) = match &o.expr {
                    Expr::Column(i) if *i < groups => (true, None),
                    // The shown spelling of a case-insensitive text group is a key too.
                    Expr::Column(i)
                        if plan
                            .aggregates
                            .get(i - groups)
                            .is_some_and(|a| a.shows_group.is_some()) =>
                    {
                        (true, None)
                    }
                    Expr::Column(i) => (
                        false,
                        plan.aggregates.get(i - groups).and_then(|a| match a.func {
                            AggFunc::Sum | AggFunc::Count | AggFunc::CountStar => Some("sum"),
                            AggFunc::Min => Some("min"),
                            AggFunc::Max => Some("max"),
                            _ => None,
                        }),
                    ),
                    _ => (false, None),
                };
                ColumnInfo {
                    name: o.name.clone(),
                    ty: type_name(&o.ty),
                    key,
                    combine,
                }
            })
            .collect();
        let day = columns.iter().position(|c| c.key && c.ty == "date");
        ViewInfo {
            name: plan.name.clone(),
            columns,
            day,
        }
    }
}

/// The frontier as the dashboard shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frontier {
    /// Every source commit time below it is complete; `None` before anything is known or once
    /// all input is done.
    pub at: Option<Time>,
    /// All input is done (a replay that reached the end of its inputs).
    pub done: bool,
    /// The latest time at which a document changed.
    pub last_change: Option<Time>,
}

impl Frontier {
    /// How far the frontier is behind the wall clock, in milliseconds.
    pub fn lag_ms(&self) -> Option<i64> {
        self.at
            .map(|t| now_ms() as i64 - i64::try_from(t).unwrap_or(i64::MAX))
    }

    /// `"frontier":..,"done":..,"lag_ms":..,"last_change":..,"now":..` (no braces).
    fn write_json(&self, out: &mut String) {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "null".to_string());
        out.push_str(&format!(
            "\"frontier\":{},\"done\":{},\"lag_ms\":{},\"last_change\":{},\"now\":{}",
            opt(self.at.map(|t| t.to_string())),
            self.done,
            opt(self.lag_ms().map(|t| t.to_string())),
            opt(self.last_change.map(|t| t.to_string())),
            now_ms()
        ));
    }
}

#[derive(Debug, Default)]
struct State {
    /// Per view: id -> current document.
    docs: Vec<BTreeMap<String, Row>>,
    /// The latest changes, oldest first; only whole times are evicted.
    feed: VecDeque<Change>,
    /// The greatest time some of whose changes left the feed.
    evicted_through: Option<Time>,
    /// The latest time given.
    last_time: Option<Time>,
}

/// The shared state of a dashboard: written by its [`DashboardSink`], read by the server.
#[derive(Debug)]
pub struct Dashboard {
    names: Names,
    views: Vec<ViewInfo>,
    engine: Option<PipelineMetrics>,
    feed_limit: usize,
    state: Mutex<State>,
    updates: tokio::sync::watch::Sender<u64>,
}

/// Why a change feed cannot be served.
#[derive(Debug, PartialEq, Eq)]
pub struct FeedGone {
    /// The feed only holds every change of times after this one.
    pub complete_after: Time,
}

impl Dashboard {
    /// A dashboard of `views`. `engine` gives the engine frontier (the pipeline's metric);
    /// without it the frontier is the latest time with changes plus one.
    pub fn new(views: &[ViewPlan], engine: Option<PipelineMetrics>) -> Arc<Dashboard> {
        Self::with_feed_limit(views, engine, DEFAULT_FEED_LIMIT)
    }

    /// The same, keeping at most about `feed_limit` changes in the feed (whole times).
    pub fn with_feed_limit(
        views: &[ViewPlan],
        engine: Option<PipelineMetrics>,
        feed_limit: usize,
    ) -> Arc<Dashboard> {
        Arc::new(Dashboard {
            names: Names::of(views),
            views: views.iter().map(ViewInfo::of).collect(),
            engine,
            feed_limit: feed_limit.max(1),
            state: Mutex::new(State {
                docs: vec![BTreeMap::new(); views.len()],
                ..State::default()
            }),
            updates: tokio::sync::watch::channel(0).0,
        })
    }

    /// The sink that feeds this dashboard.
    pub fn sink(self: &Arc<Self>) -> DashboardSink {
        DashboardSink(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The views, in engine order (sorted by name).
    pub fn views(&self) -> &[ViewInfo] {
        &self.views
    }

    /// The index of the view called `name`.
    pub fn view_index(&self, name: &str) -> Option<usize> {
        self.views.iter().position(|v| v.name == name)
    }

    /// A receiver that sees every update (its value is a sequence number).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.updates.subscribe()
    }

    /// The frontier now.
    pub fn frontier(&self) -> Frontier {
        let last = self.lock().last_time;
        let engine = self.engine.as_ref().and_then(PipelineMetrics::frontier);
        let done = engine == Some(Time::MAX);
        let submitted = last.map(|t| t.saturating_add(1));
        Frontier {
            at: if done { None } else { engine.max(submitted) },
            done,
            last_change: last,
        }
    }

    /// Tells the dashboard that the engine frontier moved (so that open pages refresh it).
    pub fn touch(&self) {
        self.updates.send_modify(|seq| *seq += 1);
    }

    fn apply(&self, time: Option<Time>, changes: &[Change]) {
        {
            let mut state = self.lock();
            for c in changes {
                let Some(docs) = state.docs.get_mut(c.view) else {
                    continue;
                };
                match &c.doc {
                    Some(d) => {
                        docs.insert(c.id.clone(), d.clone());
                    }
                    None => {
                        docs.remove(&c.id);
                    }
                }
                state.feed.push_back(c.clone());
            }
            if let Some(t) = time {
                state.last_time = Some(state.last_time.map_or(t, |l| l.max(t)));
            }
            // Evict whole times, oldest first, while over the limit (the newest time stays).
            while state.feed.len() > self.feed_limit {
                let oldest = state.feed.front().map(|c| c.time).expect("not empty");
                if state.feed.back().is_some_and(|c| c.time == oldest) {
                    break;
                }
                while state.feed.front().is_some_and(|c| c.time == oldest) {
                    state.feed.pop_front();
                }
                state.evicted_through = Some(oldest);
            }
        }
        self.touch();
    }

    /// `{"name":..,"columns":[..],"day":..}` fields of a view (no braces).
    fn write_view_head(&self, view: usize, out: &mut String) {
        let info = &self.views[view];
        out.push_str("\"name\":");
        write_json_str(&info.name, out);
        out.push_str(",\"columns\":[");
        for (i, c) in info.columns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"name\":");
            write_json_str(&c.name, out);
            out.push_str(&format!(
                ",\"type\":\"{}\",\"role\":\"{}\",\"combine\":{}}}",
                c.ty,
                if c.key { "key" } else { "measure" },
                c.combine.map_or("null".to_string(), |s| format!("\"{s}\""))
            ));
        }
        out.push_str("],\"day\":");
        match info.day {
            Some(d) => write_json_str(&info.columns[d].name, out),
            None => out.push_str("null"),
        }
    }

    /// `GET /api/views`: the frontier and every view with its columns and document count.
    pub fn views_json(&self) -> String {
        let frontier = self.frontier();
        let counts: Vec<usize> = self.lock().docs.iter().map(BTreeMap::len).collect();
        let mut out = String::from("{");
        frontier.write_json(&mut out);
        out.push_str(",\"views\":[");
        for (i, n) in counts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            self.write_view_head(i, &mut out);
            out.push_str(&format!(",\"documents\":{n}}}"));
        }
        out.push_str("]}");
        out
    }

    /// `GET /api/views/NAME`: the frontier, the columns and the current documents (sorted by
    /// id), each rendered exactly as in the change log.
    pub fn view_json(&self, view: usize) -> String {
        let frontier = self.frontier();
        let mut out = String::from("{");
        frontier.write_json(&mut out);
        out.push(',');
        self.write_view_head(view, &mut out);
        out.push_str(",\"documents\":[");
        let state = self.lock();
        for (i, doc) in state.docs[view].values().enumerate() {
            if i > 0 {
                out.push(',');
            }
            self.names.doc_json(view, doc, &mut out);
        }
        out.push_str("]}");
        out
    }

    /// The current documents of a view as CSV (RFC 4180): a header of the column names, one
    /// row per document sorted by id; NULL is an empty field, decimals keep their digits.
    pub fn view_csv(&self, view: usize) -> String {
        let mut out = String::new();
        let cols = &self.views[view].columns;
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(&c.name, &mut out);
        }
        out.push_str("\r\n");
        let state = self.lock();
        let mut cell = String::new();
        for doc in state.docs[view].values() {
            for (i, v) in doc.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                cell.clear();
                self.cell_text(view, i, &v, &mut cell);
                csv_field(&cell, &mut out);
            }
            out.push_str("\r\n");
        }
        out
    }

    /// The text of one value as the table and the CSV show it: the JSON rendering of the
    /// change log without quotes; NULL is empty.
    pub fn cell_text(&self, view: usize, column: usize, v: &Value, out: &mut String) {
        if matches!(v, Value::Null) {
            return;
        }
        let mut json = String::new();
        v.write_json_shown(
            self.names.fsp[view].get(column).copied().flatten(),
            &mut json,
        );
        match serde_json::from_str::<String>(&json) {
            Ok(s) if json.starts_with('"') => out.push_str(&s),
            _ => out.push_str(&json),
        }
    }

    /// `GET /api/changes?since=T`: the retained changes at times after `since` (all retained
    /// changes without it), one JSON-lines record each, in the order they were emitted.
    pub fn changes_since(&self, since: Option<Time>) -> Result<String, FeedGone> {
        let state = self.lock();
        if let Some(evicted) = state.evicted_through
            && since.is_none_or(|s| s < evicted)
        {
            return Err(FeedGone {
                complete_after: evicted,
            });
        }
        let mut out = String::new();
        for c in state
            .feed
            .iter()
            .filter(|c| since.is_none_or(|s| c.time > s))
        {
            self.names.change_json(c, &mut out);
            out.push('\n');
        }
        Ok(out)
    }
}

fn csv_field(s: &str, out: &mut String) {
    if s.contains([',', '"', '\r', '\n']) || s.starts_with(' ') || s.ends_with(' ') {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// The sink of a [`Dashboard`]: keeps the documents in memory and acknowledges at once.
#[derive(Debug)]
pub struct DashboardSink(Arc<Dashboard>);

impl Sink for DashboardSink {
    fn submit(&mut self, time: Time, changes: &[Change]) -> anyhow::Result<()> {
        self.0.apply(Some(time), changes);
        Ok(())
    }

    fn acknowledged(&mut self) -> anyhow::Result<Option<Time>> {
        // In memory: everything submitted is as durable as it will ever be.
        Ok(Some(Time::MAX))
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    fn restored(&mut self, changes: &[Change]) {
        self.0.apply(None, changes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dashboard(limit: usize) -> Arc<Dashboard> {
        let d = crate::sql::Dataflows::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dataflows"),
        )
        .unwrap();
        Dashboard::with_feed_limit(&d.views, None, limit)
    }

    fn change(view: usize, time: Time, id: &str, doc: Option<Row>) -> Change {
        Change {
            view,
            time,
            id: id.to_string(),
            doc,
        }
    }

    #[test]
    fn roles_of_the_shipped_views() {
        let d = dashboard(10);
        let units = &d.views()[d.view_index("units_shipped").unwrap()];
        let roles: Vec<(&str, bool, Option<&str>)> = units
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.key, c.combine))
            .collect();
        assert_eq!(
            roles,
            [
                ("day", true, None),
                ("warehouse_id", true, None),
                ("item_type", true, None),
                ("units", false, Some("sum"))
            ]
        );
        assert_eq!(units.day, Some(0));
        let couriers = &d.views()[d.view_index("courier_orders").unwrap()];
        // COUNT(DISTINCT ..) does not add up over groups.
        assert_eq!(couriers.columns[2].combine, None);
        assert_eq!(couriers.columns[3].combine, Some("sum"));
    }

    #[test]
    fn feed_keeps_whole_recent_times_and_state_is_current() {
        let d = dashboard(2);
        let mut sink = d.sink();
        let v = d.view_index("warehouse_cost").unwrap();
        let doc = |n: i64| {
            Some(Row::from(vec![
                Value::Date(20_000),
                Value::Int(1),
                Value::Int(n),
            ]))
        };
        sink.submit(
            10,
            &[change(v, 10, "a", doc(1)), change(v, 10, "b", doc(2))],
        )
        .unwrap();
        assert_eq!(d.changes_since(None).unwrap().lines().count(), 2);
        sink.submit(20, &[change(v, 20, "a", None)]).unwrap();
        // Time 10 left the feed: asking for it is refused, asking after it is complete.
        assert_eq!(
            d.changes_since(Some(5)),
            Err(FeedGone { complete_after: 10 })
        );
        let after = d.changes_since(Some(10)).unwrap();
        assert_eq!(
            after,
            "{\"view\":\"warehouse_cost\",\"id\":\"a\",\"op\":\"delete\",\"time\":20}\n"
        );
        assert_eq!(d.changes_since(Some(20)).unwrap(), "");
        let json = d.view_json(v);
        assert!(json.contains("\"documents\":[{\"day\":"), "{json}");
        assert_eq!(json.matches("\"warehouse_id\":1").count(), 1, "{json}");
        assert_eq!(d.frontier().at, Some(21));
        assert!(!d.frontier().done);
        assert_eq!(
            d.view_csv(v),
            "day,warehouse_id,items_cost\r\n2024-10-04,1,2\r\n"
        );
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut out = String::new();
        for s in ["plain", "a,b", "say \"hi\"", " pad"] {
            csv_field(s, &mut out);
            out.push('|');
        }
        assert_eq!(out, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\" pad\"|");
    }
}
