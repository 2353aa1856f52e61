//! A seeded outbound workload (orders, items, shipments, couriers, deliveries) as Debezium JSON
//! lines: inserts, status transitions, updates that move rows between groups, primary-key
//! changes, deletes and re-creates, cancellations, multi-table transactions; optionally
//! bounded out-of-order delivery and duplicated deliveries.
//!
//! Contract: the same options give byte-identical output. With `shuffle = W`, a line leaves its
//! commit-order position by at most `W` lines; [`GenStats::max_displacement_ms`] says how much
//! allowed lateness a replay needs for no event to be late.

pub mod encode;

use std::collections::BinaryHeap;
use std::io::Write;

use crate::decode::Row;
use crate::schema::{Catalog, TableId};
use crate::value::{Decimal, MICROS_PER_DAY, Value, days_from_civil};
pub use encode::{DecimalMode, Encoder, Op, RowChange, encode_marker};

/// The outbound scenario's schema, as shipped in `dataflows/schema.sql`.
pub const OUTBOUND_SCHEMA: &str = include_str!("../../dataflows/schema.sql");

/// The outbound scenario's catalog.
pub fn outbound_catalog() -> Catalog {
    Catalog::parse("dataflows/schema.sql", OUTBOUND_SCHEMA).expect("the shipped schema parses")
}

/// Generator options.
#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Number of orders.
    pub orders: u64,
    /// RNG seed.
    pub seed: u64,
    /// Bounded out-of-order window, in lines (0 = commit order).
    pub shuffle: usize,
    /// Probability that a message is delivered twice.
    pub duplicates: f64,
    /// `schemas.enable`.
    pub schemas: bool,
    /// DECIMAL encoding.
    pub decimal: DecimalMode,
    /// Commit-time span in seconds: the workload's transactions are spread over it.
    pub span_secs: u64,
    /// Debezium transaction metadata (`provide.transaction.metadata`).
    pub tx_metadata: TxMetadata,
}

/// Whether and where transaction metadata is written.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum TxMetadata {
    /// None: every row carries its transaction's commit time.
    #[default]
    Off,
    /// Rows carry `transaction` blocks and their statement's time (a second apart within a
    /// transaction); BEGIN/END markers go to the same output.
    Inline,
    /// As `Inline`, but the markers go to their own output (Debezium's `<prefix>.transaction`).
    Separate,
}

/// What was generated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenStats {
    /// Row changes.
    pub events: u64,
    /// Source transactions.
    pub transactions: u64,
    /// Lines written (events plus duplicates).
    pub lines: u64,
    /// Largest amount by which a line's commit time is below an earlier line's: the allowed
    /// lateness under which no event of this output is late.
    pub max_displacement_ms: u64,
}

/// SplitMix64: small, fast, and stable across platforms and crate versions.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 1.0 < p
    }
}

const ITEM_TYPES: &[&str] = &[
    "book", "toy", "phone", "laptop", "shirt", "shoes", "lamp", "mug",
];
const COURIERS: &[&str] = &["dhl", "ups", "fedex", "gls", "dpd", "postnl"];
const WAREHOUSES: u64 = 5;
/// Default commit-time span of a workload, whatever its size: a week of dashboards.
pub const DEFAULT_SPAN_SECS: u64 = 7 * 86_400;
/// Binlog events per file before the generator rotates to the next file.
const EVENTS_PER_BINLOG: u64 = 250_000;

struct Tables {
    orders: TableId,
    items: TableId,
    shipments: TableId,
    couriers: TableId,
    deliveries: TableId,
}

struct OrderSim {
    order: Row,
    items: Vec<Row>,
    shipment: Option<Row>,
    delivery: Option<Row>,
    stage: u8,
    extras: u8,
    recreate: bool,
}

/// The state of a generation in progress: it produces transactions of row changes.
struct Sim {
    rng: Rng,
    t: Tables,
    now_ms: u64,
    file: u64,
    pos: u64,
    events_in_file: u64,
    next_item_id: i64,
    couriers: Vec<Row>,
    tx: Vec<RowChange>,
    rename_p: f64,
}

