//! Resolved scalar expressions: static types and evaluation with SQL (MySQL) semantics.
//!
//! Contract: an expression of static type `Dec(s)` yields decimals of scale exactly `s` (or
//! NULL), so values of one expression compare structurally. Three-valued logic: comparisons
//! with NULL are NULL; `WHERE`/`HAVING`/`CASE WHEN` take a row only when the condition is true.
//! Integer overflow is an [`EvalError`], never a wrapped number; division by zero is NULL
//! (MySQL's default).

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::func::Func;
use crate::event::Row;
pub use crate::value::DIV_PRECISION_INCREMENT;
use crate::value::{Decimal, F64, MAX_SHOWN, MICROS_PER_DAY, Value, div_scale};

/// The static type of an expression.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Type {
    /// Signed 64-bit integer (also booleans: 1/0).
    Int,
    /// Exact decimal. Its values carry exactly `scale` digits after the point; MySQL shows
    /// `shown` of them, and rounds to `shown` where a value leaves arithmetic: in a view's
    /// output, in a comparison's operands, in GROUP BY and COUNT(DISTINCT) values. The two
    /// differ below a division, whose quotient keeps more digits than it shows (`1/3` carries
    /// 0.333333333 and shows 0.3333, so `1/3*3` shows 1.0000, as in MySQL).
    Dec {
        /// Digits the values carry.
        scale: u8,
        /// Digits MySQL shows (its `decimals`).
        shown: u8,
    },
    /// Text.
    Text,
    /// Bytes.
    Bytes,
    /// Calendar day.
    Date,
    /// Date-time (microseconds).
    DateTime,
    /// The type of a bare NULL literal.
    Null,
    /// Approximate number (`FLOAT`/`DOUBLE`): any DOUBLE operand makes `+ - * /` double.
    Double,
    /// A MySQL `TIME` (signed microseconds).
    Time,
}

impl Type {
    /// A decimal that shows every digit it carries.
    pub fn dec(scale: u8) -> Type {
        Type::Dec {
            scale,
            shown: scale,
        }
    }

    /// Integer or decimal.
    pub fn is_numeric(self) -> bool {
        matches!(self, Type::Int | Type::Dec { .. } | Type::Double)
    }

    /// The type a value has once rounded to what MySQL shows (itself unless it is a decimal
    /// carrying more digits than it shows).
    pub fn shown(self) -> Type {
        match self {
            Type::Dec { shown, .. } => Type::dec(shown),
            t => t,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Int => f.write_str("integer"),
            Type::Dec { scale, shown } if scale == shown => write!(f, "decimal(scale {scale})"),
            Type::Dec { scale, shown } => write!(f, "decimal(scale {shown}, carrying {scale})"),
            Type::Text => f.write_str("text"),
            Type::Bytes => f.write_str("bytes"),
            Type::Date => f.write_str("date"),
            Type::DateTime => f.write_str("datetime"),
            Type::Null => f.write_str("null"),
            Type::Double => f.write_str("double"),
            Type::Time => f.write_str("time"),
        }
    }
}

/// Binary operators.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (decimal result, scale + 4)
    Div,
    /// `=`
    Eq,
    /// `<>` / `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `AND`
    And,
    /// `OR`
    Or,
}

/// A resolved expression over a row of values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Expr {
    /// The value at this index of the input row.
    Column(usize),
    /// A constant.
    Literal(Value),
    /// A binary operation.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `NOT x`.
    Not(Box<Expr>),
    /// `-x`.
    Neg(Box<Expr>),
    /// `x IS NULL` (or `IS NOT NULL` when the flag is set).
    IsNull(Box<Expr>, bool),
    /// `x [NOT] IN (..)`.
    InList(Box<Expr>, Vec<Expr>, bool),
    /// Searched CASE: the first true condition's result, else the else branch (or NULL).
    Case(Vec<(Expr, Expr)>, Option<Box<Expr>>),
    /// First non-NULL argument.
    Coalesce(Vec<Expr>),
    /// `DATE(x)`: the calendar day of a date-time.
    Date(Box<Expr>),
    /// Converts to the given type: integer -> decimal, decimal -> another scale (see [`cast`]),
    /// date -> datetime.
    Cast(Box<Expr>, Type),
    /// A scalar function (see [`super::func`]).
    Func(Func, Vec<Expr>),
    /// The case- and accent-insensitive comparison key of a text (see [`super::collation`]).
    Collate(Box<Expr>),
    /// A text's collation order key for MIN/MAX ([`super::collation::sort_key`]).
    SortKey(Box<Expr>),
}

