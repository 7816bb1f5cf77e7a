//! The constraint language of a sweep spec's `[grid] where = "..."`.
//!
//! A constraint is a boolean expression over the grid's parameter names, such as
//! `fast < slow and (slow - fast) % 5 == 0`. The language has:
//!
//! * numbers: `2`, `0.5`, `.5`, `1e3`, `2.5E-2`; all arithmetic is done in `f64`;
//! * identifiers: the parameter names (`[A-Za-z_][A-Za-z0-9_]*`);
//! * text: string literals `"GE"` or `'GE'` (no escapes; they end at the next quote of
//!   the same kind) and text parameters such as `symbol`, compared only with `==` and
//!   `!=` (exact, case-sensitive), e.g. `symbol != "GE"`;
//! * arithmetic `+ - * / %` and unary `-` (and unary `+`); `%` is Rust's `f64`
//!   remainder (it takes the sign of the left operand), division by zero gives an
//!   infinity or NaN, and every comparison with NaN is false except `!=`;
//! * comparisons `< <= > >= == !=` between numbers (`==`, `!=` also between texts); they are non-associative, so
//!   `a < b < c` is an error (write `a < b and b < c`);
//! * logic `and`/`&&`, `or`/`||`, `not`/`!` between booleans.
//!
//! Precedence, loosest first: `or` < `and` < `not` < comparison < `+ -` < `* / %` <
//! unary minus. Binary arithmetic and logic operators associate to the left. Note that
//! `not` binds looser than a comparison: `not a < b` means `not (a < b)`.
//!
//! Types are checked while parsing: the whole expression must be boolean, arithmetic
//! and comparisons take numbers, logic takes booleans. Every error names a 1-based
//! column (counted in characters), except the one for an expression that is a number.
//!
//! Parentheses and unary operators (`not`, `!`, `-`, `+`) may be nested at most
//! [`MAX_DEPTH`] levels deep; deeper input is an error, not a stack overflow. Chains of
//! one precedence level (`a + b - c`, `p and q and r`) are stored flat, so their length
//! is not limited and evaluating or dropping them does not recurse per operator.

/// The deepest nesting of parentheses and unary operators (`not`, `!`, `-`, `+`) that
/// [`Expr::parse`] accepts. It bounds the parser's recursion, and with the flat chains the
/// depth of the expression tree, so a pathological `where` cannot overflow the stack.
pub const MAX_DEPTH: usize = 64;

/// A numeric sub-expression.
#[derive(Clone, Debug)]
enum Num {
    Lit(f64),
    Var(usize),
    Neg(Box<Num>),
    /// A left-associative chain `first op1 x1 op2 x2 ..` of one precedence level, kept flat
    /// so that a long chain needs no deep recursion.
    Chain(Box<Num>, Vec<(Arith, Num)>),
}

/// An arithmetic operator (decoded once at parse time: a `where` is evaluated once per
/// combo of the cartesian grid, 98,704 times on the benchmark grid, by the launcher and
/// again by every rank).
#[derive(Clone, Copy, Debug)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl Arith {
    fn of(op: &str) -> Arith {
        match op {
            "+" => Arith::Add,
            "-" => Arith::Sub,
            "*" => Arith::Mul,
            "/" => Arith::Div,
            _ => Arith::Rem,
        }
    }
}