fn dec(cents: i64) -> Value {
    Value::Dec(Decimal::new(cents as i128, 2))
}

impl Sim {
    fn change(&mut self, table: TableId, op: Op, before: Option<Row>, after: Option<Row>) {
        if self.events_in_file == EVENTS_PER_BINLOG {
            self.file += 1;
            self.pos = 4;
            self.events_in_file = 0;
        }
        self.events_in_file += 1;
        self.pos += 180 + self.rng.below(120);
        self.tx.push(RowChange {
            table,
            op,
            before,
            after,
            // The binlog's event timestamp (Debezium `source.ts_ms`) has second resolution.
            ts_ms: self.now_ms / 1000 * 1000,
            file: self.file,
            pos: self.pos,
            row: 0,
        });
    }
    fn now(&self) -> Value {
        Value::DateTime(self.now_ms as i64 * 1000)
    }

    fn start(&mut self, id: i64) -> OrderSim {
        let order = Row::from(vec![
            Value::Int(id),
            Value::Int(1 + self.rng.below(5000) as i64),
            Value::Text("placed".into()),
            self.now(),
        ]);
        self.change(self.t.orders, Op::Create, None, Some(order.clone()));
        let n = 1 + self.rng.below(4);
        let mut items = Vec::new();
        for _ in 0..n {
            let item = Row::from(vec![
                Value::Int(self.next_item_id),
                Value::Int(id),
                Value::Text(ITEM_TYPES[self.rng.below(ITEM_TYPES.len() as u64) as usize].into()),
                Value::Int(1 + self.rng.below(5) as i64),
                dec(100 + self.rng.below(49_900) as i64),
            ]);
            self.next_item_id += 1;
            self.change(self.t.items, Op::Create, None, Some(item.clone()));
            items.push(item);
        }
        OrderSim {
            order,
            items,
            shipment: None,
            delivery: None,
            stage: 0,
            extras: self.rng.below(3) as u8,
            recreate: false,
        }
    }

    fn set(&mut self, table: TableId, row: &mut Row, col: usize, v: Value) {
        let before = row.clone();
        row.replace(col, v);
        self.change(table, Op::Update, Some(before), Some(row.clone()));
    }

