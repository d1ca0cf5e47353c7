//! The UDP sender of `bench/packet.sh` (per-packet cost of a ruleset), run
//! inside the sender's network namespace (`bench/udp_count.py` counts them
//! on the other side):
//!
//! ```text
//! udp_flood ADDR PORT COUNT [WARMUP]
//! ```
//!
//! sends WARMUP datagrams (default 0, untimed), then COUNT, 16 bytes each, to
//! ADDR:PORT from one socket, as fast as it can, and prints two numbers: the
//! nanoseconds this thread spent on a CPU during the COUNT sends
//! (`/proc/thread-self/schedstat`) and their wall time.
//!
//! Through a veth pair the receiving namespace's input path (netfilter
//! included) runs in the sender's `send()`, as a softirq on the sender's CPU,
//! and this kernel (no `CONFIG_IRQ_TIME_ACCOUNTING`) charges that softirq time
//! to the sender: the CPU time per datagram is the cost of one packet end to
//! end, without the time other jobs on the machine held the CPU.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp_flood: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, port, count, warmup) = match args.as_slice() {
        [a, p, c] => (a, p, c, "0"),
        [a, p, c, w] => (a, p, c, w.as_str()),
        _ => return Err("usage: udp_flood ADDR PORT COUNT [WARMUP]".into()),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr}: not an address"))?;
    let port: u16 = port.parse().map_err(|_| format!("{port}: not a port"))?;
    let count: u64 = count.parse().map_err(|_| format!("{count}: not a count"))?;
    let warmup: u64 = warmup
        .parse()
        .map_err(|_| format!("{warmup}: not a count"))?;
    let target = SocketAddr::new(ip, port);
    send(target, count, warmup)
}

fn send(target: SocketAddr, count: u64, warmup: u64) -> Result<(), String> {
    let any: SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .map_err(|_| "unspecified address".to_string())?;
    let socket = UdpSocket::bind(any).map_err(|e| format!("bind: {e}"))?;
    socket
        .connect(target)
        .map_err(|e| format!("connect {target}: {e}"))?;
    let payload = [0x5au8; 16];
    // ECONNREFUSED (an ICMP error came back) or ENOBUFS would mean the
    // datagrams are not getting through: fail instead of timing errors.
    let one = || {
        socket
            .send(&payload)
            .map(drop)
            .map_err(|e| format!("send to {target}: {e}"))
    };
    for _ in 0..warmup {
        one()?;
    }
    let cpu = on_cpu_ns()?;
    let start = Instant::now();
    for _ in 0..count {
        one()?;
    }
    let wall = start.elapsed().as_nanos();
    let cpu = on_cpu_ns()?.saturating_sub(cpu);
    println!("{cpu} {wall}");
    Ok(())
}

/// Nanoseconds this thread has run on a CPU (the first field of
/// `/proc/thread-self/schedstat`).
fn on_cpu_ns() -> Result<u64, String> {
    const PATH: &str = "/proc/thread-self/schedstat";
    let text = std::fs::read_to_string(PATH).map_err(|e| format!("{PATH}: {e}"))?;
    text.split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| format!("{PATH}: unexpected contents {text:?}"))
}
