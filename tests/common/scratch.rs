//! Scratch directories, bounded waits and process liveness for the kernel
//! tests that run `apply()` and the bash script (apply.rs, apply_host.rs,
//! faults.rs).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A private scratch directory `$TMPDIR/<prefix>-<test>-<pid>`, created empty
/// and removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// Creates it afresh (an old one of the same name is removed first).
    /// A `:` in `test` (`name::nftables`) becomes `_`: the directory goes
    /// into `PATH` (wrapper tools) and `TMPDIR`.
    pub fn new(prefix: &str, test: &str) -> Scratch {
        let test = test.replace(':', "_");
        let dir = std::env::temp_dir().join(format!("{prefix}-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a scratch directory");
        Scratch(dir)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// The directory as text (for environment variables and scripts).
    pub fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether process `pid` runs (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
        !matches!(
            st.rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().next()),
            Some("Z") | Some("X")
        )
    })
}

/// Waits (bounded by `d`) until `f` holds, polling every 50 ms; true if it did.
pub fn wait_until(d: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + d;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pid this test caused (e.g. a failsafe watchdog; 0 for none): gone at the
/// end of the test, one way or another (SIGKILLed on drop if still alive).
pub struct PidGuard(pub u32);

impl PidGuard {
    /// Waits (bounded) for it to exit by itself; true if it did.
    pub fn exits_within(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.0 == 0 || !alive(self.0) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.0 == 0 || !alive(self.0)
    }
}

impl Drop for PidGuard {
    fn drop(&mut self) {
        if self.0 != 0 && alive(self.0) {
            let _ = super::command::try_run(&["kill", "-9", &self.0.to_string()], None, 10);
        }
    }
}
