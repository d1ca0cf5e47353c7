//! The differential test's helper process, run inside a namespace: this test
//! binary re-executed under `ip netns exec` (as the harness's listener is),
//! running the ignored test `differential_agent` with [`AGENT_ENV`] set.
//!
//! * `serve ROLE LIFETIME PORT,...`: TCP and UDP servers on every port (IPv4
//!   and IPv6). Each TCP connection and each UDP datagram is answered with
//!   `ROLE:PORT/PROTO from PEER`: which host and port the probe reached, and
//!   the source address it arrived with (masquerading, DNAT). Prints `READY`
//!   on stderr once every socket is bound; exits when its stdin closes (the
//!   test process is gone or dropped it), when killed, or after LIFETIME
//!   seconds.
//! * `probe`: reads `ID KIND ADDR PORT` lines (KIND `tcp`, `udp` or `ping`)
//!   from stdin, runs them all at once (one thread each, every one bounded by
//!   [`PROBE_TIMEOUT`]) and prints one `VERDICT ID TEXT` line per probe on
//!   stdout, then exits.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

/// The environment variable that turns the ignored test into an agent.
pub const AGENT_ENV: &str = "FW_DIFFERENTIAL_AGENT";

/// How long one probe waits for a connection, a reply or a ping answer. The
/// servers are one veth hop away and answer in well under 10 ms.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}

/// Runs the agent described by `spec`; never returns.
pub fn main(spec: &str) -> ! {
    let parts: Vec<&str> = spec.split_whitespace().collect();
    match parts[..] {
        ["serve", role, lifetime, ports] => {
            let lifetime = lifetime.parse::<u64>().unwrap_or(60);
            let ports: Vec<u16> = ports.split(',').filter_map(|p| p.parse().ok()).collect();
            serve(role, lifetime, &ports)
        }
        ["probe"] => probe(),
        _ => {
            say(&format!("ERROR bad agent spec {spec:?}"));
            std::process::exit(2)
        }
    }
}

/// The peer as the server saw it (IPv4-mapped IPv6 addresses as IPv4).
fn plain(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

fn serve(role: &str, lifetime: u64, ports: &[u16]) -> ! {
    // Exit when the test process goes away (our stdin closes) ...
    thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut sink) {
            if n == 0 {
                break;
            }
        }
        std::process::exit(0);
    });
    // ... or after the lifetime bound, whatever happens.
    thread::spawn(move || {
        thread::sleep(Duration::from_secs(lifetime));
        std::process::exit(0);
    });
    for &port in ports {
        // [::] is dual-stack unless net.ipv6.bindv6only is set; 0.0.0.0 then
        // binds separately (and fails harmlessly when [::] took it).
        let (mut tcp, mut udp) = (0, 0);
        for host in ["[::]", "0.0.0.0"] {
            let at = format!("{host}:{port}");
            if let Ok(l) = TcpListener::bind(&at) {
                tcp += 1;
                let banner = format!("{role}:{port}/tcp");
                thread::spawn(move || {
                    for conn in l.incoming() {
                        let Ok(stream) = conn else { continue };
                        let banner = banner.clone();
                        thread::spawn(move || answer_tcp(stream, &banner));
                    }
                });
            }
            if let Ok(s) = UdpSocket::bind(&at) {
                udp += 1;
                let banner = format!("{role}:{port}/udp");
                thread::spawn(move || {
                    let mut buf = [0u8; 512];
                    while let Ok((_, peer)) = s.recv_from(&mut buf) {
                        let reply = format!("{banner} from {}", plain(peer.ip()));
                        let _ = s.send_to(reply.as_bytes(), peer);
                    }
                });
            }
        }
        if tcp == 0 || udp == 0 {
            say(&format!(
                "ERROR cannot listen on port {port} (tcp {tcp}, udp {udp})"
            ));
            std::process::exit(1);
        }
    }
    say("READY");
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

fn answer_tcp(mut stream: TcpStream, banner: &str) {
    let Ok(peer) = stream.peer_addr() else { return };
    let _ = stream.write_all(format!("{banner} from {}\n", plain(peer.ip())).as_bytes());
    let _ = stream.shutdown(Shutdown::Write);
    // Drain what the client sends (bounded), then close gracefully.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 256];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

fn probe() -> ! {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        say("ERROR cannot read the probes");
        std::process::exit(2);
    }
    let probes: Vec<(String, String, String, String)> = input
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f[..] {
                [id, kind, addr, port] => Some((id.into(), kind.into(), addr.into(), port.into())),
                _ => None,
            }
        })
        .collect();
    let verdicts: Vec<(String, String)> = thread::scope(|s| {
        let handles: Vec<_> = probes
            .iter()
            .map(|(id, kind, addr, port)| s.spawn(move || (id.clone(), run_one(kind, addr, port))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| (String::new(), "panic".into())))
            .collect()
    });
    let mut out = std::io::stdout().lock();
    for (id, verdict) in verdicts {
        let _ = writeln!(out, "VERDICT {id} {verdict}");
    }
    let _ = out.flush();
    std::process::exit(0)
}

fn run_one(kind: &str, addr: &str, port: &str) -> String {
    let (Ok(ip), Ok(port)) = (addr.parse::<IpAddr>(), port.parse::<u16>()) else {
        return format!("bad probe {kind} {addr} {port}");
    };
    let target = SocketAddr::new(ip, port);
    match kind {
        "tcp" => tcp(target),
        "udp" => udp(target),
        "ping" => ping(addr),
        _ => format!("bad probe kind {kind}"),
    }
}

/// What a failed socket call means, in words that do not depend on timing.
fn classify(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match (e.kind(), e.raw_os_error()) {
        (TimedOut | WouldBlock, _) | (_, Some(110)) => "timeout".into(),
        (_, Some(111)) => "refused".into(),
        (_, Some(113)) => "host unreachable".into(),
        (_, Some(101)) => "network unreachable".into(),
        (_, Some(1)) => "not permitted".into(),
        (_, Some(13)) => "permission denied".into(),
        _ => format!("error {e}"),
    }
}

fn tcp(target: SocketAddr) -> String {
    match TcpStream::connect_timeout(&target, PROBE_TIMEOUT) {
        Ok(mut s) => {
            let _ = s.set_read_timeout(Some(PROBE_TIMEOUT));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 256];
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 || buf.len() > 1024 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let text = String::from_utf8_lossy(&buf).trim().to_string();
            if text.is_empty() {
                "connected, no banner".into()
            } else {
                format!("connected to {text}")
            }
        }
        Err(e) => classify(&e),
    }
}

fn udp(target: SocketAddr) -> String {
    let local = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = match UdpSocket::bind(local) {
        Ok(s) => s,
        Err(e) => return format!("error binding: {e}"),
    };
    if let Err(e) = socket.connect(target) {
        return classify(&e);
    }
    let _ = socket.set_read_timeout(Some(PROBE_TIMEOUT));
    if let Err(e) = socket.send(b"probe") {
        return classify(&e);
    }
    let mut buf = [0u8; 512];
    match socket.recv(&mut buf) {
        Ok(n) => format!("reply {}", String::from_utf8_lossy(&buf[..n]).trim()),
        Err(e) => classify(&e),
    }
}

fn ping(addr: &str) -> String {
    let status = Command::new("timeout")
        .args(["-k", "1", "5", "ping", "-n", "-q", "-c1", "-W1", addr])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => "reply".into(),
        Ok(s) => format!("no reply (ping {s})"),
        Err(e) => format!("error starting ping: {e}"),
    }
}
