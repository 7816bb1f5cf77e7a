//! The parameter grid of a sweep spec: its `[grid]` table, expanded and numbered.
//!
//! Each key of `[grid]` is a strategy parameter with one of three forms of axis:
//!
//! ```toml
//! [grid]
//! fast = { from = 5, to = 100, step = 1 }   # inclusive range; step defaults to 1
//! slow = [10, 20, 50]                       # a list, kept in the order written
//! top_n = 3                                 # a single value
//! where = "fast < slow"                     # optional constraint (see `crate::expr`)
//! ```
//!
//! Combos are numbered in the lexicographic order of the cartesian product of the
//! axes, the first parameter outermost, each axis in its own order (ranges ascending,
//! lists as written); the combos failing `where` are then dropped and the rest are
//! numbered `0..len` consecutively. That numbering is the contract between resume,
//! ranks and output, so it depends on nothing but the spec and the parameter order.
//!
//! Only the axes are kept, plus, when a `where` drops something, the sorted cartesian
//! indices of the surviving combos (`u32` each); [`Grid::combo`] decodes a combo's
//! mixed-radix index on demand.
//!
//! The cartesian product may have at most [`MAX_COMBOS`] = 100,000,000 combos, checked
//! before the `where` filter runs: that bounds the filter pass (it evaluates every
//! cartesian combo) to seconds and its index table to 400 MB, instead of letting a typo
//! cost minutes and gigabytes before any other validation. A larger sweep must be split.
//!
//! A strategy may also take the optional text parameter `symbol` ([`ParamKind::Symbol`]):
//! the assets to run on, a list of names (`["AAPL", "MSFT"]`), one name, or `"*"` for every
//! asset of the data in source order. Its values are indices into the grid's symbol list
//! ([`Grid::symbols`]), so combos stay `Copy`; `"*"` is expanded (and the `where` filter
//! run) by [`Grid::bind_symbols`] once the data is loaded, which also checks that every
//! listed symbol is in the data.
//!
//! Decisions beyond the spec's letter:
//! * An integer parameter accepts a TOML float with an exact integer value (`5.0`,
//!   `1e3`) as that integer; any other float is an error.
//! * Float ranges are generated as `from + k*step` and then rounded to the decimal
//!   precision of `from` and `step` (so `0.1..=1.0` by `0.1` yields `0.3`, not
//!   `0.30000000000000004`) when both have at most 15 decimals; the last point is
//!   snapped to `to` when it lies within `1e-9*step` of it.
//! * One axis may hold at most 10,000,000 values (the axes are materialised).
//! * NaN and infinities are rejected everywhere.

use crate::expr::{example, Expr};
use std::collections::HashMap;
use std::fmt;
use toml::Value;

/// The largest cartesian product (combos before the `where` filter) that a grid may have.
///
/// A `where` evaluates every cartesian combo and keeps the survivors' indices as `u32`
/// (4 bytes each), so this caps that pass at 10^8 evaluations and 400 MB; it is far below
/// `u32::MAX`, so every cartesian index fits the `u32` table.
pub const MAX_COMBOS: u64 = 100_000_000;
const _: () = assert!(MAX_COMBOS <= u32::MAX as u64 + 1, "cartesian indices must fit in u32");
/// The most values one axis may have.
const MAX_AXIS: u64 = 10_000_000;

/// Kind of a strategy parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamKind {
    /// An integer parameter.
    Int {
        /// Smallest accepted value (inclusive).
        min: i64,
    },
    /// A floating-point parameter.
    Float {
        /// Smallest accepted value (inclusive).
        min: f64,
    },
    /// The asset a combo runs on: optional (absent from `[grid]`, the grid has no such
    /// axis), written as a list of names or `"*"`.
    Symbol,
}

/// The grid key of the asset axis.
pub const SYMBOL: &str = "symbol";

/// How many available symbols an error message lists before `...`.
const LISTED_SYMBOLS: usize = 10;

/// A strategy parameter that may be swept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamDef {
    /// The parameter's name, as written in `[grid]`.
    pub name: &'static str,
    /// Its type and lower bound.
    pub kind: ParamKind,
}

/// One parameter value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamValue {
    /// The value of an [`ParamKind::Int`] parameter.
    Int(i64),
    /// The value of a [`ParamKind::Float`] parameter.
    Float(f64),
    /// The value of a [`ParamKind::Symbol`] parameter: an index into [`Grid::symbols`]
    /// ([`Grid::value_text`] gives its name).
    Symbol(u32),
}

impl ParamValue {
    /// The value as an `f64` (an `Int` is converted; a `Symbol` gives its index).
    pub fn as_f64(self) -> f64 {
        match self {
            ParamValue::Int(i) => i as f64,
            ParamValue::Float(f) => f,
            ParamValue::Symbol(s) => f64::from(s),
        }
    }

    /// The value of an `Int`; `None` for a `Float` or a `Symbol`.
    pub fn as_i64(self) -> Option<i64> {
        match self {
            ParamValue::Int(i) => Some(i),
            ParamValue::Float(_) | ParamValue::Symbol(_) => None,
        }
    }
}

impl fmt::Display for ParamValue {
    /// `Int` as a plain integer (`42`); `Float` as Rust's shortest round-trip form
    /// (`0.5`, `2`); `Symbol` as `#` and its index (the grid knows its name).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Symbol(s) => write!(f, "#{s}"),
        }
    }
}

/// The expanded `[grid]` of a sweep spec: its axes, its `where` filter and the stable
/// numbering of its combos.
pub struct Grid {
    names: Vec<&'static str>,
    axes: Vec<Vec<ParamValue>>,
    cartesian: u64,
    /// Sorted cartesian indices of the combos passing `where`; `None` when all pass.
    kept: Option<Vec<u32>>,
    constraint: Option<String>,
    /// The names that [`ParamValue::Symbol`] values index.
    symbols: Vec<String>,
    /// `symbol = "*"` waiting for [`Grid::bind_symbols`], with the `where` to run then.
    unbound: Option<Option<Expr>>,
}

impl fmt::Debug for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes: Vec<usize> = self.axes.iter().map(Vec::len).collect();
        let mut out = f.debug_struct("Grid");
        out.field("names", &self.names).field("axis_sizes", &sizes);
        match self.is_bound() {
            true => out.field("len", &self.len()),
            false => out.field("symbols", &"* (unbound)"),
        };
        out.field("constraint", &self.constraint).finish()
    }
}

