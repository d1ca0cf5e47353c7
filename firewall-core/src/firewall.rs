//! [`Firewall`]: the constant a `firewall!` block expands to.

use crate::apply::{self, Applied, ApplyError, Texts};
use crate::model::Model;
use crate::{compile, Diagnostics, Policy};

/// A checked, rendered policy, built at compile time by `firewall!`.
///
/// Every text is rendered while the crate compiles; the methods only hand them out.
///
/// ```
/// use firewall_core::Firewall;
/// // What the macro emits, in effect (tests use Policy::parse to build one at run time):
/// # let _ = Firewall::__placeholder();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firewall {
    source: &'static str,
    bash: &'static str,
    ipv4: &'static str,
    ipv6: &'static str,
    nft: &'static str,
    explain: &'static str,
}

impl Firewall {
    #[doc(hidden)]
    pub const fn __new(
        source: &'static str,
        bash: &'static str,
        ipv4: &'static str,
        ipv6: &'static str,
    ) -> Firewall {
        Firewall {
            source,
            bash,
            ipv4,
            ipv6,
            nft: "",
            explain: "",
        }
    }

    /// The constant with its explanation (the macro emits
    /// `__new(..).__with_nft(..).__with_explain(..)`).
    #[doc(hidden)]
    pub const fn __with_explain(self, explain: &'static str) -> Firewall {
        Firewall { explain, ..self }
    }

    /// The policy as a reviewer reads it, computed by the packet classifier
    /// from the planned rules (see [`crate::proof::explain`]): per family and
    /// external interface, which ports accept new connections from whom,
    /// what is forwarded where, and what leaves.
    pub const fn explain(&self) -> &'static str {
        self.explain
    }

    /// The constant with its nftables file (the macro emits
    /// `__new(..).__with_nft(..)`).
    #[doc(hidden)]
    pub const fn __with_nft(self, nft: &'static str) -> Firewall {
        Firewall { nft, ..self }
    }

    /// Stands in for a policy that did not compile, so that surrounding code
    /// raises no follow-on errors. Never reaches a running program.
    #[doc(hidden)]
    pub const fn __placeholder() -> Firewall {
        Firewall::__new("", "", "", "")
    }

    /// The policy in canonical form: every statement, defaults spelled out
    /// (see [`crate::render::policy`]); it parses again to the same policy.
    pub const fn source(&self) -> &'static str {
        self.source
    }

    /// A bash script that applies the policy atomically, with backup and rollback.
    pub const fn bash(&self) -> &'static str {
        self.bash
    }

    /// The IPv4 rules in `iptables-save` format (for `iptables-restore`).
    pub const fn iptables_restore(&self) -> &'static str {
        self.ipv4
    }

    /// The IPv6 rules in `ip6tables-save` format (for `ip6tables-restore`).
    pub const fn ip6tables_restore(&self) -> &'static str {
        self.ipv6
    }

    /// The same policy as one nftables file for `nft -f` (see [`Policy::nft`]).
    pub const fn nft(&self) -> &'static str {
        self.nft
    }

    /// The kernel options and modules this policy needs when `backend` loads
    /// it (see [`Policy::kernel_requirements`]). Computed on demand from
    /// [`Firewall::source`] (the canonical policy the macro checked), not
    /// stored in the constant: parsing and lowering take microseconds, and the
    /// requirements follow from the same rule model the rulesets were printed
    /// from. `Err` only for a constant not built by `firewall!`.
    ///
    /// ```
    /// use firewall_core::plan::requirements::Backend;
    /// # let fw = firewall_core::Firewall::__new("extif eth0;\nopen tcp 22;\n", "", "", "");
    /// let reqs = fw.kernel_requirements(Backend::IptablesLegacy).unwrap();
    /// assert!(reqs.iter().any(|r| r.config == "CONFIG_NETFILTER_XT_MATCH_CONNTRACK"));
    /// ```
    pub fn kernel_requirements(
        &self,
        backend: crate::plan::requirements::Backend,
    ) -> Result<Vec<crate::plan::requirements::Requirement>, Diagnostics> {
        Ok(self.policy()?.kernel_requirements(backend))
    }

    /// [`Firewall::kernel_requirements`] as text (see
    /// [`crate::plan::requirements::text`]).
    pub fn kernel_requirements_text(
        &self,
        backend: crate::plan::requirements::Backend,
    ) -> Result<String, Diagnostics> {
        Ok(self.policy()?.kernel_requirements_text(backend))
    }

    /// The policy as a runtime value (parsed again from [`Firewall::source`]).
    pub fn policy(&self) -> Result<Policy, Diagnostics> {
        Policy::parse(self.source)
    }

    /// The checked model behind the constant, and its texts printed again
    /// with their maps (per line the origin of its rule, per chain what was
    /// printed), refused unless they are exactly the texts compiled into
    /// the constant: then the map describes exactly what is loaded.
    fn model_and_texts(&self) -> Result<(Model, Texts), ApplyError> {
        let model = compile::compile_str(self.source).map_err(|ds| {
            ApplyError::Policy(Diagnostics::new(ds.iter().map(|d| d.located()).collect()))
        })?;
        let texts = Texts::render(&model);
        for (text, compiled, printed) in [
            ("iptables_restore", self.ipv4, texts.ipv4.text()),
            ("ip6tables_restore", self.ipv6, texts.ipv6.text()),
            ("nft", self.nft, texts.nft.text()),
        ] {
            if compiled != printed {
                return Err(ApplyError::CompiledTextDiffers { text });
            }
        }
        Ok((model, texts))
    }

    /// Applies the policy to this host: the rulesets compiled into this
    /// constant ([`Firewall::iptables_restore`], [`Firewall::ip6tables_restore`],
    /// [`Firewall::nft`]), so what a reviewer read is what is loaded. They are
    /// printed again from [`Firewall::source`] for their maps (which
    /// statement a rejected line came from, what to verify), and the apply is
    /// refused ([`ApplyError::CompiledTextDiffers`]: rebuild) unless the two
    /// are identical. See [`Policy::apply`] for the steps. With a `failsafe`
    /// statement, call [`Applied::confirm`] on the result within the window,
    /// or the previous rules come back at the deadline.
    pub fn apply(&self) -> Result<Applied, ApplyError> {
        self.apply_with(apply::Options::default())
    }

    /// Applies with options; see [`Policy::apply_with`].
    pub fn apply_with(&self, options: apply::Options) -> Result<Applied, ApplyError> {
        let (model, texts) = self.model_and_texts()?;
        apply::apply(&model, &texts, options)
    }

    /// Takes out everything the firewall owns (its chains, hooks, built-in
    /// policies; nftables: its tables) and nothing else; see [`apply::remove`].
    pub fn remove(&self) -> Result<crate::plan::Backend, ApplyError> {
        apply::remove(apply::Options::default())
    }

    /// [`Firewall::remove`] with options (`backend`, `lock_wait`).
    pub fn remove_with(&self, options: apply::Options) -> Result<crate::plan::Backend, ApplyError> {
        apply::remove(options)
    }

    /// Applies with a failsafe window; see [`Policy::apply_with_failsafe`].
    pub fn apply_with_failsafe(&self, window: std::time::Duration) -> Result<Applied, ApplyError> {
        self.apply_with(apply::Options {
            failsafe: Some(window),
            ..apply::Options::default()
        })
    }
}
