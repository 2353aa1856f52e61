//! Kafka: Debezium topics read with rdkafka (librdkafka, statically built).
//!
//! Contract (see [`super::Source`]):
//! - Partitions: every partition of every topic whose name matches the topic regex (whole-name
//!   match; internal `__` topics excluded), looked up at start and again every metadata
//!   interval, so new matching topics and partitions are picked up. Partition `p` of topic `t`
//!   is owned by worker `(stable_hash(t) + p) % workers` of the whole cluster; each worker has
//!   its own consumer and **assigns** (never subscribes) only the partitions it owns, so
//!   librdkafka does no group balancing of its own.
//! - Positions are offsets; a partition resumes at its checkpointed offset, else at the
//!   earliest one. Offsets are committed to the group (`--group`) only when the engine says they
//!   are safe (after the sinks acknowledged what they produced): with a state dir those commits
//!   are for monitoring, the state dir is what a restart resumes from.
//! - A partition is idle once its consumer position has reached the high watermark (from
//!   broker's watermarks, asked for partitions that were quiet lately) and nothing arrived for the idle
//!   timeout; a recreated topic (offsets going backwards) is reported loudly.
//! - A broker that cannot be reached at start is a clear error, not a hang. Later outages are
//!   retried by librdkafka; the engine holds its frontier meanwhile.
//! - Settings beyond the brokers (TLS, SASL: `security.protocol`, `ssl.ca.location`,
//!   `sasl.mechanism`, `sasl.username`, `sasl.password`, ...) are passed to librdkafka as given;
//!   they are never logged.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use regex::Regex;

use super::{PartitionStatus, Positions, Record, Resume, Source, SourceReader, stable_hash};

/// How to reach and read the brokers.
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    /// `host:port[,..]`.
    pub brokers: String,
    /// Topics to read: names that match this regex as a whole.
    pub topics: String,
    /// Consumer group offsets are committed to.
    pub group: String,
    /// Extra librdkafka settings (TLS, SASL, ...).
    pub options: Vec<(String, String)>,
    /// How often topics and partitions are looked up again.
    pub metadata_interval: Duration,
    /// How long a caught-up partition is quiet before it is idle.
    pub idle_timeout: Duration,
    /// How long to wait for the brokers at start.
    pub connect_timeout: Duration,
}

impl KafkaConfig {
    /// Defaults for `brokers` and `topics`.
    pub fn new(brokers: &str, topics: &str) -> KafkaConfig {
        KafkaConfig {
            brokers: brokers.to_string(),
            topics: topics.to_string(),
            group: "cdcflow".to_string(),
            options: Vec::new(),
            metadata_interval: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(10),
        }
    }

    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("queued.max.messages.kbytes", "65536")
            // No pipelined requests: tansu stalls a connection that has a long-polling fetch
            // and another request in flight (it costs a real broker nothing for a consumer).
            .set("max.in.flight.requests.per.connection", "1")
            .set("log_level", "4");
        for (k, v) in &self.options {
            c.set(k, v);
        }
        c
    }
}

/// Debezium topics in Kafka as a [`Source`].
pub struct KafkaSource {
    config: KafkaConfig,
    regex: Regex,
}

impl KafkaSource {
    /// A source reading the topics of `config`; checks that the brokers answer.
    pub fn connect(config: KafkaConfig) -> anyhow::Result<KafkaSource> {
        let regex = Regex::new(&format!("^(?:{})$", config.topics))
            .with_context(|| format!("invalid --topics regex `{}`", config.topics))?;
        let consumer: BaseConsumer = config
            .client()
            .create()
            .context("cannot create a Kafka consumer (check the Kafka options)")?;
        let meta = consumer
            .fetch_metadata(None, config.connect_timeout)
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach Kafka at {} within {:?}: {e}",
                    config.brokers,
                    config.connect_timeout
                )
            })?;
        let matching: Vec<&str> = meta
            .topics()
            .iter()
            .map(|t| t.name())
            .filter(|n| !n.starts_with("__") && regex.is_match(n))
            .collect();
        if matching.is_empty() {
            tracing::warn!(
                topics = %config.topics,
                "no topic matches yet; new matching topics are picked up as they appear"
            );
        } else {
            tracing::info!(topics = ?matching, "reading Kafka topics");
        }
        Ok(KafkaSource { config, regex })
    }
}