/// A comparison operator (see [`Arith`]).
#[derive(Clone, Copy, Debug)]
enum Compare {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Compare {
    fn of(op: &str) -> Compare {
        match op {
            "<" => Compare::Lt,
            "<=" => Compare::Le,
            ">" => Compare::Gt,
            ">=" => Compare::Ge,
            "==" => Compare::Eq,
            _ => Compare::Ne,
        }
    }
}

/// A text sub-expression: a literal or a text variable.
#[derive(Clone, Debug)]
enum Text {
    Lit(String),
    /// A text variable: its value is an index into the texts given to [`Expr::eval_with_texts`].
    Var(usize),
}

/// A boolean sub-expression.
#[derive(Clone, Debug)]
enum Bool {
    Cmp(Compare, Num, Num),
    /// `a == b` (`true`) or `a != b` (`false`) between texts.
    TextEq(bool, Text, Text),
    /// `x1 and x2 and ..` (flat, evaluated left to right with short-circuit).
    All(Vec<Bool>),
    /// `x1 or x2 or ..` (flat, evaluated left to right with short-circuit).
    Any(Vec<Bool>),
    Not(Box<Bool>),
}

/// A parsed, type-checked boolean constraint, evaluated against a slice of values.
#[derive(Clone, Debug)]
pub struct Expr {
    root: Bool,
}

impl Expr {
    /// Parse a boolean constraint over the given variable names.
    ///
    /// `names[i]` becomes the variable bound to `values[i]` in [`Expr::eval`]. The
    /// error is one line without a prefix, e.g.
    /// ``unknown name `fsat` at column 1 (grid parameters: fast, slow)``.
    #[cfg(test)]
    pub fn parse(src: &str, names: &[&str]) -> Result<Expr, String> {
        Expr::parse_with_texts(src, names, &[])
    }

    /// Like [`Expr::parse`], where `is_text[i]` (missing: `false`) makes `names[i]` a text
    /// variable: comparable with `==`/`!=` to a string literal or another text variable.
    pub fn parse_with_texts(src: &str, names: &[&str], is_text: &[bool]) -> Result<Expr, String> {
        let toks = tokenize(src)?;
        let mut p = Parser { toks, pos: 0, depth: 0, names, is_text };
        if p.peek().0 == Tok::End {
            return Err(format!("empty expression; {}", p.hint()));
        }
        let e = p.or()?;
        let (tok, col) = p.peek();
        if *tok != Tok::End {
            return Err(format!("unexpected {tok} at column {col}, expected an operator or the end"));
        }
        match e {
            Typed::Bool(root) => Ok(Expr { root }),
            Typed::Num(_) | Typed::Text(_) => Err(p.hint()),
        }
    }

    /// Evaluate with `values[i]` bound to `names[i]`.
    ///
    /// Panics if `values` is shorter than the `names` given to [`Expr::parse`] and the
    /// expression uses a missing one.
    #[cfg(test)]
    pub fn eval(&self, values: &[f64]) -> bool {
        truth(&self.root, values, &[])
    }

