//! Stacks as pipelines (Kragle's blocks): the block types, a block instance with its
//! conversion and state, the `"\u0001/json/pointer\u0002"` templating of conversions, and the
//! checks a conversion passes when a stack is saved. Pure: no I/O (the engine runs the steps,
//! `crate::engine` `pipeline`).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Opens a pointer inside a string of a conversion (Kragle's templating).
pub const OPEN: char = '\u{1}';
/// Closes it.
pub const CLOSE: char = '\u{2}';

/// At most this many blocks in a stack.
pub const MAX_BLOCKS: usize = 100;

/// The built-in block types, by their wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockType {
    #[serde(rename = "Shell command")]
    Shell,
    #[serde(rename = "HTTP request")]
    Http,
    #[serde(rename = "Filter")]
    Filter,
    #[serde(rename = "Transform")]
    Transform,
}

pub const ALL_TYPES: [BlockType; 4] =
    [BlockType::Shell, BlockType::Http, BlockType::Filter, BlockType::Transform];

impl BlockType {
    pub fn name(self) -> &'static str {
        match self {
            BlockType::Shell => "Shell command",
            BlockType::Http => "HTTP request",
            BlockType::Filter => "Filter",
            BlockType::Transform => "Transform",
        }
    }

    pub fn parse(name: &str) -> Option<BlockType> {
        ALL_TYPES.into_iter().find(|t| t.name() == name)
    }

    /// `GET /api/v1/types`: a type's name and what its input and output are.
    pub fn describe(self) -> Value {
        let (description, input, output) = match self {
            BlockType::Shell => (
                "Runs a shell command as jobs run (environment, arguments, timeout, process group, capped log); a non-zero exit fails the step",
                json!({"command": "string (required)", "stdin": "any: sent as JSON on stdin (default: the previous step's output, or the trigger's input)"}),
                json!("stdout, parsed as JSON when it is JSON, else the text without trailing newlines"),
            ),
            BlockType::Http => (
                "Sends an HTTP request (redirects are not followed); a status outside expect_status fails the step",
                json!({"method": "string (default GET)", "url": "string, http or https (required)", "headers": "object of strings", "body": "any: sent as JSON unless it is a string", "timeout_s": "integer 1..3600 (default 30)", "expect_status": "integer or list of integers (default: any 2xx)"}),
                json!({"status": "integer", "headers": "object", "body": "parsed as JSON when the response says so, else text (capped)"}),
            ),
            BlockType::Filter => (
                "Stops the pipeline (the run succeeds, the step is `stopped`) unless the test holds; passes the previous step's output on unchanged",
                json!({"value": "any (required)", "equals": "any", "not_equals": "any", "exists": "true: value is neither null nor missing"}),
                json!("the previous step's output"),
            ),
            BlockType::Transform => (
                "Reshapes JSON between steps: its converted input is its output",
                json!("any"),
                json!("its input"),
            ),
        };
        json!({"name": self.name(), "description": description, "io": {"input": input, "output": output}})
    }
}

/// What a block keeps between runs: its last successful step's input and output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BlockState {
    pub input: Value,
    pub output: Value,
}

impl Default for BlockState {
    fn default() -> Self {
        BlockState { input: json!({}), output: json!({}) }
    }
}

/// One block of a stack (Kragle's block instance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: BlockType,
    pub name: Option<String>,
    pub conversion: Value,
    pub state: BlockState,
}

/// A block's input that does not fit: the message names the block's index and the field.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockError {
    pub field: String,
    pub message: String,
}

impl BlockError {
    fn at(index: usize, field: &str, message: impl Into<String>) -> Self {
        let field =
            if field.is_empty() { format!("blocks[{index}]") } else { format!("blocks[{index}].{field}") };
        BlockError { field, message: message.into() }
    }
}

