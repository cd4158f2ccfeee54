//! The launcher template around a server's argv (running it is `vllm_sota_core::proc`'s).

/// Expand a launcher template around `argv`: `{argv}` spreads it, `{command}` becomes one
/// shell-quoted string (for `ssh host '<command>'`).
pub(crate) fn wrap_with_launcher(argv: &[String], launcher: Option<&[String]>) -> Vec<String> {
    let Some(template) = launcher else {
        return argv.to_vec();
    };
    let mut out = Vec::new();
    for part in template {
        if part == "{argv}" {
            out.extend(argv.iter().cloned());
        } else if part.contains("{command}") {
            out.push(part.replace("{command}", &vllm_sota_core::proc::shell_join(argv)));
        } else {
            out.push(part.clone());
        }
    }
    out
}
