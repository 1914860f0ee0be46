//! The written notation of expressions: precedence as in mathematics, numbers in scientific
//! notation, errors that point at the offending character, and the translation of the parsed
//! expression into a recorded tape (`problems/src/tape.rs`), where it is differentiated.
//!
//! - `^` binds tighter than a unary sign and groups from the right: `-x^2 = −(x²)`,
//!   `2^3^2 = 2^9`, `x^-2 = x^(−2)`;
//! - `*` and `/`, then `+` and `−`, group from the left;
//! - numbers may be written `1e6`, `2.5E-3`;
//! - functions: those of [`crate::tape::FUNCTIONS`], each with its number of arguments.
//!
//! It is hand-written because the grammar is a dozen lines.

#[cfg(test)]
use std::fmt::Write as _;

use crate::tape::{self, Tracer, FUNCTIONS};

/// Longest expression accepted, in tokens (numbers, names, operators, parentheses).
pub(crate) const MAX_TOKENS: usize = 1_000_000;

/// Deepest nesting of parentheses and signs accepted: far beyond any written loss, well within
/// the stack of the recursive parser.
const MAX_DEPTH: usize = 500;

/// Whether `name` is a function of the expression language (and so cannot name a variable).
pub(crate) fn is_function(name: &str) -> bool {
    FUNCTIONS.iter().any(|(f, _)| *f == name)
}

fn arity(name: &str) -> Option<usize> {
    FUNCTIONS.iter().find(|(f, _)| *f == name).map(|(_, n)| *n)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64, String),
    Name(String),
    Op(char),
    Open,
    Close,
    Comma,
}

/// A parsed expression.
#[derive(Debug)]
pub(crate) enum Node {
    /// The value and, for rewriting in tests, the literal as written.
    Number(f64, #[cfg_attr(not(test), allow(dead_code))] String),
    Name(String),
    Call(String, Vec<Node>),
    Neg(Box<Node>),
    Binary(char, Box<Node>, Box<Node>),
}

/// Parses `text`; an error message names the problem and its position (1-based column).
pub(crate) fn parse(text: &str) -> Result<Node, String> {
    let tokens = tokenize(text)?;
    if tokens.len() > MAX_TOKENS {
        return Err(format!(
            "the expression has {} symbols; at most {MAX_TOKENS} are accepted",
            tokens.len()
        ));
    }
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        depth: 0,
    };
    let node = parser.expression()?;
    if let Some((token, column)) = parser.peek_with_column() {
        return Err(match token {
            Token::Close => format!("unmatched `)` at column {column}"),
            _ => format!(
                "unexpected {} at column {column} (an operator missing before it?)",
                describe(token)
            ),
        });
    }
    Ok(node)
}

/// Every name `node` refers to (variables, parameters, constants), in order of appearance.
pub(crate) fn names(node: &Node, out: &mut Vec<String>) {
    // Iterative: long sums are left-deep trees as deep as they have terms.
    let mut stack = vec![node];
    // Membership by hash: a linear search made 20 000 distinct names quadratic.
    let mut seen: std::collections::HashSet<String> = out.iter().cloned().collect();
    while let Some(n) = stack.pop() {
        match n {
            Node::Number(..) => {}
            Node::Name(name) => {
                if seen.insert(name.clone()) {
                    out.push(name.clone());
                }
            }
            Node::Call(_, args) => stack.extend(args.iter().rev()),
            Node::Neg(a) => stack.push(a),
            Node::Binary(_, a, b) => {
                stack.push(b);
                stack.push(a);
            }
        }
    }
}

/// Records `node` into the current tape, each name read through `resolve` (which knows the
/// variables, parameters and constants; names were checked before).
pub(crate) fn trace(node: &Node, resolve: &dyn Fn(&str) -> Tracer) -> Tracer {
    match node {
        Node::Number(value, _) => Tracer::Const(*value),
        Node::Name(name) => resolve(name),
        Node::Neg(a) => -trace(a, resolve),
        Node::Binary(op, a, b) => {
            let (x, y) = (trace(a, resolve), trace(b, resolve));
            match op {
                '+' => x + y,
                '-' => x - y,
                '*' => x * y,
                '/' => x / y,
                _ => tape::call("pow", &[x, y]).unwrap_or(Tracer::Const(f64::NAN)),
            }
        }
        Node::Call(name, args) => {
            let args: Vec<Tracer> = args.iter().map(|a| trace(a, resolve)).collect();
            // Names and arities were checked by the parser.
            tape::call(name, &args).unwrap_or(Tracer::Const(f64::NAN))
        }
    }
}

