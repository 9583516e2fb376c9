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

/// The most characters of a program line an error shows.
pub const WINDOW: usize = 120;

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

    /// The message with its place (at most [`WINDOW`] characters of a
    /// long line, around the column): `file: line L, column C: syntax error: ...`,
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
                // Tabs become spaces so the caret lines up; a long line
                // shows only the part around the column.
                let chars: Vec<char> = text
                    .chars()
                    .map(|c| if c == '\t' { ' ' } else { c })
                    .collect();
                let col = (p.col.saturating_sub(1) as usize).min(chars.len());
                let from = col.saturating_sub(WINDOW / 2);
                let to = chars.len().min(from + WINDOW);
                let mut shown: String = chars[from..to].iter().collect();
                let mut at = col - from;
                if from > 0 {
                    shown.insert(0, '…');
                    at += 1;
                }
                if to < chars.len() {
                    shown.push('…');
                }
                let caret = " ".repeat(at);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A short line is shown whole; a long one only around the column,
    /// marked where it is cut, with the caret still under the column.
    #[test]
    fn the_caret_stays_under_the_column_of_a_long_line() {
        let e = |col| LangError::syntax(Pos { line: 1, col }, "m");
        let short = "x + * 2";
        assert_eq!(
            e(5).render(short, None),
            "line 1, column 5: syntax error: m\n  x + * 2\n      ^"
        );
        let long: String = (0..1000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        for col in [1u32, 30, 500, 999, 1000] {
            let text = e(col).render(&long, None);
            let lines: Vec<&str> = text.lines().collect();
            let (shown, caret) = (lines[1], lines[2]);
            assert!(shown.chars().count() <= WINDOW + 4, "{col}: {shown}");
            let at = caret.chars().count() - 1;
            let under: char = shown.chars().nth(at).unwrap();
            assert_eq!(under, long.chars().nth(col as usize - 1).unwrap(), "{col}");
            assert!(shown.contains('…'));
        }
    }
}
