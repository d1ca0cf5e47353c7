//! Wrapper tools put in front of `PATH` to make a real tool slow, failing or
//! lossy inside a test, and the gates for optional tools.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directories searched for the real tools (never `PATH`, which may
/// already hold a wrapper).
const SYSTEM_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Where the real `name` is installed; panics if nowhere.
pub fn real_tool(name: &str) -> PathBuf {
    SYSTEM_DIRS
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no real {name}"))
}

/// Whether every one of `tools` is installed in one of `dirs`.
pub fn installed_in(dirs: &[&str], tools: &[&str]) -> bool {
    tools
        .iter()
        .all(|t| dirs.iter().any(|d| Path::new(d).join(t).exists()))
}

/// Writes into `dir` (created if needed), for each of `names`, an executable
/// bash script `#!/bin/bash\n<body>` in which every `REAL` is replaced by the
/// path of the real tool of that name (looked up only if `body` uses it).
/// Returns a `PATH` with `dir` in front of the current one.
pub fn wrap_tool(dir: &Path, names: &[&str], body: &str) -> String {
    std::fs::create_dir_all(dir).expect("creating the wrapper directory");
    for name in names {
        let text = if body.contains("REAL") {
            body.replace("REAL", &real_tool(name).display().to_string())
        } else {
            body.to_string()
        };
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/bash\n{text}")).expect("writing the wrapper");
        let _ = Command::new("chmod").arg("755").arg(&path).status();
    }
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
    )
}

/// Whether `script` (util-linux, for a terminal) is installed. Under
/// `CI=true` its absence panics instead of skipping.
pub fn script_tool_available() -> bool {
    if !Path::new("/usr/bin/script").exists() && !Path::new("/bin/script").exists() {
        assert!(
            std::env::var("CI").map(|v| v != "true").unwrap_or(true),
            "`script` (util-linux) is needed in CI"
        );
        return false;
    }
    true
}

/// Whether python3 is here; otherwise says why and skips, or under
/// `CI=true` panics (like `common::kernel_tests_available`).
pub fn python3_available(test: &str) -> bool {
    let ok = Command::new("python3")
        .arg("-c")
        .arg("pass")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test}: needs python3 (Debian package python3), which is missing");
        }
        eprintln!("SKIPPED {test}: needs python3 (Debian package python3)");
    }
    ok
}
