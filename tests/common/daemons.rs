//! Real neighbours for the sharing tests (issue 8, DSL.md section 6): a real
//! `dockerd` ([`Dockerd`]) and a real `fail2ban-server` ([`Fail2ban`]), each
//! confined to a test namespace by the recipes in `tests/recipes/` (private
//! `/run`, `/etc/docker`, state under a per-daemon directory, rules only in
//! that namespace), waited for with bounds, and stopped by their PIDs when
//! dropped (also when the test panics): first politely, then SIGKILL, then
//! every process left in the daemon's private mount namespace and every
//! process in its containers' cgroups; the cgroups are removed afterwards.
//!
//! Nothing here runs outside the namespace it is given, apart from reading
//! `/proc` and removing the daemon's own cgroup directories.

use super::command::{self, describe};
use super::netns::Netns;
use super::scratch::{alive, wait_until};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Docker's bridge: the upper half of the documentation network
/// 203.0.113.0/24 (the harness's inside link is narrowed to the lower half).
pub const DOCKER_BIP: &str = "203.0.113.129/25";

/// Docker's IPv6 container network.
pub const DOCKER_V6: &str = "2001:db8:d0c::/64";

/// The Docker client of the `docker.io` package (not whatever else is on PATH).
pub const DOCKER: &str = "/usr/bin/docker";

/// The image every container runs: busybox, imported from a tarball.
pub const IMAGE: &str = "fwn-busybox:latest";

/// What the containers' web server answers (the image's `/www/index.html`).
pub const WEB_BANNER: &str = "container-web";

/// Bound of the daemons themselves (they are stopped long before).
const DAEMON_BOUND_SECS: u32 = 1800;

/// How long a daemon may take to answer after it was started.
const READY: Duration = Duration::from_secs(120);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A recipe of `tests/recipes/`.
fn recipe(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/recipes")
        .join(name)
}

/// A fresh, short state directory (`$TMPDIR/fwn-<pid>-<n>`: unix socket
/// paths are limited to 107 bytes) and its unique tag.
fn state_dir(kind: &str) -> (PathBuf, String) {
    let tag = format!(
        "fwn{kind}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let dir = std::env::temp_dir().join(&tag);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a daemon state directory");
    (dir, tag)
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The pid written to `path`, once it is there (bounded).
fn read_pid(path: &Path, within: Duration) -> Option<u32> {
    let mut pid = None;
    wait_until(within, || {
        pid = text(path).trim().parse().ok();
        pid.is_some()
    });
    pid
}

/// The last `n` lines of a log file, for failure messages.
fn tail(path: &Path, n: usize) -> String {
    let t = text(path);
    let lines: Vec<&str> = t.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn kill(signal: &str, pid: u32) {
    let _ = command::try_run(&["kill", signal, &pid.to_string()], None, 10);
}

/// Stops `pid`: SIGTERM, up to `grace` for it to exit, then SIGKILL.
fn stop_pid(pid: u32, grace: Duration) {
    if !alive(pid) {
        return;
    }
    kill("-TERM", pid);
    if !wait_until(grace, || !alive(pid)) {
        kill("-KILL", pid);
        wait_until(Duration::from_secs(5), || !alive(pid));
    }
}

/// Reaps the `timeout` process that ran a recipe (bounded; killed if needed).
fn reap(child: &mut Child) {
    // SIGTERM first: `timeout` passes it on to the recipe's process.
    if matches!(child.try_wait(), Ok(None)) {
        kill("-TERM", child.id());
    }
    if !wait_until(Duration::from_secs(10), || {
        matches!(child.try_wait(), Ok(Some(_)))
    }) {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// The inode of `/proc/<pid>/ns/<kind>`.
fn ns_inode(pid: u32, kind: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|m| m.ino())
}

/// Every process whose `kind` namespace is `inode` (a daemon's private mount
/// namespace: the daemon and every helper it started, and nothing else).
fn pids_in_ns(kind: &str, inode: u64) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != std::process::id() && ns_inode(pid, kind) == Some(inode))
        .collect()
}

/// Kills (SIGKILL) every process in the cgroup directory `dir` and below.
fn kill_cgroup(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            kill_cgroup(&p);
        }
    }
    for pid in text(&dir.join("cgroup.procs")).split_whitespace() {
        if let Ok(pid) = pid.parse::<u32>() {
            kill("-KILL", pid);
        }
    }
}

/// Removes the cgroup directory `dir` and its children (innermost first).
fn remove_cgroup(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                remove_cgroup(&p);
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// The directory `/sys/fs/cgroup/<hierarchy>/<name>` of every hierarchy.
fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    dir.flatten()
        .map(|e| e.path().join(name))
        .filter(|p| p.is_dir())
        .collect()
}

// ---------------------------------------------------------------------------
// dockerd
// ---------------------------------------------------------------------------

