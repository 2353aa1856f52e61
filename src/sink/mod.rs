//! Sinks: where the changes of each completed time go.
//!
//! The JSON-lines change log is a contract that tests and tools read: one object per line,
//! `{"view": V, "id": ID, "op": "upsert"|"delete", "time": T, "doc": {...}}` (no `doc` on a
//! delete). `doc` has the view's column names; days are `"YYYY-MM-DD"`; integers are JSON
//! integers; DECIMAL results are JSON numbers with their exact decimal digits.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::decode::Row;
use crate::sql::ViewPlan;
use crate::time::Time;
use crate::value::write_json_str;

pub mod elasticsearch;

pub use crate::event::Change;

/// A destination for the changes of completed times: asynchronous and acknowledging.
///
/// Contract: the engine calls [`Sink::submit`] once per completed time, in increasing time
/// order, with the changes of that time sorted by `(view, id)`; `submit` returns once the
/// changes are accepted (buffered or queued), not when they are durable. The engine learns
/// durability from [`Sink::acknowledged`] and holds its progress (capabilities, offset commits,
/// checkpoints) at the first unacknowledged time. A sink retries what can be retried; an `Err`
/// from any method means it gave up, and the engine stops with that error. Nothing a sink was
/// handed may be dropped silently: what it cannot write (e.g. a document the server rejects)
/// goes to the dead-letter output and is counted.
pub trait Sink: Send {
    /// Accepts the changes of one completed time.
    fn submit(&mut self, time: Time, changes: &[Change]) -> anyhow::Result<()>;
    /// The greatest time `T` such that every change submitted at a time `<= T` is durable;
    /// `None` while nothing is acknowledged. Never blocks for long.
    fn acknowledged(&mut self) -> anyhow::Result<Option<Time>>;
    /// Blocks until everything submitted is durable (shutdown, checkpoint).
    fn flush(&mut self) -> anyhow::Result<()>;
    /// The documents restored from a checkpoint at start (time [`crate::pipeline::sink_op::RESTORED`]),
    /// which a durable sink already holds and is therefore not submitted: an in-memory sink
    /// (the dashboard's) takes them from here. Called before the first [`Sink::submit`].
    fn restored(&mut self, _changes: &[Change]) {}
}

/// Several sinks as one: a time is acknowledged once every sink acknowledged it.
pub struct Fanout {
    sinks: Vec<Box<dyn Sink>>,
}

impl Fanout {
    /// All of `sinks`.
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Fanout {
        Fanout { sinks }
    }
}

impl Sink for Fanout {
    fn submit(&mut self, time: Time, changes: &[Change]) -> anyhow::Result<()> {
        for s in &mut self.sinks {
            s.submit(time, changes)?;
        }
        Ok(())
    }

    fn acknowledged(&mut self) -> anyhow::Result<Option<Time>> {
        let mut min: Option<Option<Time>> = None;
        for s in &mut self.sinks {
            let a = s.acknowledged()?;
            min = Some(match min {
                None => a,
                Some(m) => m.min(a),
            });
        }
        Ok(min.unwrap_or(Some(Time::MAX)))
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        for s in &mut self.sinks {
            s.flush()?;
        }
        Ok(())
    }

    fn restored(&mut self, changes: &[Change]) {
        for s in &mut self.sinks {
            s.restored(changes);
        }
    }
}

/// View and column names, for rendering documents.
#[derive(Clone, Debug)]
pub struct Names {
    /// Per view: its name and its column names.
    pub views: Vec<(String, Vec<String>)>,
    /// Per view and column: fractional-second digits of a DATETIME/TIME column.
    pub fsp: Vec<Vec<Option<u8>>>,
}

impl Names {
    /// The names of planned views.
    pub fn of(views: &[ViewPlan]) -> Names {
        Names {
            views: views
                .iter()
                .map(|v| {
                    (
                        v.name.clone(),
                        v.output.iter().map(|o| o.name.clone()).collect(),
                    )
                })
                .collect(),
            fsp: views
                .iter()
                .map(|v| v.output.iter().map(|o| o.fsp).collect())
                .collect(),
        }
    }

    /// Renders one change as a JSON-lines record (without the newline).
    pub fn change_json(&self, c: &Change, out: &mut String) {
        let view = &self.views[c.view].0;
        out.push_str("{\"view\":");
        write_json_str(view, out);
        out.push_str(",\"id\":");
        write_json_str(&c.id, out);
        out.push_str(match c.doc {
            Some(_) => ",\"op\":\"upsert\"",
            None => ",\"op\":\"delete\"",
        });
        out.push_str(",\"time\":");
        out.push_str(&c.time.to_string());
        if let Some(doc) = &c.doc {
            out.push_str(",\"doc\":");
            self.doc_json(c.view, doc, out);
        }
        out.push('}');
    }

