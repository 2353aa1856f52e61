//! Criterion micro-benchmarks for Debezium decoding: one outbound message, schemaless and with
//! schemas, in each decimal mode.

use std::sync::Arc;

use cdcflow::decode::debezium::DebeziumDecoder;
use cdcflow::workload::{DecimalMode, GenOptions, generate, outbound_catalog};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn lines(schemas: bool, decimal: DecimalMode) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    generate(
        &GenOptions {
            orders: 200,
            seed: 3,
            shuffle: 0,
            duplicates: 0.0,
            schemas,
            decimal,
            span_secs: 3600,
            tx_metadata: Default::default(),
        },
        &mut out,
    )
    .unwrap();
    out.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| l.to_vec())
        .collect()
}

fn bench(c: &mut Criterion) {
    let catalog = Arc::new(outbound_catalog());
    let mut group = c.benchmark_group("decode");
    for (name, schemas, mode) in [
        ("schemas_off_string", false, DecimalMode::String),
        ("schemas_off_double", false, DecimalMode::Double),
        ("schemas_on_string", true, DecimalMode::String),
        ("schemas_on_precise", true, DecimalMode::Precise),
    ] {
        let msgs = lines(schemas, mode);
        let bytes: usize = msgs.iter().map(Vec::len).sum();
        group.throughput(Throughput::Elements(msgs.len() as u64));
        let mut dec = DebeziumDecoder::new(catalog.clone());
        group.bench_function(format!("{name} ({} B/msg)", bytes / msgs.len()), |b| {
            b.iter(|| {
                let mut n = 0;
                for m in &msgs {
                    if dec.decode(std::hint::black_box(m)).is_ok() {
                        n += 1;
                    }
                }
                n
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
