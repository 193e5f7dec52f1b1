//! Reading a job's command with a real shell parser (brush-parser), to decide where its
//! arguments go (the rule is in the crate doc): whether it reads positional parameters, and
//! whether it is one simple command or pipeline, and where that ends.

use brush_parser::ast::{self, Command, CommandPrefixOrSuffixItem as Item, CompoundCommand, IoRedirect};
use brush_parser::word::{self, Parameter, ParameterExpr, SpecialParameter, WordPiece, WordPieceWithSource};
use brush_parser::{ParserOptions, SourceSpan};

/// What the parser says about a command, for its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// It reads positional parameters somewhere (or could not be read: the shell then
    /// reports its own syntax error, and arguments are at most `$1…`).
    Positional,
    /// One simple command or pipeline of simple commands, with no positional parameters and
    /// nothing after it but separators: its last command's words end at this byte offset.
    Simple { end: usize },
    /// Anything else without positional parameters.
    Other,
}

/// Longest command read, in bytes: a longer one is treated as unreadable.
const MAX_READ: usize = 8 * 1024;
/// Nested texts (a `$(…)` in a `${x:-…}` in a word…) followed this deep; deeper ones are
/// unreadable. Each level is parsed again, so this bounds the time too.
const MAX_NESTING: usize = 16;
/// The parser recurses once per nesting level of a script: it runs on a stack of its own,
/// enough for the deepest nesting `MAX_READ` bytes can hold (checked by a test, unoptimized).
const PARSER_STACK: usize = 64 << 20;

pub(crate) fn read(script: &str) -> Reading {
    if script.len() > MAX_READ {
        return Reading::Positional;
    }
    stacker::grow(PARSER_STACK, || read_within_bounds(script))
}

fn read_within_bounds(script: &str) -> Reading {
    let options = ParserOptions::default();
    let Ok(program) = parse(script, &options) else { return Reading::Positional };
    let scan = Scan { options: &options, depth: 0 };
    if let Err(Stop::Uses | Stop::Unreadable) = scan.program(&program) {
        return Reading::Positional;
    }
    match simple_end(&program, script) {
        Some(end) => Reading::Simple { end },
        None => Reading::Other,
    }
}

fn parse(script: &str, options: &ParserOptions) -> Result<ast::Program, brush_parser::ParseError> {
    brush_parser::Parser::new(std::io::BufReader::new(script.as_bytes()), options).parse_program()
}

/// Why a scan stopped early.
enum Stop {
    /// A positional parameter is read.
    Uses,
    /// A nested word or script did not parse.
    Unreadable,
}

/// Looks through every word of a program, nested scripts (`$(…)`, `` `…` ``), parameter
/// expansions, arithmetic and here-documents included, for a read of the positional
/// parameters: `$1`…, `${2}`, `$@`, `$*`, `$#`, and `for x` without `in`, `shift`, `getopts`,
/// which read them without naming them. `$0` (the job's name) does not count.
struct Scan<'a> {
    options: &'a ParserOptions,
    /// How many texts deep this scan is.
    depth: usize,
}

type Found = Result<(), Stop>;

