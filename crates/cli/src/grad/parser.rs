//! The parse tree of the gradient language and its recursive-descent parser.
//!
//! Grammar, loosest binding first:
//!
//! ```text
//! program   := stmt ((';' | newline) stmt)*
//! stmt      := 'fn' NAME '(' [NAME (',' NAME)*] ')' '=' expr
//!            | NAME '=' expr
//!            | expr
//! expr      := 'if' expr 'then' expr 'else' expr | or
//! or        := and ('or' and)*
//! and       := not ('and' not)*
//! not       := 'not' not | cmp
//! cmp       := sum [('<' | '<=' | '>' | '>=' | '==' | '!=') sum]
//! sum       := product (('+' | '-') product)*
//! product   := unary (('*' | '/') unary)*
//! unary     := '-' unary | '+' unary | power
//! power     := postfix [('^' | '**') unary]      # right-associative
//! postfix   := NUMBER | NAME | NAME '(' [expr (',' expr)*] ')' | '(' expr ')' | if
//! ```
//!
//! So `-x^2` is `-(x^2)`, `2^-1` is 0.5 and `a^b^c` is `a^(b^c)`. The tree
//! is plain data, independent of any tape, so one parse can be evaluated on
//! tapes of different scalar types.

use super::error::{ErrorKind, LangError, Pos};
use super::lexer::{lex, Tok, Token};

/// How deeply the parser may recurse (parentheses, prefix operators,
/// conditionals, call arguments) before it stops with an error.
pub const MAX_NESTING: usize = 200;
/// The tallest expression tree accepted (a chain `1+1+...+1` of 1500 terms
/// is 1500 tall); evaluation recurses this deep.
pub const MAX_HEIGHT: u32 = 1500;

/// A binary arithmetic operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `^` or `**`
    Pow,
}

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// An expression with its position (for an operator: the operator's).
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is.
    pub pos: Pos,
    /// Height of the tree below (a leaf is 1).
    pub height: u32,
}

/// The kinds of expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A number literal.
    Num(f64),
    /// A name: an input, an intermediate, a parameter or a constant.
    Name(String),
    /// `-a`
    Neg(Box<Expr>),
    /// `not a`
    Not(Box<Expr>),
    /// `a op b`
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `a cmp b`
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `a and b` (short-circuit)
    And(Box<Expr>, Box<Expr>),
    /// `a or b` (short-circuit)
    Or(Box<Expr>, Box<Expr>),
    /// `if c then a else b`
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `f(args)`
    Call(String, Vec<Expr>),
}

/// A user function: `fn name(params) = body`.
#[derive(Clone, Debug, PartialEq)]
pub struct FnDef {
    /// Its name.
    pub name: String,
    /// Parameter names.
    pub params: Vec<String>,
    /// The body.
    pub body: Expr,
    /// Where the name is.
    pub pos: Pos,
}

/// A statement of the main program.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `name = expr`: binds an intermediate (named in graphs).
    Assign {
        /// The name.
        name: String,
        /// Where the name is.
        pos: Pos,
        /// The value.
        value: Expr,
    },
    /// A bare expression.
    Expr(Expr),
}

impl Stmt {
    /// The statement's expression.
    pub fn expr(&self) -> &Expr {
        match self {
            Stmt::Assign { value, .. } => value,
            Stmt::Expr(e) => e,
        }
    }
}

/// A parsed program: its functions and its main statements, the last of
/// which gives the output.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// User functions, in order of definition.
    pub functions: Vec<FnDef>,
    /// Main statements, in order; never empty.
    pub stmts: Vec<Stmt>,
}

/// Parses a program.
///
/// ```
/// use chainrule_cli::grad::parser::parse;
/// let p = parse("w = x * 2; u = w + 3; y = u / 2").unwrap();
/// assert_eq!(p.stmts.len(), 3);
/// let e = parse("y = (x + ").unwrap_err();
/// assert_eq!(e.pos.unwrap().col, 9); // just after the dangling `+`
/// ```
pub fn parse(src: &str) -> Result<Program, LangError> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
    };
    p.program()
}

struct Parser {
    toks: Vec<Token>,
    i: usize,
    depth: usize,
}

