//! The kernel requirements name real kernel options: every `CONFIG_` name
//! that `kernel_requirements()` can emit (the whole catalogue, and the lists
//! of every shipped policy with every backend) is `=y` or `=m` in the running
//! kernel's `/proc/config.gz`. This machine's kernel builds all of netfilter
//! in, so an option missing here is a misspelt or invented name.
//!
//! Without `/proc/config.gz` (a kernel without `CONFIG_IKCONFIG_PROC`) the
//! test prints why and skips; under `CI=true` it fails instead (the one gate,
//! `common::gate::skip`): `.ci/run` runs where the configuration can be read.

mod common;
#[path = "common/sources.rs"]
mod sources;

use common::{command, gate};
use firewall::kernel::{self, Backend};
use firewall::Policy;
use std::collections::HashMap;

/// The running kernel's options that are `y` or `m`, or why they cannot be read.
fn kernel_config() -> Result<HashMap<String, String>, String> {
    let out = command::try_run(&["zcat", "/proc/config.gz"], None, 10)
        .map_err(|e| format!("timeout/zcat to read /proc/config.gz ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "a readable /proc/config.gz (zcat: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let options: HashMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("CONFIG_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if options.len() < 100 {
        return Err(format!(
            "a kernel configuration in /proc/config.gz (read {} options)",
            options.len()
        ));
    }
    Ok(options)
}

fn config_or_skip(test: &str) -> Option<HashMap<String, String>> {
    match kernel_config() {
        Ok(c) => Some(c),
        Err(why) => {
            gate::skip(test, &why);
            None
        }
    }
}

fn check(config: &HashMap<String, String>, name: &str, context: &str) -> Option<String> {
    match config.get(name).map(String::as_str) {
        Some("y" | "m") => None,
        Some(other) => Some(format!("{context}: {name}={other}")),
        None => Some(format!("{context}: {name} is not an option of this kernel")),
    }
}

#[test]
fn every_catalogued_option_is_in_the_running_kernel() {
    let Some(config) = config_or_skip("every_catalogued_option_is_in_the_running_kernel") else {
        return;
    };
    let catalogue = kernel::catalogue();
    assert!(catalogue.len() >= 30, "{catalogue:?}");
    let bad: Vec<String> = catalogue
        .iter()
        .filter_map(|r| check(&config, r.config, r.module))
        .collect();
    assert!(
        bad.is_empty(),
        "unknown kernel options:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_shipped_policy_needs_only_options_of_the_running_kernel() {
    let Some(config) =
        config_or_skip("every_shipped_policy_needs_only_options_of_the_running_kernel")
    else {
        return;
    };
    let mut files = sources::rust_files("tests/ui/pass");
    files.extend(sources::rust_files("examples"));
    let mut bad = Vec::new();
    let mut policies = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (i, block) in sources::blocks(&text).into_iter().enumerate() {
            if block.text.contains('$') {
                continue; // inside macro_rules!
            }
            let policy = Policy::parse(&block.text)
                .unwrap_or_else(|d| panic!("{} block {i} must parse:\n{d}", file.display()));
            policies += 1;
            for backend in Backend::ALL {
                let reqs = policy.kernel_requirements(backend);
                assert!(!reqs.is_empty(), "{}: {backend}", file.display());
                for r in &reqs {
                    assert!(!r.needed_by.is_empty(), "{r:?}");
                    let ctx = format!("{} block {i} ({backend}, {})", file.display(), r.module);
                    bad.extend(check(&config, r.config, &ctx));
                }
            }
        }
    }
    assert!(
        policies >= 8,
        "expected the pass cases and examples, found {policies}"
    );
    assert!(
        bad.is_empty(),
        "unknown kernel options:\n{}",
        bad.join("\n")
    );
}
