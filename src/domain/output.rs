//! What a command printed, as Kragle's hooks and pipelines answer it.

use serde_json::Value;

/// Kragle's `result`: the command's stdout parsed as JSON when it is JSON, else the text
/// itself (without its trailing newlines).
pub fn parse_output(stdout: &str) -> Value {
    let text = stdout.trim_end_matches(['\n', '\r']);
    if text.trim().is_empty() {
        return Value::String(text.to_string());
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::parse_output;
    use serde_json::json;

    #[test]
    fn output_is_json_when_it_parses() {
        assert_eq!(parse_output("{\"a\": [1, 2]}\n"), json!({"a": [1, 2]}));
        assert_eq!(parse_output("42\n"), json!(42));
        assert_eq!(parse_output("hello world\n"), json!("hello world"));
        assert_eq!(parse_output("{\"a\": 1} trailing\n"), json!("{\"a\": 1} trailing"));
        assert_eq!(parse_output(""), json!(""));
        assert_eq!(parse_output("two\nlines\n\n"), json!("two\nlines"));
    }
}
