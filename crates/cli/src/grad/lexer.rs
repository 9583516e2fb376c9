//! Tokens of the gradient language, each with its line and column.

use super::error::{LangError, Pos};

/// A token's kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A number literal.
    Num(f64),
    /// A name.
    Ident(String),
    /// `fn`
    Fn,
    /// `if`
    If,
    /// `then`
    Then,
    /// `else`
    Else,
    /// `and` (also `&&`)
    And,
    /// `or` (also `||`)
    Or,
    /// `not` (also `!`)
    Not,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `^` or `**`
    Caret,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `=`
    Assign,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `;`
    Semi,
    /// A line break outside parentheses (separates statements).
    Newline,
    /// End of the program.
    Eof,
}

impl Tok {
    /// How the token is shown in error messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Num(x) => format!("number `{x}`"),
            Tok::Ident(s) => format!("name `{s}`"),
            Tok::Newline => "end of line".into(),
            Tok::Eof => "end of program".into(),
            t => format!("`{}`", t.text()),
        }
    }

    fn text(&self) -> &'static str {
        match self {
            Tok::Fn => "fn",
            Tok::If => "if",
            Tok::Then => "then",
            Tok::Else => "else",
            Tok::And => "and",
            Tok::Or => "or",
            Tok::Not => "not",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Caret => "^",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            Tok::Assign => "=",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Semi => ";",
            _ => "?",
        }
    }
}

/// A token and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// The kind.
    pub tok: Tok,
    /// Line and column of its first character.
    pub pos: Pos,
}

/// Words that cannot be names.
pub const KEYWORDS: &[&str] = &["fn", "if", "then", "else", "and", "or", "not"];