/// A real `dockerd` (with its own containerd) running in a test namespace,
/// its bridge on [`DOCKER_BIP`] / [`DOCKER_V6`], its state in a private
/// directory, its containers in a cgroup of their own. Stopped on drop.
pub struct Dockerd {
    netns: String,
    dir: PathBuf,
    cgroup: String,
    child: Option<Child>,
    pid: u32,
    mnt_ns: Option<u64>,
}

impl Dockerd {
    /// Starts dockerd in `netns` and waits (bounded) until it answers `docker
    /// info`; panics with its log if it does not.
    pub fn start(netns: &Netns) -> Dockerd {
        let (dir, tag) = state_dir("d");
        let cgroup = format!("/{tag}");
        let log = std::fs::File::create(dir.join("recipe.log")).expect("recipe log");
        let script = recipe("dockerd-in-netns.sh");
        let child = command::spawn(
            &[
                "sh",
                script.to_str().expect("UTF-8 path"),
                netns.name(),
                dir.to_str().expect("UTF-8 path"),
                DOCKER_BIP,
                DOCKER_V6,
                &cgroup,
            ],
            DAEMON_BOUND_SECS,
            Stdio::null(),
            Stdio::from(log.try_clone().expect("recipe log")),
            Stdio::from(log),
        );
        let mut d = Dockerd {
            netns: netns.name().to_string(),
            dir,
            cgroup,
            child: Some(child),
            pid: 0,
            mnt_ns: None,
        };
        // Panics from here on drop `d`, which stops whatever did start.
        d.pid = read_pid(&d.dir.join("ns-sh.pid"), Duration::from_secs(30))
            .unwrap_or_else(|| panic!("dockerd did not start:\n{}", d.logs()));
        d.mnt_ns = ns_inode(d.pid, "mnt");
        let ready = wait_until(READY, || {
            if !alive(d.pid) {
                return false;
            }
            d.docker_bounded(&["info", "--format", "{{.ID}}"], 10)
                .status
                .success()
        });
        assert!(ready, "dockerd not ready within {READY:?}:\n{}", d.logs());
        d
    }

    /// The end of dockerd's log and of the recipe's output.
    pub fn logs(&self) -> String {
        format!(
            "--- recipe ---\n{}\n--- dockerd.log (tail) ---\n{}",
            tail(&self.dir.join("recipe.log"), 20),
            tail(&self.dir.join("dockerd.log"), 40)
        )
    }

    /// Runs the docker client with `args` against this daemon (in its
    /// namespace), bounded by `secs`.
    pub fn docker_bounded(&self, args: &[&str], secs: u32) -> Output {
        let host = format!("unix://{}/docker.sock", self.dir.display());
        let mut full = vec!["ip", "netns", "exec", &self.netns, DOCKER, "-H", &host];
        full.extend_from_slice(args);
        command::run(&full, None, secs)
    }

