//! `lockout`: the headline check. Applying a policy that drops connections to
//! the ssh port cuts the administrator off the host.

use crate::diagnostic::{Code, Sink, SpanRange, SpannedDiagnostic};
use crate::lowering::{Once, Spans};
use crate::model::{Chain, Model, Proto};

pub(super) fn check(model: &Model, spans: &Spans, whole: SpanRange, out: &mut Sink) {
    let Some(ssh) = model.ssh else {
        return; // `ssh none;`: not administered through the external interface
    };
    // A dnat of the ssh port takes it away whatever the input policy says.
    if let Some(d) = model
        .dnats
        .iter()
        .find(|d| d.proto == Proto::Tcp && d.port == ssh)
    {
        out.push(SpannedDiagnostic::new(
            Code::Lockout,
            spans.of(d.stmt),
            format!(
                "`{d}` sends the ssh port {ssh} to another host: ssh to this firewall would be lost"
            ),
            format!(
                "forward another port to the inner host (e.g. `dnat {} -> {}:{}`), or declare the port you administer through with `ssh PORT;`",
                if ssh.get() == 2222 { 2223 } else { 2222 },
                d.to,
                d.to_port
            ),
        ));
        return;
    }
    if !model.input.blocks() {
        return;
    }
    if model.accepts_locally(Proto::Tcp, ssh) {
        return;
    }
    let span = spans
        .once(Once::Policy(Chain::Input))
        .or_else(|| spans.once(Once::Ssh))
        .or_else(|| spans.once(Once::Extif))
        .unwrap_or(whole);
    let redirect_hint = model
        .redirects
        .iter()
        .find(|r| r.proto == Proto::Tcp && r.to_port == ssh)
        .map(|r| {
            format!(
                "; you reach sshd through `{r}`? then declare `ssh {};`",
                r.port
            )
        })
        .unwrap_or_default();
    out.push(SpannedDiagnostic::new(
        Code::Lockout,
        span,
        format!(
            "the input policy is `{}` and nothing accepts tcp port {ssh}, the ssh port: applying this policy locks you out",
            model.input.as_str()
        ),
        format!(
            "add `open tcp {ssh};` (with `from NET` to restrict who may connect), or `ssh none;` if this host is not administered through its external interface{redirect_hint}"
        ),
    ));
}