    /// Advances one order by one transaction; returns false when the order is finished.
    fn step(&mut self, o: &mut OrderSim) -> bool {
        let id = match o.order.get(0) {
            Value::Int(i) => i,
            _ => unreachable!(),
        };
        let (t_orders, t_items, t_ship, t_deliv) = (
            self.t.orders,
            self.t.items,
            self.t.shipments,
            self.t.deliveries,
        );
        match o.stage {
            0 => {
                if self.rng.chance(0.08) {
                    self.set(t_orders, &mut o.order, 2, Value::Text("cancelled".into()));
                    if self.rng.chance(0.6) {
                        return false;
                    }
                } else {
                    self.set(t_orders, &mut o.order, 2, Value::Text("paid".into()));
                }
                o.stage = 1;
            }
            1 => {
                let ship = Row::from(vec![
                    Value::Int(id),
                    Value::Int(id),
                    Value::Int(1 + self.rng.below(WAREHOUSES) as i64),
                    Value::Text("picking".into()),
                    Value::Null,
                ]);
                self.change(t_ship, Op::Create, None, Some(ship.clone()));
                o.shipment = Some(ship);
                o.stage = 2;
            }
            2 => {
                let mut s = o.shipment.take().expect("stage 2 has a shipment");
                self.set(t_ship, &mut s, 3, Value::Text("packed".into()));
                o.shipment = Some(s);
                o.stage = 3;
            }
            3 => {
                // One transaction over two databases: shipment shipped + delivery dispatched.
                let mut s = o.shipment.take().expect("stage 3 has a shipment");
                let before = s.clone();
                s.replace(3, Value::Text("shipped".into()));
                s.replace(4, self.now());
                self.change(t_ship, Op::Update, Some(before), Some(s.clone()));
                o.shipment = Some(s);
                let d = Row::from(vec![
                    Value::Int(id),
                    Value::Int(id),
                    Value::Int(1 + self.rng.below(COURIERS.len() as u64) as i64),
                    dec(300 + self.rng.below(3_700) as i64),
                    self.now(),
                ]);
                self.change(t_deliv, Op::Create, None, Some(d.clone()));
                o.delivery = Some(d);
                o.stage = 4;
            }
            _ => {
                if o.extras == 0 {
                    return false;
                }
                o.extras -= 1;
                match self.rng.below(10) {
                    0 if !o.items.is_empty() => {
                        let i = self.rng.below(o.items.len() as u64) as usize;
                        let q = 1 + self.rng.below(9) as i64;
                        let mut item = o.items[i].clone();
                        self.set(t_items, &mut item, 3, Value::Int(q));
                        o.items[i] = item;
                    }
                    1 if o.items.len() > 1 => {
                        let i = self.rng.below(o.items.len() as u64) as usize;
                        let item = o.items.remove(i);
                        self.change(t_items, Op::Delete, Some(item), None);
                    }
                    2 if !o.items.is_empty() => {
                        // Primary-key change: the row moves to a new id.
                        let i = self.rng.below(o.items.len() as u64) as usize;
                        let mut item = o.items[i].clone();
                        let new_id = Value::Int(self.next_item_id);
                        self.next_item_id += 1;
                        self.set(t_items, &mut item, 0, new_id);
                        o.items[i] = item;
                    }
                    3 => {
                        let mut s = o.shipment.take().expect("shipped");
                        let w = 1 + self.rng.below(WAREHOUSES) as i64;
                        self.set(t_ship, &mut s, 2, Value::Int(w));
                        o.shipment = Some(s);
                    }
                    4 => {
                        let mut s = o.shipment.take().expect("shipped");
                        self.set(t_ship, &mut s, 3, Value::Text("returned".into()));
                        o.shipment = Some(s);
                    }
                    5 => {
                        self.set(t_orders, &mut o.order, 2, Value::Text("cancelled".into()));
                    }
                    6 if !o.recreate => {
                        // Delete shipment and delivery; the order goes back to packing.
                        let s = o.shipment.take().expect("shipped");
                        self.change(t_ship, Op::Delete, Some(s), None);
                        if let Some(d) = o.delivery.take() {
                            self.change(t_deliv, Op::Delete, Some(d), None);
                        }
                        o.recreate = true;
                        o.stage = 1;
                    }
                    7 if o.delivery.is_some() => {
                        let mut d = o.delivery.take().expect("checked");
                        let c = dec(300 + self.rng.below(3_700) as i64);
                        self.set(t_deliv, &mut d, 3, c);
                        o.delivery = Some(d);
                    }
                    // A courier rename moves all of its deliveries to another group: a few per workload.
                    8 if self.rng.chance(self.rename_p) => {
                        let i = self.rng.below(self.couriers.len() as u64) as usize;
                        let mut c = self.couriers[i].clone();
                        let base = COURIERS[i];
                        let name = if c.get(1) == Value::Text(base.into()) {
                            format!("{base}-express")
                        } else {
                            base.to_string()
                        };
                        self.set(self.t.couriers, &mut c, 1, Value::Text(name));
                        self.couriers[i] = c;
                    }
                    _ if !o.items.is_empty() => {
                        let i = self.rng.below(o.items.len() as u64) as usize;
                        let mut item = o.items[i].clone();
                        let p = dec(100 + self.rng.below(49_900) as i64);
                        self.set(t_items, &mut item, 4, p);
                        o.items[i] = item;
                    }
                    _ => {}
                }
            }
        }
        true
    }
}