/// Reads Kragle's `blocks`: `[[type, conversion, {"name", "state"}?], …]`, numbering the blocks
/// from `first_id`.
pub fn parse_blocks(raw: &[Value], first_id: i64) -> Result<Vec<Block>, BlockError> {
    if raw.is_empty() {
        return Err(BlockError { field: "blocks".into(), message: "must hold at least one block".into() });
    }
    if raw.len() > MAX_BLOCKS {
        return Err(BlockError { field: "blocks".into(), message: format!("at most {MAX_BLOCKS} blocks") });
    }
    raw.iter().enumerate().map(|(i, b)| parse_block(i, b, first_id + i as i64)).collect()
}

fn parse_block(i: usize, raw: &Value, id: i64) -> Result<Block, BlockError> {
    let parts = match raw.as_array() {
        Some(parts) if (2..=3).contains(&parts.len()) => parts,
        _ => {
            return Err(BlockError::at(
                i,
                "",
                "must be an array [type, conversion] or [type, conversion, {\"name\", \"state\"}]",
            ));
        }
    };
    let type_name = parts[0].as_str().ok_or_else(|| BlockError::at(i, "type", "must be a string"))?;
    let kind = BlockType::parse(type_name).ok_or_else(|| {
        let known: Vec<&str> = ALL_TYPES.iter().map(|t| t.name()).collect();
        BlockError::at(i, "type", format!("unknown block type {type_name:?} (known: {})", known.join(", ")))
    })?;
    let conversion = parts[1].clone();
    check_templates(&conversion, "conversion").map_err(|(field, msg)| BlockError::at(i, &field, msg))?;
    check_fit(kind, &conversion).map_err(|(field, msg)| BlockError::at(i, &field, msg))?;
    let (mut name, mut state) = (None, BlockState::default());
    if let Some(options) = parts.get(2) {
        let options = options.as_object().ok_or_else(|| BlockError::at(i, "options", "must be an object"))?;
        for (key, value) in options {
            match key.as_str() {
                "name" => match value {
                    Value::Null => {}
                    Value::String(s) if !s.contains('\0') && s.chars().count() <= 200 => {
                        name = Some(s.clone())
                    }
                    _ => return Err(BlockError::at(i, "name", "must be a string of at most 200 characters")),
                },
                "state" => {
                    state = serde_json::from_value(value.clone()).map_err(|e| {
                        BlockError::at(
                            i,
                            "state",
                            format!("must be an object {{\"input\", \"output\"}}: {e}"),
                        )
                    })?
                }
                other => return Err(BlockError::at(i, other, "unknown option (name, state)")),
            }
        }
    }
    Ok(Block { id, kind, name, conversion, state })
}

/// Every pointer in the strings of `v` is well formed: an opening mark closed before the next
/// one, holding `""` or `/…` with `~` only in `~0` and `~1` (RFC 6901).
fn check_templates(v: &Value, at: &str) -> Result<(), (String, String)> {
    match v {
        Value::String(s) => segments(s).map(|_| ()).map_err(|e| (at.to_string(), e)),
        Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, item)| check_templates(item, &format!("{at}[{i}]")))
        }
        Value::Object(map) => {
            map.iter().try_for_each(|(k, item)| check_templates(item, &format!("{at}.{k}")))
        }
        _ => Ok(()),
    }
}

/// A string's parts: literal text and pointers.
enum Segment<'a> {
    Text(&'a str),
    Pointer(&'a str),
}

fn segments(s: &str) -> Result<Vec<Segment<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find(OPEN) {
        if open > 0 {
            out.push(Segment::Text(&rest[..open]));
        }
        let after = &rest[open + OPEN.len_utf8()..];
        let close = after.find(CLOSE).ok_or("a pointer opened with \\u0001 is not closed with \\u0002")?;
        let pointer = &after[..close];
        if pointer.contains(OPEN) {
            return Err("a pointer opened with \\u0001 is not closed with \\u0002 before the next one".into());
        }
        check_pointer(pointer)?;
        out.push(Segment::Pointer(pointer));
        rest = &after[close + CLOSE.len_utf8()..];
    }
    if rest.contains(CLOSE) {
        return Err("\\u0002 without a \\u0001 opening a pointer".into());
    }
    if !rest.is_empty() {
        out.push(Segment::Text(rest));
    }
    Ok(out)
}