impl Source for KafkaSource {
    fn reader(
        &self,
        worker: usize,
        workers: usize,
        resume: &Resume,
    ) -> anyhow::Result<Box<dyn SourceReader>> {
        let consumer: BaseConsumer = self
            .config
            .client()
            .create()
            .context("cannot create a Kafka consumer")?;
        // Metadata and watermark requests go over a client of their own: some brokers (tansu)
        // stall a connection that has a long-polling fetch and another request in flight.
        let meta: BaseConsumer = self
            .config
            .client()
            .create()
            .context("cannot create a Kafka client")?;
        let mut r = KafkaReader {
            consumer,
            meta,
            config: self.config.clone(),
            regex: self.regex.clone(),
            worker,
            workers: workers.max(1),
            parts: Vec::new(),
            index: HashMap::new(),
            resume: resume.positions.clone(),
            last_metadata: None,
            committed: HashMap::new(),
        };
        r.refresh()?;
        Ok(Box::new(r))
    }
}

struct Part {
    topic: String,
    partition: i32,
    /// Next offset to read.
    next: i64,
    high: Option<i64>,
    last_message: Instant,
    last_fetch: Option<Instant>,
}

impl Part {
    fn name(&self) -> String {
        format!("{}[{}]", self.topic, self.partition)
    }
}

struct KafkaReader {
    consumer: BaseConsumer,
    meta: BaseConsumer,
    config: KafkaConfig,
    regex: Regex,
    worker: usize,
    workers: usize,
    parts: Vec<Part>,
    index: HashMap<(String, i32), usize>,
    resume: Positions,
    last_metadata: Option<Instant>,
    committed: HashMap<usize, u64>,
}

impl KafkaReader {
    /// Looks up topics and partitions; assigns newly owned ones.
    fn refresh(&mut self) -> anyhow::Result<()> {
        let first = self.last_metadata.is_none();
        self.last_metadata = Some(Instant::now());
        let meta = match self.meta.fetch_metadata(None, self.config.connect_timeout) {
            Ok(m) => m,
            Err(e) if first => bail!("cannot reach Kafka at {}: {e}", self.config.brokers),
            Err(e) => {
                tracing::warn!(error = %e, "cannot refresh Kafka metadata; retrying later");
                return Ok(());
            }
        };
        let mut added = false;
        for t in meta.topics() {
            let name = t.name();
            if name.starts_with("__") || !self.regex.is_match(name) {
                continue;
            }
            for p in t.partitions() {
                let id = p.id();
                let owner = (stable_hash(name.as_bytes()) as usize).wrapping_add(id as usize)
                    % self.workers;
                if owner != self.worker || self.index.contains_key(&(name.to_string(), id)) {
                    continue;
                }
                let mut part = Part {
                    topic: name.to_string(),
                    partition: id,
                    next: -1,
                    high: None,
                    last_message: Instant::now(),
                    last_fetch: None,
                };
                if let Some(&pos) = self.resume.get(&part.name()) {
                    part.next = pos as i64;
                } else if let Ok((low, _)) =
                    self.meta
                        .fetch_watermarks(name, id, self.config.connect_timeout)
                {
                    // The earliest offset, asked on the metadata client: assigning a concrete
                    // offset spares the consumer's connection an offset lookup.
                    part.next = low;
                }
                self.index.insert((name.to_string(), id), self.parts.len());
                self.parts.push(part);
                added = true;
            }
        }
        if added {
            let mut tpl = TopicPartitionList::new();
            for p in &self.parts {
                let offset = if p.next >= 0 {
                    Offset::Offset(p.next)
                } else {
                    Offset::Beginning
                };
                tpl.add_partition_offset(&p.topic, p.partition, offset)
                    .context("cannot build the Kafka assignment")?;
            }
            self.consumer
                .assign(&tpl)
                .context("cannot assign Kafka partitions")?;
            tracing::info!(
                worker = self.worker,
                partitions = ?self.parts.iter().map(Part::name).collect::<Vec<_>>(),
                "assigned Kafka partitions"
            );
        }
        Ok(())
    }