impl Grid {
    /// Build the grid from the spec's `[grid]` table.
    ///
    /// `table` = the spec's `[grid]` table; `params` = the strategy's parameters, in the
    /// order that defines combo numbering (first param is the outermost/slowest-varying).
    /// Errors are one line starting with `[grid]`, naming the key and what is accepted.
    /// With a `where`, every combo of the cartesian product is evaluated here.
    pub fn from_table(table: &toml::Table, params: &[ParamDef]) -> Result<Grid, String> {
        let known: Vec<&'static str> = params.iter().map(|p| p.name).collect();
        for key in table.keys() {
            if key != "where" && !known.contains(&key.as_str()) {
                return Err(format!("[grid] unknown key `{key}` (expected one of: {}, where)", known.join(", ")));
            }
        }
        let mut names = Vec::with_capacity(params.len());
        let mut axes = Vec::with_capacity(params.len());
        let mut symbols = Vec::new();
        let mut every_symbol = false;
        for p in params {
            let v = match (table.get(p.name), p.kind) {
                (Some(v), _) => v,
                // Optional: without it the strategy runs on the data's one asset.
                (None, ParamKind::Symbol) => continue,
                (None, _) => {
                    let required: Vec<&str> =
                        params.iter().filter(|p| p.kind != ParamKind::Symbol).map(|p| p.name).collect();
                    return Err(format!(
                        "[grid] missing key `{}` (every parameter needs a range, a list or a value: {})",
                        p.name,
                        required.join(", ")
                    ));
                }
            };
            names.push(p.name);
            if p.kind == ParamKind::Symbol {
                match symbol_axis(v)? {
                    Some(listed) => {
                        axes.push((0..listed.len() as u32).map(ParamValue::Symbol).collect());
                        symbols = listed;
                    }
                    None => {
                        every_symbol = true;
                        axes.push(Vec::new());
                    }
                }
            } else {
                axes.push(axis(p, v)?);
            }
        }
        let mut grid = Grid { names, axes, cartesian: 0, kept: None, constraint: None, symbols, unbound: None };
        if !every_symbol {
            // Before parsing `where`: a huge grid is the first thing to hear about.
            grid.count()?;
        }
        let filter = match table.get("where") {
            None => None,
            Some(Value::String(src)) => {
                let is_text: Vec<bool> = grid.names.iter().map(|&n| n == SYMBOL).collect();
                let expr =
                    Expr::parse_with_texts(src, &grid.names, &is_text).map_err(|e| format!("[grid] where: {e}"))?;
                grid.constraint = Some(src.clone());
                Some(expr)
            }
            Some(w) => {
                let numbers: Vec<&str> = grid.names.iter().copied().filter(|&n| n != SYMBOL).collect();
                return Err(format!(
                    "[grid] where: expected a string such as \"{}\", got {}",
                    example(&numbers),
                    describe(w)
                ));
            }
        };
        if every_symbol {
            grid.unbound = Some(filter);
        } else {
            grid.expand(filter)?;
        }
        Ok(grid)
    }

    /// Counts the combos and runs the `where` filter (every axis is known).
    fn expand(&mut self, filter: Option<Expr>) -> Result<(), String> {
        self.count()?;
        if let Some(expr) = filter {
            let kept = self.filter(&expr);
            if kept.is_empty() {
                return Err(format!(
                    "[grid] where = {:?} leaves no combination (of {} in the grid)",
                    self.constraint.as_deref().unwrap_or_default(),
                    self.cartesian
                ));
            }
            if kept.len() as u64 != self.cartesian {
                self.kept = Some(kept);
            }
        }
        Ok(())
    }

    /// Sets the size of the cartesian product, refusing one above [`MAX_COMBOS`].
    fn count(&mut self) -> Result<(), String> {
        let cartesian = self.axes.iter().map(|a| a.len() as u128).product::<u128>();
        if cartesian > u128::from(MAX_COMBOS) {
            let sizes: Vec<String> =
                self.names.iter().zip(&self.axes).map(|(n, a)| format!("{n}: {}", a.len())).collect();
            return Err(format!(
                "[grid] the grid has {cartesian} combinations ({}), more than the limit of {MAX_COMBOS}; \
                 split the sweep",
                sizes.join(" x ")
            ));
        }
        self.cartesian = cartesian as u64;
        Ok(())
    }

    /// Ties the `symbol` axis to the assets of the loaded data, `available` in source
    /// order: `"*"` becomes every one of them (then the `where` filter runs), and a listed
    /// symbol missing from the data is an error (one line, naming it and some of the
    /// available ones). A grid without a `symbol` key needs no binding; binding twice
    /// checks again.
    pub fn bind_symbols(&mut self, available: &[&str]) -> Result<(), String> {
        if let Some(filter) = self.unbound.take() {
            let Some(axis) = self.symbol_axis() else { unreachable!("only a symbol axis is left unbound") };
            if available.is_empty() {
                return Err(format!("[grid] {SYMBOL}: \"*\" found no asset in the data"));
            }
            self.symbols = available.iter().map(|s| s.to_string()).collect();
            self.axes[axis] = (0..available.len() as u32).map(ParamValue::Symbol).collect();
            return self.expand(filter);
        }
        match self.symbols.iter().find(|s| !available.contains(&s.as_str())) {
            Some(missing) => Err(format!(
                "[grid] {SYMBOL}: `{missing}` is not in the data (it has {}: {})",
                available.len(),
                some_of(available)
            )),
            None => Ok(()),
        }
    }

    /// Whether every axis is known: false only for `symbol = "*"` before
    /// [`Grid::bind_symbols`].
    pub fn is_bound(&self) -> bool {
        self.unbound.is_none()
    }

    /// The position of the `symbol` axis, when the grid has one.
    pub fn symbol_axis(&self) -> Option<usize> {
        self.index_of(SYMBOL)
    }