    /// Renders a document of view `view` as a JSON object.
    pub fn doc_json(&self, view: usize, doc: &Row, out: &mut String) {
        out.push('{');
        let cols = &self.views[view].1;
        for (i, (name, v)) in cols.iter().zip(doc).enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_str(name, out);
            out.push(':');
            v.write_json_shown(self.fsp[view].get(i).copied().flatten(), out);
        }
        out.push('}');
    }
}

/// Writes the JSON-lines change log to any writer (a file, or stdout).
pub struct JsonlSink<W: Write + Send> {
    out: W,
    names: Names,
    line: String,
    submitted: Option<Time>,
}

impl<W: Write + Send> JsonlSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W, names: Names) -> Self {
        JsonlSink {
            out,
            names,
            line: String::new(),
            submitted: None,
        }
    }
}

/// A JSON-lines sink acknowledges a time once its lines are flushed to the writer (for a
/// file: handed to the operating system; `fsync` happens at checkpoints, see
/// [`crate::pipeline`]).
impl<W: Write + Send> Sink for JsonlSink<W> {
    fn submit(&mut self, time: Time, changes: &[Change]) -> anyhow::Result<()> {
        for c in changes {
            self.line.clear();
            self.names.change_json(c, &mut self.line);
            self.line.push('\n');
            self.out.write_all(self.line.as_bytes())?;
        }
        self.submitted = Some(time);
        Ok(())
    }

    fn acknowledged(&mut self) -> anyhow::Result<Option<Time>> {
        self.out.flush()?;
        Ok(self.submitted)
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.out.flush()?;
        Ok(())
    }
}

/// The documents of every view after all changes so far: `(view, id) -> doc`.
pub type ViewState = BTreeMap<(usize, String), Row>;

/// Keeps the current state of every view (and optionally every change), and forwards to an
/// inner sink. The engine always writes through one of these.
pub struct Recorder {
    inner: Option<Box<dyn Sink>>,
    shared: Arc<Mutex<Recorded>>,
}

/// What a [`Recorder`] saw.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    /// Current documents.
    pub state: ViewState,
    /// Every change, in order, when asked for (`keep_log`).
    pub log: Option<Vec<Change>>,
}

impl Recorder {
    /// A recorder forwarding to `inner`; `keep_log` keeps every change in memory as well.
    pub fn new(inner: Option<Box<dyn Sink>>, keep_log: bool) -> (Recorder, Arc<Mutex<Recorded>>) {
        let shared = Arc::new(Mutex::new(Recorded {
            state: ViewState::new(),
            log: keep_log.then(Vec::new),
        }));
        (
            Recorder {
                inner,
                shared: shared.clone(),
            },
            shared,
        )
    }
}

impl Recorder {
    /// Records changes without forwarding them (the documents restored from a checkpoint,
    /// which the inner sinks already hold).
    pub fn record(&mut self, changes: &[Change]) {
        if let Some(inner) = self.inner.as_mut() {
            inner.restored(changes);
        }
        self.apply(changes);
    }

    /// Applies changes to the recorded state.
    fn apply(&mut self, changes: &[Change]) {
        let mut r = self.shared.lock().expect("recorder lock");
        for c in changes {
            match &c.doc {
                Some(d) => {
                    r.state.insert((c.view, c.id.clone()), d.clone());
                }
                None => {
                    r.state.remove(&(c.view, c.id.clone()));
                }
            }
        }
    }
}

impl Sink for Recorder {
    fn submit(&mut self, time: Time, changes: &[Change]) -> anyhow::Result<()> {
        self.apply(changes);
        {
            let mut r = self.shared.lock().expect("recorder lock");
            if let Some(log) = r.log.as_mut() {
                log.extend_from_slice(changes);
            }
        }
        match self.inner.as_mut() {
            Some(s) => s.submit(time, changes),
            None => Ok(()),
        }
    }

    fn acknowledged(&mut self) -> anyhow::Result<Option<Time>> {
        match self.inner.as_mut() {
            Some(s) => s.acknowledged(),
            None => Ok(Some(Time::MAX)),
        }
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        match self.inner.as_mut() {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }
}
