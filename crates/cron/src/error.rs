//! Parse errors. Messages are shown to end users as-is, so each names the
//! field or piece of input that is wrong and what would be accepted.

use std::fmt;

/// A field of a cron expression, used to say where an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    /// Smallest value a user may write in this field.
    pub(crate) fn min(self) -> u32 {
        match self {
            Field::DayOfMonth | Field::Month => 1,
            _ => 0,
        }
    }

    /// Largest value a user may write (day-of-week allows 7 = Sunday).
    pub(crate) fn max(self) -> u32 {
        match self {
            Field::Second | Field::Minute => 59,
            Field::Hour => 23,
            Field::DayOfMonth => 31,
            Field::Month => 12,
            Field::DayOfWeek => 7,
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        })
    }
}

/// Why an expression, period or time zone was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty expression: expected 5 or 6 fields or a macro such as @daily")]
    Empty,
    #[error(
        "expected 5 or 6 fields, got {got} (minute hour day-of-month month day-of-week, or a seconds field before them; there is no year field)"
    )]
    FieldCount { got: usize },
    /// A field of a 6-field expression refused: said with the fields' order, the first being
    /// seconds (a 6-field expression is often a 5-field one with a year added).
    #[error(
        "{inner} (in a 6-field expression the first field is seconds: second minute hour day-of-month month day-of-week; there is no year field)"
    )]
    SixFields { inner: Box<ParseError> },
    #[error("{field} field: empty list item")]
    EmptyItem { field: Field },
    #[error("{field} field: invalid value {token:?}")]
    InvalidValue { field: Field, token: String },
    #[error("{field} field: value {value} out of range {min}-{max}")]
    OutOfRange { field: Field, value: String, min: u32, max: u32 },
    #[error("{field} field: invalid step {step:?} (must be a number from 1 to {max})")]
    InvalidStep { field: Field, step: String, max: u32 },
    #[error("{field} field: range {start}-{end} goes backwards")]
    ReversedRange { field: Field, start: u32, end: u32 },
    /// A malformed `H`, `L`, `W` or `#` form; the reason shows the right one.
    #[error("{field} field: invalid {token:?}: {reason}")]
    InvalidForm { field: Field, token: String, reason: String },
    /// `H` chooses its value from a key (a job's uid), and none was given.
    #[error("{field} field: H needs a hash key (the job's uid) to choose its value")]
    HashKeyRequired { field: Field },
    #[error(
        "too many H choices in the day-of-month, month and day-of-week fields to check that the expression fires for every key (at most {max} combinations)"
    )]
    TooManyHashChoices { max: usize },
    #[error(
        "unknown macro {name:?} (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every)"
    )]
    UnknownMacro { name: String },
    #[error("{name} takes no arguments")]
    MacroArgument { name: String },
    #[error("@every: invalid duration {input:?}: {reason}")]
    InvalidDuration { input: String, reason: String },
    #[error("period must be at least 1 second, got {input}")]
    PeriodTooShort { input: String },
    #[error("period must be a whole number of seconds, got {input}")]
    PeriodNotWholeSeconds { input: String },
    #[error("period is too long: {input}")]
    PeriodTooLong { input: String },
    /// `hint`: the closest IANA names, as `: did you mean Europe/Berlin?`, or empty.
    #[error("unknown time zone {name:?}{hint}")]
    UnknownTimeZone { name: String, hint: String },
    /// No date ever matches: the reason names the months and days, e.g.
    /// "February has no day 30 or 31".
    #[error("this expression never fires: {reason}")]
    NeverFires { reason: String },
}