    /// The position of parameter `name` among [`Grid::names`].
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|&n| n == name)
    }

    /// The names that [`ParamValue::Symbol`] values index, in axis order (empty without a
    /// `symbol` axis, and before `"*"` is bound).
    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    /// A value as the results table writes it: a number as itself, a symbol as its name.
    pub fn value_text(&self, value: ParamValue) -> std::borrow::Cow<'_, str> {
        match value {
            ParamValue::Symbol(s) => std::borrow::Cow::Borrowed(&self.symbols[s as usize]),
            other => std::borrow::Cow::Owned(other.to_string()),
        }
    }

    /// Cartesian indices (ascending) of the combos for which `expr` holds.
    fn filter(&self, expr: &Expr) -> Vec<u32> {
        let texts: Vec<&str> = self.symbols.iter().map(String::as_str).collect();
        let vals: Vec<Vec<f64>> = self.axes.iter().map(|a| a.iter().map(|v| v.as_f64()).collect()).collect();
        let mut pos = vec![0usize; vals.len()];
        let mut cur: Vec<f64> = vals.iter().map(|a| a[0]).collect();
        let mut kept = Vec::new();
        for c in 0..self.cartesian {
            if expr.eval_with_texts(&cur, &texts) {
                kept.push(c as u32);
            }
            // Odometer step: the last axis varies fastest.
            for i in (0..vals.len()).rev() {
                pos[i] += 1;
                if pos[i] < vals[i].len() {
                    cur[i] = vals[i][pos[i]];
                    break;
                }
                pos[i] = 0;
                cur[i] = vals[i][0];
            }
        }
        kept.shrink_to_fit();
        kept
    }

    /// Number of combos after the `where` filter. Panics before [`Grid::bind_symbols`] on a
    /// grid with `symbol = "*"`.
    pub fn len(&self) -> u64 {
        assert!(self.is_bound(), "symbol = \"*\" is expanded by bind_symbols, which was not called");
        self.kept.as_ref().map_or(self.cartesian, |k| k.len() as u64)
    }

    /// Whether the grid has no combo (never true for a grid built by `from_table`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of combos of the cartesian product, before the `where` filter.
    pub fn cartesian_len(&self) -> u64 {
        self.cartesian
    }

    /// The parameter names, in `params` order.
    pub fn names(&self) -> Vec<&'static str> {
        self.names.clone()
    }

    /// The values of one axis, in order. Panics if `param_index` is out of range.
    pub fn axis(&self, param_index: usize) -> &[ParamValue] {
        &self.axes[param_index]
    }

    /// Parameter values of combo `id` (0..len), written in `params` order into `out`
    /// (len == names().len()). Panics if `id >= len()` or `out` has the wrong length.
    pub fn combo(&self, id: u64, out: &mut [ParamValue]) {
        assert!(id < self.len(), "combo {id} out of range (grid has {})", self.len());
        assert_eq!(out.len(), self.axes.len(), "combo: `out` needs one slot per parameter");
        let mut c = match &self.kept {
            Some(k) => u64::from(k[id as usize]),
            None => id,
        };
        for (axis, slot) in self.axes.iter().zip(out.iter_mut()).rev() {
            let n = axis.len() as u64;
            *slot = axis[(c % n) as usize];
            c /= n;
        }
    }

    /// The first combo id (in id order) whose parameter values, in `params` order, satisfy
    /// `test`; `None` if none does. What calling [`Grid::combo`] for every id would find,
    /// without its two divisions per axis and id: an odometer over the axes (the 79k-combo
    /// benchmark grid: ~0.3 ms instead of 2-5 ms, on the critical path of a sweep's start).
    pub fn find_combo(&self, mut test: impl FnMut(&[ParamValue]) -> bool) -> Option<u64> {
        if self.axes.iter().any(Vec::is_empty) {
            return None;
        }
        let mut pos = vec![0usize; self.axes.len()];
        let mut values: Vec<ParamValue> = self.axes.iter().map(|a| a[0]).collect();
        let mut cartesian = 0u64;
        for id in 0..self.len() {
            let wanted = self.kept.as_ref().map_or(id, |k| u64::from(k[id as usize]));
            while cartesian < wanted {
                // Odometer step: the last axis varies fastest, as in `combo`.
                for (i, axis) in self.axes.iter().enumerate().rev() {
                    pos[i] += 1;
                    if pos[i] < axis.len() {
                        values[i] = axis[pos[i]];
                        break;
                    }
                    pos[i] = 0;
                    values[i] = axis[0];
                }
                cartesian += 1;
            }
            if test(&values) {
                return Some(id);
            }
        }
        None
    }

    /// The `where` source text, if the grid has one.
    pub fn constraint(&self) -> Option<&str> {
        self.constraint.as_deref()
    }
}

/// The `symbol` axis: `Some(names)` for a list or one name, `None` for `"*"` (every asset).
fn symbol_axis(v: &Value) -> Result<Option<Vec<String>>, String> {
    let expected = "expected a list of symbols such as [\"AAPL\", \"MSFT\"], one symbol, or \"*\" for every asset";
    let items = match v {
        Value::String(s) if s == "*" => return Ok(None),
        Value::String(_) => std::slice::from_ref(v),
        Value::Array(items) => items.as_slice(),
        other => return Err(format!("[grid] {SYMBOL}: {expected}, got {}", describe(other))),
    };
    if items.is_empty() {
        return Err(format!("[grid] {SYMBOL}: the list is empty (give at least one symbol, or \"*\" for every asset)"));
    }
    if items.len() as u64 > MAX_AXIS {
        return Err(format!("[grid] {SYMBOL}: the list has {} symbols, at most {MAX_AXIS} are allowed", items.len()));
    }
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(items.len());
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |why: String| format!("[grid] {SYMBOL}: list item {}: {why}", i + 1);
        let name = match item {
            Value::String(s) if s.is_empty() => return Err(at("an empty name".into())),
            Value::String(s) if s == "*" => {
                return Err(at("\"*\" stands alone (symbol = \"*\" runs every asset)".into()))
            }
            Value::String(s) => s.as_str(),
            other => return Err(at(format!("expected a symbol name (a string), got {}", describe(other)))),
        };
        if let Some(first) = seen.insert(name, i) {
            return Err(format!(
                "[grid] {SYMBOL}: duplicate symbol `{name}` in the list (items {} and {})",
                first + 1,
                i + 1
            ));
        }
        out.push(name.to_string());
    }
    Ok(Some(out))
}

/// The first [`LISTED_SYMBOLS`] names, then `...` if there are more.
fn some_of(names: &[&str]) -> String {
    let mut shown = names[..names.len().min(LISTED_SYMBOLS)].join(", ");
    if names.len() > LISTED_SYMBOLS {
        shown.push_str(", ...");
    }
    shown
}