    /// [`Dockerd::docker_bounded`] with 60 s.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_bounded(args, 60)
    }

    /// [`Dockerd::docker`], panicking with the daemon's log unless it
    /// succeeded; its stdout, trimmed.
    #[track_caller]
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "{}\n{}",
            describe(&format!("docker {}", args.join(" ")), &out),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Imports [`IMAGE`]: a tarball of `/bin/busybox` (busybox-static), a
    /// link for each of its applets and `/www/index.html` holding
    /// [`WEB_BANNER`]. No registry is needed.
    pub fn import_busybox(&self) {
        let root = self.dir.join("rootfs");
        for d in ["bin", "www", "tmp"] {
            std::fs::create_dir_all(root.join(d)).expect("rootfs");
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("copying busybox");
        std::fs::write(root.join("www/index.html"), format!("{WEB_BANNER}\n")).expect("www");
        let list = command::run(&["/bin/busybox", "--list"], None, 10);
        for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
            }
        }
        let tarball = self.dir.join("rootfs.tar");
        let out = command::run(
            &[
                "tar",
                "-C",
                root.to_str().expect("UTF-8 path"),
                "-cf",
                tarball.to_str().expect("UTF-8 path"),
                ".",
            ],
            None,
            60,
        );
        assert!(out.status.success(), "{}", describe("tar rootfs", &out));
        self.docker_ok(&["import", tarball.to_str().expect("UTF-8 path"), IMAGE]);
    }

    /// `docker run -d --name NAME -p PORT:80` of busybox httpd (answers
    /// [`WEB_BANNER`]); `Err` with the client's output if it fails (the
    /// outcome "docker run -p still works").
    pub fn run_web(&self, name: &str, port: u16) -> Result<String, String> {
        let publish = format!("{port}:80");
        let out = self.docker(&[
            "run", "-d", "--name", name, "-p", &publish, IMAGE, "httpd", "-f", "-p", "80", "-h",
            "/www",
        ]);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(describe(&format!("docker run -p {publish}"), &out))
        }
    }

    /// Removes a container (`docker rm -f`).
    pub fn remove_container(&self, name: &str) {
        let _ = self.docker(&["rm", "-f", name]);
    }

    /// Runs `args` inside container `name` (`docker exec`), bounded.
    pub fn exec(&self, name: &str, args: &[&str]) -> Output {
        let mut full = vec!["exec", name];
        full.extend_from_slice(args);
        self.docker_bounded(&full, 30)
    }

    fn stop(&mut self) {
        if self.pid != 0 && alive(self.pid) {
            // Containers first, with SIGKILL: httpd as pid 1 ignores SIGTERM,
            // and dockerd would wait 10 s for each.
            let ids = self.docker_bounded(&["ps", "-aq"], 20);
            let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.docker_bounded(&args, 30);
            }
            stop_pid(self.pid, Duration::from_secs(20));
        }
        if let Some(mut child) = self.child.take() {
            reap(&mut child);
        }
        // Whatever dockerd left (containerd, shims): its mount namespace.
        if let Some(inode) = self.mnt_ns {
            for pid in pids_in_ns("mnt", inode) {
                kill("-KILL", pid);
            }
        }
        let name = self.cgroup.trim_start_matches('/').to_string();
        for dir in cgroup_dirs(&name) {
            kill_cgroup(&dir);
        }
        for dir in cgroup_dirs(&name) {
            remove_cgroup(&dir);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------
// fail2ban
// ---------------------------------------------------------------------------

/// A real `fail2ban-server` running in a test namespace with one jail,
/// `sshd` (port 22, banning with iptables-multiport), its configuration,
/// socket and database in a private directory. Stopped on drop.
pub struct Fail2ban {
    netns: String,
    dir: PathBuf,
    child: Option<Child>,
    pid: u32,
}

impl Fail2ban {
    /// Starts fail2ban-server in `netns` and waits (bounded) until it answers
    /// `ping` and its jail runs; panics with its log if not.
    pub fn start(netns: &Netns) -> Fail2ban {
        let (dir, _) = state_dir("f");
        let log = std::fs::File::create(dir.join("recipe.log")).expect("recipe log");
        let script = recipe("fail2ban-in-netns.sh");
        let child = command::spawn(
            &[
                "sh",
                script.to_str().expect("UTF-8 path"),
                netns.name(),
                dir.to_str().expect("UTF-8 path"),
                "22",
            ],
            DAEMON_BOUND_SECS,
            Stdio::null(),
            Stdio::from(log.try_clone().expect("recipe log")),
            Stdio::from(log),
        );
        let mut f = Fail2ban {
            netns: netns.name().to_string(),
            dir,
            child: Some(child),
            pid: 0,
        };
        f.pid = read_pid(&f.dir.join("fail2ban.pid"), Duration::from_secs(60))
            .unwrap_or_else(|| panic!("fail2ban-server did not start:\n{}", f.logs()));
        let ready = wait_until(READY, || {
            alive(f.pid) && f.client(&["status", "sshd"]).status.success()
        });
        assert!(ready, "fail2ban not ready within {READY:?}:\n{}", f.logs());
        f
    }

    /// The end of fail2ban's log and of the recipe's output.
    pub fn logs(&self) -> String {
        format!(
            "--- recipe ---\n{}\n--- fail2ban.log (tail) ---\n{}",
            tail(&self.dir.join("recipe.log"), 20),
            tail(&self.dir.join("fail2ban.log"), 40)
        )
    }

    /// Runs `fail2ban-client` with `args` against this server, bounded.
    pub fn client(&self, args: &[&str]) -> Output {
        let etc = self.dir.join("etc");
        let sock = self.dir.join("fail2ban.sock");
        let mut full = vec![
            "ip",
            "netns",
            "exec",
            &self.netns,
            "fail2ban-client",
            "-c",
            etc.to_str().expect("UTF-8 path"),
            "-s",
            sock.to_str().expect("UTF-8 path"),
        ];
        full.extend_from_slice(args);
        command::run(&full, None, 30)
    }

    /// Bans `addr` in the `sshd` jail; panics with the log if the client fails.
    #[track_caller]
    pub fn ban(&self, addr: &str) {
        let out = self.client(&["set", "sshd", "banip", addr]);
        assert!(
            out.status.success(),
            "{}\n{}",
            describe(&format!("fail2ban-client set sshd banip {addr}"), &out),
            self.logs()
        );
    }

    /// The addresses fail2ban says are banned in `sshd`.
    pub fn banned(&self) -> String {
        String::from_utf8_lossy(&self.client(&["get", "sshd", "banned"]).stdout).into_owned()
    }

    fn stop(&mut self) {
        if self.pid != 0 {
            stop_pid(self.pid, Duration::from_secs(15));
        }
        if let Some(mut child) = self.child.take() {
            reap(&mut child);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Fail2ban {
    fn drop(&mut self) {
        self.stop();
    }
}