/// A failure while evaluating an expression on a row (e.g. integer overflow).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

fn overflow(what: &str) -> EvalError {
    EvalError(format!("{what} is out of range"))
}

impl Expr {
    /// Evaluates the expression on `row`.
    pub fn eval(&self, row: &Row) -> Result<Value, EvalError> {
        Ok(match self {
            Expr::Column(i) => row.get(*i),
            Expr::Literal(v) => v.clone(),
            Expr::Binary(op, a, b) => {
                match op {
                    BinOp::And => {
                        let l = a.eval(row)?.truth();
                        if l == Some(false) {
                            return Ok(Value::Int(0));
                        }
                        let r = b.eval(row)?.truth();
                        return Ok(Value::from_truth(match (l, r) {
                            (_, Some(false)) => Some(false),
                            (Some(true), Some(true)) => Some(true),
                            _ => None,
                        }));
                    }
                    BinOp::Or => {
                        let l = a.eval(row)?.truth();
                        if l == Some(true) {
                            return Ok(Value::Int(1));
                        }
                        let r = b.eval(row)?.truth();
                        return Ok(Value::from_truth(match (l, r) {
                            (_, Some(true)) => Some(true),
                            (Some(false), Some(false)) => Some(false),
                            _ => None,
                        }));
                    }
                    _ => {}
                }
                let l = a.eval(row)?;
                let r = b.eval(row)?;
                binary(*op, &l, &r)?
            }
            Expr::Not(a) => Value::from_truth(a.eval(row)?.truth().map(|b| !b)),
            Expr::Neg(a) => match a.eval(row)? {
                Value::Int(i) => Value::Int(i.checked_neg().ok_or_else(|| overflow("negation"))?),
                Value::Dec(d) => Value::Dec(-d),
                Value::Double(x) => double(-x.get())?,
                Value::Null => Value::Null,
                other => return Err(EvalError(format!("cannot negate {other}"))),
            },
            Expr::IsNull(a, negated) => Value::Int((a.eval(row)?.is_null() != *negated) as i64),
            Expr::InList(a, list, negated) => {
                let x = a.eval(row)?;
                if x.is_null() {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                let mut found = false;
                for e in list {
                    match x.sql_cmp(&e.eval(row)?) {
                        Some(Ordering::Equal) => {
                            found = true;
                            break;
                        }
                        None => saw_null = true,
                        _ => {}
                    }
                }
                let t = if found {
                    Some(true)
                } else if saw_null {
                    None
                } else {
                    Some(false)
                };
                Value::from_truth(t.map(|t| t != *negated))
            }
            Expr::Case(whens, otherwise) => {
                for (cond, result) in whens {
                    if cond.eval(row)?.truth() == Some(true) {
                        return result.eval(row);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(row)?,
                    None => Value::Null,
                }
            }
            Expr::Coalesce(args) => {
                for a in args {
                    let v = a.eval(row)?;
                    if !v.is_null() {
                        return Ok(v);
                    }
                }
                Value::Null
            }
            Expr::Date(a) => match a.eval(row)? {
                Value::DateTime(us) => Value::Date(
                    i32::try_from(us.div_euclid(MICROS_PER_DAY)).map_err(|_| overflow("date"))?,
                ),
                d @ Value::Date(_) => d,
                Value::Null => Value::Null,
                other => return Err(EvalError(format!("DATE() of {other}"))),
            },
            Expr::Cast(a, ty) => cast(a.eval(row)?, *ty)?,
            Expr::Collate(a) => match a.eval(row)? {
                Value::Text(t) => Value::Text(super::collation::fold_owned(t)),
                other => other,
            },
            Expr::SortKey(a) => match a.eval(row)? {
                Value::Text(t) => Value::Text(super::collation::sort_key(&t)),
                other => other,
            },
            Expr::Func(f, args) => {
                let vals = args
                    .iter()
                    .map(|a| a.eval(row))
                    .collect::<Result<Vec<_>, _>>()?;
                super::func::eval(*f, &vals)?
            }
        })
    }

    /// True when the expression evaluates to SQL TRUE on `row`.
    pub fn holds(&self, row: &Row) -> Result<bool, EvalError> {
        Ok(self.eval(row)?.truth() == Some(true))
    }

    /// Rewrites every column index with `f`.
    pub fn map_columns(&self, f: &impl Fn(usize) -> usize) -> Expr {
        let b = |e: &Expr| Box::new(e.map_columns(f));
        match self {
            Expr::Column(i) => Expr::Column(f(*i)),
            Expr::Literal(v) => Expr::Literal(v.clone()),
            Expr::Binary(op, l, r) => Expr::Binary(*op, b(l), b(r)),
            Expr::Not(a) => Expr::Not(b(a)),
            Expr::Neg(a) => Expr::Neg(b(a)),
            Expr::IsNull(a, n) => Expr::IsNull(b(a), *n),
            Expr::InList(a, l, n) => {
                Expr::InList(b(a), l.iter().map(|e| e.map_columns(f)).collect(), *n)
            }
            Expr::Case(w, e) => Expr::Case(
                w.iter()
                    .map(|(c, r)| (c.map_columns(f), r.map_columns(f)))
                    .collect(),
                e.as_ref().map(|e| b(e)),
            ),
            Expr::Coalesce(a) => Expr::Coalesce(a.iter().map(|e| e.map_columns(f)).collect()),
            Expr::Date(a) => Expr::Date(b(a)),
            Expr::Cast(a, t) => Expr::Cast(b(a), *t),
            Expr::Func(fu, a) => Expr::Func(*fu, a.iter().map(|e| e.map_columns(f)).collect()),
            Expr::Collate(a) => Expr::Collate(b(a)),
            Expr::SortKey(a) => Expr::SortKey(b(a)),
        }
    }

    /// Adds every column index this expression reads to `out`.
    pub fn columns(&self, out: &mut Vec<usize>) {
        match self {
            Expr::Column(i) => out.push(*i),
            Expr::Literal(_) => {}
            Expr::Binary(_, l, r) => {
                l.columns(out);
                r.columns(out);
            }
            Expr::Not(a)
            | Expr::Neg(a)
            | Expr::IsNull(a, _)
            | Expr::Date(a)
            | Expr::Cast(a, _)
            | Expr::Collate(a)
            | Expr::SortKey(a) => a.columns(out),
            Expr::InList(a, l, _) => {
                a.columns(out);
                l.iter().for_each(|e| e.columns(out));
            }
            Expr::Case(w, e) => {
                for (c, r) in w {
                    c.columns(out);
                    r.columns(out);
                }
                if let Some(e) = e {
                    e.columns(out);
                }
            }
            Expr::Coalesce(a) | Expr::Func(_, a) => a.iter().for_each(|e| e.columns(out)),
        }
    }
}

/// Converts a value to `ty`: integer -> decimal, a decimal to another scale (exactly when
/// larger, rounded half away from zero when smaller, as MySQL rounds a result to the digits it
/// shows), date -> datetime.
pub fn cast(v: Value, ty: Type) -> Result<Value, EvalError> {
    Ok(match (v, ty) {
        (Value::Null, _) => Value::Null,
        (Value::Int(i), Type::Dec { scale, .. }) => Value::Dec(
            Decimal::new(i as i128, 0)
                .rescale(scale)
                .ok_or_else(|| overflow("decimal"))?,
        ),
        (Value::Dec(d), Type::Dec { scale, .. }) => {
            Value::Dec(d.round_to(scale).ok_or_else(|| overflow("decimal"))?)
        }
        (Value::Date(d), Type::DateTime) => Value::DateTime(d as i64 * MICROS_PER_DAY),
        (v @ (Value::Int(_) | Value::Dec(_)), Type::Double) => double(v.as_f64().unwrap_or(0.0))?,
        (v, _) => v,
    })
}

fn binary(op: BinOp, l: &Value, r: &Value) -> Result<Value, EvalError> {
    let cmp = |f: fn(Ordering) -> bool| Value::from_truth(l.sql_cmp(r).map(f));
    Ok(match op {
        BinOp::Eq => cmp(|o| o == Ordering::Equal),
        BinOp::Ne => cmp(|o| o != Ordering::Equal),
        BinOp::Lt => cmp(|o| o == Ordering::Less),
        BinOp::Le => cmp(|o| o != Ordering::Greater),
        BinOp::Gt => cmp(|o| o == Ordering::Greater),
        BinOp::Ge => cmp(|o| o != Ordering::Less),
        BinOp::And | BinOp::Or => unreachable!("handled by the caller"),
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
            if l.is_null() || r.is_null() {
                return Ok(Value::Null);
            }
            if matches!(l, Value::Double(_)) || matches!(r, Value::Double(_)) {
                let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) else {
                    return Err(EvalError(format!("arithmetic on non-numbers {l} and {r}")));
                };
                return match op {
                    BinOp::Add => double(a + b),
                    BinOp::Sub => double(a - b),
                    BinOp::Mul => double(a * b),
                    _ if b == 0.0 => Ok(Value::Null),
                    _ => double(a / b),
                };
            }
            if let (Value::Int(a), Value::Int(b), false) = (l, r, op == BinOp::Div) {
                let v = match op {
                    BinOp::Add => a.checked_add(*b),
                    BinOp::Sub => a.checked_sub(*b),
                    _ => a.checked_mul(*b),
                };
                return v.map(Value::Int).ok_or_else(|| overflow("BIGINT value"));
            }
            let (a, b) = match (l.as_decimal(), r.as_decimal()) {
                (Some(a), Some(b)) => (a, b),
                _ => return Err(EvalError(format!("arithmetic on non-numbers {l} and {r}"))),
            };
            let v = match op {
                BinOp::Add => a.checked_add(b),
                BinOp::Sub => a.checked_sub(b),
                BinOp::Mul => a.checked_mul_sql(b),
                _ => {
                    if b.is_zero() {
                        return Ok(Value::Null);
                    }
                    a.checked_div_sql(b)
                }
            };
            Value::Dec(v.ok_or_else(|| overflow("DECIMAL value"))?)
        }
    })
}

