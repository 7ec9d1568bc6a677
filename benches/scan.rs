//! Benchmark: `keydeck scan`'s speed on source-like text, in MB/s (10^6
//! bytes per second): the domain's finder over 64 MiB in memory, and the
//! built binary over a 64 MiB tree of 256 files (walk, read, find, print).
//!
//! Run: `cargo bench --bench scan`. The text is lines of code-like words with,
//! every 64 KiB, a display prefix (`eg_live_1a2B...`, a prefix hit that is no
//! key), and eight real keys; both benches check they find exactly those eight.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use keydeck::key::scan::KeyFinder;
use keydeck::key::SecretFormat;

const TEXT_BYTES: usize = 64 << 20;
const FILES: usize = 256;
const KEYS: usize = 8;

/// Deterministic code-like text of `len` bytes holding `KEYS` real keys.
fn source_text(len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "let", "fn", "self", "config", "request", "=", "&mut", "return", "Ok(())", "match",
        "client", "token", "header", "::", "String", "Vec<u8>", "if", "else", "{", "}", "//",
        "api_key", "0x1f", "\"eg\"", "live", "=>", "await?;", "impl",
    ];
    let format = SecretFormat::default();
    let mut text = Vec::with_capacity(len + 4096);
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let key_every = len / KEYS;
    let mut next_key = key_every / 2;
    let mut next_decoy = 0;
    while text.len() < len {
        let indent = (seed >> 60) as usize % 4;
        text.extend(std::iter::repeat_n(b' ', indent * 4));
        for _ in 0..(4 + (seed >> 40) as usize % 8) {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            text.extend_from_slice(WORDS[(seed >> 33) as usize % WORDS.len()].as_bytes());
            text.push(b' ');
        }
        if text.len() >= next_decoy {
            text.extend_from_slice(b"// revoke eg_live_1a2B... first");
            next_decoy += 65_536;
        }
        if text.len() >= next_key {
            text.extend_from_slice(b"key = \"");
            text.extend_from_slice(format.generate().expose().as_bytes());
            text.push(b'"');
            next_key += key_every;
        }
        text.push(b'\n');
    }
    text
}

fn finder(c: &mut Criterion) {
    let text = source_text(TEXT_BYTES);
    let finder = KeyFinder::new(SecretFormat::default());
    assert_eq!(finder.find_all(&text).len(), KEYS);
    let mut group = c.benchmark_group("scan");
    group
        .throughput(Throughput::BytesDecimal(text.len() as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("find_all 64 MiB in memory", |b| {
        b.iter(|| finder.find_all(std::hint::black_box(&text)))
    });
    group.finish();
}

/// The tree the binary scans: `FILES` files, 64 MiB in all.
fn write_tree(dir: &Path) -> u64 {
    let text = source_text(TEXT_BYTES);
    let per_file = text.len() / FILES;
    let mut written = 0;
    for (i, chunk) in text.chunks(per_file).enumerate() {
        let sub = dir.join(format!("src/m{:02}", i % 16));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i:03}.rs")), chunk).unwrap();
        written += chunk.len() as u64;
    }
    written
}

fn binary(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let bytes = write_tree(dir.path());
    let scan = || {
        Command::new(env!("CARGO_BIN_EXE_keydeck"))
            .arg("scan")
            .arg(dir.path())
            .env_remove("KEYDECK_KEY_PREFIX")
            .output()
            .unwrap()
    };
    let out = scan();
    assert_eq!(out.status.code(), Some(1), "keys found");
    // A key split over two files is not found: at most the eight.
    let found = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!((KEYS - 1..=KEYS).contains(&found), "{found} keys found");
    let mut group = c.benchmark_group("scan");
    group
        .throughput(Throughput::BytesDecimal(bytes))
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("keydeck scan, 64 MiB tree of 256 files", |b| b.iter(scan));
    group.finish();
}

criterion_group!(benches, finder, binary);
criterion_main!(benches);
