//! Command-line words: splitting a user's argument string, and building the
//! `sh -c` operand so arguments stay separate argv elements.

use std::borrow::Cow;

/// Splits a string like a POSIX shell splits words (quotes, backslashes,
/// `#` comments), without any expansion; `Err` on unbalanced quotes or a
/// trailing lone backslash inside quotes.
pub fn split_args(s: &str) -> Result<Vec<String>, String> {
    shell_words::split(s).map_err(|e| e.to_string())
}

/// The operand given to `sh -c`: the script with ` "$@"` appended, so the
/// job's arguments (passed as `$1…`) reach its last command as literal words.
///
/// Without arguments nothing is appended: `"$@"` would expand to nothing,
/// and a script ending in a newline or `;` would then end with an empty
/// command whose status (0) hides the script's real exit status. With
/// arguments, trailing whitespace is trimmed so ` "$@"` lands on the last
/// command instead of becoming a command of its own.
pub(crate) fn shell_operand(script: &str, has_args: bool) -> Cow<'_, str> {
    if has_args { Cow::Owned(format!("{} \"$@\"", script.trim_end())) } else { Cow::Borrowed(script) }
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

    #[test]
    fn operand_appends_args_only_when_there_are_some() {
        assert_eq!(shell_operand("echo", false), "echo");
        assert_eq!(shell_operand("false\n", false), "false\n");
        assert_eq!(shell_operand("printf %s\n \n", true), "printf %s \"$@\"");
    }
}