/// A double result, or an error when it is out of range (MySQL: "DOUBLE value is out of range").
fn double(x: f64) -> Result<Value, EvalError> {
    F64::new(x)
        .map(Value::Double)
        .ok_or_else(|| overflow("DOUBLE value"))
}

/// The static result type of a binary operation, or why it is refused.
pub fn binary_type(op: BinOp, l: Type, r: Type) -> Result<Type, String> {
    match op {
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
            let scales = |t: Type| match t {
                Type::Dec { scale, shown } => Some((scale, shown)),
                Type::Int | Type::Null => Some((0, 0)),
                _ => None,
            };
            let (Some((a, ha)), Some((b, hb))) = (scales(l), scales(r)) else {
                if (l == Type::Double || r == Type::Double)
                    && [l, r].iter().all(|t| t.is_numeric() || *t == Type::Null)
                {
                    return Ok(Type::Double);
                }
                return Err(format!("arithmetic needs numbers, got {l} and {r}"));
            };
            // The carried scale follows the values (see `Decimal::checked_*_sql`); the shown
            // scale follows MySQL's result `decimals`.
            Ok(match op {
                BinOp::Div => Type::Dec {
                    scale: div_scale(a, b),
                    shown: (ha + DIV_PRECISION_INCREMENT).min(MAX_SHOWN),
                },
                _ if l == Type::Int && r == Type::Int => Type::Int,
                BinOp::Mul => Type::Dec {
                    scale: (a + b).min(crate::value::MAX_CARRIED),
                    shown: (ha + hb).min(MAX_SHOWN),
                },
                _ => Type::Dec {
                    scale: a.max(b),
                    shown: ha.max(hb),
                },
            })
        }
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            if comparable(l, r) {
                Ok(Type::Int)
            } else {
                Err(format!("cannot compare {l} with {r}"))
            }
        }
        BinOp::And | BinOp::Or => Ok(Type::Int),
    }
}