    /// Evaluate with `values[i]` bound to `names[i]`; a text variable's value is an index
    /// into `texts` (so that a grid's combos stay numbers).
    ///
    /// Panics if a text variable's value is not an index of `texts`.
    pub fn eval_with_texts(&self, values: &[f64], texts: &[&str]) -> bool {
        truth(&self.root, values, texts)
    }
}

/// An example constraint over `names`, for messages: `fast < slow`.
pub(crate) fn example(names: &[&str]) -> String {
    match names {
        [a, b, ..] => format!("{a} < {b}"),
        [a] => format!("{a} > 0"),
        [] => "1 < 2".to_string(),
    }
}

fn truth(b: &Bool, v: &[f64], texts: &[&str]) -> bool {
    let text = |t: &Text| -> String {
        match t {
            Text::Lit(s) => s.clone(),
            Text::Var(i) => texts[v[*i] as usize].to_string(),
        }
    };
    match b {
        Bool::TextEq(equal, l, r) => match (l, r) {
            // The common case (`symbol != "GE"`) compares without allocating.
            (Text::Var(i), Text::Lit(s)) | (Text::Lit(s), Text::Var(i)) => (texts[v[*i] as usize] == s) == *equal,
            _ => (text(l) == text(r)) == *equal,
        },
        Bool::Cmp(op, l, r) => {
            let (l, r) = (num(l, v), num(r, v));
            match op {
                Compare::Lt => l < r,
                Compare::Le => l <= r,
                Compare::Gt => l > r,
                Compare::Ge => l >= r,
                Compare::Eq => l == r,
                Compare::Ne => l != r,
            }
        }
        Bool::All(xs) => xs.iter().all(|x| truth(x, v, texts)),
        Bool::Any(xs) => xs.iter().any(|x| truth(x, v, texts)),
        Bool::Not(e) => !truth(e, v, texts),
    }
}

fn num(n: &Num, v: &[f64]) -> f64 {
    match n {
        Num::Lit(x) => *x,
        Num::Var(i) => v[*i],
        Num::Neg(e) => -num(e, v),
        Num::Chain(first, rest) => rest.iter().fold(num(first, v), |l, (op, r)| {
            let r = num(r, v);
            match op {
                Arith::Add => l + r,
                Arith::Sub => l - r,
                Arith::Mul => l * r,
                Arith::Div => l / r,
                Arith::Rem => l % r,
            }
        }),
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    /// A string literal, without its quotes.
    Str(String),
    /// An operator, a parenthesis or one of the keywords `and`, `or`, `not`.
    Op(&'static str),
    End,
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Num(x) => write!(f, "number `{x}`"),
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Str(s) => write!(f, "string {s:?}"),
            Tok::Op(s) => write!(f, "`{s}`"),
            Tok::End => f.write_str("end of expression"),
        }
    }
}

/// A token and its 1-based column.
type Token = (Tok, usize);

const OPS: [&str; 17] = ["<=", ">=", "==", "!=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%", "(", ")", "="];

fn tokenize(src: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (c, col, start) = (chars[i], i + 1, i);
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        let text = |end: usize| chars[start..end].iter().collect::<String>();
        let tok = if c.is_whitespace() {
            i += 1;
            continue;
        } else if c.is_ascii_digit() || (c == '.' && next.is_ascii_digit()) {
            i = scan_number(&chars, i);
            let t = text(i);
            let x = t.parse().map_err(|_| format!("invalid number `{t}` at column {col}"))?;
            Tok::Num(x)
        } else if c == '"' || c == '\'' {
            let Some(len) = chars[i + 1..].iter().position(|&q| q == c) else {
                return Err(format!("unterminated string at column {col} (close it with {c})"));
            };
            i += len + 2;
            Tok::Str(chars[start + 1..i - 1].iter().collect())
        } else if c.is_ascii_alphabetic() || c == '_' {
            while chars.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_') {
                i += 1;
            }
            let w = text(i);
            match ["and", "or", "not"].into_iter().find(|k| *k == w) {
                Some(k) => Tok::Op(k),
                None => Tok::Ident(w),
            }
        } else {
            let two: String = [c, next].iter().collect();
            match OPS.into_iter().find(|op| two.starts_with(op)) {
                Some("=") => return Err(format!("unexpected `=` at column {col} (use `==`)")),
                Some(op) => {
                    i += op.len();
                    Tok::Op(op)
                }
                None if c == '&' || c == '|' => return Err(format!("unexpected `{c}` at column {col} (use `{c}{c}`)")),
                None => return Err(format!("unexpected character `{c}` at column {col}")),
            }
        };
        out.push((tok, col));
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

/// Index just past the number literal starting at `i`: digits, an optional fraction
/// and an optional exponent (taken only when digits follow it).
fn scan_number(chars: &[char], mut i: usize) -> usize {
    let digits = |mut i: usize| {
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    i = digits(i);
    if chars.get(i) == Some(&'.') {
        i = digits(i + 1);
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let mut j = i + 1;
        if matches!(chars.get(j), Some('+' | '-')) {
            j += 1;
        }
        if chars.get(j).is_some_and(|c| c.is_ascii_digit()) {
            i = digits(j);
        }
    }
    i
}

/// A parsed sub-expression with its type.
enum Typed {
    Num(Num),
    Bool(Bool),
    Text(Text),
}

struct Parser<'a> {
    toks: Vec<Token>,
    pos: usize,
    /// Parentheses and unary operators currently open around the parse position.
    depth: usize,
    names: &'a [&'a str],
    /// `is_text[i]`: whether `names[i]` is a text variable (missing: a number).
    is_text: &'a [bool],
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.pos]
    }

    /// Consume the next token if it is one of the operators `ops`, returning it and its column.
    fn eat(&mut self, ops: &[&'static str]) -> Option<(&'static str, usize)> {
        match *self.peek() {
            (Tok::Op(op), col) if ops.contains(&op) => {
                self.pos += 1;
                Some((op, col))
            }
            _ => None,
        }
    }

    /// Parse `inner` one nesting level deeper, for the `(` or unary operator at `col`;
    /// an error past [`MAX_DEPTH`] levels.
    fn nested<T>(&mut self, col: usize, inner: fn(&mut Self) -> Result<T, String>) -> Result<T, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!("expression nested deeper than {MAX_DEPTH} levels at column {col}"));
        }
        self.depth += 1;
        let e = inner(self);
        self.depth -= 1;
        e
    }

    /// The message for an expression that is not boolean.
    fn hint(&self) -> String {
        // The example compares numbers: text variables only take `==`.
        let numbers: Vec<&str> = (0..self.names.len())
            .filter(|&i| !self.is_text.get(i).copied().unwrap_or(false))
            .map(|i| self.names[i])
            .collect();
        format!("expected a comparison like `{}`", example(&numbers))
    }

    fn want_bool(&self, e: Typed, op: &str, col: usize) -> Result<Bool, String> {
        match e {
            Typed::Bool(b) => Ok(b),
            Typed::Num(_) => {
                Err(format!("`{op}` at column {col} needs true/false operands, got a number; {}", self.hint()))
            }
            Typed::Text(_) => {
                Err(format!("`{op}` at column {col} needs true/false operands, got a text; {}", self.hint()))
            }
        }
    }

    fn want_num(e: Typed, op: &str, col: usize) -> Result<Num, String> {
        match e {
            Typed::Num(n) => Ok(n),
            Typed::Bool(_) => Err(format!("`{op}` at column {col} needs number operands, got a true/false condition")),
            Typed::Text(_) => Err(format!(
                "`{op}` at column {col} needs number operands, got a text (texts compare only with == and !=)"
            )),
        }
    }

    /// `next (op next)*` over booleans, as one flat node.
    fn logic(
        &mut self,
        ops: &[&'static str],
        next: fn(&mut Self) -> Result<Typed, String>,
        make: fn(Vec<Bool>) -> Bool,
    ) -> Result<Typed, String> {
        let first = next(self)?;
        let Some((mut op, mut col)) = self.eat(ops) else {
            return Ok(first);
        };
        let mut all = vec![self.want_bool(first, op, col)?];
        loop {
            let r = next(self)?;
            all.push(self.want_bool(r, op, col)?);
            match self.eat(ops) {
                Some(next_op) => (op, col) = next_op,
                None => return Ok(Typed::Bool(make(all))),
            }
        }
    }

    /// `next (op next)*` over numbers, left-associative, as one flat node.
    fn arith(&mut self, ops: &[&'static str], next: fn(&mut Self) -> Result<Typed, String>) -> Result<Typed, String> {
        let first = next(self)?;
        let Some((mut op, mut col)) = self.eat(ops) else {
            return Ok(first);
        };
        let first = Self::want_num(first, op, col)?;
        let mut rest = Vec::new();
        loop {
            rest.push((Arith::of(op), Self::want_num(next(self)?, op, col)?));
            match self.eat(ops) {
                Some(next_op) => (op, col) = next_op,
                None => return Ok(Typed::Num(Num::Chain(Box::new(first), rest))),
            }
        }
    }

    fn or(&mut self) -> Result<Typed, String> {
        self.logic(&["||", "or"], Self::and, Bool::Any)
    }

    fn and(&mut self) -> Result<Typed, String> {
        self.logic(&["&&", "and"], Self::not, Bool::All)
    }

    fn not(&mut self) -> Result<Typed, String> {
        if let Some((op, col)) = self.eat(&["!", "not"]) {
            let e = self.nested(col, Self::not)?;
            let b = self.want_bool(e, op, col)?;
            return Ok(Typed::Bool(Bool::Not(Box::new(b))));
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Typed, String> {
        const CMP: [&str; 6] = ["<", "<=", ">", ">=", "==", "!="];
        let l = self.add()?;
        let Some((op, col)) = self.eat(&CMP) else {
            return Ok(l);
        };
        let r = self.add()?;
        if let Some((op2, col2)) = self.eat(&CMP) {
            return Err(format!("chained comparison `{op2}` at column {col2} (write `a {op} b and b {op2} c`)"));
        }
        match (l, r) {
            (Typed::Text(lt), Typed::Text(rt)) if op == "==" || op == "!=" => {
                Ok(Typed::Bool(Bool::TextEq(op == "==", lt, rt)))
            }
            (Typed::Text(_), Typed::Text(_)) => {
                Err(format!("`{op}` at column {col} cannot compare texts (texts compare only with == and !=)"))
            }
            (Typed::Text(_), Typed::Num(_)) | (Typed::Num(_), Typed::Text(_)) => {
                Err(format!("`{op}` at column {col} compares a text with a number"))
            }
            (l, r) => {
                Ok(Typed::Bool(Bool::Cmp(Compare::of(op), Self::want_num(l, op, col)?, Self::want_num(r, op, col)?)))
            }
        }
    }

    fn add(&mut self) -> Result<Typed, String> {
        self.arith(&["+", "-"], Self::mul)
    }

    fn mul(&mut self) -> Result<Typed, String> {
        self.arith(&["*", "/", "%"], Self::unary)
    }

    fn unary(&mut self) -> Result<Typed, String> {
        if let Some((op, col)) = self.eat(&["-", "+"]) {
            let n = Self::want_num(self.nested(col, Self::unary)?, op, col)?;
            return Ok(Typed::Num(if op == "-" { Num::Neg(Box::new(n)) } else { n }));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Typed, String> {
        let (tok, col) = self.peek().clone();
        self.pos += 1;
        match tok {
            Tok::Num(x) => Ok(Typed::Num(Num::Lit(x))),
            Tok::Str(s) => Ok(Typed::Text(Text::Lit(s))),
            Tok::Ident(name) => match self.names.iter().position(|n| *n == name) {
                Some(i) if self.is_text.get(i).copied().unwrap_or(false) => Ok(Typed::Text(Text::Var(i))),
                Some(i) => Ok(Typed::Num(Num::Var(i))),
                None => {
                    Err(format!("unknown name `{name}` at column {col} (grid parameters: {})", self.names.join(", ")))
                }
            },
            Tok::Op("(") => {
                let e = self.nested(col, Self::or)?;
                if self.eat(&[")"]).is_none() {
                    let (t, c) = self.peek();
                    return Err(format!("expected `)` at column {c} to close `(` at column {col}, got {t}"));
                }
                Ok(e)
            }
            _ => Err(format!("unexpected {tok} at column {col}, expected a number, a string, a name or `(`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 3] = ["fast", "slow", "top_n"];

    /// Evaluate a constant expression (no variables).
    fn t(src: &str) -> bool {
        Expr::parse(src, &[]).unwrap_or_else(|e| panic!("{src}: {e}")).eval(&[])
    }

    fn ev(src: &str, values: [f64; 3]) -> bool {
        Expr::parse(src, &NAMES).unwrap_or_else(|e| panic!("{src}: {e}")).eval(&values)
    }

    fn err(src: &str) -> String {
        match Expr::parse(src, &NAMES) {
            Ok(e) => panic!("{src} parsed: {e:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn numbers() {
        assert!(t("2 == 2.0"));
        assert!(t("0.5 == .5"));
        assert!(t("1e3 == 1000"));
        assert!(t("2.5E-1 == 0.25"));
        assert!(t("1e+2 == 100"));
        assert!(t("1. == 1"));
        assert!(t("007 == 7"));
    }

    #[test]
    fn arithmetic_precedence() {
        assert!(t("1 + 2 * 3 == 7"));
        assert!(t("(1 + 2) * 3 == 9"));
        assert!(t("2 - 3 - 4 == -5"), "subtraction is left-associative");
        assert!(t("8 / 4 / 2 == 1"), "division is left-associative");
        assert!(t("7 % 4 == 3"));
        assert!(t("-7 % 4 == -3"), "remainder takes the sign of the dividend");
        assert!(t("7.5 % 2 == 1.5"));
        assert!(t("1 + 6 / 3 * 2 - 1 == 4"));
        assert!(t("2 * (3 + 4) % 5 == 4"));
    }

    #[test]
    fn unary() {
        assert!(t("-2 * 3 == -6"));
        assert!(t("- -2 == 2"));
        assert!(t("-(2 + 3) == -5"));
        assert!(t("+2 == 2"));
        assert!(t("3 - -2 == 5"));
        assert!(t("-2 * -3 == 6"));
        assert!(ev("-fast < 0", [1.0, 0.0, 0.0]));
        assert!(!ev("-fast < 0", [-1.0, 0.0, 0.0]));
    }

    #[test]
    fn comparisons() {
        assert!(t("1 < 2") && !t("2 < 2"));
        assert!(t("2 <= 2") && !t("3 <= 2"));
        assert!(t("3 > 2") && !t("2 > 2"));
        assert!(t("2 >= 2") && !t("1 >= 2"));
        assert!(t("2 == 2") && !t("2 == 3"));
        assert!(t("2 != 3") && !t("2 != 2"));
        assert!(t("1 + 1 < 3 * 1"), "arithmetic binds tighter than comparison");
    }

    #[test]
    fn logic_and_precedence() {
        assert!(t("1 < 2 and 2 < 3"));
        assert!(!t("1 < 2 && 3 < 2"));
        assert!(t("1 > 2 or 2 < 3"));
        assert!(t("1 > 2 || 2 < 3"));
        assert!(!t("1 > 2 || 3 < 2"));
        assert!(!t("not 1 < 2"), "not binds looser than a comparison");
        assert!(!t("!1 < 2"));
        assert!(t("not not 1 < 2"));
        assert!(t("! !(1 < 2)"));
        // and binds tighter than or.
        assert!(t("1 < 2 or 1 > 2 and 1 > 2"));
        assert!(!t("(1 < 2 or 1 > 2) and 1 > 2"));
        assert!(t("1 > 2 and 1 > 2 or 1 < 2"));
        // not binds tighter than and/or.
        assert!(!t("not 1 < 2 or 1 > 2"));
        assert!(t("not (1 < 2 and 1 > 2)"));
        assert!(!t("not 1 < 2 and 1 > 2"));
        assert!(t("((1 < 2))"));
    }

    #[test]
    fn variables() {
        assert!(ev("fast < slow", [5.0, 10.0, 1.0]));
        assert!(!ev("fast < slow", [10.0, 10.0, 1.0]));
        assert!(ev("fast*2 <= slow and top_n != 3", [5.0, 10.0, 1.0]));
        assert!(!ev("fast*2 <= slow and top_n != 3", [5.0, 10.0, 3.0]));
        assert!(ev("(slow - fast) % 5 == 0 || top_n > 2", [1.0, 11.0, 0.0]));
        assert!(ev("slow/fast >= 2.5", [2.0, 5.0, 0.0]));
        assert!(ev("top_n == 1", [9.0, 9.0, 1.0]));
        assert!(ev("fast<slow", [1.0, 2.0, 0.0]), "no spaces needed");
        assert!(ev("\tfast\n<\r\nslow ", [1.0, 2.0, 0.0]));
    }

    #[test]
    fn division_by_zero_and_nan() {
        assert!(ev("fast / 0 > 1000", [1.0, 0.0, 0.0]));
        assert!(!t("0/0 == 0/0"));
        assert!(t("0/0 != 0/0"));
        assert!(!t("0/0 < 1") && !t("0/0 >= 1"));
        assert!(!t("1 % 0 == 1 % 0"));
    }

    #[test]
    fn unknown_name() {
        assert_eq!(
            Expr::parse("fsat < slow", &["fast", "slow"]).unwrap_err(),
            "unknown name `fsat` at column 1 (grid parameters: fast, slow)"
        );
        assert!(err("fast < slwo").contains("`slwo` at column 8"));
        // Names are case-sensitive.
        assert!(err("Fast < slow").starts_with("unknown name `Fast` at column 1"));
    }

    #[test]
    fn not_boolean() {
        assert_eq!(
            Expr::parse("fast + slow", &["fast", "slow"]).unwrap_err(),
            "expected a comparison like `fast < slow`"
        );
        assert_eq!(Expr::parse("x", &["x"]).unwrap_err(), "expected a comparison like `x > 0`");
        assert_eq!(Expr::parse("1", &[]).unwrap_err(), "expected a comparison like `1 < 2`");
        assert_eq!(err("(fast)"), "expected a comparison like `fast < slow`");
    }

    #[test]
    fn type_errors() {
        let e = err("fast and slow < 3");
        assert!(e.starts_with("`and` at column 6 needs true/false operands, got a number"), "{e}");
        assert!(e.ends_with("expected a comparison like `fast < slow`"), "{e}");
        let e = err("fast < 3 || slow");
        assert!(e.starts_with("`||` at column 10 needs true/false"), "{e}");
        assert!(err("not fast").starts_with("`not` at column 1 needs true/false"));
        let e = err("(fast < slow) + 1 > 0");
        assert_eq!(e, "`+` at column 15 needs number operands, got a true/false condition");
        assert!(err("-(fast < slow)").starts_with("`-` at column 1 needs number operands"));
        assert!(err("(fast < slow) == (slow < 3)").starts_with("`==` at column 15"));
        assert!(err("fast * (slow > 1) < 3").starts_with("`*` at column 6"));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(err("fast < slow < top_n"), "chained comparison `<` at column 13 (write `a < b and b < c`)");
        assert_eq!(err("fast = slow"), "unexpected `=` at column 6 (use `==`)");
        assert_eq!(err("fast < slow & 1 < 2"), "unexpected `&` at column 13 (use `&&`)");
        assert_eq!(err("fast < slow | 1 < 2"), "unexpected `|` at column 13 (use `||`)");
        assert_eq!(
            err("fast < "),
            "unexpected end of expression at column 8, expected a number, a string, a name or `(`"
        );
        assert_eq!(err("(fast < slow"), "expected `)` at column 13 to close `(` at column 1, got end of expression");
        assert_eq!(err("fast < slow)"), "unexpected `)` at column 12, expected an operator or the end");
        assert_eq!(err("fast < slow slow"), "unexpected `slow` at column 13, expected an operator or the end");
        assert_eq!(err("fast # slow"), "unexpected character `#` at column 6");
        assert_eq!(err("fast < * slow"), "unexpected `*` at column 8, expected a number, a string, a name or `(`");
        assert_eq!(err(""), "empty expression; expected a comparison like `fast < slow`");
        assert_eq!(err("   "), "empty expression; expected a comparison like `fast < slow`");
        assert_eq!(err("()"), "unexpected `)` at column 2, expected a number, a string, a name or `(`");
        assert!(err("fast < 1 and").contains("end of expression at column 13"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        // These used to overflow the stack (abort) instead of failing; they run on the test
        // thread's ordinary stack.
        let parens = format!("{}fast < slow{}", "(".repeat(3000), ")".repeat(3000));
        assert_eq!(err(&parens), "expression nested deeper than 64 levels at column 65");
        let nots = format!("{}fast < slow", "not ".repeat(100_000));
        assert_eq!(err(&nots), "expression nested deeper than 64 levels at column 257");
        assert_eq!(err(&format!("{}fast < slow", "!".repeat(100_000))), err(&parens));
        assert_eq!(err(&format!("{}fast < slow", "-".repeat(100_000))), err(&parens));
        let plus = format!("fast < {}slow", "+".repeat(100_000));
        assert_eq!(err(&plus), "expression nested deeper than 64 levels at column 72");
        // Every kind of level counts towards the same limit.
        let mixed = format!("{}1 < 2{}", "(not -(".repeat(30), "))".repeat(30));
        assert_eq!(err(&mixed), "expression nested deeper than 64 levels at column 113");
        // 64 levels are fine.
        assert!(t(&format!("{}1 < 2{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH))));
        assert!(t(&format!("{}1 < 2", "not ".repeat(MAX_DEPTH))));
        assert!(t(&format!("{}2 == 2", "-".repeat(MAX_DEPTH))));
        assert!(t(&format!("{}1 < 2{}", "(not ".repeat(32), ")".repeat(32))));
    }

    #[test]
    fn long_chains_do_not_recurse() {
        // Not nesting: any length is accepted, and evaluating or dropping needs no deep stack.
        let sum = format!("fast{} == slow", " + 1 - 2 * 1".repeat(100_000));
        assert!(ev(&sum, [100_000.0, 0.0, 0.0]));
        assert!(!ev(&sum, [100_001.0, 0.0, 0.0]));
        assert!(t(&format!("2{} == 2", " * 1 / 1 % 3".repeat(100_000))));
        let all = format!("1 < 2{}", " and 1 < 2".repeat(100_000));
        assert!(t(&all) && !t(&format!("{all} && 2 < 1")));
        let any = format!("2 < 1{}", " or 2 < 1".repeat(100_000));
        assert!(!t(&any) && t(&format!("{any} || 1 < 2")));
    }

    #[test]
    fn texts_compare_with_equality_only() {
        let names = ["symbol", "fast"];
        let texts = ["AAPL", "GE"];
        let parse = |src: &str| Expr::parse_with_texts(src, &names, &[true, false]);
        let ev = |src: &str, symbol: usize, fast: f64| {
            parse(src).unwrap_or_else(|e| panic!("{src}: {e}")).eval_with_texts(&[symbol as f64, fast], &texts)
        };
        assert!(ev("symbol == \"AAPL\"", 0, 1.0) && !ev("symbol == \"AAPL\"", 1, 1.0));
        assert!(ev("symbol != 'GE' and fast < 5", 0, 1.0));
        assert!(!ev("symbol != 'GE' and fast < 5", 1, 1.0));
        assert!(ev("'GE' == symbol", 1, 0.0), "a literal on the left");
        assert!(ev("symbol == symbol", 1, 0.0) && ev("'a' != 'b'", 0, 0.0));
        assert!(!ev("symbol == 'aapl'", 0, 0.0), "case-sensitive");
        assert!(ev("symbol == \"BRK.B \" or fast > 0", 0, 1.0), "anything but the quote goes inside");
        let err = |src: &str| parse(src).unwrap_err();
        assert_eq!(err("symbol < 'GE'"), "`<` at column 8 cannot compare texts (texts compare only with == and !=)");
        assert_eq!(err("symbol == 5"), "`==` at column 8 compares a text with a number");
        assert_eq!(err("fast != 'GE'"), "`!=` at column 6 compares a text with a number");
        assert!(err("symbol + 1 > 2").starts_with("`+` at column 8 needs number operands, got a text"));
        assert_eq!(err("symbol == 'GE"), "unterminated string at column 11 (close it with ')");
        assert_eq!(err("symbol"), "expected a comparison like `fast > 0`");
        assert!(err("symbol and fast < 1").starts_with("`and` at column 8 needs true/false operands, got a text"));
        // Without text variables, a name stays a number.
        assert!(Expr::parse("symbol == 'GE'", &names).unwrap_err().contains("compares a text with a number"));
    }

    #[test]
    fn columns_count_characters() {
        // `é` is two bytes but one column.
        assert_eq!(err("é < fast"), "unexpected character `é` at column 1");
        assert_eq!(err("1 < 2 and «"), "unexpected character `«` at column 11");
        assert!(err("(1 < 2) and ü").contains("column 13"));
    }
}