/// Generates the workload, calling `emit(change)` per row change in commit order, grouped in
/// transactions (all changes of one transaction share `ts_ms`).
pub fn simulate(
    catalog: &Catalog,
    orders: u64,
    seed: u64,
    span_secs: u64,
    mut emit: impl FnMut(&[RowChange]),
) -> (u64, u64) {
    let id = |db: &str, t: &str| {
        catalog
            .lookup(db, t)
            .unwrap_or_else(|| panic!("outbound table {db}.{t} is declared"))
    };
    let t = Tables {
        orders: id("orders", "orders"),
        items: id("orders", "order_items"),
        shipments: id("warehouse", "shipments"),
        couriers: id("logistics", "couriers"),
        deliveries: id("logistics", "deliveries"),
    };
    let start_ms = (days_from_civil(2026, 3, 2) * MICROS_PER_DAY / 1000) as u64;
    let mut sim = Sim {
        rng: Rng::new(seed),
        t,
        now_ms: start_ms,
        file: 1,
        pos: 4,
        events_in_file: 0,
        next_item_id: 1,
        couriers: Vec::new(),
        tx: Vec::new(),
        rename_p: 30.0 / orders.max(1) as f64,
    };
    let (mut events, mut txs) = (0u64, 0u64);
    let mut flush = |sim: &mut Sim| {
        if !sim.tx.is_empty() {
            txs += 1;
            events += sim.tx.len() as u64;
            emit(&sim.tx);
            sim.tx.clear();
        }
    };
    // Snapshot of the couriers.
    for (i, name) in COURIERS.iter().enumerate() {
        let row = Row::from(vec![Value::Int(i as i64 + 1), Value::Text((*name).into())]);
        sim.change(sim.t.couriers, Op::Read, None, Some(row.clone()));
        sim.couriers.push(row);
    }
    flush(&mut sim);
    let mut active: Vec<OrderSim> = Vec::new();
    let mut started = 0u64;
    // About seven transactions per order; spread them over about a week of commit time.
    let mean_gap_ms = (span_secs.saturating_mul(1000) / (orders.max(1) * 7)).max(1);
    while started < orders || !active.is_empty() {
        sim.now_ms += sim.rng.below(2 * mean_gap_ms);
        if started < orders && (active.is_empty() || (active.len() < 1000 && sim.rng.chance(0.2))) {
            started += 1;
            let o = sim.start(started as i64);
            active.push(o);
        } else {
            let i = sim.rng.below(active.len() as u64) as usize;
            let mut o = active.swap_remove(i);
            if sim.step(&mut o) {
                active.push(o);
            }
        }
        flush(&mut sim);
    }
    (events, txs)
}

/// Writes the workload as Debezium JSON lines.
pub fn generate(opts: &GenOptions, out: &mut impl Write) -> std::io::Result<GenStats> {
    generate_with_markers(opts, out, None)
}

/// Writes the workload as Debezium JSON lines; with [`TxMetadata::Separate`] the transaction
/// markers go to `markers` (in commit order).
pub fn generate_with_markers(
    opts: &GenOptions,
    out: &mut impl Write,
    markers: Option<&mut dyn Write>,
) -> std::io::Result<GenStats> {
    generate_with_progress(opts, out, markers, None)
}

/// How far a generation is, for progress output (updated as it goes).
#[derive(Debug, Default)]
pub struct GenProgress {
    /// Orders started, of [`GenOptions::orders`].
    pub orders: std::sync::atomic::AtomicU64,
    /// Row changes generated.
    pub events: std::sync::atomic::AtomicU64,
}

