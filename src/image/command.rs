//! How a container's `command`/`args`/`env` combine with the image config, exactly as
//! Kubernetes (and the CRI runtimes under it) do it.
//!
//! | container sets      | process runs                |
//! |---------------------|-----------------------------|
//! | command and args    | command + args              |
//! | command only        | command (image Cmd ignored) |
//! | args only           | image Entrypoint + args     |
//! | neither             | image Entrypoint + Cmd      |
//!
//! `$(VAR)` references in command and args are expanded from the container's environment
//! by [`expand_env_refs`], which the kubelet applies before calling [`command_for`].

use super::error::ImageError;
use super::spec::ImageConfig;

/// The argv a container runs: Kubernetes' rules over `command`, `args` and the image.
pub fn command_for(
    command: &[String],
    args: &[String],
    config: &ImageConfig,
) -> Result<Vec<String>, ImageError> {
    let argv: Vec<String> = if !command.is_empty() {
        command.iter().chain(args).cloned().collect()
    } else {
        // Docker writes `Entrypoint: [""]` to mean "no entrypoint" (`--entrypoint ""`).
        let entrypoint: &[String] = match config.entrypoint.as_slice() {
            [only] if only.is_empty() => &[],
            e => e,
        };
        let rest = if args.is_empty() { &config.cmd } else { args };
        entrypoint.iter().chain(rest).cloned().collect()
    };
    if argv.is_empty() {
        return Err(ImageError::NoCommand);
    }
    Ok(argv)
}

/// The environment a container gets: the image's `NAME=value` entries, then the
/// container's, a container variable replacing an image variable of the same name in
/// place. Later duplicates within the container's list win, as in Kubernetes.
pub fn merge_env(image_env: &[String], container_env: &[(String, String)]) -> Vec<String> {
    let mut merged: Vec<(String, String)> =
        Vec::with_capacity(image_env.len() + container_env.len());
    let mut set = |name: &str, value: &str| match merged.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => slot.1 = value.to_string(),
        None => merged.push((name.to_string(), value.to_string())),
    };
    for entry in image_env {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        if !name.is_empty() {
            set(name, value);
        }
    }
    for (name, value) in container_env {
        set(name, value);
    }
    merged
        .into_iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect()
}

/// Expands `$(VAR)` references as Kubernetes does in command, args and env values:
/// `$(VAR)` becomes the value when `lookup` knows VAR and stays as written otherwise;
/// `$$` is an escaped `$` (so `$$(VAR)` yields a literal `$(VAR)`); anything else is kept.
pub fn expand_env_refs(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if after.is_empty() {
            // A trailing '$' is literal.
            out.push('$');
            rest = after;
        } else if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    // Unterminated: kept verbatim.
                    out.push_str("$(");
                    rest = body;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageConfig {
        ImageConfig {
            entrypoint: s(entrypoint),
            cmd: s(cmd),
            ..Default::default()
        }
    }

    #[test]
    fn kubernetes_command_table() {
        let img = image(&["/ep"], &["cmd1", "cmd2"]);
        // Neither: Entrypoint + Cmd.
        assert_eq!(
            command_for(&[], &[], &img).unwrap(),
            s(&["/ep", "cmd1", "cmd2"])
        );
        // Args only: Entrypoint + args.
        assert_eq!(
            command_for(&[], &s(&["a"]), &img).unwrap(),
            s(&["/ep", "a"])
        );
        // Command only: image Cmd is ignored.
        assert_eq!(command_for(&s(&["/c"]), &[], &img).unwrap(), s(&["/c"]));
        // Both.
        assert_eq!(
            command_for(&s(&["/c", "x"]), &s(&["a", "b"]), &img).unwrap(),
            s(&["/c", "x", "a", "b"])
        );
        // No entrypoint: Cmd alone, or args alone.
        let sh = image(&[], &["sh"]);
        assert_eq!(command_for(&[], &[], &sh).unwrap(), s(&["sh"]));
        assert_eq!(
            command_for(&[], &s(&["ls", "/"]), &sh).unwrap(),
            s(&["ls", "/"])
        );
        // Docker's "no entrypoint" spelling.
        let blank = image(&[""], &["sh"]);
        assert_eq!(command_for(&[], &[], &blank).unwrap(), s(&["sh"]));
    }

    #[test]
    fn nothing_to_run_is_a_clear_error() {
        let err = command_for(&[], &[], &image(&[], &[])).unwrap_err();
        assert!(matches!(err, ImageError::NoCommand));
        assert!(err.to_string().contains("set command"));
    }

    #[test]
    fn container_env_overrides_image_env_by_name() {
        let img = s(&["PATH=/bin", "HOME=/root", "EMPTY=", "A=1=2"]);
        let ctr = vec![
            ("HOME".to_string(), "/home/app".to_string()),
            ("NEW".to_string(), "x".to_string()),
            ("NEW".to_string(), "y".to_string()),
        ];
        assert_eq!(
            merge_env(&img, &ctr),
            s(&["PATH=/bin", "HOME=/home/app", "EMPTY=", "A=1=2", "NEW=y"])
        );
    }

    #[test]
    fn expands_references_like_kubernetes() {
        let env = |n: &str| match n {
            "A" => Some("alpha".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let cases = [
            ("$(A)", "alpha"),
            ("x-$(A)-y", "x-alpha-y"),
            ("$(MISSING)", "$(MISSING)"),
            ("$$(A)", "$(A)"),
            ("$$$(A)", "$alpha"),
            ("$(EMPTY)!", "!"),
            ("$A", "$A"),
            ("cost $", "cost $"),
            ("$(A", "$(A"),
            ("$()", "$()"),
            ("$(A)$(A)", "alphaalpha"),
            ("plain", "plain"),
        ];
        for (input, want) in cases {
            assert_eq!(expand_env_refs(input, env), want, "{input}");
        }
    }
}