fn check_pointer(p: &str) -> Result<(), String> {
    if !p.is_empty() && !p.starts_with('/') {
        return Err(format!("{p:?} is not a JSON Pointer (RFC 6901): it must be empty or start with /"));
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Err(format!("{p:?} is not a JSON Pointer (RFC 6901): ~ must be followed by 0 or 1"));
        }
    }
    Ok(())
}

/// Whether the whole string is one pointer (its value replaces the string as it is).
fn whole_pointer(v: &Value) -> bool {
    matches!(v, Value::String(s) if matches!(segments(s).as_deref(), Ok([Segment::Pointer(_)])))
}

/// Replaces every pointer in `conversion` by what it points at in `doc`: a string that is one
/// pointer becomes the value, a pointer inside longer text becomes its text (a string as it is,
/// anything else as JSON). A pointer that resolves to nothing is an error naming it.
pub fn render(conversion: &Value, doc: &Value) -> Result<Value, String> {
    Ok(match conversion {
        Value::String(s) => {
            let parts = segments(s)?;
            if let [Segment::Pointer(p)] = parts.as_slice() {
                return resolve(doc, p).cloned();
            }
            let mut text = String::with_capacity(s.len());
            for part in parts {
                match part {
                    Segment::Text(t) => text.push_str(t),
                    Segment::Pointer(p) => match resolve(doc, p)? {
                        Value::String(v) => text.push_str(v),
                        other => text.push_str(&other.to_string()),
                    },
                }
            }
            Value::String(text)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| render(i, doc)).collect::<Result<_, _>>()?),
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                out.insert(k.clone(), render(v, doc)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

fn resolve<'a>(doc: &'a Value, pointer: &str) -> Result<&'a Value, String> {
    doc.pointer(pointer).ok_or_else(|| format!("the pointer {pointer:?} resolves to nothing"))
}

/// A Shell command step's input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellInput {
    pub command: String,
    #[serde(default)]
    pub stdin: Option<Value>,
}

/// An HTTP request step's input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpInput {
    #[serde(default)]
    pub method: Option<String>,
    pub url: String,
    #[serde(default)]
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub timeout_s: Option<u64>,
    #[serde(default)]
    pub expect_status: Option<ExpectStatus>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ExpectStatus {
    One(u16),
    Any(Vec<u16>),
}

impl ExpectStatus {
    pub fn allows(expect: Option<&ExpectStatus>, status: u16) -> bool {
        match expect {
            None => (200..300).contains(&status),
            Some(ExpectStatus::One(s)) => *s == status,
            Some(ExpectStatus::Any(list)) => list.contains(&status),
        }
    }
}

/// The HTTP methods an HTTP request step may send.
pub const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

pub const MAX_HTTP_TIMEOUT_S: u64 = 3600;

impl HttpInput {
    pub fn check(&self) -> Result<(), (String, String)> {
        let method = self.method.as_deref().unwrap_or("GET");
        if !METHODS.contains(&method) {
            return Err(("method".into(), format!("{method:?} is not one of {}", METHODS.join(", "))));
        }
        match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => return Err(("url".into(), format!("{:?} is not an http or https URL", self.url))),
        }
        if let Some(t) = self.timeout_s
            && !(1..=MAX_HTTP_TIMEOUT_S).contains(&t)
        {
            return Err(("timeout_s".into(), format!("must be 1 to {MAX_HTTP_TIMEOUT_S}")));
        }
        Ok(())
    }
}

/// A Filter step's input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterInput {
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub equals: Option<Value>,
    #[serde(default)]
    pub not_equals: Option<Value>,
    #[serde(default)]
    pub exists: Option<bool>,
}

impl FilterInput {
    /// Whether the pipeline goes on. (`value` missing reads as null.)
    pub fn passes(&self) -> bool {
        let value = self.value.as_ref().unwrap_or(&Value::Null);
        match (&self.equals, &self.not_equals, self.exists) {
            (Some(e), _, _) => value == e,
            (_, Some(n), _) => value != n,
            (_, _, Some(exists)) => value.is_null() != exists,
            _ => false,
        }
    }

