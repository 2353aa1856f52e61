//! SQL: the declared schema plus one view per `NAME.sql`, parsed and planned at start-up.

pub mod collation;
pub mod expr;
pub mod func;
pub mod plan;

use std::path::Path;
use std::sync::Arc;

use crate::schema::{Catalog, SqlError};
pub use plan::ViewPlan;

/// The schema and the planned views of a `dataflows/` directory.
#[derive(Clone, Debug)]
pub struct Dataflows {
    /// Declared source tables.
    pub catalog: Arc<Catalog>,
    /// Views, sorted by name.
    pub views: Vec<ViewPlan>,
}

impl Dataflows {
    /// Loads `DIR/schema.sql` and every other `DIR/*.sql` as a view named after its file.
    pub fn load(dir: &Path) -> Result<Dataflows, SqlError> {
        let schema = dir.join("schema.sql");
        let catalog = Catalog::load(&schema)?;
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| SqlError {
                file: dir.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read the views directory: {e}"),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "sql")
                    && p.file_name() != Some("schema.sql".as_ref())
            })
            .collect();
        files.sort();
        let mut sources = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| SqlError {
                file: f.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot read: {e}"),
            })?;
            let name = f
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            sources.push((f.display().to_string(), name, text));
        }
        Dataflows::from_sources(catalog, &sources)
    }

    /// Per table (by id), per column: whether some view reads it (keeps it or filters on it)
    /// or it is part of the primary key. A decoder may leave the other columns undecoded.
    pub fn read_columns(&self) -> Vec<Vec<bool>> {
        let mut read: Vec<Vec<bool>> = self
            .catalog
            .tables
            .iter()
            .map(|t| {
                let mut r = vec![false; t.columns.len()];
                for &k in &t.primary_key {
                    r[k] = true;
                }
                r
            })
            .collect();
        for v in &self.views {
            for s in &v.sources {
                for c in s.read_columns() {
                    read[s.table][c] = true;
                }
            }
        }
        read
    }

    /// The tables some view reads.
    pub fn used_tables(&self) -> std::collections::BTreeSet<crate::schema::TableId> {
        self.views
            .iter()
            .flat_map(|v| v.sources.iter().map(|s| s.table))
            .collect()
    }

    /// Plans views given as `(file, name, sql)` against a catalog.
    pub fn from_sources(
        catalog: Catalog,
        views: &[(String, String, String)],
    ) -> Result<Dataflows, SqlError> {
        let mut plans = Vec::new();
        for (file, name, sql) in views {
            if !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
            {
                return Err(SqlError {
                    file: file.clone(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "view name `{name}` must be lowercase letters, digits, `_` or `-` (it names an Elasticsearch index)"
                    ),
                });
            }
            plans.push(plan::plan_view(&catalog, file, name, sql)?);
        }
        if plans.is_empty() {
            return Err(SqlError {
                file: "dataflows".into(),
                line: 0,
                column: 0,
                message: "no views: add a NAME.sql file with one SELECT beside schema.sql".into(),
            });
        }
        plans.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Dataflows {
            catalog: Arc::new(catalog),
            views: plans,
        })
    }
}