/// Whether values of the two types can be compared.
pub fn comparable(l: Type, r: Type) -> bool {
    l == r
        || l == Type::Null
        || r == Type::Null
        || (l.is_numeric() && r.is_numeric())
        || matches!(
            (l, r),
            (Type::Date, Type::DateTime) | (Type::DateTime, Type::Date)
        )
        || matches!(
            (l, r),
            (Type::Text, Type::Bytes) | (Type::Bytes, Type::Text)
        )
}

/// The common type of CASE branches / COALESCE arguments, or why there is none.
pub fn unify(types: &[Type]) -> Result<Type, String> {
    let mut out = Type::Null;
    for &t in types {
        out = match (out, t) {
            (a, Type::Null) => a,
            (Type::Null, b) => b,
            (a, b) if a == b => a,
            (Type::Int, d @ Type::Dec { .. }) | (d @ Type::Dec { .. }, Type::Int) => d,
            (
                Type::Dec {
                    scale: a,
                    shown: ha,
                },
                Type::Dec {
                    scale: b,
                    shown: hb,
                },
            ) => Type::Dec {
                scale: a.max(b),
                shown: ha.max(hb),
            },
            (Type::Double, Type::Int | Type::Dec { .. })
            | (Type::Int | Type::Dec { .. }, Type::Double) => Type::Double,
            (Type::Date, Type::DateTime) | (Type::DateTime, Type::Date) => Type::DateTime,
            (a, b) => return Err(format!("branches of different types: {a} and {b}")),
        };
    }
    Ok(out)
}

