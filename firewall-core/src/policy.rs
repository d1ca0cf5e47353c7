//! [`Policy`]: a policy read at run time, with the same checks and renderers as the macro.

use crate::apply::{self, Applied, ApplyError};
use crate::model::Model;
use crate::{compile, render, Diagnostics};

/// A checked policy read from text, with its rendered rulesets.
///
/// ```
/// use firewall_core::Policy;
/// let p = Policy::parse("extif eth0; open tcp 22, 80;").unwrap();
/// assert!(p.iptables_restore().contains("--dports 22,80"));
/// assert!(p.bash().starts_with("#!/bin/bash"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    model: Model,
    bash: String,
    texts: render::Texts,
    source: String,
}

impl Policy {
    /// Parses and checks `text` (the grammar of the `firewall!` macro; `//` and
    /// `/* */` comments work). On mistakes, every diagnostic with line and column.
    pub fn parse(text: &str) -> Result<Policy, Diagnostics> {
        let model = compile::compile_str(text)
            .map_err(|ds| Diagnostics::new(ds.iter().map(|d| d.located()).collect()))?;
        Ok(Policy::checked(model))
    }

    /// A policy from a model built in code: checked exactly like parsed text
    /// (it is written in canonical form, [`crate::render::policy::text`], and
    /// parsed again), so a model the checks refuse never reaches a renderer or
    /// `apply()`. Diagnostics point into that canonical text.
    ///
    /// ```
    /// use firewall_core::{Code, Policy};
    /// let mut model = Policy::parse("extif eth0; open tcp 22;").unwrap().model().clone();
    /// model.opens.clear(); // now it would lock the administrator out
    /// let err = Policy::from_model(model).unwrap_err();
    /// assert!(err.has(Code::Lockout));
    /// ```
    pub fn from_model(model: Model) -> Result<Policy, Diagnostics> {
        Policy::parse(&render::policy::text(&model))
    }

    /// Renders a model that has just passed the checks.
    fn checked(model: Model) -> Policy {
        let r = render::render(&model);
        Policy {
            model,
            bash: r.bash,
            texts: r.texts,
            source: r.source,
        }
    }

    /// The policy in canonical form: every statement, defaults spelled out;
    /// it parses again to the same policy.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The policy as a reviewer reads it, computed by the packet classifier
    /// from the planned rules (see [`crate::proof::explain`]).
    ///
    /// ```
    /// use firewall_core::Policy;
    /// let p = Policy::parse("extif eth0; open tcp 22, 80;").unwrap();
    /// assert!(p.explain().contains("tcp 22, 80: accepted from anyone (open tcp 22, 80)"));
    /// ```
    pub fn explain(&self) -> String {
        crate::proof::explain(&self.model, &crate::plan::lower(&self.model))
    }

    /// The checked model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// A bash script that applies the policy atomically, with backup and rollback.
    pub fn bash(&self) -> &str {
        &self.bash
    }

    /// The IPv4 rules in `iptables-save` format.
    pub fn iptables_restore(&self) -> &str {
        self.texts.ipv4.text()
    }

    /// The IPv6 rules in `ip6tables-save` format.
    pub fn ip6tables_restore(&self) -> &str {
        self.texts.ipv6.text()
    }

    /// The same policy as one nftables file for `nft -f`: the firewall's own
    /// tables (`table inet firewall`, `table ip firewall_nat`) replaced in one
    /// transaction, named sets for port and network lists
    /// (see [`crate::render::nft`]).
    pub fn nft(&self) -> &str {
        self.texts.nft.text()
    }

    /// The three rulesets with their maps (per line the origin of its rule,
    /// per chain what was printed): what [`Policy::apply`] loads.
    pub fn texts(&self) -> &render::Texts {
        &self.texts
    }

    /// The kernel options and modules this policy needs when `backend` loads
    /// it, each with what in the policy needs it, computed from the rule model
    /// (see [`crate::plan::requirements`]).
    ///
    /// ```
    /// use firewall_core::{plan::requirements::Backend, Policy};
    /// let p = Policy::parse("extif eth0; open tcp 22; redirect 26 -> 25;").unwrap();
    /// let reqs = p.kernel_requirements(Backend::Nftables);
    /// let redir = reqs.iter().find(|r| r.module == "nft_redir").unwrap();
    /// assert_eq!(redir.config, "CONFIG_NFT_REDIR");
    /// assert_eq!(redir.needed_by[0].to_string(), "redirect 26 -> 25");
    /// ```
    pub fn kernel_requirements(
        &self,
        backend: crate::plan::requirements::Backend,
    ) -> Vec<crate::plan::requirements::Requirement> {
        crate::plan::requirements::of(&crate::plan::lower(&self.model), backend)
    }

    /// [`Policy::kernel_requirements`] as text, one option per line with what
    /// needs it on the next (see [`crate::plan::requirements::text`]).
    pub fn kernel_requirements_text(&self, backend: crate::plan::requirements::Backend) -> String {
        crate::plan::requirements::text(&self.kernel_requirements(backend), backend)
    }

    /// Applies the policy to this host (root): atomically, backed up, rolled back
    /// on failure, honouring `failsafe`.
    ///
    /// See [`crate::apply`] for the steps, and [`Policy::apply_with`] for options.
    ///
    /// It returns as soon as the rules are in place; nothing prompts. With a
    /// `failsafe` statement the returned [`Applied`] holds the pending failsafe:
    /// call [`Applied::confirm`] within the window, or the previous rules come
    /// back at the deadline (also if the value is dropped or this process dies).
    pub fn apply(&self) -> Result<Applied, ApplyError> {
        apply::apply(&self.model, &self.texts, apply::Options::default())
    }

    /// Applies with options (a failsafe window, the SSH-session override, ...).
    pub fn apply_with(&self, options: apply::Options) -> Result<Applied, ApplyError> {
        apply::apply(&self.model, &self.texts, options)
    }

    /// Takes out everything the firewall owns (its chains, hooks, built-in
    /// policies; nftables: its tables) and nothing else; see [`apply::remove`].
    pub fn remove(&self) -> Result<crate::plan::Backend, ApplyError> {
        apply::remove(apply::Options::default())
    }

    /// [`Policy::remove`] with options (`backend`, `lock_wait`).
    pub fn remove_with(&self, options: apply::Options) -> Result<crate::plan::Backend, ApplyError> {
        apply::remove(options)
    }

    /// Applies with a failsafe of `window` (overriding the policy's `failsafe`):
    /// unless [`Applied::confirm`] is called within it, the previous rules come
    /// back, also if this process dies (see [`apply::FailsafeGuard`]).
    pub fn apply_with_failsafe(&self, window: std::time::Duration) -> Result<Applied, ApplyError> {
        apply::apply(
            &self.model,
            &self.texts,
            apply::Options {
                failsafe: Some(window),
                ..apply::Options::default()
            },
        )
    }
}