    /// Updates the high watermark of partitions that were quiet lately by asking the broker
    /// (at most twice a second per partition; a busy partition is not caught up anyway).
    fn update_watermarks(&mut self) {
        for p in &mut self.parts {
            let quiet = p.last_message.elapsed() >= Duration::from_millis(200);
            let due = p
                .last_fetch
                .is_none_or(|f| f.elapsed() >= Duration::from_millis(500));
            if !(quiet && due) {
                continue;
            }
            p.last_fetch = Some(Instant::now());
            let Ok((low, high)) =
                self.meta
                    .fetch_watermarks(&p.topic, p.partition, Duration::from_millis(500))
            else {
                continue;
            };
            if p.next >= 0 && high < p.next {
                tracing::error!(
                    partition = %p.name(),
                    high,
                    next = p.next,
                    "Kafka offsets went backwards: was the topic recreated? Remove the state dir \
                     to rebuild from it"
                );
            }
            if p.next < 0 {
                // Nothing read yet: the earliest offset is where the consumer starts.
                p.next = low;
            }
            p.high = Some(high);
        }
    }
}

impl SourceReader for KafkaReader {
    fn partitions(&self) -> usize {
        self.parts.len()
    }

    fn partition_name(&self, p: usize) -> String {
        self.parts[p].name()
    }

    fn position_unit(&self) -> &'static str {
        "offset"
    }

    fn poll(&mut self, max_records: usize, f: &mut dyn FnMut(Record<'_>)) -> anyhow::Result<()> {
        if self
            .last_metadata
            .is_none_or(|t| t.elapsed() >= self.config.metadata_interval)
        {
            self.refresh()?;
        }
        let mut n = 0;
        while n < max_records {
            match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "Kafka consumer error (retried by librdkafka)");
                    break;
                }
                Some(Ok(m)) => {
                    let Some(&p) = self.index.get(&(m.topic().to_string(), m.partition())) else {
                        continue;
                    };
                    let part = &mut self.parts[p];
                    part.next = m.offset() + 1;
                    part.last_message = Instant::now();
                    n += 1;
                    f(Record {
                        partition: p,
                        position: m.offset() as u64,
                        line: m.offset() as u64,
                        payload: m.payload().unwrap_or(b"null"),
                    });
                }
            }
        }
        self.update_watermarks();
        Ok(())
    }

    fn next_position(&self, p: usize) -> u64 {
        self.parts[p].next.max(0) as u64
    }

    fn status(&self, p: usize) -> PartitionStatus {
        let part = &self.parts[p];
        let caught_up = part.high.is_some_and(|h| part.next >= h);
        if caught_up && part.last_message.elapsed() >= self.config.idle_timeout {
            PartitionStatus::Idle
        } else {
            PartitionStatus::Active
        }
    }

    fn commit(&mut self, positions: &[(usize, u64)]) -> anyhow::Result<()> {
        let mut tpl = TopicPartitionList::new();
        for &(p, pos) in positions {
            if self.committed.get(&p) == Some(&pos) {
                continue;
            }
            let part = &self.parts[p];
            tpl.add_partition_offset(&part.topic, part.partition, Offset::Offset(pos as i64))
                .context("cannot build the Kafka commit")?;
            self.committed.insert(p, pos);
        }
        if tpl.count() > 0
            && let Err(e) = self.consumer.commit(&tpl, CommitMode::Async)
        {
            tracing::warn!(error = %e, "cannot commit Kafka offsets (retried at the next commit)");
            self.committed.clear();
        }
        Ok(())
    }

    fn lag(&self, p: usize) -> Option<u64> {
        let part = &self.parts[p];
        part.high.map(|h| (h - part.next.max(0)).max(0) as u64)
    }
}
