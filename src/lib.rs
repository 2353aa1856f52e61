//! cdcflow: exact incremental SQL views over MySQL change events, on timely and differential
//! dataflow.
//!
//! Data flows one way: [`source`] (bytes) -> [`decode`] ([`decode::ChangeEvent`]) ->
//! [`dataflow`] (ingest, views rendered from [`sql`] plans, emit) -> [`sink`]. The time contract
//! lives in [`time`]; values in [`value`]. See ARCHITECTURE.md.
#![deny(missing_docs)]

pub mod capture;
pub mod cli;
pub mod dashboard;
pub mod dataflow;
pub mod decode;
pub mod event;
pub mod http;
pub mod metrics;
pub mod oracle;
pub mod pipeline;
pub mod progress;
pub mod row;
pub mod schema;
pub mod sink;
pub mod source;
pub mod sql;
pub mod time;
pub mod value;
pub mod workload;