fn mk(kind: ExprKind, pos: Pos) -> Result<Expr, LangError> {
    let child = |e: &Expr| e.height;
    let h = match &kind {
        ExprKind::Num(_) | ExprKind::Name(_) => 0,
        ExprKind::Neg(a) | ExprKind::Not(a) => child(a),
        ExprKind::Bin(_, a, b)
        | ExprKind::Cmp(_, a, b)
        | ExprKind::And(a, b)
        | ExprKind::Or(a, b) => child(a).max(child(b)),
        ExprKind::If(a, b, c) => child(a).max(child(b)).max(child(c)),
        ExprKind::Call(_, args) => args.iter().map(child).max().unwrap_or(0),
    } + 1;
    if h > MAX_HEIGHT {
        return Err(LangError::syntax(
            pos,
            format!("expression nested too deeply (more than {MAX_HEIGHT} levels; each term of a chain of binary operators such as `+`, `*` or `and` is one level); split it with intermediate names"),
        ));
    }
    Ok(Expr {
        kind,
        pos,
        height: h,
    })
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    fn pos(&self) -> Pos {
        self.toks[self.i].pos
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == t {
            self.bump();
            true
        } else {
            false
        }
    }

    fn skip_newlines(&mut self) {
        while *self.peek() == Tok::Newline {
            self.bump();
        }
    }

    /// Skips line breaks if the next token after them is `t` (a statement
    /// never starts with `then`, `else` or `)`).
    fn skip_newlines_before(&mut self, t: &Tok) {
        let mut j = self.i;
        while self.toks[j].tok == Tok::Newline {
            j += 1;
        }
        if &self.toks[j].tok == t {
            self.i = j;
        }
    }

    fn unexpected(&self, wanted: &str) -> LangError {
        LangError::syntax(
            self.pos(),
            format!("expected {wanted}, found {}", self.peek().describe()),
        )
    }

    fn expect(&mut self, t: &Tok, wanted: &str) -> Result<Pos, LangError> {
        if self.peek() == t {
            Ok(self.bump().pos)
        } else {
            Err(self.unexpected(wanted))
        }
    }

    fn enter(&mut self) -> Result<(), LangError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(LangError::syntax(
                self.pos(),
                format!("expression nested too deeply (more than {MAX_NESTING} levels)"),
            ));
        }
        Ok(())
    }

    fn program(&mut self) -> Result<Program, LangError> {
        let mut functions = Vec::new();
        let mut stmts = Vec::new();
        loop {
            while matches!(self.peek(), Tok::Newline | Tok::Semi) {
                self.bump();
            }
            if *self.peek() == Tok::Eof {
                break;
            }
            if *self.peek() == Tok::Fn {
                functions.push(self.fn_def()?);
            } else if matches!(self.peek(), Tok::Ident(_))
                && self.toks.get(self.i + 1).map(|t| &t.tok) == Some(&Tok::Assign)
            {
                let t = self.bump();
                let Tok::Ident(name) = t.tok else {
                    unreachable!("checked above")
                };
                self.bump();
                self.skip_newlines();
                let value = self.expr()?;
                stmts.push(Stmt::Assign {
                    name,
                    pos: t.pos,
                    value,
                });
            } else {
                stmts.push(Stmt::Expr(self.expr()?));
            }
            if !matches!(self.peek(), Tok::Newline | Tok::Semi | Tok::Eof) {
                return Err(match self.peek() {
                    Tok::Assign => LangError::syntax(
                        self.pos(),
                        "only a name can be assigned to (`name = expr`); use `==` to compare",
                    ),
                    Tok::RParen => LangError::syntax(self.pos(), "unmatched `)`"),
                    _ => self.unexpected("an operator, `;` or the end of the line"),
                });
            }
        }
        if stmts.is_empty() {
            return Err(LangError::new(
                ErrorKind::Syntax,
                Some(self.pos()),
                "the program has no output: end it with an expression",
            ));
        }
        Ok(Program { functions, stmts })
    }

    fn fn_def(&mut self) -> Result<FnDef, LangError> {
        self.bump(); // fn
        let pos = self.pos();
        let name = match self.bump().tok {
            Tok::Ident(n) => n,
            _ => {
                return Err(LangError::syntax(
                    pos,
                    "expected the function's name after `fn`",
                ));
            }
        };
        self.expect(&Tok::LParen, "`(` after the function's name")?;
        let mut params = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                let ppos = self.pos();
                match self.bump().tok {
                    Tok::Ident(n) => params.push(n),
                    t => {
                        return Err(LangError::syntax(
                            ppos,
                            format!("expected a parameter name, found {}", t.describe()),
                        ))
                    }
                }
                if self.eat(&Tok::Comma) {
                    continue;
                }
                self.expect(&Tok::RParen, "`,` or `)` in the parameter list")?;
                break;
            }
        }
        self.expect(&Tok::Assign, "`=` before the function's body")?;
        self.skip_newlines();
        let body = self.expr()?;
        Ok(FnDef {
            name,
            params,
            body,
            pos,
        })
    }

    fn expr(&mut self) -> Result<Expr, LangError> {
        self.enter()?;
        let r = if *self.peek() == Tok::If {
            self.if_expr()
        } else {
            self.or()
        };
        self.depth -= 1;
        r
    }

    fn if_expr(&mut self) -> Result<Expr, LangError> {
        let pos = self.bump().pos;
        self.skip_newlines();
        let c = self.expr()?;
        self.skip_newlines_before(&Tok::Then);
        self.expect(&Tok::Then, "`then` after the condition")?;
        self.skip_newlines();
        let a = self.expr()?;
        self.skip_newlines_before(&Tok::Else);
        self.expect(&Tok::Else, "`else` (every `if` needs one)")?;
        self.skip_newlines();
        let b = self.expr()?;
        mk(ExprKind::If(Box::new(c), Box::new(a), Box::new(b)), pos)
    }

    fn or(&mut self) -> Result<Expr, LangError> {
        let mut l = self.and()?;
        while *self.peek() == Tok::Or {
            let pos = self.bump().pos;
            self.skip_newlines();
            let r = self.and()?;
            l = mk(ExprKind::Or(Box::new(l), Box::new(r)), pos)?;
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, LangError> {
        let mut l = self.not()?;
        while *self.peek() == Tok::And {
            let pos = self.bump().pos;
            self.skip_newlines();
            let r = self.not()?;
            l = mk(ExprKind::And(Box::new(l), Box::new(r)), pos)?;
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, LangError> {
        if *self.peek() == Tok::Not {
            let pos = self.bump().pos;
            self.enter()?;
            let a = self.not();
            self.depth -= 1;
            return mk(ExprKind::Not(Box::new(a?)), pos);
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, LangError> {
        let l = self.sum()?;
        let op = match self.peek() {
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            Tok::Eq => CmpOp::Eq,
            Tok::Ne => CmpOp::Ne,
            _ => return Ok(l),
        };
        let pos = self.bump().pos;
        self.skip_newlines();
        let r = self.sum()?;
        if matches!(
            self.peek(),
            Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge | Tok::Eq | Tok::Ne
        ) {
            return Err(LangError::syntax(
                self.pos(),
                "comparisons cannot be chained; combine them with `and`",
            ));
        }
        mk(ExprKind::Cmp(op, Box::new(l), Box::new(r)), pos)
    }

    fn sum(&mut self) -> Result<Expr, LangError> {
        let mut l = self.product()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(l),
            };
            let pos = self.bump().pos;
            self.skip_newlines();
            let r = self.product()?;
            l = mk(ExprKind::Bin(op, Box::new(l), Box::new(r)), pos)?;
        }
    }

    fn product(&mut self) -> Result<Expr, LangError> {
        let mut l = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                _ => return Ok(l),
            };
            let pos = self.bump().pos;
            self.skip_newlines();
            let r = self.unary()?;
            l = mk(ExprKind::Bin(op, Box::new(l), Box::new(r)), pos)?;
        }
    }

    fn unary(&mut self) -> Result<Expr, LangError> {
        match self.peek() {
            Tok::Minus | Tok::Plus => {
                let t = self.bump();
                self.enter()?;
                let a = self.unary();
                self.depth -= 1;
                let a = a?;
                if t.tok == Tok::Plus {
                    Ok(a)
                } else {
                    mk(ExprKind::Neg(Box::new(a)), t.pos)
                }
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Expr, LangError> {
        let base = self.postfix()?;
        if *self.peek() != Tok::Caret {
            return Ok(base);
        }
        let pos = self.bump().pos;
        self.skip_newlines();
        self.enter()?;
        let e = self.unary();
        self.depth -= 1;
        mk(ExprKind::Bin(BinOp::Pow, Box::new(base), Box::new(e?)), pos)
    }

    fn postfix(&mut self) -> Result<Expr, LangError> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Num(x) => {
                self.bump();
                mk(ExprKind::Num(x), pos)
            }
            Tok::Ident(name) => {
                self.bump();
                if *self.peek() != Tok::LParen {
                    return mk(ExprKind::Name(name), pos);
                }
                self.bump();
                let mut args = Vec::new();
                if !self.eat(&Tok::RParen) {
                    loop {
                        args.push(self.expr()?);
                        if self.eat(&Tok::Comma) {
                            continue;
                        }
                        self.expect(&Tok::RParen, "`,` or `)` after a call's argument")?;
                        break;
                    }
                }
                mk(ExprKind::Call(name, args), pos)
            }
            Tok::LParen => {
                self.bump();
                let e = self.expr()?;
                if *self.peek() != Tok::RParen {
                    return Err(self.unexpected("`)`"));
                }
                self.bump();
                Ok(e)
            }
            Tok::If => self.expr(),
            _ => Err(self.unexpected("a number, a name or `(`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree as a fully parenthesised string.
    fn show(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Num(x) => format!("{x}"),
            ExprKind::Name(n) => n.clone(),
            ExprKind::Neg(a) => format!("(-{})", show(a)),
            ExprKind::Not(a) => format!("(not {})", show(a)),
            ExprKind::Bin(op, a, b) => {
                let s = match op {
                    BinOp::Add => "+",
                    BinOp::Sub => "-",
                    BinOp::Mul => "*",
                    BinOp::Div => "/",
                    BinOp::Pow => "^",
                };
                format!("({} {s} {})", show(a), show(b))
            }
            ExprKind::Cmp(op, a, b) => format!("({} {op:?} {})", show(a), show(b)),
            ExprKind::And(a, b) => format!("({} and {})", show(a), show(b)),
            ExprKind::Or(a, b) => format!("({} or {})", show(a), show(b)),
            ExprKind::If(c, a, b) => format!("(if {} then {} else {})", show(c), show(a), show(b)),
            ExprKind::Call(f, args) => {
                let a: Vec<String> = args.iter().map(show).collect();
                format!("{f}({})", a.join(", "))
            }
        }
    }

    fn one(src: &str) -> String {
        let p = parse(src).unwrap();
        show(p.stmts.last().unwrap().expr())
    }

    #[test]
    fn precedence() {
        assert_eq!(one("-x^2"), "(-(x ^ 2))");
        assert_eq!(one("2^-1"), "(2 ^ (-1))");
        assert_eq!(one("a^b^c"), "(a ^ (b ^ c))");
        assert_eq!(one("a**b**c"), "(a ^ (b ^ c))");
        assert_eq!(one("a - b - c"), "((a - b) - c)");
        assert_eq!(one("a / b * c"), "((a / b) * c)");
        assert_eq!(one("a + b * c ^ d"), "(a + (b * (c ^ d)))");
        assert_eq!(one("-a * -b"), "((-a) * (-b))");
        assert_eq!(one("(a + b) * c"), "((a + b) * c)");
        assert_eq!(one("2 * x^3 / 4"), "((2 * (x ^ 3)) / 4)");
        assert_eq!(
            one("a < b and not c == d or e"),
            "(((a Lt b) and (not (c Eq d))) or e)"
        );
        assert_eq!(
            one("1 + if x > 0 then x else -x"),
            "(1 + (if (x Gt 0) then x else (-x)))"
        );
        assert_eq!(one("max(a, b + 1, sin(c))"), "max(a, (b + 1), sin(c))");
    }

    #[test]
    fn statements_and_functions() {
        let p = parse("fn p(x, n) = if n == 0 then 1 else x * p(x, n - 1); p(x, 5)").unwrap();
        assert_eq!(p.functions.len(), 1);
        assert_eq!(p.functions[0].params, vec!["x", "n"]);
        assert_eq!(p.stmts.len(), 1);
        let p =
            parse("fn f(a) =\n  if a > 0\n  then a\n  else 0\n\nw = f(x) +\n  1\ny = w\n").unwrap();
        assert_eq!(p.functions.len(), 1);
        assert_eq!(p.stmts.len(), 2);
        assert!(matches!(&p.stmts[1], Stmt::Assign { name, .. } if name == "y"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let at = |src: &str| {
            let e = parse(src).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Syntax, "{src}: {e}");
            let p = e.pos.unwrap();
            (p.line, p.col)
        };
        assert_eq!(at("x +"), (1, 4));
        assert_eq!(at("x + * 2"), (1, 5));
        assert_eq!(at("(x + 1"), (1, 7));
        assert_eq!(at("x + 1)"), (1, 6));
        assert_eq!(at("a\nb = = 2"), (2, 5));
        assert_eq!(at("if x then 1"), (1, 12));
        assert_eq!(at("a < b < c"), (1, 7));
        assert_eq!(at("fn (x) = x; 1"), (1, 4));
        assert_eq!(at("x y"), (1, 3));
        assert_eq!(at(""), (1, 1));
        assert_eq!(at("fn f(x) = x"), (1, 12));
        assert_eq!(at("2 * x = 3"), (1, 7));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}x{}", "(".repeat(1000), ")".repeat(1000));
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("nested too deeply"), "{e}");
        let minus = format!("{}x", "-".repeat(100_000));
        assert!(parse(&minus).is_err());
        let chain = vec!["x"; 20_000].join("+");
        assert!(parse(&chain).unwrap_err().message.contains("too deeply"));
        let ok = vec!["x"; 1000].join("+");
        assert!(parse(&ok).is_ok());
        let ok = format!("{}x{}", "(".repeat(150), ")".repeat(150));
        assert!(parse(&ok).is_ok());
    }
}
