//! Parse + check + render, the work `firewall!` does while a crate compiles.
//!
//! `cargo bench --bench compile` runs criterion on the policies below (the
//! howto's, 1,000 and 10,000 open ports, 10,000 lines of one allowed host
//! each, one `from` list of 10,000 hosts, and 1,000 repetitions of the range
//! `1..=65535`, which is refused), then prints a table that splits the time
//! into lexing (the baseline: what any macro pays to see its tokens),
//! parse+check, and render, with each total as a multiple of its lexing time.
//! A second group and table split rendering by backend (issue 7): lowering
//! the model to the rule model (`plan::lower`), the iptables printer (IPv4
//! and IPv6) and the nft printer, for the howto and 1,000 and 10,000 ports,
//! each as a multiple of the same policy's parse+check time, measured in the
//! same run. Targets: howto under 1 ms, 10,000 ports under 50 ms (issue 2);
//! 10,000 per-host lines under 50 ms, and every check O(n log n) (issue 6);
//! parse + check + render of the howto under 1 ms and both backends rendered
//! at 10,000 ports under 50 ms (issue 7). The last lines say whether the
//! targets are met.
//! `bash bench/check.sh` measures `cargo check` of a user crate with them.

use criterion::{criterion_group, Criterion};
use firewall::Policy;
use firewall_core::plan::{self, Family};
use firewall_core::render::{iptables, nft};
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

    let mut group = c.benchmark_group("render by backend");
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);
    for (name, text) in backend_policies() {
        let model = match firewall_core::compile::compile_str(&text) {
            Ok(model) => model,
            Err(ds) => panic!("bench policy `{name}` must be valid: {}", ds[0].message),
        };
        group.bench_function(format!("{name}: iptables v4+v6"), |b| {
            b.iter(|| iptables_both(black_box(&model)))
        });
        group.bench_function(format!("{name}: nft"), |b| {
            b.iter(|| nft::nft(black_box(&model)).len())
        });
        group.bench_function(format!("{name}: both backends"), |b| {
            b.iter(|| both_backends(black_box(&model)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);

/// The policies of the render-by-backend table.
fn backend_policies() -> Vec<(&'static str, String)> {
    vec![
        ("howto", HOWTO.to_string()),
        ("1000 ports", ports_policy(1_000)),
        ("10000 ports", ports_policy(10_000)),
        ("10000 per-host lines", per_host_policy(10_000)),
        ("10000-host from", long_from_policy(10_000)),
    ]
}

/// The iptables texts of both families, from the model (lowering included).
fn iptables_both(model: &firewall_core::model::Model) -> usize {
    let plan = plan::lower(model);
    iptables::print(&plan, Family::V4).len() + iptables::print(&plan, Family::V6).len()
}

/// Every backend's texts from one lowering: what rendering both costs.
fn both_backends(model: &firewall_core::model::Model) -> usize {
    let plan = plan::lower(model);
    iptables::print(&plan, Family::V4).len()
        + iptables::print(&plan, Family::V6).len()
        + nft::print(&plan).len()
}

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

/// A figure against its target, as the table's last lines print it.
fn verdict(what: &str, took: Duration, target: Duration) {
    let met = if took < target { "met" } else { "NOT met" };
    println!("{what}: {took:.2?} (target under {target:.0?}: {met})");
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

/// Rendering split by backend, each as a multiple of parse+check (the
/// baseline, measured here in the same run); then the targets.
fn backend_table() {
    println!();
    println!("| policy | parse+check (baseline) | lower | iptables v4+v6 | nft | both backends | both / parse+check | parse+check+render (`Policy::parse`) |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut howto_total = Duration::ZERO;
    let mut both_10k = Duration::ZERO;
    for (name, text) in backend_policies() {
        let runs = if text.len() > 20_000 { 15 } else { 200 };
        let model = match firewall_core::compile::compile_str(&text) {
            Ok(model) => model,
            Err(ds) => panic!("bench policy `{name}` must be valid: {}", ds[0].message),
        };
        let check = median(runs, || {
            black_box(firewall_core::compile::compile_str(black_box(&text)).is_ok());
        });
        let lower = median(runs, || {
            black_box(plan::lower(black_box(&model)));
        });
        let ipt = median(runs, || {
            black_box(iptables_both(black_box(&model)));
        });
        let nft = median(runs, || {
            black_box(nft::nft(black_box(&model)).len());
        });
        let both = median(runs, || {
            black_box(both_backends(black_box(&model)));
        });
        let total = median(runs, || {
            black_box(
                Policy::parse(black_box(&text))
                    .map(|p| p.nft().len())
                    .is_ok(),
            );
        });
        if name == "howto" {
            howto_total = total;
        }
        if name == "10000 ports" {
            both_10k = both;
        }
        println!(
            "| {name} | {check:.2?} | {lower:.2?} | {ipt:.2?} | {nft:.2?} | {both:.2?} | {:.2}x | {total:.2?} |",
            both.as_secs_f64() / check.as_secs_f64()
        );
    }
    println!();
    verdict(
        "howto, parse + check + render (every text)",
        howto_total,
        Duration::from_millis(1),
    );
    verdict(
        "10000 ports, both backends rendered (lower + iptables v4, v6 + nft)",
        both_10k,
        Duration::from_millis(50),
    );
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    table();
    backend_table();
}
