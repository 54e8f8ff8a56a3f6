//! Throughput of the address engine on syslog-like text: scanning alone, and scanning with
//! lookups and rewriting against a small map.
//!
//! The text (32 MiB from [`prisem_tools::addr::synth::syslog`]) is also written to
//! `target/bench/addr-syslog.txt`, so `scripts/bench-addr` can time `grep` on the same bytes.

// criterion_group! defines an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prisem_tools::addr::{rewrite, scan, synth, NetMap};

const SIZE: usize = 32 << 20;

fn text_file() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench").join("addr-syslog.txt")
}

fn bench(c: &mut Criterion) {
    let text = synth::syslog(SIZE, 2014);
    let path = text_file();
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&path, &text) {
        eprintln!("cannot write {}: {e}", path.display());
    }
    let map = NetMap::parse(
        b"192.0.2.0/24|SEA|CTYSEA\n198.51.100.0/25|ARIN|arin\n2001:db8:3::/48|V6|six\n\
          .corp.example|CORP|corp\n",
    )
    .map(|l| l.map)
    .unwrap_or_default();

    let mut group = c.benchmark_group("addr");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(10);
    group.bench_function("scan", |b| b.iter(|| scan(black_box(&text)).count()));
    group.bench_function("rewrite", |b| {
        b.iter(|| rewrite(black_box(&text), &map, None).text.len())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