/// A TOML value as an error message shows it: numbers as themselves, else the type.
fn describe(v: &Value) -> String {
    match v {
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::String(_) => "a string".to_string(),
        Value::Boolean(_) => "a boolean".to_string(),
        Value::Datetime(_) => "a date-time".to_string(),
        Value::Array(_) => "a list".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

/// What a value of `kind` must be, e.g. `an integer >= 1`.
fn expected(kind: ParamKind) -> String {
    match kind {
        ParamKind::Int { min: i64::MIN } => "an integer".to_string(),
        ParamKind::Int { min } => format!("an integer >= {min}"),
        ParamKind::Float { min } if min == f64::NEG_INFINITY || min == f64::MIN => "a finite number".to_string(),
        ParamKind::Float { min } => format!("a number >= {min}"),
        ParamKind::Symbol => "a symbol name".to_string(),
    }
}

/// A TOML integer, or a float with an exact integer value in `i64` range.
fn as_int(v: &Value) -> Option<i64> {
    match *v {
        Value::Integer(i) => Some(i),
        // `i64::MAX as f64` rounds up to 2^63: every integral f64 in [-2^63, 2^63) fits.
        Value::Float(f) if f.fract() == 0.0 && (i64::MIN as f64..i64::MAX as f64).contains(&f) => Some(f as i64),
        _ => None,
    }
}

/// A finite TOML number as an `f64`.
fn as_float(v: &Value) -> Option<f64> {
    match *v {
        Value::Integer(i) => Some(i as f64),
        Value::Float(f) if f.is_finite() => Some(f),
        _ => None,
    }
}

/// One value of a parameter of `kind`; the error is `expected .., got ..`.
fn value(v: &Value, kind: ParamKind) -> Result<ParamValue, String> {
    let pv = match kind {
        ParamKind::Int { min } => as_int(v).filter(|&i| i >= min).map(ParamValue::Int),
        ParamKind::Float { min } => as_float(v).filter(|&f| f >= min).map(ParamValue::Float),
        ParamKind::Symbol => None,
    };
    pv.ok_or_else(|| format!("expected {}, got {}", expected(kind), describe(v)))
}

/// The values of `p`'s axis, from its `[grid]` entry.
fn axis(p: &ParamDef, v: &Value) -> Result<Vec<ParamValue>, String> {
    let name = p.name;
    match v {
        Value::Integer(_) | Value::Float(_) => Ok(vec![value(v, p.kind).map_err(|e| format!("[grid] {name}: {e}"))?]),
        Value::Array(items) => list(p, items),
        Value::Table(t) => range(p, t),
        _ => Err(format!(
            "[grid] {name}: expected a range {{ from, to, step }}, a list [..] or a number, got {}",
            describe(v)
        )),
    }
}

fn list(p: &ParamDef, items: &[Value]) -> Result<Vec<ParamValue>, String> {
    let name = p.name;
    if items.is_empty() {
        return Err(format!("[grid] {name}: the list is empty (give at least one value)"));
    }
    if items.len() as u64 > MAX_AXIS {
        return Err(format!("[grid] {name}: the list has {} values, at most {MAX_AXIS} are allowed", items.len()));
    }
    let mut seen: HashMap<u64, usize> = HashMap::with_capacity(items.len());
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let pv = value(item, p.kind).map_err(|e| format!("[grid] {name}: list item {}: {e}", i + 1))?;
        let key = match pv {
            ParamValue::Int(x) => x as u64,
            // -0.0 == 0.0: give both the same key.
            ParamValue::Float(x) => (x + 0.0).to_bits(),
            ParamValue::Symbol(s) => u64::from(s),
        };
        if let Some(first) = seen.insert(key, i) {
            return Err(format!("[grid] {name}: duplicate value {pv} in the list (items {} and {})", first + 1, i + 1));
        }
        out.push(pv);
    }
    Ok(out)
}

fn range(p: &ParamDef, t: &toml::Table) -> Result<Vec<ParamValue>, String> {
    let name = p.name;
    if let Some(k) = t.keys().find(|k| !["from", "to", "step"].contains(&k.as_str())) {
        return Err(format!("[grid] {name}: unknown key `{k}` in the range (expected {{ from, to, step }})"));
    }
    let field = |key: &str| {
        let v = t
            .get(key)
            .ok_or_else(|| format!("[grid] {name}: the range needs `{key}` (expected {{ from, to, step }})"))?;
        value(v, p.kind).map_err(|e| format!("[grid] {name}: {key}: {e}"))
    };
    let (from, to) = (field("from")?, field("to")?);
    let greater = match (from, to) {
        (ParamValue::Int(a), ParamValue::Int(b)) => a > b,
        _ => from.as_f64() > to.as_f64(),
    };
    if greater {
        return Err(format!("[grid] {name}: from ({from}) is greater than to ({to})"));
    }
    let step = t.get("step");
    let bad_step = |s: &Value| format!("[grid] {name}: step must be a positive number, got {}", describe(s));
    let too_many = |n: f64| {
        let n = if n < 1e15 { (n as u64).to_string() } else { "over 10^15".to_string() };
        format!("[grid] {name}: the range has {n} values, at most {MAX_AXIS} are allowed")
    };
    match (from, to) {
        (ParamValue::Int(from), ParamValue::Int(to)) => {
            let step = match step {
                None => 1,
                Some(s) => match as_int(s) {
                    Some(i) if i > 0 => i,
                    None if as_float(s).is_some_and(|f| f > 0.0) => {
                        return Err(format!(
                            "[grid] {name}: step must be a whole number for an integer parameter, got {}",
                            describe(s)
                        ))
                    }
                    _ => return Err(bad_step(s)),
                },
            };
            let n = (i128::from(to) - i128::from(from)) / i128::from(step) + 1;
            if n > i128::from(MAX_AXIS) {
                return Err(too_many(n as f64));
            }
            // In i128: `k * step` may exceed i64 even though the sum does not.
            let at = |k: i128| (i128::from(from) + k * i128::from(step)) as i64;
            Ok((0..n).map(|k| ParamValue::Int(at(k))).collect())
        }
        (from, to) => {
            let (from, to) = (from.as_f64(), to.as_f64());
            let step = match step {
                None => 1.0,
                Some(s) => as_float(s).filter(|&f| f > 0.0).ok_or_else(|| bad_step(s))?,
            };
            let q = (to - from) / step;
            let n = (q + 1e-9).floor() + 1.0;
            if n > MAX_AXIS as f64 {
                return Err(too_many(n));
            }
            float_range(name, from, to, step, n as u64)
        }
    }
}

/// `n` points `from + k*step`, decimal-rounded where possible, the last one snapped
/// to `to` when within `1e-9*step` of it.
fn float_range(name: &str, from: f64, to: f64, step: f64, n: u64) -> Result<Vec<ParamValue>, String> {
    let decimals = |x: f64| {
        let s = x.to_string();
        s.find('.').map_or(0, |i| s.len() - i - 1)
    };
    let d = decimals(from).max(decimals(step));
    let scale = 10f64.powi(d as i32);
    let (fs, ss) = ((from * scale).round(), (step * scale).round());
    // Exact integer arithmetic in f64 is possible below 2^53.
    let exact = d <= 15 && fs.abs() + (n as f64) * ss.abs() < 9_007_199_254_740_992.0;
    let mut out: Vec<f64> = Vec::with_capacity(n as usize);
    for k in 0..n {
        let kf = k as f64;
        let v = if exact { (fs + kf * ss) / scale } else { from + kf * step };
        if out.last().is_some_and(|&prev| v <= prev) {
            return Err(format!("[grid] {name}: step {step} is too small for values around {v} (they repeat)"));
        }
        out.push(v);
    }
    if let Some(last) = out.last_mut() {
        if (to - *last).abs() <= 1e-9 * step {
            *last = to;
        }
    }
    Ok(out.into_iter().map(ParamValue::Float).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParamValue::{Float, Int};

    /// The `[grid]` table of a spec given as TOML text.
    fn table(src: &str) -> toml::Table {
        let doc: toml::Table = src.parse().unwrap_or_else(|e| panic!("bad TOML: {e}\n{src}"));
        match doc.get("grid") {
            Some(Value::Table(t)) => t.clone(),
            _ => panic!("no [grid] table in\n{src}"),
        }
    }

    fn int(name: &'static str, min: i64) -> ParamDef {
        ParamDef { name, kind: ParamKind::Int { min } }
    }

    fn float(name: &'static str, min: f64) -> ParamDef {
        ParamDef { name, kind: ParamKind::Float { min } }
    }

    fn sma() -> Vec<ParamDef> {
        vec![int("fast", 1), int("slow", 1)]
    }

    fn grid(src: &str, params: &[ParamDef]) -> Grid {
        Grid::from_table(&table(src), params).unwrap_or_else(|e| panic!("{e}\n{src}"))
    }

    fn err(src: &str, params: &[ParamDef]) -> String {
        Grid::from_table(&table(src), params).unwrap_err()
    }

    fn all(g: &Grid) -> Vec<Vec<ParamValue>> {
        let mut out = vec![Int(0); g.names().len()];
        (0..g.len())
            .map(|id| {
                g.combo(id, &mut out);
                out.clone()
            })
            .collect()
    }

    fn ints(g: &Grid) -> Vec<Vec<i64>> {
        all(g).iter().map(|c| c.iter().map(|v| v.as_i64().unwrap()).collect()).collect()
    }

    const CANONICAL: &str = r#"
        [grid]
        fast = { from = 5, to = 100, step = 1 }
        slow = { from = 10, to = 250, step = 5 }
        where = "fast < slow"
    "#;

    #[test]
    fn canonical_grid() {
        let g = grid(CANONICAL, &sma());
        assert_eq!(g.len(), 3830);
        assert!(!g.is_empty());
        assert_eq!(g.cartesian_len(), 96 * 49);
        assert_eq!(g.names(), vec!["fast", "slow"]);
        assert_eq!(g.constraint(), Some("fast < slow"));
        assert_eq!(g.axis(0).len(), 96);
        assert_eq!(g.axis(1).len(), 49);
        assert_eq!(g.axis(1)[0], Int(10));
        assert_eq!(g.axis(1)[48], Int(250));
        let combos = ints(&g);
        assert_eq!(combos[0], vec![5, 10]);
        assert_eq!(combos[1], vec![5, 15]);
        assert_eq!(combos[combos.len() - 1], vec![100, 250]);
        assert!(combos.windows(2).all(|w| w[0] < w[1]), "sorted by fast then slow");
        assert!(combos.iter().all(|c| c[0] < c[1]));
        // Every surviving pair appears exactly once.
        let mut expected = Vec::new();
        for fast in 5..=100 {
            for slow in (10..=250).step_by(5) {
                if fast < slow {
                    expected.push(vec![fast, slow]);
                }
            }
        }
        assert_eq!(combos, expected);
    }

    #[test]
    fn larger_grid_count() {
        let g = grid(
            r#"
            [grid]
            fast = { from = 2, to = 200 }
            slow = { from = 5, to = 500 }
            where = "fast < slow"
            "#,
            &sma(),
        );
        assert_eq!(g.len(), 79398);
        assert_eq!(g.cartesian_len(), 199 * 496);
        let mut out = [Int(0); 2];
        g.combo(0, &mut out);
        assert_eq!(out, [Int(2), Int(5)]);
        g.combo(g.len() - 1, &mut out);
        assert_eq!(out, [Int(200), Int(500)]);
    }

    #[test]
    fn find_combo_visits_the_combos_of_combo_in_id_order() {
        for src in [
            CANONICAL,
            "[grid]\nfast = { from = 1, to = 3 }\nslow = [7, 8]",
            "[grid]\nfast = { from = 2, to = 40 }\nslow = { from = 3, to = 60, step = 7 }\nwhere = \"fast * 2 < slow\"",
        ] {
            let g = grid(src, &sma());
            let mut seen = Vec::new();
            assert_eq!(
                g.find_combo(|v| {
                    seen.push(v.to_vec());
                    false
                }),
                None
            );
            let expected: Vec<Vec<ParamValue>> = (0..g.len())
                .map(|id| {
                    let mut out = vec![Int(0); g.names().len()];
                    g.combo(id, &mut out);
                    out
                })
                .collect();
            assert_eq!(seen, expected, "{src}");
            let last = g.len() - 1;
            let mut id = 0;
            assert_eq!(
                g.find_combo(|_| {
                    id += 1;
                    id == g.len()
                }),
                Some(last),
                "stops at the first match"
            );
        }
    }

    #[test]
    fn no_where_means_full_cartesian() {
        let g = grid("[grid]\nfast = { from = 1, to = 3 }\nslow = [7, 8]", &sma());
        assert_eq!(g.len(), 6);
        assert_eq!(g.cartesian_len(), 6);
        assert_eq!(g.constraint(), None);
        assert_eq!(ints(&g), vec![vec![1, 7], vec![1, 8], vec![2, 7], vec![2, 8], vec![3, 7], vec![3, 8]]);
    }

    #[test]
    fn where_keeping_everything_stores_no_index() {
        let g = grid("[grid]\nfast = [1, 2]\nslow = [3, 4]\nwhere = \"fast < slow\"", &sma());
        assert_eq!(g.len(), 4);
        assert!(g.kept.is_none());
        assert_eq!(g.constraint(), Some("fast < slow"));
        let g = grid(CANONICAL, &sma());
        assert_eq!(g.kept.as_ref().map(Vec::len), Some(3830));
    }

    #[test]
    fn lists_keep_their_order() {
        let params = [int("top_n", 1), int("fast", 1)];
        let g = grid("[grid]\ntop_n = [5, 1, 3]\nfast = [20, 10]", &params);
        assert_eq!(g.axis(0), &[Int(5), Int(1), Int(3)]);
        assert_eq!(g.axis(1), &[Int(20), Int(10)]);
        assert_eq!(ints(&g), vec![vec![5, 20], vec![5, 10], vec![1, 20], vec![1, 10], vec![3, 20], vec![3, 10]]);
    }

    #[test]
    fn params_order_defines_numbering_not_table_order() {
        // TOML key order is irrelevant: `params` order decides which axis is outermost.
        let src = "[grid]\nslow = [10, 20]\nfast = [1, 2, 3]";
        let g = grid(src, &[int("slow", 1), int("fast", 1)]);
        assert_eq!(g.names(), vec!["slow", "fast"]);
        assert_eq!(ints(&g)[..3], [vec![10, 1], vec![10, 2], vec![10, 3]]);
        let g = grid(src, &sma());
        assert_eq!(ints(&g)[..3], [vec![1, 10], vec![1, 20], vec![2, 10]]);
    }

    #[test]
    fn scalar_axis() {
        let params = [int("fast", 1), int("top_n", 1), float("frac", 0.0)];
        let g = grid("[grid]\nfast = [4, 8]\ntop_n = 3\nfrac = 0.25", &params);
        assert_eq!(g.len(), 2);
        assert_eq!(g.axis(1), &[Int(3)]);
        assert_eq!(g.axis(2), &[Float(0.25)]);
        let mut out = [Int(0); 3];
        g.combo(1, &mut out);
        assert_eq!(out, [Int(8), Int(3), Float(0.25)]);
    }

    #[test]
    fn step_defaults_to_one_and_to_is_inclusive_only_on_a_step() {
        let g = grid("[grid]\nfast = { from = 3, to = 6 }\nslow = 1", &sma());
        assert_eq!(g.axis(0), &[Int(3), Int(4), Int(5), Int(6)]);
        let g = grid("[grid]\nfast = { from = 3, to = 10, step = 3 }\nslow = 1", &sma());
        assert_eq!(g.axis(0), &[Int(3), Int(6), Int(9)]);
        let g = grid("[grid]\nfast = { from = 3, to = 3 }\nslow = 1", &sma());
        assert_eq!(g.axis(0), &[Int(3)]);
    }

    #[test]
    fn float_axes() {
        let p = [float("x", 0.0)];
        let g = grid("[grid]\nx = { from = 0.1, to = 1.0, step = 0.1 }", &p);
        let shown: Vec<String> = g.axis(0).iter().map(|v| v.to_string()).collect();
        assert_eq!(shown, ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1"]);
        let g = grid("[grid]\nx = { from = 0, to = 1, step = 0.1 }", &p);
        assert_eq!(g.len(), 11);
        assert_eq!(g.axis(0)[3], Float(0.3));
        assert_eq!(g.axis(0)[10], Float(1.0));
        let g = grid("[grid]\nx = { from = 0, to = 0.95, step = 0.1 }", &p);
        assert_eq!(g.len(), 10);
        assert_eq!(g.axis(0)[9], Float(0.9));
        // Within 1e-9*step of a step point counts as on it, and snaps to `to`.
        let g = grid("[grid]\nx = { from = 0, to = 0.3000000000001, step = 0.1 }", &p);
        assert_eq!(g.len(), 4);
        assert_eq!(g.axis(0)[3], Float(0.3000000000001));
        let g = grid("[grid]\nx = { from = 0, to = 0.29999999999, step = 0.1 }", &p);
        assert_eq!(g.len(), 4);
        assert_eq!(g.axis(0)[3], Float(0.29999999999));
        let g = grid("[grid]\nx = { from = 0, to = 0.2999, step = 0.1 }", &p);
        assert_eq!(g.len(), 3);
        // Integers are accepted; the default step is 1.
        let g = grid("[grid]\nx = { from = 1, to = 3 }", &p);
        assert_eq!(g.axis(0), &[Float(1.0), Float(2.0), Float(3.0)]);
        let g = grid("[grid]\nx = [2, 0.5]", &p);
        assert_eq!(g.axis(0), &[Float(2.0), Float(0.5)]);
        assert_eq!(g.axis(0)[0].to_string(), "2");
        // Steps with more decimals than `from`.
        let g = grid("[grid]\nx = { from = 1, to = 1.1, step = 0.025 }", &p);
        let shown: Vec<String> = g.axis(0).iter().map(|v| v.to_string()).collect();
        assert_eq!(shown, ["1", "1.025", "1.05", "1.075", "1.1"]);
        // Tiny steps fall back to plain `from + k*step`.
        let g = grid("[grid]\nx = { from = 0, to = 3e-20, step = 1e-20 }", &p);
        assert_eq!(g.len(), 4);
        assert_eq!(g.axis(0)[0], Float(0.0));
        assert_eq!(g.axis(0)[3], Float(3e-20));
    }

    #[test]
    fn float_axes_in_where() {
        let p = [float("lo", 0.0), float("hi", 0.0)];
        let g = grid("[grid]\nlo = { from = 0.1, to = 0.5, step = 0.1 }\nhi = [0.3, 0.1]\nwhere = \"lo < hi\"", &p);
        let combos: Vec<(f64, f64)> = all(&g).iter().map(|c| (c[0].as_f64(), c[1].as_f64())).collect();
        assert_eq!(combos, [(0.1, 0.3), (0.2, 0.3)]);
    }

    #[test]
    fn integer_params_accept_integral_floats() {
        let g = grid("[grid]\nfast = 5.0\nslow = { from = 1e1, to = 30, step = 1e1 }", &sma());
        assert_eq!(g.axis(0), &[Int(5)]);
        assert_eq!(g.axis(1), &[Int(10), Int(20), Int(30)]);
        assert_eq!(err("[grid]\nfast = 2.5\nslow = 1", &sma()), "[grid] fast: expected an integer >= 1, got 2.5");
        assert_eq!(
            err("[grid]\nfast = 1e30\nslow = 1", &sma()),
            "[grid] fast: expected an integer >= 1, got 1000000000000000000000000000000"
        );
    }

    #[test]
    fn extreme_integer_ranges_do_not_overflow() {
        let p = [int("x", i64::MIN)];
        let g = grid(
            "[grid]\nx = { from = -9000000000000000000, to = 9000000000000000000, step = 1000000000000000000 }",
            &p,
        );
        assert_eq!(g.len(), 19);
        assert_eq!(g.axis(0)[18], Int(9_000_000_000_000_000_000));
        let e = err("[grid]\nx = { from = -9223372036854775808, to = 9223372036854775807 }", &p);
        assert_eq!(e, "[grid] x: the range has over 10^15 values, at most 10000000 are allowed");
    }

    fn with_symbol() -> Vec<ParamDef> {
        vec![ParamDef { name: SYMBOL, kind: ParamKind::Symbol }, int("fast", 1), int("slow", 1)]
    }

    #[test]
    fn symbol_axis_is_optional_outermost_and_named() {
        let g = grid("[grid]\nfast = [1, 2]\nslow = 3", &with_symbol());
        assert_eq!(g.names(), vec!["fast", "slow"], "no symbol key, no symbol axis");
        assert_eq!(g.symbol_axis(), None);
        let mut g = grid("[grid]\nsymbol = [\"MSFT\", \"AAPL\"]\nfast = [1, 2]\nslow = 3", &with_symbol());
        assert_eq!(g.names(), vec!["symbol", "fast", "slow"]);
        assert_eq!(g.symbols(), ["MSFT", "AAPL"], "as listed");
        let texts: Vec<Vec<String>> =
            all(&g).iter().map(|c| c.iter().map(|&v| g.value_text(v).into_owned()).collect()).collect();
        assert_eq!(texts[0], ["MSFT", "1", "3"]);
        assert_eq!(texts[1], ["MSFT", "2", "3"]);
        assert_eq!(texts[2], ["AAPL", "1", "3"]);
        assert!(g.bind_symbols(&["AAPL", "GE", "MSFT"]).is_ok());
        assert_eq!(g.bind_symbols(&["AAPL"]).unwrap_err(), "[grid] symbol: `MSFT` is not in the data (it has 1: AAPL)");
        let one = grid("[grid]\nsymbol = \"GE\"\nfast = 1\nslow = 2", &with_symbol());
        assert_eq!((one.symbols(), one.len()), (&["GE".to_string()][..], 1));
    }

    #[test]
    fn every_symbol_is_bound_to_the_data_and_filtered_by_name() {
        let src = "[grid]\nsymbol = \"*\"\nfast = [1, 2]\nslow = [2, 3]\nwhere = \"fast < slow and symbol != 'B'\"";
        let mut g = grid(src, &with_symbol());
        assert!(!g.is_bound());
        g.bind_symbols(&["A", "B", "C"]).unwrap();
        assert!(g.is_bound());
        assert_eq!(g.symbols(), ["A", "B", "C"], "source order");
        let rows: Vec<String> = all(&g)
            .iter()
            .map(|c| c.iter().map(|&v| g.value_text(v).into_owned()).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(rows, ["A 1 2", "A 1 3", "A 2 3", "C 1 2", "C 1 3", "C 2 3"]);
        let mut none = grid("[grid]\nsymbol = \"*\"\nfast = 1\nslow = 2\nwhere = \"symbol == 'Z'\"", &with_symbol());
        assert_eq!(
            none.bind_symbols(&["A"]).unwrap_err(),
            "[grid] where = \"symbol == 'Z'\" leaves no combination (of 1 in the grid)"
        );
        let many: Vec<String> = (0..12).map(|i| format!("S{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut g = grid("[grid]\nsymbol = [\"S1\", \"X\"]\nfast = 1\nslow = 2", &with_symbol());
        let e = g.bind_symbols(&many).unwrap_err();
        assert_eq!(e, "[grid] symbol: `X` is not in the data (it has 12: S0, S1, S2, S3, S4, S5, S6, S7, S8, S9, ...)");
    }

    #[test]
    fn errors_for_symbols() {
        let p = with_symbol();
        let e = |sym: &str| err(&format!("[grid]\nsymbol = {sym}\nfast = 1\nslow = 2"), &p);
        assert_eq!(e("[]"), "[grid] symbol: the list is empty (give at least one symbol, or \"*\" for every asset)");
        assert_eq!(e("[\"A\", \"A\"]"), "[grid] symbol: duplicate symbol `A` in the list (items 1 and 2)");
        assert_eq!(e("[\"A\", 5]"), "[grid] symbol: list item 2: expected a symbol name (a string), got 5");
        assert_eq!(e("[\"\"]"), "[grid] symbol: list item 1: an empty name");
        assert!(e("[\"*\", \"A\"]").contains("\"*\" stands alone"));
        assert!(e("5").starts_with("[grid] symbol: expected a list of symbols such as [\"AAPL\", \"MSFT\"]"));
        let w = err("[grid]\nsymbol = '*'\nfast = 1\nslow = 2\nwhere = \"symbol < 'B'\"", &p);
        assert_eq!(w, "[grid] where: `<` at column 8 cannot compare texts (texts compare only with == and !=)");
        assert_eq!(
            err("[grid]\nsymbol = '*'\nslow = 2", &p),
            "[grid] missing key `fast` (every parameter needs a range, a list or a value: fast, slow)"
        );
    }

    #[test]
    fn param_value_api() {
        assert_eq!(Int(42).to_string(), "42");
        assert_eq!(Int(-3).to_string(), "-3");
        assert_eq!(Float(0.5).to_string(), "0.5");
        assert_eq!(Float(2.0).to_string(), "2");
        assert_eq!(Float(0.1 + 0.2).to_string(), "0.30000000000000004");
        assert_eq!(Int(7).as_f64(), 7.0);
        assert_eq!(Float(1.5).as_f64(), 1.5);
        assert_eq!(Int(7).as_i64(), Some(7));
        assert_eq!(Float(7.0).as_i64(), None);
    }

    #[test]
    fn debug_is_compact() {
        let s = format!("{:?}", grid(CANONICAL, &sma()));
        assert!(s.contains("axis_sizes: [96, 49]") && s.contains("len: 3830"), "{s}");
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn combo_out_of_range_panics() {
        let g = grid(CANONICAL, &sma());
        g.combo(3830, &mut [Int(0); 2]);
    }

    #[test]
    fn errors_for_keys() {
        assert_eq!(
            err("[grid]\nfats = 1\nslow = 1", &sma()),
            "[grid] unknown key `fats` (expected one of: fast, slow, where)"
        );
        assert_eq!(
            err("[grid]\nfast = 1", &sma()),
            "[grid] missing key `slow` (every parameter needs a range, a list or a value: fast, slow)"
        );
        assert_eq!(
            err("[grid]\nfast = 1\nslow = 2\nwhere = 3", &sma()),
            "[grid] where: expected a string such as \"fast < slow\", got 3"
        );
        assert_eq!(
            err("[grid]\nfast = 1\nslow = 2\nwhere = [\"fast < slow\"]", &sma()),
            "[grid] where: expected a string such as \"fast < slow\", got a list"
        );
    }

    #[test]
    fn errors_for_values() {
        let p = [int("top_n", 1)];
        assert_eq!(err("[grid]\ntop_n = 0", &p), "[grid] top_n: expected an integer >= 1, got 0");
        assert_eq!(
            err("[grid]\ntop_n = \"3\"", &p),
            "[grid] top_n: expected a range { from, to, step }, a list [..] or a number, got a string"
        );
        assert_eq!(
            err("[grid]\ntop_n = true", &p),
            "[grid] top_n: expected a range { from, to, step }, a list [..] or a number, got a boolean"
        );
        assert_eq!(
            err("[grid]\ntop_n = 1979-05-27", &p),
            "[grid] top_n: expected a range { from, to, step }, a list [..] or a number, got a date-time"
        );
        assert_eq!(
            err("[grid]\ntop_n = [1, \"x\"]", &p),
            "[grid] top_n: list item 2: expected an integer >= 1, got a string"
        );
        assert_eq!(
            err("[grid]\ntop_n = [{ from = 1, to = 2 }]", &p),
            "[grid] top_n: list item 1: expected an integer >= 1, got a table"
        );
        assert_eq!(
            err("[grid]\ntop_n = [[1, 2]]", &p),
            "[grid] top_n: list item 1: expected an integer >= 1, got a list"
        );
        assert_eq!(err("[grid]\ntop_n = []", &p), "[grid] top_n: the list is empty (give at least one value)");
        assert_eq!(
            err("[grid]\ntop_n = [1, 3, 5, 3]", &p),
            "[grid] top_n: duplicate value 3 in the list (items 2 and 4)"
        );
        let f = [float("x", 0.5)];
        assert_eq!(err("[grid]\nx = 0.25", &f), "[grid] x: expected a number >= 0.5, got 0.25");
        assert_eq!(err("[grid]\nx = nan", &f), "[grid] x: expected a number >= 0.5, got NaN");
        assert_eq!(err("[grid]\nx = inf", &f), "[grid] x: expected a number >= 0.5, got inf");
        assert_eq!(err("[grid]\nx = [1, 1.0]", &f), "[grid] x: duplicate value 1 in the list (items 1 and 2)");
        let any = [float("x", f64::NEG_INFINITY)];
        assert_eq!(err("[grid]\nx = -inf", &any), "[grid] x: expected a finite number, got -inf");
        assert_eq!(err("[grid]\nx = [0.0, -0.0]", &any), "[grid] x: duplicate value -0 in the list (items 1 and 2)");
        let anyint = [int("x", i64::MIN)];
        assert_eq!(err("[grid]\nx = 0.5", &anyint), "[grid] x: expected an integer, got 0.5");
    }

    #[test]
    fn errors_for_ranges() {
        let fast = |range: &str| err(&format!("[grid]\nfast = {range}\nslow = 1"), &sma());
        assert_eq!(fast("{ from = 5, to = 10, step = 0 }"), "[grid] fast: step must be a positive number, got 0");
        assert_eq!(fast("{ from = 5, to = 10, step = -1 }"), "[grid] fast: step must be a positive number, got -1");
        assert_eq!(
            fast("{ from = 5, to = 10, step = \"1\" }"),
            "[grid] fast: step must be a positive number, got a string"
        );
        assert_eq!(
            fast("{ from = 5, to = 10, step = 0.5 }"),
            "[grid] fast: step must be a whole number for an integer parameter, got 0.5"
        );
        assert_eq!(fast("{ from = 10, to = 5 }"), "[grid] fast: from (10) is greater than to (5)");
        assert_eq!(
            fast("{ from = 5, to = 10, stpe = 1 }"),
            "[grid] fast: unknown key `stpe` in the range (expected { from, to, step })"
        );
        assert_eq!(fast("{ from = 5 }"), "[grid] fast: the range needs `to` (expected { from, to, step })");
        assert_eq!(fast("{ to = 5 }"), "[grid] fast: the range needs `from` (expected { from, to, step })");
        assert_eq!(fast("{ from = 0, to = 5 }"), "[grid] fast: from: expected an integer >= 1, got 0");
        assert_eq!(fast("{ from = 1, to = \"5\" }"), "[grid] fast: to: expected an integer >= 1, got a string");
        assert_eq!(
            fast("{ from = 1, to = 20000000 }"),
            "[grid] fast: the range has 20000000 values, at most 10000000 are allowed"
        );
        let x = |range: &str| err(&format!("[grid]\nx = {range}"), &[float("x", 0.0)]);
        assert_eq!(x("{ from = 0, to = 1, step = 0 }"), "[grid] x: step must be a positive number, got 0");
        assert_eq!(x("{ from = 0, to = 1, step = nan }"), "[grid] x: step must be a positive number, got NaN");
        assert_eq!(x("{ from = 0.5, to = 0.25 }"), "[grid] x: from (0.5) is greater than to (0.25)");
        assert_eq!(
            x("{ from = 0, to = 1e300, step = 1e-300 }"),
            "[grid] x: the range has over 10^15 values, at most 10000000 are allowed"
        );
        assert_eq!(
            x("{ from = 0, to = 1, step = 1e-7 }"),
            "[grid] x: the range has 10000001 values, at most 10000000 are allowed"
        );
        assert_eq!(
            x("{ from = 1e20, to = 1.00000000000001e20, step = 1000 }"),
            "[grid] x: step 1000 is too small for values around 100000000000000000000 (they repeat)"
        );
    }

    #[test]
    fn error_for_too_large_grid() {
        let p = [int("a", 0), int("b", 0), int("c", 0)];
        let e = err("[grid]\na = { from = 1, to = 1000 }\nb = { from = 1, to = 1000 }\nc = { from = 1, to = 101 }", &p);
        assert_eq!(
            e,
            "[grid] the grid has 101000000 combinations (a: 1000 x b: 1000 x c: 101), \
             more than the limit of 100000000; split the sweep"
        );
        // The limit is checked before the `where` runs (or is even parsed).
        let e = err("[grid]\nfast = { from = 1, to = 10000 }\nslow = { from = 1, to = 10001 }\nwhere = \"(\"", &sma());
        assert_eq!(
            e,
            "[grid] the grid has 100010000 combinations (fast: 10000 x slow: 10001), \
             more than the limit of 100000000; split the sweep"
        );
    }

    #[test]
    fn grid_at_the_limit_is_accepted() {
        // Without a `where` nothing per combo is stored or evaluated, so this is cheap.
        let g = grid("[grid]\nfast = { from = 1, to = 10000 }\nslow = { from = 1, to = 10000 }", &sma());
        assert_eq!(g.len(), MAX_COMBOS);
        assert_eq!(g.cartesian_len(), MAX_COMBOS);
        let mut out = [Int(0); 2];
        g.combo(MAX_COMBOS - 1, &mut out);
        assert_eq!(out, [Int(10000), Int(10000)]);
        g.combo(12_345_678, &mut out);
        assert_eq!(out, [Int(1235), Int(5679)]);
    }

    #[test]
    fn errors_for_where() {
        assert_eq!(
            err("[grid]\nfast = [1, 2]\nslow = 3\nwhere = \"fsat < slow\"", &sma()),
            "[grid] where: unknown name `fsat` at column 1 (grid parameters: fast, slow)"
        );
        assert_eq!(
            err("[grid]\nfast = [1, 2]\nslow = 3\nwhere = \"fast + slow\"", &sma()),
            "[grid] where: expected a comparison like `fast < slow`"
        );
        assert_eq!(
            err("[grid]\nfast = { from = 10, to = 20 }\nslow = { from = 1, to = 10 }\nwhere = \"fast < slow\"", &sma()),
            "[grid] where = \"fast < slow\" leaves no combination (of 110 in the grid)"
        );
        let deep = format!("[grid]\nfast = [1, 2]\nslow = 3\nwhere = \"{}fast < slow\"", "not ".repeat(100_000));
        assert_eq!(err(&deep, &sma()), "[grid] where: expression nested deeper than 64 levels at column 257");
    }

    /// A tiny deterministic PRNG (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> i64 {
            (self.next() % n) as i64
        }
    }

    /// A random integer axis: its TOML text and its values.
    fn random_axis(rng: &mut Rng) -> (String, Vec<i64>) {
        match rng.below(3) {
            0 => {
                let (from, step) = (rng.below(20) - 5, rng.below(4) + 1);
                let to = from + rng.below(12);
                let vals = (from..=to).step_by(step as usize).collect();
                (format!("{{ from = {from}, to = {to}, step = {step} }}"), vals)
            }
            1 => {
                let mut vals: Vec<i64> = Vec::new();
                for _ in 0..rng.below(6) + 1 {
                    let v = rng.below(30) - 10;
                    if !vals.contains(&v) {
                        vals.push(v);
                    }
                }
                let text: Vec<String> = vals.iter().map(|v| v.to_string()).collect();
                (format!("[{}]", text.join(", ")), vals)
            }
            _ => {
                let v = rng.below(10);
                (v.to_string(), vec![v])
            }
        }
    }

    #[test]
    fn combo_matches_brute_force() {
        type Check = fn(&[i64]) -> bool;
        let constraints: [(&str, Check); 5] = [
            ("", |_| true),
            ("a < b", |v| v[0] < v[1]),
            ("a + b > c or c == 0", |v| v[0] + v[1] > v[2] || v[2] == 0),
            ("not (a % 2 == 0) and b * 2 >= c - 3", |v| v[0] % 2 != 0 && v[1] * 2 >= v[2] - 3),
            ("(a - c) * -1 <= 4 && b != 3", |v| -(v[0] - v[2]) <= 4 && v[1] != 3),
        ];
        let params = [int("a", i64::MIN), int("b", i64::MIN), int("c", i64::MIN)];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        for round in 0..200 {
            let (ta, va) = random_axis(&mut rng);
            let (tb, vb) = random_axis(&mut rng);
            let (tc, vc) = random_axis(&mut rng);
            let (src, check) = constraints[round % constraints.len()];
            let mut spec = format!("[grid]\na = {ta}\nb = {tb}\nc = {tc}\n");
            if !src.is_empty() {
                spec += &format!("where = \"{src}\"\n");
            }
            let mut expected = Vec::new();
            for &a in &va {
                for &b in &vb {
                    for &c in &vc {
                        if check(&[a, b, c]) {
                            expected.push(vec![a, b, c]);
                        }
                    }
                }
            }
            match Grid::from_table(&table(&spec), &params) {
                Ok(g) => {
                    assert_eq!(g.cartesian_len(), (va.len() * vb.len() * vc.len()) as u64);
                    assert_eq!(ints(&g), expected, "{spec}");
                    checked += 1;
                }
                Err(e) => {
                    assert!(expected.is_empty(), "{e}\n{spec}");
                    assert!(e.contains("leaves no combination"), "{e}");
                }
            }
        }
        assert!(checked > 150, "only {checked} grids were non-empty");
    }
}
