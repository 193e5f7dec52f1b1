//! A job's arguments: splitting a user's argument string, the rule for where arguments go
//! (see the crate doc), and the `sh -c` operand that applies it. The arguments are always
//! separate argv elements (`$1…`); their text never enters the script.

use std::borrow::Cow;

use crate::shell::{self, Reading};

/// Splits a string like a POSIX shell splits words (quotes, backslashes,
/// `#` comments), without any expansion; `Err` on unbalanced quotes or a
/// trailing lone backslash inside quotes.
pub fn split_args(s: &str) -> Result<Vec<String>, String> {
    shell_words::split(s).map_err(|e| e.to_string())
}

/// Where a command's arguments go, decided by a POSIX shell parser (see the crate doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgRule {
    /// It reads positional parameters (`"$@"`, `$*`, `$1`, `${2}`, `$#`…): arguments are
    /// `$1…` and nothing more. Also a command the parser cannot read (the shell then reports
    /// its own error), or will not: longer than 8 KiB, or texts nested more than 16 deep.
    Positional,
    /// One simple command or pipeline without positional parameters: arguments are also
    /// appended as words to its last command.
    Appended,
    /// Anything else (several commands, a compound command, a trailing comment): it takes no
    /// arguments.
    NoArgs,
}

impl ArgRule {
    /// The rule for `script`, from its syntax tree (well under a millisecond for a typical
    /// command; the parser runs on a stack of its own, so nesting cannot overflow the caller's).
    pub fn of(script: &str) -> ArgRule {
        match shell::read(script) {
            Reading::Positional => ArgRule::Positional,
            Reading::Simple { .. } => ArgRule::Appended,
            Reading::Other => ArgRule::NoArgs,
        }
    }
}

/// A command run with arguments it does not take (see [`ArgRule::NoArgs`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakesNoArgs;

impl std::fmt::Display for TakesNoArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("this command takes no arguments: use \"$@\" where they belong")
    }
}

impl std::error::Error for TakesNoArgs {}

/// Whether `script` may run with `args`: any command runs without arguments.
pub fn check_args(script: &str, args: &[String]) -> Result<(), TakesNoArgs> {
    if args.is_empty() || ArgRule::of(script) != ArgRule::NoArgs { Ok(()) } else { Err(TakesNoArgs) }
}