/// [`generate_with_markers`], publishing how far it is in `progress`.
pub fn generate_with_progress(
    opts: &GenOptions,
    out: &mut impl Write,
    mut markers: Option<&mut dyn Write>,
    progress: Option<&GenProgress>,
) -> std::io::Result<GenStats> {
    use std::sync::atomic::Ordering::Relaxed;
    let catalog = outbound_catalog();
    let orders_table = catalog.lookup("orders", "orders");
    let mut encoder = Encoder::new(&catalog, opts.schemas, opts.decimal);
    let mut rng = Rng::new(opts.seed.wrapping_add(1));
    // Bounded shuffle: each line gets a sort key in [index, index + W]; a min-heap releases
    // lines in key order once no later line can have a smaller key.
    let mut heap: BinaryHeap<std::cmp::Reverse<(u64, u64, u64, String)>> = BinaryHeap::new();
    let mut index = 0u64;
    let mut stats = GenStats::default();
    let mut max_seen = 0u64;
    let mut io_error: Option<std::io::Error> = None;
    let mut write = |line: &str, ts: u64, stats: &mut GenStats, out: &mut dyn Write| {
        if max_seen > ts {
            stats.max_displacement_ms = stats.max_displacement_ms.max(max_seen - ts);
        }
        max_seen = max_seen.max(ts);
        stats.lines += 1;
        out.write_all(line.as_bytes())
            .and_then(|_| out.write_all(b"\n"))
    };
    let w = opts.shuffle as u64;
    let (events, txs) = simulate(&catalog, opts.orders, opts.seed, opts.span_secs, |tx| {
        if io_error.is_some() {
            return;
        }
        if let Some(p) = progress {
            // Orders are numbered as they start: the greatest id created is the count.
            for c in tx {
                if Some(c.table) == orders_table
                    && c.op == Op::Create
                    && let Some(Value::Int(id)) = c.after.as_ref().and_then(|r| r.try_get(0))
                {
                    p.orders.fetch_max(id as u64, Relaxed);
                }
            }
            p.events.fetch_add(tx.len() as u64, Relaxed);
        }
        let meta = opts.tx_metadata != TxMetadata::Off;
        let mut lines: Vec<(String, u64, bool)> = Vec::with_capacity(tx.len() + 2);
        let commit = tx.last().map_or(0, |c| c.ts_ms);
        let id = tx.first().map_or(String::new(), |c| {
            format!("file=mysql-bin.{:06},pos={}", c.file, c.pos)
        });
        if meta {
            let mut l = String::new();
            let first = commit.saturating_sub(1000 * (tx.len() as u64 - 1));
            encode::encode_marker(&id, first, &[], opts.schemas, &mut l);
            lines.push((l, first, true));
        }
        let mut counts: Vec<(String, u64)> = Vec::new();
        for (i, c) in tx.iter().enumerate() {
            let mut line = String::with_capacity(512);
            if meta {
                // Statements a second apart; the last one at the commit.
                let mut c = c.clone();
                c.ts_ms = commit.saturating_sub(1000 * (tx.len() - 1 - i) as u64);
                encoder.encode_in(&c, Some((&id, i as u64 + 1)), &mut line);
                let coll = catalog.tables[c.table].qualified();
                match counts.iter_mut().find(|(n, _)| *n == coll) {
                    Some(e) => e.1 += 1,
                    None => counts.push((coll, 1)),
                }
                lines.push((line, c.ts_ms, false));
            } else {
                encoder.encode(c, &mut line);
                lines.push((line, c.ts_ms, false));
            }
        }
        if meta {
            let mut l = String::new();
            encode::encode_marker(&id, commit, &counts, opts.schemas, &mut l);
            lines.push((l, commit, true));
        }
        for (line, ts, marker) in lines {
            if marker && opts.tx_metadata == TxMetadata::Separate {
                if let Some(m) = markers.as_mut()
                    && let Err(e) = m
                        .write_all(line.as_bytes())
                        .and_then(|_| m.write_all(b"\n"))
                {
                    io_error = Some(e);
                    return;
                }
                continue;
            }
            let copies = if opts.duplicates > 0.0 && rng.chance(opts.duplicates) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let key = index + if w > 0 { rng.below(w + 1) } else { 0 };
                heap.push(std::cmp::Reverse((key, index, ts, line.clone())));
                index += 1;
            }
            while let Some(std::cmp::Reverse((key, ..))) = heap.peek() {
                if *key >= index {
                    break; // a later line may still get a smaller key
                }
                let std::cmp::Reverse((_, _, ts, l)) = heap.pop().expect("peeked");
                if let Err(e) = write(&l, ts, &mut stats, out) {
                    io_error = Some(e);
                    return;
                }
            }
        }
    });
    while let Some(std::cmp::Reverse((_, _, ts, l))) = heap.pop() {
        if io_error.is_none()
            && let Err(e) = write(&l, ts, &mut stats, out)
        {
            io_error = Some(e);
        }
    }
    if let Some(e) = io_error {
        return Err(e);
    }
    stats.events = events;
    stats.transactions = txs;
    Ok(stats)
}