/// Wraps `e` (of type `from`) in a cast to `to` when they differ.
pub fn coerce(e: Expr, from: Type, to: Type) -> Expr {
    if from == to || from == Type::Null || matches!(&e, Expr::Cast(_, t) if *t == to) {
        e
    } else {
        Expr::Cast(Box::new(e), to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: Value) -> Box<Expr> {
        Box::new(Expr::Literal(v))
    }

    #[test]
    fn three_valued_logic() {
        let null = || lit(Value::Null);
        let t = || lit(Value::Int(1));
        let f = || lit(Value::Int(0));
        let ev = |e: Expr| e.eval(&Row::new()).unwrap();
        assert_eq!(ev(Expr::Binary(BinOp::And, null(), f())), Value::Int(0));
        assert_eq!(ev(Expr::Binary(BinOp::And, null(), t())), Value::Null);
        assert_eq!(ev(Expr::Binary(BinOp::Or, null(), t())), Value::Int(1));
        assert_eq!(ev(Expr::Binary(BinOp::Or, null(), f())), Value::Null);
        assert_eq!(ev(Expr::Not(null())), Value::Null);
        assert_eq!(ev(Expr::Binary(BinOp::Eq, null(), null())), Value::Null);
        assert_eq!(
            ev(Expr::InList(
                lit(Value::Int(3)),
                vec![Expr::Literal(Value::Int(1)), Expr::Literal(Value::Null)],
                false
            )),
            Value::Null
        );
        assert_eq!(
            ev(Expr::InList(
                lit(Value::Int(1)),
                vec![Expr::Literal(Value::Int(1)), Expr::Literal(Value::Null)],
                false
            )),
            Value::Int(1)
        );
    }

    #[test]
    fn regression_decimal_scale_past_38_through_multiplication_does_not_wrap() {
        // It wrapped its u8 after enough multiplications; MySQL caps the scale (MariaDB shows
        // 38 digits of DECIMAL(38,30) * DECIMAL(38,30)).
        let mut t = Type::dec(30);
        for _ in 0..10 {
            t = binary_type(BinOp::Mul, t, Type::dec(30)).unwrap();
        }
        assert_eq!(
            t,
            Type::Dec {
                scale: 38,
                shown: 38
            }
        );
        let d = |s: &str| Decimal::parse(s).unwrap();
        let p = d("0.000000000000000000001").checked_mul_sql(d("0.000000000000000000003"));
        assert_eq!(p.unwrap().to_string(), format!("0.{}", "0".repeat(38)));
    }

    #[test]
    fn arithmetic_types_and_values() {
        let d = |s: &str| Value::Dec(Decimal::parse(s).unwrap());
        let e = Expr::Binary(BinOp::Mul, lit(Value::Int(3)), lit(d("19.99")));
        assert_eq!(e.eval(&Row::new()).unwrap(), d("59.97"));
        assert_eq!(
            binary_type(BinOp::Mul, Type::Int, Type::dec(2)).unwrap(),
            Type::dec(2)
        );
        assert_eq!(
            binary_type(BinOp::Div, Type::Int, Type::Int).unwrap(),
            Type::Dec { scale: 9, shown: 4 }
        );
        let div = Expr::Binary(BinOp::Div, lit(Value::Int(1)), lit(Value::Int(0)));
        assert_eq!(div.eval(&Row::new()).unwrap(), Value::Null);
        let big = Expr::Binary(BinOp::Add, lit(Value::Int(i64::MAX)), lit(Value::Int(1)));
        assert!(big.eval(&Row::new()).is_err());
    }

    #[test]
    fn any_double_operand_makes_arithmetic_double() {
        let x = |f: f64| Value::Double(F64::new(f).unwrap());
        let d = |s: &str| Value::Dec(Decimal::parse(s).unwrap());
        let ev =
            |op, a: Value, b: Value| Expr::Binary(op, lit(a), lit(b)).eval(&Row::new()).unwrap();
        assert_eq!(ev(BinOp::Add, Value::Int(1), x(0.5)), x(1.5));
        assert_eq!(ev(BinOp::Div, Value::Int(7), x(2.0)), x(3.5));
        assert_eq!(ev(BinOp::Mul, d("0.1"), x(3.0)), x(0.1 * 3.0));
        assert_eq!(ev(BinOp::Div, x(1.0), Value::Int(0)), Value::Null);
        assert_eq!(ev(BinOp::Eq, x(0.1), d("0.1")), Value::Int(1));
        let huge = Expr::Binary(BinOp::Mul, lit(x(1e300)), lit(x(1e300)));
        assert!(
            huge.eval(&Row::new()).is_err(),
            "overflow is an error, never infinity"
        );
        assert_eq!(
            Expr::Neg(lit(x(0.0)))
                .eval(&Row::new())
                .unwrap()
                .to_string(),
            "0"
        );
        for (l, r) in [
            (Type::Int, Type::Double),
            (Type::Double, Type::dec(2)),
            (Type::Double, Type::Double),
        ] {
            assert_eq!(binary_type(BinOp::Add, l, r), Ok(Type::Double));
            assert_eq!(binary_type(BinOp::Div, l, r), Ok(Type::Double));
        }
        assert!(binary_type(BinOp::Add, Type::Double, Type::Text).is_err());
        assert_eq!(unify(&[Type::Int, Type::Double]), Ok(Type::Double));
        assert!(comparable(Type::Double, Type::dec(3)));
        assert_eq!(cast(Value::Int(2), Type::Double).unwrap(), x(2.0));
    }
}
