//! Wrapper tools put in front of `PATH` to make a real tool slow, failing or
//! lossy inside a test, and the gates for optional tools.

use super::gate::{self, Need};
use std::path::{Path, PathBuf};

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
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("making the wrapper executable");
    }
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
    )
}

/// Whether `script` (util-linux, for a terminal) is installed; the skip
/// names the calling test's file and line. Through the one gate: under
/// `CI=true` its absence panics instead of skipping.
#[track_caller]
pub fn script_tool_available() -> bool {
    let caller = std::panic::Location::caller().to_string();
    gate::require(&caller, &[Need::Tool("script", "util-linux")])
}

/// Whether python3 is here ([`gate::require`] of [`gate::PYTHON3`]).
pub fn python3_available(test: &str) -> bool {
    gate::require(test, &[gate::PYTHON3])
}