/// Splits `src` into tokens (the typeset signs − × · ⋅ ÷ ≤ ≥ ≠ read as
/// `-`, `*`, `/`, `<=`, `>=`, `!=`). Line breaks inside parentheses are dropped, so
/// an expression may span lines there; `#` starts a comment to the end of
/// the line.
pub fn lex(src: &str) -> Result<Vec<Token>, LangError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1u32, 1u32);
    let mut depth = 0usize;
    let mut end = Pos { line: 1, col: 1 };
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, col };
        let peek = chars.get(i + 1).copied();
        let mut adv = 1;
        let tok = match c {
            '\n' => {
                if depth == 0 {
                    out.push(Token {
                        tok: Tok::Newline,
                        pos,
                    });
                }
                i += 1;
                line += 1;
                col = 1;
                continue;
            }
            ' ' | '\t' | '\r' => None,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                    col += 1;
                }
                continue;
            }
            '0'..='9' | '.' => {
                let start = i;
                let mut j = i;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                if j < chars.len() && chars[j] == '.' {
                    j += 1;
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                }
                if j < chars.len() && (chars[j] == 'e' || chars[j] == 'E') {
                    let mut k = j + 1;
                    if k < chars.len() && (chars[k] == '+' || chars[k] == '-') {
                        k += 1;
                    }
                    if k < chars.len() && chars[k].is_ascii_digit() {
                        while k < chars.len() && chars[k].is_ascii_digit() {
                            k += 1;
                        }
                        j = k;
                    }
                }
                let text: String = chars[start..j].iter().collect();
                let value: f64 = text
                    .parse()
                    .map_err(|_| LangError::syntax(pos, format!("malformed number `{text}`")))?;
                if !value.is_finite() {
                    return Err(LangError::syntax(
                        pos,
                        format!("number `{text}` is too large"),
                    ));
                }
                if j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    let at = Pos {
                        line,
                        col: col + (j - start) as u32,
                    };
                    return Err(LangError::syntax(
                        at,
                        format!(
                            "unexpected `{}` right after the number `{text}` (missing `*`?)",
                            chars[j]
                        ),
                    ));
                }
                adv = j - start;
                Some(Tok::Num(value))
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                let mut j = i;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                adv = j - start;
                let word: String = chars[start..j].iter().collect();
                Some(match word.as_str() {
                    "fn" => Tok::Fn,
                    "if" => Tok::If,
                    "then" => Tok::Then,
                    "else" => Tok::Else,
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    _ => Tok::Ident(word),
                })
            }
            '+' => Some(Tok::Plus),
            // the typeset signs of formulas pasted from papers, too
            '-' | '\u{2212}' => Some(Tok::Minus),
            '\u{d7}' | '\u{b7}' | '\u{22c5}' => Some(Tok::Star),
            '\u{f7}' => Some(Tok::Slash),
            '\u{2264}' => Some(Tok::Le),
            '\u{2265}' => Some(Tok::Ge),
            '\u{2260}' => Some(Tok::Ne),
            '*' if peek == Some('*') => {
                adv = 2;
                Some(Tok::Caret)
            }
            '*' => Some(Tok::Star),
            '/' => Some(Tok::Slash),
            '^' => Some(Tok::Caret),
            '(' => {
                depth += 1;
                Some(Tok::LParen)
            }
            ')' => {
                depth = depth.saturating_sub(1);
                Some(Tok::RParen)
            }
            ',' => Some(Tok::Comma),
            ';' => Some(Tok::Semi),
            '=' if peek == Some('=') => {
                adv = 2;
                Some(Tok::Eq)
            }
            '=' => Some(Tok::Assign),
            '!' if peek == Some('=') => {
                adv = 2;
                Some(Tok::Ne)
            }
            '!' => Some(Tok::Not),
            '<' if peek == Some('=') => {
                adv = 2;
                Some(Tok::Le)
            }
            '<' => Some(Tok::Lt),
            '>' if peek == Some('=') => {
                adv = 2;
                Some(Tok::Ge)
            }
            '>' => Some(Tok::Gt),
            '&' if peek == Some('&') => {
                adv = 2;
                Some(Tok::And)
            }
            '|' if peek == Some('|') => {
                adv = 2;
                Some(Tok::Or)
            }
            other => {
                let shown = if other.is_control() {
                    format!("{:?}", other)
                } else {
                    format!("`{other}`")
                };
                return Err(LangError::syntax(
                    pos,
                    format!("unexpected character {shown}"),
                ));
            }
        };
        if let Some(tok) = tok {
            out.push(Token { tok, pos });
            end = Pos {
                line,
                col: col + adv as u32,
            };
        }
        i += adv;
        col += adv as u32;
    }
    // the end is said just after the last token (a dangling `+` is then
    // shown on its own line, not past the blank lines that follow it)
    out.push(Token {
        tok: Tok::Eof,
        pos: end,
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_names_operators() {
        assert_eq!(
            kinds("x1 = 2.5e-1 ** .5"),
            vec![
                Tok::Ident("x1".into()),
                Tok::Assign,
                Tok::Num(0.25),
                Tok::Caret,
                Tok::Num(0.5),
                Tok::Eof
            ]
        );
        assert_eq!(
            kinds("a<=b!=c==d&&!e"),
            vec![
                Tok::Ident("a".into()),
                Tok::Le,
                Tok::Ident("b".into()),
                Tok::Ne,
                Tok::Ident("c".into()),
                Tok::Eq,
                Tok::Ident("d".into()),
                Tok::And,
                Tok::Not,
                Tok::Ident("e".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn newlines_inside_parentheses_are_dropped() {
        assert_eq!(
            kinds("(1\n+2)\n3 # two\n"),
            vec![
                Tok::LParen,
                Tok::Num(1.0),
                Tok::Plus,
                Tok::Num(2.0),
                Tok::RParen,
                Tok::Newline,
                Tok::Num(3.0),
                Tok::Newline,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn positions_and_errors() {
        let t = lex("a\n  bc").unwrap();
        assert_eq!(t[2].pos, Pos { line: 2, col: 3 });
        let e = lex("x = 2x").unwrap_err();
        assert_eq!(e.pos, Some(Pos { line: 1, col: 6 }));
        let e = lex("x $ y").unwrap_err();
        assert_eq!(e.pos, Some(Pos { line: 1, col: 3 }));
        assert!(lex("1e999").is_err());
    }
}
