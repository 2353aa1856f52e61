//! Sinks: where the changes of each completed time go.
//!
//! The JSON-lines change log is a contract that tests and tools read: one object per line,
//! `{"view": V, "id": ID, "op": "upsert"|"delete", "time": T, "doc": {...}}` (no `doc` on a
//! delete). `doc` has the view's column names; days are `"YYYY-MM-DD"`; integers are JSON
//! integers; DECIMAL results are JSON numbers with their exact decimal digits.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::decode::Row;
use crate::sql::ViewPlan;
use crate::time::Time;
use crate::value::write_json_str;

/// One document change of one view at one time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Change {
    /// Index of the view (views are sorted by name).
    pub view: usize,
    /// The time at which the change happened.
    pub time: Time,
    /// Document id (the GROUP BY values).
    pub id: String,
    /// The new document, or `None` when the group is gone.
    pub doc: Option<Row>,
}

/// A destination for changes. `write` is called once per completed time, in time order, with
/// the changes of that time sorted by view and id.
pub trait Sink: Send {
    /// Writes the changes of one completed time.
    fn write(&mut self, time: Time, changes: &[Change]) -> anyhow::Result<()>;
    /// Flushes buffered output (called at the end of a run).
    fn flush(&mut self) -> anyhow::Result<()>;
}

/// View and column names, for rendering documents.
#[derive(Clone, Debug)]
pub struct Names {
    /// Per view: its name and its column names.
    pub views: Vec<(String, Vec<String>)>,
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
        }
    }

    /// Renders one change as a JSON-lines record (without the newline).
    pub fn change_json(&self, c: &Change, out: &mut String) {
        let (view, cols) = &self.views[c.view];
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
            self.doc_json(cols, doc, out);
        }
        out.push('}');
    }

    /// Renders a document as a JSON object.
    pub fn doc_json(&self, cols: &[String], doc: &Row, out: &mut String) {
        out.push('{');
        for (i, (name, v)) in cols.iter().zip(doc).enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_str(name, out);
            out.push(':');
            v.write_json(out);
        }
        out.push('}');
    }
}

/// Writes the JSON-lines change log to any writer (a file, or stdout).
pub struct JsonlSink<W: Write + Send> {
    out: W,
    names: Names,
    line: String,
}

impl<W: Write + Send> JsonlSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W, names: Names) -> Self {
        JsonlSink {
            out,
            names,
            line: String::new(),
        }
    }
}

impl<W: Write + Send> Sink for JsonlSink<W> {
    fn write(&mut self, _time: Time, changes: &[Change]) -> anyhow::Result<()> {
        for c in changes {
            self.line.clear();
            self.names.change_json(c, &mut self.line);
            self.line.push('\n');
            self.out.write_all(self.line.as_bytes())?;
        }
        Ok(())
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

impl Sink for Recorder {
    fn write(&mut self, time: Time, changes: &[Change]) -> anyhow::Result<()> {
        {
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
            if let Some(log) = r.log.as_mut() {
                log.extend_from_slice(changes);
            }
        }
        match self.inner.as_mut() {
            Some(s) => s.write(time, changes),
            None => Ok(()),
        }
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        match self.inner.as_mut() {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }
}