impl Scan<'_> {
    fn program(&self, p: &ast::Program) -> Found {
        p.complete_commands.iter().try_for_each(|c| self.list(c))
    }

    fn list(&self, l: &ast::CompoundList) -> Found {
        for ast::CompoundListItem(and_or, _) in &l.0 {
            self.pipeline(&and_or.first)?;
            for next in &and_or.additional {
                let (ast::AndOr::And(p) | ast::AndOr::Or(p)) = next;
                self.pipeline(p)?;
            }
        }
        Ok(())
    }

    fn pipeline(&self, p: &ast::Pipeline) -> Found {
        p.seq.iter().try_for_each(|c| self.command(c))
    }

    fn command(&self, c: &Command) -> Found {
        match c {
            Command::Simple(s) => self.simple(s),
            Command::Compound(c, redirects) => {
                self.compound(c)?;
                self.redirects(redirects.as_ref())
            }
            Command::Function(f) => {
                self.compound(&f.body.0)?;
                self.redirects(f.body.1.as_ref())
            }
            Command::ExtendedTest(t, redirects) => {
                self.test(&t.expr)?;
                self.redirects(redirects.as_ref())
            }
        }
    }

    fn compound(&self, c: &CompoundCommand) -> Found {
        match c {
            CompoundCommand::Arithmetic(a) => self.text(&a.expr.value),
            CompoundCommand::ArithmeticForClause(f) => {
                for e in [&f.initializer, &f.condition, &f.updater].into_iter().flatten() {
                    self.text(&e.value)?;
                }
                self.list(&f.body.list)
            }
            CompoundCommand::BraceGroup(b) => self.list(&b.list),
            CompoundCommand::Subshell(s) => self.list(&s.list),
            CompoundCommand::ForClause(f) => match &f.values {
                // `for x; do …` loops over "$@".
                None => Err(Stop::Uses),
                Some(values) => {
                    values.iter().try_for_each(|w| self.word(w))?;
                    self.list(&f.body.list)
                }
            },
            CompoundCommand::CaseClause(c) => {
                self.word(&c.value)?;
                for case in &c.cases {
                    case.patterns.iter().try_for_each(|w| self.word(w))?;
                    if let Some(body) = &case.cmd {
                        self.list(body)?;
                    }
                }
                Ok(())
            }
            CompoundCommand::IfClause(i) => {
                self.list(&i.condition)?;
                self.list(&i.then)?;
                for e in i.elses.iter().flatten() {
                    if let Some(condition) = &e.condition {
                        self.list(condition)?;
                    }
                    self.list(&e.body)?;
                }
                Ok(())
            }
            CompoundCommand::WhileClause(w) | CompoundCommand::UntilClause(w) => {
                self.list(&w.0)?;
                self.list(&w.1.list)
            }
            CompoundCommand::Coprocess(c) => self.command(&c.body),
        }
    }

    fn simple(&self, s: &ast::SimpleCommand) -> Found {
        if let Some(name) = &s.word_or_name {
            if matches!(name.value.as_str(), "shift" | "getopts") {
                return Err(Stop::Uses);
            }
            self.word(name)?;
        }
        for item in items(s) {
            match item {
                Item::Word(w) | Item::AssignmentWord(_, w) => self.word(w)?,
                Item::IoRedirect(r) => self.redirect(r)?,
                Item::ProcessSubstitution(_, sub) => self.list(&sub.list)?,
            }
        }
        Ok(())
    }

    fn redirects(&self, r: Option<&ast::RedirectList>) -> Found {
        r.map_or(Ok(()), |r| r.0.iter().try_for_each(|r| self.redirect(r)))
    }

    fn redirect(&self, r: &IoRedirect) -> Found {
        use ast::IoFileRedirectTarget as Target;
        match r {
            IoRedirect::File(_, _, Target::Filename(w) | Target::Duplicate(w))
            | IoRedirect::HereString(_, w)
            | IoRedirect::OutputAndError(w, _) => self.word(w),
            IoRedirect::File(_, _, Target::Fd(_)) => Ok(()),
            IoRedirect::File(_, _, Target::ProcessSubstitution(_, sub)) => self.list(&sub.list),
            // A quoted delimiter (`<<'EOF'`) keeps the body literal.
            IoRedirect::HereDocument(_, doc) if doc.requires_expansion => {
                let pieces =
                    word::parse_heredoc(&doc.doc.value, self.options).map_err(|_| Stop::Unreadable)?;
                self.nested()?.pieces(&pieces)
            }
            IoRedirect::HereDocument(..) => Ok(()),
        }
    }

    fn test(&self, e: &ast::ExtendedTestExpr) -> Found {
        use ast::ExtendedTestExpr as E;
        match e {
            E::And(a, b) | E::Or(a, b) => {
                self.test(a)?;
                self.test(b)
            }
            E::Not(a) | E::Parenthesized(a) => self.test(a),
            E::UnaryTest(_, w) => self.word(w),
            E::BinaryTest(_, a, b) => {
                self.word(a)?;
                self.word(b)
            }
        }
    }

    fn word(&self, w: &ast::Word) -> Found {
        self.text(&w.value)
    }

    /// A word's text, or text expanded like one (arithmetic, a default value, a pattern).
    fn text(&self, text: &str) -> Found {
        let pieces = word::parse(text, self.options).map_err(|_| Stop::Unreadable)?;
        self.nested()?.pieces(&pieces)
    }

    /// A scan one text deeper.
    fn nested(&self) -> Result<Scan<'_>, Stop> {
        match self.depth < MAX_NESTING {
            true => Ok(Scan { options: self.options, depth: self.depth + 1 }),
            false => Err(Stop::Unreadable),
        }
    }

    fn pieces(&self, pieces: &[WordPieceWithSource]) -> Found {
        for p in pieces {
            match &p.piece {
                WordPiece::Text(_)
                | WordPiece::SingleQuotedText(_)
                | WordPiece::AnsiCQuotedText(_)
                | WordPiece::EscapeSequence(_)
                | WordPiece::TildeExpansion(_) => {}
                WordPiece::DoubleQuotedSequence(inner) | WordPiece::GettextDoubleQuotedSequence(inner) => {
                    self.pieces(inner)?;
                }
                WordPiece::ParameterExpansion(e) => self.expansion(e)?,
                WordPiece::CommandSubstitution(script) | WordPiece::BackquotedCommandSubstitution(script) => {
                    let program = parse(script, self.options).map_err(|_| Stop::Unreadable)?;
                    self.nested()?.program(&program)?;
                }
                WordPiece::ArithmeticExpression(e) => self.text(&e.value)?,
            }
        }
        Ok(())
    }

    fn expansion(&self, e: &ParameterExpr) -> Found {
        use ParameterExpr as P;
        let (parameter, nested): (&Parameter, [Option<&str>; 2]) = match e {
            P::Parameter { parameter, .. }
            | P::ParameterLength { parameter, .. }
            | P::Transform { parameter, .. } => (parameter, [None, None]),
            P::UseDefaultValues { parameter, default_value: text, .. }
            | P::AssignDefaultValues { parameter, default_value: text, .. }
            | P::IndicateErrorIfNullOrUnset { parameter, error_message: text, .. }
            | P::UseAlternativeValue { parameter, alternative_value: text, .. }
            | P::RemoveSmallestSuffixPattern { parameter, pattern: text, .. }
            | P::RemoveLargestSuffixPattern { parameter, pattern: text, .. }
            | P::RemoveSmallestPrefixPattern { parameter, pattern: text, .. }
            | P::RemoveLargestPrefixPattern { parameter, pattern: text, .. }
            | P::UppercaseFirstChar { parameter, pattern: text, .. }
            | P::UppercasePattern { parameter, pattern: text, .. }
            | P::LowercaseFirstChar { parameter, pattern: text, .. }
            | P::LowercasePattern { parameter, pattern: text, .. } => (parameter, [text.as_deref(), None]),
            P::Substring { parameter, offset, length, .. } => {
                (parameter, [Some(&offset.value), length.as_ref().map(|l| l.value.as_str())])
            }
            P::ReplaceSubstring { parameter, pattern, replacement, .. } => {
                (parameter, [Some(pattern), replacement.as_deref()])
            }
            P::VariableNames { .. } | P::MemberKeys { .. } => return Ok(()),
        };
        match parameter {
            Parameter::Positional(n) if *n > 0 => return Err(Stop::Uses),
            Parameter::Special(
                SpecialParameter::AllPositionalParameters { .. } | SpecialParameter::PositionalParameterCount,
            ) => return Err(Stop::Uses),
            Parameter::NamedWithIndex { index, .. } => self.text(index)?,
            _ => {}
        }
        nested.into_iter().flatten().try_for_each(|t| self.text(t))
    }
}

