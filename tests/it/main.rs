//! cdcflow's integration tests, one binary (fast to build), one area per module.

mod common;

mod bad_input;
mod binlog;
mod capture;
mod cli;
mod dashboard;
mod decode;
mod elasticsearch;
mod kafka;
mod kafka_faults;
mod live;
mod mariadb;
mod mysql_numbers;
mod oracle;
mod properties;
mod random_views;
mod regressions;
mod sql_semantics;
mod stack;
mod transactions;
