//! Parse + check + render, the work `firewall!` does while a crate compiles.
//!
//! `cargo bench --bench compile` runs criterion on the policies below (the
//! howto's, 1,000 and 10,000 open ports, 10,000 lines of one allowed host
//! each, one `from` list of 10,000 hosts, and 1,000 repetitions of the range
//! `1..=65535`, which is refused), then prints a table that splits the time
//! into lexing (the baseline: what any macro pays to see its tokens),
//! parse+check, and render, with each total as a multiple of its lexing time.
//! Targets: howto under 1 ms, 10,000 ports under 50 ms (issue 2); 10,000
//! per-host lines under 50 ms, and every check O(n log n) (issue 6).
//! `bash bench/check.sh` measures `cargo check` of a user crate with them.

use criterion::{criterion_group, Criterion};
use firewall::Policy;
use std::hint::black_box;
use std::str::FromStr;
use std::time::{Duration, Instant};

const HOWTO: &str = "
    extif eth0;
    open tcp 22, 80, 443, 53, 143, 993;
    open udp 53;
    icmp accept;
    masquerade;
    redirect 26 -> 25;
    dnat 221 -> 192.168.125.22:22;
    failsafe 10s;
";

/// `n` distinct tcp ports (ssh included), half of them also open to a network.
fn ports_policy(n: u16) -> String {
    let ports: Vec<String> = (10_000..10_000 + n - 1).map(|p| p.to_string()).collect();
    format!(
        "extif eth0; icmp accept; open tcp 22, {}; open udp 53 from 198.51.100.0/24, \"2001:db8::/32\";",
        ports.join(", ")
    )
}

/// The `i`-th host of 10.0.0.0/8.
fn host(i: usize) -> String {
    format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256)
}

/// `n` lines of `open tcp 22 from HOST;`, as many people allow hosts one by one.
fn per_host_policy(n: usize) -> String {
    let mut s = String::from("extif eth0;\n");
    for i in 0..n {
        s.push_str(&format!("open tcp 22 from {};\n", host(i)));
    }
    s
}

/// One `from` list of `n` hosts.
fn long_from_policy(n: usize) -> String {
    let hosts: Vec<String> = (0..n).map(host).collect();
    format!("extif eth0; open tcp 22 from {};", hosts.join(", "))
}

/// `n` repetitions of the whole port range: refused, one diagnostic per repetition.
fn repeated_range_policy(n: usize) -> String {
    format!(
        "extif eth0; open tcp 22, {};",
        vec!["1..=65535"; n].join(", ")
    )
}

fn policies() -> Vec<(&'static str, String)> {
    vec![
        ("howto", HOWTO.to_string()),
        ("1000 ports", ports_policy(1_000)),
        ("10000 ports", ports_policy(10_000)),
        ("10000 per-host lines", per_host_policy(10_000)),
        ("10000-host from", long_from_policy(10_000)),
        ("1000x 1..=65535 (refused)", repeated_range_policy(1_000)),
    ]
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse+check+render");
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);
    for (name, text) in policies() {
        group.bench_function(name, |b| {
            b.iter(|| Policy::parse(black_box(&text)).map(|p| p.bash().len()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);

/// Median wall time of `f` over `runs` runs.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn table() {
    println!();
    println!("| policy | lex (baseline) | parse+check | render | total | total / lex |");
    println!("|---|---|---|---|---|---|");
    for (name, text) in policies() {
        let runs = if text.len() > 20_000 { 15 } else { 200 };
        let lex = median(runs, || {
            black_box(proc_macro2::TokenStream::from_str(black_box(&text)).is_ok());
        });
        let check = median(runs, || {
            black_box(firewall_core::compile::compile_str(black_box(&text)).is_ok());
        });
        let render = match firewall_core::compile::compile_str(&text) {
            Ok(model) => median(runs, || {
                black_box(firewall_core::render::render(black_box(&model)).bash.len());
            }),
            Err(ds) => {
                assert!(
                    name.contains("refused"),
                    "bench policy `{name}` must be valid: {}",
                    ds[0].message
                );
                Duration::ZERO
            }
        };
        let total = check + render;
        println!(
            "| {name} | {lex:.2?} | {check:.2?} | {render:.2?} | {total:.2?} | {:.1}x |",
            total.as_secs_f64() / lex.as_secs_f64()
        );
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    table();
}