    fn check(&self) -> Result<(), (String, String)> {
        let tests = [self.equals.is_some(), self.not_equals.is_some(), self.exists.is_some()];
        if tests.iter().filter(|t| **t).count() != 1 {
            return Err(("conversion".into(), "needs exactly one of equals, not_equals, exists".into()));
        }
        Ok(())
    }
}

/// Reads a rendered input as the type's input. A field that does not fit is named.
pub fn typed<T: DeserializeOwned>(input: &Value) -> Result<T, (String, String)> {
    serde_json::from_value(input.clone()).map_err(|e| ("conversion".to_string(), e.to_string()))
}

/// Checks a conversion against its type before any run: the fields it must have, and the
/// types of the fields that are not a pointer (those are checked when the step runs).
fn check_fit(kind: BlockType, conversion: &Value) -> Result<(), (String, String)> {
    let fields: &[(&str, bool)] = match kind {
        BlockType::Transform => return Ok(()),
        BlockType::Shell => &[("command", true), ("stdin", false)],
        BlockType::Http => &[
            ("method", false),
            ("url", true),
            ("headers", false),
            ("body", false),
            ("timeout_s", false),
            ("expect_status", false),
        ],
        BlockType::Filter => &[("value", true), ("equals", false), ("not_equals", false), ("exists", false)],
    };
    let map =
        conversion.as_object().ok_or_else(|| ("conversion".to_string(), "must be an object".to_string()))?;
    for key in map.keys() {
        if !fields.iter().any(|(f, _)| f == key) {
            let known: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
            return Err((
                format!("conversion.{key}"),
                format!("unknown field (known: {})", known.join(", ")),
            ));
        }
    }
    for (field, required) in fields {
        if *required && !map.contains_key(*field) {
            return Err((format!("conversion.{field}"), "is required".into()));
        }
    }
    // With every pointer-valued field set aside, the rest must read as the type's input.
    let mut sample = Map::new();
    for (k, v) in map {
        if !whole_pointer(v) {
            sample.insert(k.clone(), v.clone());
        }
    }
    let fill = |sample: &mut Map<String, Value>, field: &str, with: Value| {
        if !sample.contains_key(field) {
            sample.insert(field.to_string(), with);
        }
    };
    let named = |e: (String, String)| match e.0.as_str() {
        "conversion" => e,
        f => (format!("conversion.{f}"), e.1),
    };
    match kind {
        BlockType::Shell => {
            fill(&mut sample, "command", json!("true"));
            let input: ShellInput = typed(&Value::Object(sample))?;
            if input.command.contains('\0') {
                return Err(("conversion.command".into(), "must not contain NUL".into()));
            }
            if input.command.trim().is_empty() {
                return Err(("conversion.command".into(), "must not be empty".into()));
            }
        }
        BlockType::Http => {
            let url_is_text =
                sample.contains_key("url") && !map["url"].as_str().is_some_and(|u| u.contains(OPEN));
            fill(&mut sample, "url", json!("http://example.com/"));
            if !url_is_text {
                sample.insert("url".into(), json!("http://example.com/"));
            }
            if map.get("method").and_then(Value::as_str).is_some_and(|m| m.contains(OPEN)) {
                sample.remove("method");
            }
            let input: HttpInput = typed(&Value::Object(sample))?;
            input.check().map_err(named)?;
        }
        BlockType::Filter => {
            let input: FilterInput = typed(&Value::Object(map.clone()))?;
            input.check()?;
        }
        BlockType::Transform => {}
    }
    Ok(())
}

/// The blocks of a one-command stack (what `command` is shorthand for).
pub fn shell_block(command: &str) -> Block {
    Block {
        id: 1,
        kind: BlockType::Shell,
        name: None,
        conversion: json!({"command": command}),
        state: BlockState::default(),
    }
}