fn items(s: &ast::SimpleCommand) -> impl Iterator<Item = &Item> {
    let prefix = s.prefix.iter().flat_map(|p| &p.0);
    prefix.chain(s.suffix.iter().flat_map(|p| &p.0))
}

/// Where the words of a program's last command end (a byte offset), if the program is one
/// simple command or a pipeline of simple commands, run in the foreground, with a command
/// word (not bare assignments), and followed by nothing but separators, blank lines and its
/// here-documents: not by a comment.
fn simple_end(program: &ast::Program, script: &str) -> Option<usize> {
    let [list] = program.complete_commands.as_slice() else { return None };
    let [ast::CompoundListItem(and_or, ast::SeparatorOperator::Sequence)] = list.0.as_slice() else {
        return None;
    };
    if !and_or.additional.is_empty() {
        return None;
    }
    let mut commands = Vec::with_capacity(and_or.first.seq.len());
    for c in &and_or.first.seq {
        let Command::Simple(s) = c else { return None };
        commands.push(s);
    }
    let last = commands.last()?;
    last.word_or_name.as_ref()?;
    let mut end = end_of(last.word_or_name.as_ref()?.loc.as_ref())?;
    for item in items(last) {
        end = end.max(item_end(item)?);
    }
    // Past the end, only separators, blank space, comments and here-document bodies (with
    // their closing lines) can follow one simple command: outside the bodies, a `#` can only
    // start a comment.
    let bodies: Vec<(usize, usize)> = commands
        .iter()
        .flat_map(|s| items(s))
        .filter_map(|item| match item {
            Item::IoRedirect(IoRedirect::HereDocument(_, doc)) => Some(doc.doc.loc.as_ref()),
            _ => None,
        })
        .map(|span| span.map(|s| (s.start.index, s.end.index)))
        .collect::<Option<_>>()?;
    let comment = script
        .chars()
        .enumerate()
        .skip(end)
        .any(|(i, c)| c == '#' && !bodies.iter().any(|&(from, to)| from <= i && i < to));
    if comment {
        return None;
    }
    // Positions count characters.
    Some(script.char_indices().nth(end).map_or(script.len(), |(byte, _)| byte))
}

/// Where an item of a simple command ends (a character index).
fn item_end(item: &Item) -> Option<usize> {
    use ast::IoFileRedirectTarget as Target;
    match item {
        Item::Word(w) | Item::AssignmentWord(_, w) => end_of(w.loc.as_ref()),
        Item::ProcessSubstitution(_, sub) => end_of(Some(&sub.loc)),
        Item::IoRedirect(r) => match r {
            IoRedirect::File(_, _, Target::Filename(w) | Target::Duplicate(w))
            | IoRedirect::HereString(_, w)
            | IoRedirect::OutputAndError(w, _) => end_of(w.loc.as_ref()),
            IoRedirect::File(_, _, Target::ProcessSubstitution(_, sub)) => end_of(Some(&sub.loc)),
            // The delimiter word on the command's line: the body follows on the next lines.
            IoRedirect::HereDocument(_, doc) => end_of(doc.here_end.loc.as_ref()),
            // Not located by the parser: the end is unknown.
            IoRedirect::File(_, _, Target::Fd(_)) => None,
        },
    }
}

fn end_of(span: Option<&SourceSpan>) -> Option<usize> {
    span.map(|s| s.end.index)
}
