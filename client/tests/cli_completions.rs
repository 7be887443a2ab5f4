//! `stella completions SHELL` prints a completion script that covers the subcommands and
//! options of the real command tree.

mod common;

use common::stella;

#[test]
fn completions_cover_subcommands() {
    // The marker each shell's script starts its completion function or command with.
    let cases = [
        ("bash", "_stella()"),
        ("zsh", "#compdef stella"),
        ("fish", "complete -c stella"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "set edit:completion:arg-completer[stella]"),
    ];
    for (shell, marker) in cases {
        let run = stella(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(
            run.stdout.contains(marker),
            "{shell}: no {marker:?} in the script"
        );
        assert!(run.stdout.contains("rekor"), "{shell}: no rekor subcommand");
        // An option of `stella rekor verify`. fish spells long options `-l evidence-bundle-id`.
        assert!(
            run.stdout.contains("evidence-bundle-id"),
            "{shell}: no --evidence-bundle-id option"
        );
    }
}

#[test]
fn completions_json_carries_script() {
    let run = stella(&["--output", "json", "completions", "bash"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let object = run.json();
    assert_eq!(
        object.get("shell").and_then(serde_json::Value::as_str),
        Some("bash")
    );
    let script = object
        .get("script")
        .and_then(serde_json::Value::as_str)
        .expect("script");
    assert!(script.contains("_stella()"));
}

#[test]
fn completions_reject_unknown_shell() {
    let run = stella(&["completions", "tcsh"]);
    assert_eq!(run.code, 2, "stdout: {}", run.stdout);
    assert!(run.stderr.contains("tcsh"), "stderr: {}", run.stderr);
}
