//! Errors of the gradient language: what went wrong and where, shown with
//! the offending line and a caret under the spot.

use std::fmt;

/// A line and column in the program text (both from 1; columns count
/// characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.col)
    }
}

/// What kind of problem a [`LangError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text is not a program.
    Syntax,
    /// An unknown name or function, or a name used wrongly.
    Name,
    /// A call with the wrong number of arguments.
    Arity,
    /// An input value on the command line: missing, twice, or not a number.
    Input,
    /// A truth value where a number is needed, or the other way round.
    Type,
    /// Recursion deeper than the limit, or a program that runs too long.
    Limit,
    /// A NaN or infinite result.
    NonFinite,
}

/// An error in a program or its inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct LangError {
    /// The kind.
    pub kind: ErrorKind,
    /// Where in the program, if the error has a place.
    pub pos: Option<Pos>,
    /// What went wrong.
    pub message: String,
}

impl LangError {
    /// An error of `kind` at `pos`.
    pub fn new(kind: ErrorKind, pos: Option<Pos>, message: impl Into<String>) -> Self {
        LangError {
            kind,
            pos,
            message: message.into(),
        }
    }

    /// A syntax error at `pos`.
    pub fn syntax(pos: Pos, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Syntax, Some(pos), message)
    }

    /// The message with its place: `file: line L, column C: syntax error: ...`,
    /// then the program line and a caret under the column.
    pub fn render(&self, src: &str, file: Option<&str>) -> String {
        let mut s = String::new();
        if let Some(f) = file {
            s.push_str(f);
            s.push_str(": ");
        }
        if let Some(p) = self.pos {
            s.push_str(&format!("{p}: "));
        }
        if self.kind == ErrorKind::Syntax {
            s.push_str("syntax error: ");
        }
        s.push_str(&self.message);
        if let Some(p) = self.pos {
            if let Some(text) = src.lines().nth(p.line as usize - 1) {
                // Tabs become spaces so the caret lines up.
                let shown: String = text
                    .chars()
                    .map(|c| if c == '\t' { ' ' } else { c })
                    .collect();
                let caret = " ".repeat(p.col.saturating_sub(1) as usize);
                s.push_str(&format!("\n  {shown}\n  {caret}^"));
            }
        }
        s
    }
}

impl fmt::Display for LangError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.pos {
            write!(f, "{p}: ")?;
        }
        if self.kind == ErrorKind::Syntax {
            f.write_str("syntax error: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for LangError {}