/// The literal commands of a stack's Shell command blocks (the arguments rule is checked
/// against each).
pub fn literal_commands(blocks: &[Block]) -> impl Iterator<Item = &str> {
    blocks
        .iter()
        .filter(|b| b.kind == BlockType::Shell)
        .filter_map(|b| b.conversion.get("command").and_then(Value::as_str))
        .filter(|c| !c.contains(OPEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({"input": {"screen_name": "ann", "n": 3, "a/b": 1, "m~n": 2}, "state": {"output": {}}})
    }

    #[test]
    fn pointers_are_replaced_by_values_or_text() {
        let conv = json!({"v": "\u{1}/input/n\u{2}", "t": "\u{1}/input/screen_name\u{2} says hi", "n": "x\u{1}/input/n\u{2}y", "e": ["\u{1}/input/a~1b\u{2}", "\u{1}/input/m~0n\u{2}"], "k": 5});
        assert_eq!(
            render(&conv, &doc()).unwrap(),
            json!({"v": 3, "t": "ann says hi", "n": "x3y", "e": [1, 2], "k": 5})
        );
        assert_eq!(render(&json!("\u{1}\u{2}"), &json!(7)).unwrap(), json!(7));
    }

    #[test]
    fn a_pointer_to_nothing_is_named() {
        let err = render(&json!({"x": "\u{1}/input/missing\u{2}"}), &doc()).unwrap_err();
        assert!(err.contains("/input/missing"), "{err}");
    }

    #[test]
    fn malformed_pointers_are_refused_with_the_block_and_field() {
        for bad in ["\u{1}input\u{2}", "\u{1}/a", "x\u{2}", "\u{1}/a~2\u{2}", "\u{1}/a\u{1}/b\u{2}"] {
            let err = parse_blocks(&[json!(["Transform", {"x": [bad]}])], 1).unwrap_err();
            assert_eq!(err.field, "blocks[0].conversion.x[0]", "{bad:?}: {err:?}");
        }
    }

    #[test]
    fn conversions_must_fit_their_type() {
        let cases = [
            (json!(["Nope", {}]), "blocks[0].type"),
            (json!(["Shell command", {}]), "blocks[0].conversion.command"),
            (json!(["Shell command", {"command": 5}]), "blocks[0].conversion"),
            (json!(["HTTP request", {"url": "ftp://x"}]), "blocks[0].conversion.url"),
            (json!(["HTTP request", {"url": "http://x", "method": "BREW"}]), "blocks[0].conversion.method"),
            (json!(["HTTP request", {"url": "http://x", "bogus": 1}]), "blocks[0].conversion.bogus"),
            (json!(["Filter", {"value": 1}]), "blocks[0].conversion"),
            (json!(["Transform", {}, {"colour": 1}]), "blocks[0].colour"),
            (json!(["Transform"]), "blocks[0]"),
        ];
        for (raw, field) in cases {
            let err = parse_blocks(std::slice::from_ref(&raw), 1).unwrap_err();
            assert_eq!(err.field, field, "{raw}: {err:?}");
        }
        let fine = [
            json!(["HTTP request", {"url": "\u{1}/input/url\u{2}", "method": "\u{1}/input/m\u{2}", "timeout_s": "\u{1}/state/t\u{2}"}]),
            json!(["HTTP request", {"url": "https://h/\u{1}/input/id\u{2}", "method": "POST", "body": {"a": 1}, "expect_status": [200, 201]}]),
            json!(["Shell command", {"command": "echo \u{1}/input/x\u{2}"}, {"name": "say", "state": {"input": {}, "output": {"last_id": 4}}}]),
            json!(["Filter", {"value": "\u{1}/input/ok\u{2}", "equals": true}]),
        ];
        let blocks = parse_blocks(&fine, 7).unwrap();
        assert_eq!(blocks.iter().map(|b| b.id).collect::<Vec<_>>(), [7, 8, 9, 10]);
        assert_eq!(blocks[2].state.output, json!({"last_id": 4}));
    }

    #[test]
    fn filters_test_their_value() {
        let f = |v: Value| typed::<FilterInput>(&v).unwrap().passes();
        assert!(f(json!({"value": 1, "equals": 1})));
        assert!(!f(json!({"value": 1, "equals": 2})));
        assert!(f(json!({"value": 1, "not_equals": 2})));
        assert!(f(json!({"value": 0, "exists": true})));
        assert!(!f(json!({"value": null, "exists": true})));
        assert!(f(json!({"exists": false})));
    }
}