/// Rewrites `text` with the parentheses exmex needs to read it with the precedence used here
/// (for tests that compare with exmex as an independent reader).
#[cfg(test)]
pub(crate) fn normalise(text: &str) -> Result<String, String> {
    let node = parse(text)?;
    let mut out = String::with_capacity(text.len() + 8);
    emit(&node, &mut out);
    Ok(out)
}

fn describe(token: &Token) -> String {
    match token {
        Token::Number(_, s) => format!("number `{s}`"),
        Token::Name(n) => format!("name `{n}`"),
        Token::Op(c) => format!("`{c}`"),
        Token::Open => "`(`".into(),
        Token::Close => "`)`".into(),
        Token::Comma => "`,`".into(),
    }
}

/// Tokens with the column (1-based, in characters) where each starts.
fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            // An exponent only when digits follow `e` (with an optional sign); otherwise `e` is
            // a name and the number is followed by it (`2e` is an error below).
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        j += 1;
                    }
                    i = j;
                }
            }
            let literal: String = chars[start..i].iter().collect();
            let value: f64 = literal
                .parse()
                .map_err(|_| format!("malformed number `{literal}` at column {column}"))?;
            if !value.is_finite() {
                return Err(format!(
                    "number `{literal}` at column {column} is out of range"
                ));
            }
            tokens.push((Token::Number(value, literal), column));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((Token::Name(chars[start..i].iter().collect()), column));
        } else {
            let token = match c {
                '+' | '-' | '*' | '/' | '^' => Token::Op(c),
                '(' => Token::Open,
                ')' => Token::Close,
                ',' => Token::Comma,
                _ => {
                    return Err(format!(
                        "unexpected character `{c}` at column {column} (operators are + - * / ^)"
                    ))
                }
            };
            tokens.push((token, column));
            i += 1;
        }
    }
    // Two operands side by side (`2x`, `x y`): a missing operator, not a product.
    for pair in tokens.windows(2) {
        let operand_end = matches!(pair[0].0, Token::Number(..) | Token::Name(_) | Token::Close);
        let operand_start = matches!(pair[1].0, Token::Number(..) | Token::Name(_));
        if operand_end && operand_start {
            return Err(format!(
                "{} at column {} follows {} with no operator (write `*` for a product)",
                describe(&pair[1].0),
                pair[1].1,
                describe(&pair[0].0)
            ));
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: &'a [(Token, usize)],
    pos: usize,
    /// Current nesting of `(` and unary signs.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn peek_with_column(&self) -> Option<(&Token, usize)> {
        self.tokens.get(self.pos).map(|(t, c)| (t, *c))
    }

    /// Column of the next token, or one past the end.
    fn column(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map_or_else(|| self.tokens.last().map_or(1, |(_, c)| c + 1), |(_, c)| *c)
    }

    fn binary_chain(
        &mut self,
        ops: [char; 2],
        operand: fn(&mut Self) -> Result<Node, String>,
    ) -> Result<Node, String> {
        let mut left = operand(self)?;
        while let Some(&Token::Op(op)) = self.peek() {
            if !ops.contains(&op) {
                break;
            }
            self.pos += 1;
            let right = operand(self)?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn expression(&mut self) -> Result<Node, String> {
        self.binary_chain(['+', '-'], Self::term)
    }

    fn term(&mut self) -> Result<Node, String> {
        self.binary_chain(['*', '/'], Self::unary)
    }

    fn unary(&mut self) -> Result<Node, String> {
        match self.peek() {
            Some(Token::Op(sign @ ('-' | '+'))) => {
                let negative = *sign == '-';
                self.pos += 1;
                let operand = self.nested(Self::unary)?;
                Ok(if negative {
                    Node::Neg(Box::new(operand))
                } else {
                    operand
                })
            }
            _ => self.power(),
        }
    }

    /// Runs `parse` one nesting level deeper, refusing nesting beyond [`MAX_DEPTH`].
    fn nested(&mut self, parse: fn(&mut Self) -> Result<Node, String>) -> Result<Node, String> {
        if self.depth == MAX_DEPTH {
            return Err(format!(
                "parentheses or signs nested more than {MAX_DEPTH} deep at column {}",
                self.column()
            ));
        }
        self.depth += 1;
        let node = parse(self);
        self.depth -= 1;
        node
    }

    fn power(&mut self) -> Result<Node, String> {
        let base = self.atom()?;
        if let Some(Token::Op('^')) = self.peek() {
            self.pos += 1;
            // The exponent may carry a sign and is itself a power: right grouping.
            let exponent = self.nested(Self::unary)?;
            return Ok(Node::Binary('^', Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Node, String> {
        let column = self.column();
        let Some((token, _)) = self.tokens.get(self.pos) else {
            return Err(format!(
                "the expression ends where a number, name or `(` is expected (column {column})"
            ));
        };
        self.pos += 1;
        match token {
            Token::Number(value, literal) => Ok(Node::Number(*value, literal.clone())),
            Token::Name(name) => {
                if self.peek() != Some(&Token::Open) {
                    return Ok(Node::Name(name.clone()));
                }
                self.pos += 1;
                let mut args = vec![self.nested(Self::expression)?];
                while self.peek() == Some(&Token::Comma) {
                    self.pos += 1;
                    args.push(self.nested(Self::expression)?);
                }
                self.close(column)?;
                let Some(n) = arity(name) else {
                    return Err(format!(
                        "unknown function `{name}` at column {column} (functions: {})",
                        FUNCTIONS
                            .iter()
                            .map(|(f, _)| *f)
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                };
                if args.len() != n {
                    return Err(format!(
                        "`{name}` at column {column} takes {} argument{}, not {}",
                        ["no", "one", "two"].get(n).copied().unwrap_or("several"),
                        if n == 1 { "" } else { "s" },
                        args.len()
                    ));
                }
                Ok(Node::Call(name.clone(), args))
            }
            Token::Open => {
                let inner = self.nested(Self::expression)?;
                self.close(column)?;
                Ok(inner)
            }
            other => Err(format!(
                "expected a number, name or `(` at column {column}, found {}",
                describe(other)
            )),
        }
    }

    fn close(&mut self, open_column: usize) -> Result<(), String> {
        match self.peek() {
            Some(Token::Close) => {
                self.pos += 1;
                Ok(())
            }
            Some(other) => Err(format!(
                "expected `)` at column {} to close the `(` near column {open_column}, found {}",
                self.column(),
                describe(other)
            )),
            None => Err(format!("`(` near column {open_column} is never closed")),
        }
    }
}

/// Binding strength of a node as written out: higher binds tighter.
#[cfg(test)]
fn level(node: &Node) -> u8 {
    match node {
        Node::Binary('+' | '-', ..) => 1,
        Node::Binary('*' | '/', ..) => 2,
        // Always written in parentheses, so it behaves as an atom.
        Node::Neg(_) => 4,
        Node::Binary(..) => 3,
        Node::Number(..) | Node::Name(_) | Node::Call(..) => 4,
    }
}

/// Writes `node` with the parentheses exmex needs to read it as parsed here. Sums and products
/// stay flat (no parentheses for left-grouped chains), so long expressions nest no deeper than
/// written.
#[cfg(test)]
fn emit(node: &Node, out: &mut String) {
    let wrapped = |child: &Node, min_level: u8, out: &mut String| {
        if level(child) < min_level {
            out.push('(');
            emit(child, out);
            out.push(')');
        } else {
            emit(child, out);
        }
    };
    match node {
        Node::Number(value, literal) => {
            // Written back as parsed unless in scientific notation, which exmex does not read;
            // `{}` writes the shortest decimal that reads back as the same f64.
            if literal.contains(['e', 'E']) {
                let _ = write!(out, "{value}");
            } else {
                out.push_str(literal);
            }
        }
        Node::Name(name) => out.push_str(name),
        Node::Call(name, args) => {
            out.push_str(name);
            out.push('(');
            for (i, arg) in args.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                emit(arg, out);
            }
            out.push(')');
        }
        Node::Neg(operand) => {
            // exmex applies a unary minus to the operand right after it, before `^`.
            out.push_str("(-");
            wrapped(operand, 4, out);
            out.push(')');
        }
        Node::Binary(op, left, right) => {
            let own = level(node);
            match op {
                '^' => {
                    // exmex groups `^` from the left: a power base or exponent that is itself
                    // a power is parenthesised.
                    wrapped(left, 4, out);
                    out.push('^');
                    wrapped(right, 4, out);
                }
                _ => {
                    // exmex ranks `-` above `+` and `/` above `*`, so `a+b-c` would be read
                    // as `a+(b-c)`: equal in exact arithmetic, not in rounding. A left operand
                    // of the same rank but another operator is parenthesised; chains of one
                    // operator stay flat.
                    let mixed =
                        matches!(&**left, Node::Binary(o, ..) if o != op && level(left) == own);
                    wrapped(left, if mixed { own + 1 } else { own }, out);
                    out.push(*op);
                    wrapped(right, own + 1, out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates the normalised text with exmex, the reader the solvers use.
    fn value(text: &str, x: f64) -> f64 {
        use exmex::Express;
        let normal = normalise(text).unwrap();
        let ex = exmex::parse::<f64>(&normal).unwrap();
        let vars: Vec<f64> = ex.var_names().iter().map(|_| x).collect();
        ex.eval(&vars).unwrap()
    }

    #[test]
    fn precedence_is_that_of_mathematics() {
        let x = 3.0_f64;
        let cases: [(&str, f64); 14] = [
            ("-x^2", -9.0),
            ("-2^2", -4.0),
            ("2^3^2", 512.0),
            ("2^-1", 0.5),
            ("x^-2", 1.0 / 9.0),
            ("2*-x^2", -18.0),
            ("x/-x^2", -1.0 / 3.0),
            ("8/4/2", 1.0),
            ("8-4-2", 2.0),
            ("8-(4-2)", 6.0),
            ("(-x)^2", 9.0),
            ("--x", 3.0),
            ("-exp(-x^2)", -(-9.0_f64).exp()),
            ("2^x^0.5", 2.0_f64.powf(3.0_f64.sqrt())),
        ];
        for (text, want) in cases {
            let got = value(text, x);
            assert!(
                (got - want).abs() <= 1e-15 * want.abs(),
                "{text} -> {}: {got} vs {want}",
                normalise(text).unwrap()
            );
        }
    }

    #[test]
    fn scientific_notation_reads_as_its_value() {
        assert_eq!(value("1e6*x", 2.0), 2e6);
        assert_eq!(value("2.5E-3 + x", 0.0), 2.5e-3);
        assert_eq!(value("x*1e+2", 1.5), 150.0);
        assert_eq!(value("1e-300*x", 1.0), 1e-300);
    }

    /// Mixed `+ −` and `* /` chains group from the left, bit for bit: `1 + 1e-16 − 1` is
    /// `(1 + 1e-16) − 1 = 0`, where `1 + (1e-16 − 1)` would be `1.1e-16`.
    #[test]
    fn mixed_chains_group_from_the_left() {
        assert_eq!(value("1 + 1e-16 - x", 1.0), (1.0 + 1e-16) - 1.0);
        assert_eq!(value("x*1e-300/1e300", 1e300), (1e300 * 1e-300) / 1e300);
        assert_eq!(normalise("a+b-c").unwrap(), "(a+b)-c");
        assert_eq!(normalise("a-b+c").unwrap(), "(a-b)+c");
    }

    #[test]
    fn long_sums_stay_flat() {
        let text: Vec<String> = (0..50).map(|i| format!("x{i}^2")).collect();
        let normal = normalise(&text.join(" + ")).unwrap();
        assert!(!normal.contains('('), "{normal}");
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases = [
            ("2x", "no operator"),
            ("x y", "no operator"),
            ("2e", "no operator"),
            ("(x", "never closed"),
            ("x)", "unmatched `)` at column 2"),
            ("x +", "ends where"),
            ("x % 2", "unexpected character `%` at column 3"),
            ("foo(x)", "unknown function `foo`"),
            ("sin(x, y)", "takes one argument"),
            ("x * * y", "column 5"),
            ("1e999", "out of range"),
        ];
        let deep = format!("{}x{}", "(".repeat(600), ")".repeat(600));
        assert!(normalise(&deep).unwrap_err().contains("nested more than"));
        let signs = format!("{}x", "-".repeat(600));
        assert!(normalise(&signs).unwrap_err().contains("nested more than"));
        let long = vec!["x"; MAX_TOKENS / 2 + 1].join("+");
        assert!(normalise(&long).unwrap_err().contains("at most"));
        for (text, fragment) in cases {
            let err = normalise(text).unwrap_err();
            assert!(err.contains(fragment), "{text}: {err}");
        }
    }
}
