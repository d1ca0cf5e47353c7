//! The kernel check before anything changes: the options and modules the
//! policy needs ([`crate::plan::requirements`]) against the running kernel's
//! configuration.
//!
//! The configuration is `/proc/config.gz` (decompressed in this process, see
//! [`super::system::gunzip`]), else
//! `/boot/config-<release>`. An option is available when it is `=y`, when its
//! module is loaded (`/sys/module/<name>`), or when it is `=m` and the module
//! can be loaded: listed in `/lib/modules/<release>/modules.dep` or
//! `modules.builtin` (read only when an `=m` option's module is not loaded),
//! or `modprobe -n -q <name>` succeeds. When no
//! configuration can be read the check is skipped ([`super::Applied::kernel_checked`]
//! is false): a host is never refused because we could not look.

use super::system::System;
use super::{ApplyError, Backend};
use crate::model::Model;
use crate::plan::{self, requirements};
use std::cell::OnceCell;
use std::collections::BTreeMap;

use crate::plan::requirements::Requirement;

/// Checks the policy's requirements against the running kernel. `Ok(true)`:
/// checked, all available; `Ok(false)`: no configuration could be read, not
/// checked; `Err`: [`ApplyError::KernelMissing`].
pub(crate) fn check(sys: &dyn System, model: &Model, backend: Backend) -> Result<bool, ApplyError> {
    let Some(kernel) = Kernel::read(sys) else {
        return Ok(false);
    };
    let reqs = requirements::of(&plan::lower(model), backend);
    let missing = kernel.missing(sys, reqs);
    if missing.is_empty() {
        Ok(true)
    } else {
        Err(ApplyError::KernelMissing { backend, missing })
    }
}

/// The running kernel's configuration.
struct Kernel {
    /// `CONFIG_X` -> `y`, `m`, ... (options that are not set are absent).
    config: BTreeMap<String, String>,
    /// The release (`/proc/sys/kernel/osrelease`), if readable.
    release: Option<String>,
    /// The modules `modules.dep` and `modules.builtin` list (`-` as `_`),
    /// read once, when first needed.
    listed: OnceCell<Option<Vec<String>>>,
}

impl Kernel {
    fn read(sys: &dyn System) -> Option<Kernel> {
        let release = sys
            .read_file("/proc/sys/kernel/osrelease")
            .ok()
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty() && !r.contains('/'));
        let from_proc = || sys.read_gz("/proc/config.gz").ok();
        let from_boot = || {
            let release = release.as_ref()?;
            sys.read_file(&format!("/boot/config-{release}")).ok()
        };
        let config = [from_proc(), from_boot()]
            .into_iter()
            .flatten()
            .map(|text| parse(&text))
            .find(|c| !c.is_empty())?;
        Some(Kernel {
            config,
            release,
            listed: OnceCell::new(),
        })
    }

    /// The modules the release's `modules.dep` and `modules.builtin` list.
    fn listed(&self, sys: &dyn System) -> Option<&Vec<String>> {
        self.listed
            .get_or_init(|| {
                let r = self.release.as_ref()?;
                let mut names = Vec::new();
                let mut any = false;
                for file in ["modules.dep", "modules.builtin"] {
                    if let Ok(text) = sys.read_file(&format!("/lib/modules/{r}/{file}")) {
                        any = true;
                        names.extend(text.lines().filter_map(module_of_line));
                    }
                }
                any.then_some(names)
            })
            .as_ref()
    }

    /// The requirements the kernel does not meet.
    fn missing(&self, sys: &dyn System, reqs: Vec<Requirement>) -> Vec<Requirement> {
        reqs.into_iter()
            .filter(|r| !self.available(sys, r))
            .collect()
    }

    fn available(&self, sys: &dyn System, req: &Requirement) -> bool {
        let value = self.config.get(req.config).map(String::as_str);
        if value == Some("y") {
            return true;
        }
        if sys.exists(&format!("/sys/module/{}", req.module)) {
            return true;
        }
        if value != Some("m") {
            return false;
        }
        let name = req.module.replace('-', "_");
        if self.listed(sys).is_some_and(|l| l.contains(&name)) {
            return true;
        }
        sys.run("modprobe", &["-n", "-q", req.module], None)
            .is_ok_and(|out| out.success())
    }
}

/// `CONFIG_X=value` lines; comments (`# CONFIG_X is not set`) and blanks skipped.
fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, _)| k.starts_with("CONFIG_"))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// The module a `modules.dep` (`kernel/net/netfilter/xt_LOG.ko.zst: deps`) or
/// `modules.builtin` (`kernel/net/netfilter/x_tables.ko`) line names, `-` as `_`.
fn module_of_line(line: &str) -> Option<String> {
    let path = line.split(':').next()?.trim();
    let file = path.rsplit('/').next()?;
    let stem = file.split(".ko").next()?;
    (!stem.is_empty()).then(|| stem.replace('-', "_"))
}