/// The operand given to `sh -c` for a run with or without arguments (passed as `$1…`).
///
/// Without arguments, or for a command that reads positional parameters, the script as
/// written. For one simple command or pipeline, ` "$@"` inserted right after its last word
/// (before any trailing `;`, newline or here-document body), so the arguments reach that
/// command as literal words.
pub(crate) fn shell_operand(script: &str, has_args: bool) -> Result<Cow<'_, str>, TakesNoArgs> {
    if !has_args {
        return Ok(Cow::Borrowed(script));
    }
    match shell::read(script) {
        Reading::Positional => Ok(Cow::Borrowed(script)),
        Reading::Simple { end } => {
            let (words, rest) = script.split_at(end);
            Ok(Cow::Owned(format!("{words} \"$@\"{rest}")))
        }
        Reading::Other => Err(TakesNoArgs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split_args(r#"a "b c" 'd "e"' f\ g "h\"i" '' x#y"#).unwrap(),
            ["a", "b c", "d \"e\"", "f g", "h\"i", "", "x#y"]
        );
        assert_eq!(split_args("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_args("$(id) `id` ;").unwrap(), ["$(id)", "`id`", ";"]);
    }

    #[test]
    fn unbalanced_quotes_are_errors() {
        assert!(split_args("'abc").is_err());
        assert!(split_args("\"abc").is_err());
        assert!(split_args("a \"b\\\"").is_err());
    }

    /// The operand for a run with arguments; `None` when refused.
    fn with_args(script: &str) -> Option<String> {
        shell_operand(script, true).ok().map(Cow::into_owned)
    }

    #[test]
    fn without_arguments_every_script_runs_as_written() {
        for script in ["echo", "false\n", "if true; then echo; fi # c", "x=1; echo $x &", "'unbalanced"] {
            assert_eq!(shell_operand(script, false).unwrap(), script);
        }
    }

    #[test]
    fn the_words_go_right_after_the_last_command_word() {
        let cases = [
            ("printf '[%s]'", "printf '[%s]' \"$@\""),
            ("printf %s\n \n", "printf %s \"$@\"\n \n"),
            ("rake db:backup;", "rake db:backup \"$@\";"),
            ("ls -l | sort -r\n", "ls -l | sort -r \"$@\"\n"),
            ("! grep -q x", "! grep -q x \"$@\""),
            ("FOO=1 env", "FOO=1 env \"$@\""),
            ("echo x >out 2>&1", "echo x >out 2>&1 \"$@\""),
            ("# nightly\nrake backup", "# nightly\nrake backup \"$@\""),
            ("rake \\\n  backup\n", "rake \\\n  backup \"$@\"\n"),
            ("echo é", "echo é \"$@\""),
            ("echo \"$(date)\" '#x' a#b", "echo \"$(date)\" '#x' a#b \"$@\""),
            ("cat <<EOF\n# not a comment\nEOF\n", "cat <<EOF \"$@\"\n# not a comment\nEOF\n"),
            ("cat <<'E' | tr a b\nx\nE", "cat <<'E' | tr a b \"$@\"\nx\nE"),
        ];
        for (script, want) in cases {
            assert_eq!(with_args(script).as_deref(), Some(want), "{script:?}");
            assert_eq!(ArgRule::of(script), ArgRule::Appended, "{script:?}");
        }
    }

    #[test]
    fn positional_parameters_anywhere_mean_no_append() {
        let cases = [
            "echo backing up \"$@\"",
            "echo $*",
            "echo $1",
            "echo ${2}",
            "echo $#",
            "echo \"${1:-default}\"",
            "echo ${x:-$1}",
            "echo \"$(echo \"$1\")\"",
            "echo `echo $1`",
            "echo $((1 + $1))",
            "cat <<EOF\n$1\nEOF",
            "for f; do echo \"$f\"; done",
            "while [ $# -gt 0 ]; do shift; done",
            "getopts ab opt",
            "x=$1; echo $x",
            "if [ -n \"$1\" ]; then echo yes; fi # checks",
            "echo ${#@}",
        ];
        for script in cases {
            assert_eq!(ArgRule::of(script), ArgRule::Positional, "{script:?}");
            assert_eq!(with_args(script).as_deref(), Some(script), "{script:?}");
        }
        // `$0`, quoted or literal dollars, and here-documents with a quoted delimiter are not
        // positional parameters.
        for script in ["echo $0", "echo '$1' \\$2", "cat <<'EOF'\n$1\nEOF"] {
            assert_eq!(ArgRule::of(script), ArgRule::Appended, "{script:?}");
        }
    }

    #[test]
    fn anything_else_takes_no_arguments() {
        let cases = [
            "if true; then echo; fi",
            "for i in 1 2; do echo $i; done",
            "{ echo a; }",
            "case x in x) echo;; esac",
            "(echo a)",
            "echo a; echo b",
            "echo a\necho b\n",
            "echo a && echo b",
            "printf x # a comment",
            "printf x\n# a comment\n",
            "sleep 1 &",
            "x=1",
            "f() { echo; }",
            "echo x | while read l; do echo $l; done",
            "",
            "# only a comment",
        ];
        for script in cases {
            assert_eq!(ArgRule::of(script), ArgRule::NoArgs, "{script:?}");
            assert_eq!(with_args(script), None, "{script:?}");
            assert_eq!(check_args(script, &["a".into()]), Err(TakesNoArgs), "{script:?}");
            assert_eq!(check_args(script, &[]), Ok(()), "{script:?}");
        }
    }

    #[test]
    fn deep_nesting_is_read_within_bounds_or_not_at_all() {
        // As deep as the longest command read can nest, on a test thread's small stack.
        for (open, close) in [("$(", ")"), ("${x:-", "}"), ("(", ")"), ("if :; then ", "; fi"), ("`", "`")] {
            let n = (8 * 1024 - 10) / (open.len() + close.len());
            let script = format!("echo {}x{}", open.repeat(n), close.repeat(n));
            let _ = ArgRule::of(&script);
            let _ = ArgRule::of(&script[5..]);
        }
        // Too long to read, or nested too deep to follow: arguments are `$1…` only.
        assert_eq!(ArgRule::of(&format!("printf {}", "x".repeat(8 * 1024))), ArgRule::Positional);
        let deep = format!("echo {}x{}", "$(echo ".repeat(40), ")".repeat(40));
        assert_eq!(ArgRule::of(&deep), ArgRule::Positional);
    }

    #[test]
    fn an_unreadable_command_gets_positional_parameters_only() {
        for script in ["echo 'unbalanced", "if then fi", "echo $(", "echo ${"] {
            assert_eq!(ArgRule::of(script), ArgRule::Positional, "{script:?}");
            assert_eq!(with_args(script).as_deref(), Some(script), "{script:?}");
        }
    }
}
