//! The cost of a proof (issue 10): `assert closed tcp 1..=21, 23..=79,
//! 81..=65535;` on a host that opens 22 and 80, a question over the whole
//! port space and every source of both families.
//!
//! `cargo bench --bench proof` runs criterion on the question (the
//! classifier over the plan, both families, as the `assert` check asks it)
//! and on parse+check with and without the assertion, then prints a table:
//! the question's time, parse+check of the same policy without the
//! assertion (the baseline, measured in the same run), and each as a
//! multiple of it. Target: under 1 ms per question. A second row asks the
//! same of a 10,000-port policy. A last table times `explain()` (the whole
//! packet space of both families) against parse+check: a gateway, 10,000
//! ports open to 1,000 sources (target under 50 ms), 1,000 per-host lines.

use criterion::{criterion_group, Criterion};
use firewall_core::compile::compile_str;
use firewall_core::plan::{self, Family};
use firewall_core::proof::{Class, Classifier, IntervalSet, Proto, Verdict};
use std::hint::black_box;
use std::time::{Duration, Instant};

const HOST: &str = "extif eth0; open tcp 22, 80;";
const QUESTION: &str = "assert closed tcp 1..=21, 23..=79, 81..=65535;";

/// A host opening ssh and `n - 1` more ports from 10,000 up.
fn ports_policy(n: u16) -> String {
    let ports: Vec<String> = (10_000..10_000 + n - 1).map(|p| p.to_string()).collect();
    format!("extif eth0; open tcp 22, {};", ports.join(", "))
}

/// (name, policy, assertion, the asserted-closed ports).
type Case = (&'static str, String, String, Vec<(u128, u128)>);

/// The bench's policies and questions.
fn cases() -> Vec<Case> {
    vec![
        (
            "host opening 22, 80",
            HOST.to_string(),
            QUESTION.to_string(),
            vec![(1, 21), (23, 79), (81, 65535)],
        ),
        (
            "10000 open ports",
            ports_policy(10_000),
            "assert closed tcp 1..=21, 23..=9999, 19999..=65535;".to_string(),
            vec![(1, 21), (23, 9999), (19999, 65535)],
        ),
    ]
}

/// The question as the `assert` check asks it: every source, both
/// families, the external interface; true when no part is accepted.
fn question(classifier: &Classifier, closed: &IntervalSet) -> bool {
    [Family::V4, Family::V6].into_iter().all(|family| {
        classifier
            .classify(Class {
                dport: closed.clone(),
                ..Class::incoming(family, "eth0", Proto::Tcp)
            })
            .iter()
            .all(|o| o.verdict != Verdict::Accept)
    })
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("proof");
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);
    for (name, policy, assertion, closed) in cases() {
        let model = compile_str(&policy).unwrap_or_else(|d| panic!("{name}: {}", d[0].message));
        let plan = plan::lower(&model);
        let classifier = Classifier::new(&plan, "lan0");
        let closed = IntervalSet::of(closed);
        group.bench_function(format!("{name}: question"), |b| {
            b.iter(|| question(black_box(&classifier), black_box(&closed)))
        });
        let with = format!("{policy} {assertion}");
        group.bench_function(format!("{name}: parse+check"), |b| {
            b.iter(|| compile_str(black_box(&policy)).is_ok())
        });
        group.bench_function(format!("{name}: parse+check+assert"), |b| {
            b.iter(|| compile_str(black_box(&with)).is_ok())
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
    println!("| policy | parse+check (baseline) | question (classifier, v4+v6) | question / parse+check | parse+check with the assert | with / without |");
    println!("|---|---|---|---|---|---|");
    let mut worst = Duration::ZERO;
    for (name, policy, assertion, closed) in cases() {
        let runs = if policy.len() > 20_000 { 15 } else { 500 };
        let model = compile_str(&policy).unwrap_or_else(|d| panic!("{name}: {}", d[0].message));
        let plan = plan::lower(&model);
        let classifier = Classifier::new(&plan, "lan0");
        let closed = IntervalSet::of(closed);
        assert!(
            question(&classifier, &closed),
            "{name}: the assertion must hold"
        );
        let with = format!("{policy} {assertion}");
        assert!(
            compile_str(&with).is_ok(),
            "{name}: the assertion must hold"
        );
        let check = median(runs, || {
            black_box(compile_str(black_box(&policy)).is_ok());
        });
        let q = median(runs.max(1000), || {
            black_box(question(black_box(&classifier), black_box(&closed)));
        });
        let checked = median(runs, || {
            black_box(compile_str(black_box(&with)).is_ok());
        });
        worst = worst.max(q);
        println!(
            "| {name} | {check:.2?} | {q:.2?} | {:.3}x | {checked:.2?} | {:.2}x |",
            q.as_secs_f64() / check.as_secs_f64(),
            checked.as_secs_f64() / check.as_secs_f64()
        );
    }
    let target = Duration::from_millis(1);
    let met = if worst < target { "met" } else { "NOT met" };
    println!();
    println!("slowest question: {worst:.2?} (target under {target:.0?}: {met})");

    // explain(): the whole packet space of every family and interface.
    println!();
    println!("| policy | parse+check (baseline) | explain() | explain / parse+check |");
    println!("|---|---|---|---|");
    let hosts: Vec<String> = (0..1_000)
        .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
        .collect();
    let ports: Vec<String> = (10_000..20_000).map(|p| p.to_string()).collect();
    let mut per_host = String::from("extif eth0; open tcp 22;");
    for h in &hosts {
        per_host.push_str(&format!(" open tcp 80 from {h};"));
    }
    for (name, policy) in [
        (
            "gateway",
            "extif eth0; open tcp 22, 80; open tcp 5432 from 198.51.100.0/24; icmp accept; masquerade; dnat 221 -> 192.168.125.22:22; redirect 26 -> 25; block out tcp 25;".to_string(),
        ),
        (
            "10000 ports from 1000 sources",
            format!(
                "extif eth0; open tcp 22; open tcp {} from {};",
                ports.join(", "),
                hosts.join(", ")
            ),
        ),
        ("1000 per-host lines", per_host),
    ] {
        let model = compile_str(&policy).unwrap_or_else(|d| panic!("{name}: {}", d[0].message));
        // The 10,000 x 1,000 policy takes seconds to check: a few runs.
        let runs = if policy.len() > 50_000 {
            3
        } else if policy.len() > 20_000 {
            15
        } else {
            200
        };
        let check = median(runs, || {
            black_box(compile_str(black_box(&policy)).is_ok());
        });
        let explain = median(runs, || {
            black_box(firewall_core::proof::explain(&model, &plan::lower(&model)).len());
        });
        println!(
            "| {name} | {check:.2?} | {explain:.2?} | {:.2}x |",
            explain.as_secs_f64() / check.as_secs_f64()
        );
    }
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    table();
}
