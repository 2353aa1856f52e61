//! Scalar functions of the SQL subset: text (CONCAT, LOWER, UPPER, LENGTH, CHAR_LENGTH, TRIM,
//! SUBSTRING, LEFT, RIGHT), dates (YEAR, QUARTER, MONTH, DAY, HOUR, MINUTE, SECOND,
//! DAYOFWEEK, WEEKDAY, DAYOFYEAR, DATE_FORMAT, DATE_ADD / DATE_SUB / `± INTERVAL`) and
//! numbers (ABS, ROUND, NULLIF, GREATEST, LEAST), with MySQL's results.
//!
//! Contract: [`resolve`] types a call or refuses it with what is supported; [`eval`] computes
//! it, NULL in, NULL out (but CONCAT of a NULL is NULL too, as in MySQL). Calendar arithmetic is
//! chrono's (proleptic Gregorian, months clamped to their last day as MySQL does).

use std::cmp::Ordering;

use chrono::{Datelike, Months, NaiveDate, NaiveDateTime, TimeDelta, Timelike};
use serde::{Deserialize, Serialize};

use super::expr::{EvalError, Expr, Type, coerce, unify};
use crate::value::{MICROS_PER_DAY, Value};

/// The unit of an `INTERVAL n UNIT`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Unit {
    /// `MICROSECOND`
    Microsecond,
    /// `SECOND`
    Second,
    /// `MINUTE`
    Minute,
    /// `HOUR`
    Hour,
    /// `DAY`
    Day,
    /// `WEEK`
    Week,
    /// `MONTH`
    Month,
    /// `QUARTER`
    Quarter,
    /// `YEAR`
    Year,
}

impl Unit {
    /// The unit named by an INTERVAL's field (upper case), if supported.
    pub fn parse(name: &str) -> Option<Unit> {
        Some(match name {
            "MICROSECOND" => Unit::Microsecond,
            "SECOND" => Unit::Second,
            "MINUTE" => Unit::Minute,
            "HOUR" => Unit::Hour,
            "DAY" => Unit::Day,
            "WEEK" => Unit::Week,
            "MONTH" => Unit::Month,
            "QUARTER" => Unit::Quarter,
            "YEAR" => Unit::Year,
            _ => return None,
        })
    }

    fn is_calendar(self) -> bool {
        matches!(
            self,
            Unit::Day | Unit::Week | Unit::Month | Unit::Quarter | Unit::Year
        )
    }
}

/// A scalar function.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Func {
    /// `CONCAT(a, ..)`
    Concat,
    /// `LOWER(s)`
    Lower,
    /// `UPPER(s)`
    Upper,
    /// `LENGTH(s)`: bytes.
    Length,
    /// `CHAR_LENGTH(s)`: characters.
    CharLength,
    /// `TRIM(s)`: leading and trailing spaces.
    Trim,
    /// `SUBSTRING(s, pos [, len])`, 1-based; a negative pos counts from the end.
    Substring,
    /// `LEFT(s, n)`
    Left,
    /// `RIGHT(s, n)`
    Right,
    /// `YEAR(d)`
    Year,
    /// `QUARTER(d)`
    Quarter,
    /// `MONTH(d)`
    Month,
    /// `DAY(d)` / `DAYOFMONTH(d)`
    Day,
    /// `HOUR(d)`
    Hour,
    /// `MINUTE(d)`
    Minute,
    /// `SECOND(d)`
    Second,
    /// `DAYOFWEEK(d)`: 1 = Sunday .. 7 = Saturday.
    DayOfWeek,
    /// `WEEKDAY(d)`: 0 = Monday .. 6 = Sunday.
    Weekday,
    /// `DAYOFYEAR(d)`
    DayOfYear,
    /// `DATE_FORMAT(d, 'format')` with a literal format.
    DateFormat,
    /// `DATE_ADD(d, INTERVAL n unit)`; DATE_SUB negates `n`.
    AddInterval(Unit),
    /// `ABS(x)`
    Abs,
    /// `NULLIF(a, b)`
    NullIf,
    /// `GREATEST(a, ..)`
    Greatest,
    /// `LEAST(a, ..)`
    Least,
    /// Not in SQL: a FLOAT column's value as MySQL shows it (the shortest decimal that reads
    /// back as the same single-precision number: `0.1`, where its double is
    /// 0.10000000149011612); arithmetic uses the double, as MySQL's does.
    FloatShown,
}

/// The names [`resolve`] knows, for refusals.
pub const NAMES: &str = "CONCAT, LOWER/LCASE, UPPER/UCASE, LENGTH, CHAR_LENGTH, TRIM, SUBSTRING/SUBSTR, \
LEFT, RIGHT, YEAR, QUARTER, MONTH, DAY/DAYOFMONTH, HOUR, MINUTE, SECOND, DAYOFWEEK, WEEKDAY, \
DAYOFYEAR, DATE_FORMAT, DATE_ADD, DATE_SUB, ABS, ROUND, NULLIF, GREATEST, LEAST, IF, IFNULL, \
COALESCE, DATE";

/// `DATE_FORMAT` specifiers supported (MySQL's meaning).
pub const DATE_FORMAT_SPECIFIERS: &str =
    "%Y %y %m %c %d %e %D %H %k %h %I %l %i %s %S %f %p %T %r %M %b %W %a %j %w %%";

fn is_date(t: Type) -> bool {
    matches!(t, Type::Date | Type::DateTime | Type::Null)
}

fn is_text(t: Type) -> bool {
    matches!(t, Type::Text | Type::Bytes | Type::Null)
}

/// Types a call of `name` (upper case) on resolved arguments; `Ok(None)` when `name` is not a
/// function of this module.
pub fn resolve(name: &str, args: Vec<(Expr, Type)>) -> Result<Option<(Expr, Type)>, String> {
    let n = args.len();
    let types: Vec<Type> = args.iter().map(|a| a.1).collect();
    let arity = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("{name} takes {what}, got {n} arguments"))
        }
    };
    let call = |args: Vec<(Expr, Type)>| args.into_iter().map(|a| a.0).collect::<Vec<_>>();
    let (f, ty) = match name {
        "CONCAT" => {
            arity(n >= 1, "one or more arguments")?;
            // Numbers are concatenated as MySQL shows them.
            let args = args
                .into_iter()
                .map(|(e, t)| (coerce(e, t, t.shown()), t.shown()))
                .collect();
            return Ok(Some((Expr::Func(Func::Concat, call(args)), Type::Text)));
        }
        "LOWER" | "LCASE" | "UPPER" | "UCASE" | "TRIM" => {
            arity(n == 1, "one argument")?;
            if !is_text(types[0]) {
                return Err(format!("{name} needs text, got {}", types[0]));
            }
            let f = match name {
                "LOWER" | "LCASE" => Func::Lower,
                "UPPER" | "UCASE" => Func::Upper,
                _ => Func::Trim,
            };
            (f, Type::Text)
        }
        "LENGTH" | "OCTET_LENGTH" | "CHAR_LENGTH" | "CHARACTER_LENGTH" => {
            arity(n == 1, "one argument")?;
            if !is_text(types[0]) {
                return Err(format!("{name} needs text, got {}", types[0]));
            }
            let f = if name.starts_with("CHAR") {
                Func::CharLength
            } else {
                Func::Length
            };
            (f, Type::Int)
        }
        "SUBSTRING" | "SUBSTR" | "LEFT" | "RIGHT" => {
            let f = match name {
                "LEFT" => Func::Left,
                "RIGHT" => Func::Right,
                _ => Func::Substring,
            };
            arity(
                if f == Func::Substring {
                    n == 2 || n == 3
                } else {
                    n == 2
                },
                "a string and integer positions",
            )?;
            if !is_text(types[0])
                || types[1..]
                    .iter()
                    .any(|t| !matches!(t, Type::Int | Type::Null))
            {
                return Err(format!("{name} needs text and integers"));
            }
            (f, Type::Text)
        }
        "YEAR" | "QUARTER" | "MONTH" | "DAY" | "DAYOFMONTH" | "HOUR" | "MINUTE" | "SECOND"
        | "DAYOFWEEK" | "WEEKDAY" | "DAYOFYEAR" => {
            arity(n == 1, "one argument")?;
            if !is_date(types[0]) {
                return Err(format!("{name} needs a date or datetime, got {}", types[0]));
            }
            let f = match name {
                "YEAR" => Func::Year,
                "QUARTER" => Func::Quarter,
                "MONTH" => Func::Month,
                "DAY" | "DAYOFMONTH" => Func::Day,
                "HOUR" => Func::Hour,
                "MINUTE" => Func::Minute,
                "SECOND" => Func::Second,
                "DAYOFWEEK" => Func::DayOfWeek,
                "WEEKDAY" => Func::Weekday,
                _ => Func::DayOfYear,
            };
            (f, Type::Int)
        }
        "DATE_FORMAT" => {
            arity(n == 2, "a date and a format")?;
            if !is_date(types[0]) {
                return Err(format!(
                    "DATE_FORMAT needs a date or datetime, got {}",
                    types[0]
                ));
            }
            match &args[1].0 {
                Expr::Literal(Value::Text(fmt)) => check_format(fmt)?,
                _ => return Err("DATE_FORMAT needs a literal format string".into()),
            }
            (Func::DateFormat, Type::Text)
        }
        "ABS" => {
            arity(n == 1, "one argument")?;
            if !types[0].is_numeric() && types[0] != Type::Null {
                return Err(format!("ABS needs a number, got {}", types[0]));
            }
            (Func::Abs, types[0])
        }
        "NULLIF" => {
            arity(n == 2, "two arguments")?;
            if !super::expr::comparable(types[0], types[1]) {
                return Err(format!(
                    "NULLIF cannot compare {} with {}",
                    types[0], types[1]
                ));
            }
            // Compares what both show, as `=` does.
            let mut it = args.into_iter();
            let (a, at) = it.next().unwrap();
            let (b, bt) = it.next().unwrap();
            return Ok(Some((
                Expr::Func(
                    Func::NullIf,
                    vec![coerce(a, at, at.shown()), coerce(b, bt, bt.shown())],
                ),
                at.shown(),
            )));
        }
        "GREATEST" | "LEAST" => {
            arity(n >= 2, "two or more arguments")?;
            let ty = unify(&types).map_err(|m| format!("{name}: {m}"))?;
            let f = if name == "GREATEST" {
                Func::Greatest
            } else {
                Func::Least
            };
            let args = args.into_iter().map(|(e, t)| coerce(e, t, ty)).collect();
            return Ok(Some((Expr::Func(f, args), ty)));
        }
        _ => return Ok(None),
    };
    Ok(Some((Expr::Func(f, call(args)), ty)))
}

/// Types `d ± INTERVAL n unit`: a date stays a date for calendar units.
pub fn interval(d: (Expr, Type), n: (Expr, Type), unit: Unit) -> Result<(Expr, Type), String> {
    if !is_date(d.1) {
        return Err(format!(
            "INTERVAL arithmetic needs a date or datetime, got {}",
            d.1
        ));
    }
    if !matches!(n.1, Type::Int | Type::Null) {
        return Err(format!("an INTERVAL needs an integer count, got {}", n.1));
    }
    let ty = if d.1 == Type::Date && unit.is_calendar() {
        Type::Date
    } else {
        Type::DateTime
    };
    Ok((Expr::Func(Func::AddInterval(unit), vec![d.0, n.0]), ty))
}

/// `ROUND(x [, n])` with a literal `n` >= 0: a decimal rounded half away from zero to `n`
/// digits (shown with exactly `n`), an integer unchanged.
pub fn round(x: (Expr, Type), digits: u8) -> Result<(Expr, Type), String> {
    match x.1 {
        Type::Int | Type::Null => Ok(x),
        Type::Dec { .. } => Ok((
            Expr::Cast(Box::new(x.0), Type::dec(digits)),
            Type::dec(digits),
        )),
        t => Err(format!("ROUND needs a number, got {t}")),
    }
}

fn check_format(fmt: &str) -> Result<(), String> {
    let mut it = fmt.chars();
    while let Some(c) = it.next() {
        if c == '%' {
            match it.next() {
                Some(s) if "YymcdeDHkhIlisSfpTrMbWajw%".contains(s) => {}
                Some(s) => {
                    return Err(format!(
                        "DATE_FORMAT specifier %{s} is not supported (supported: {DATE_FORMAT_SPECIFIERS})"
                    ));
                }
                None => return Err("DATE_FORMAT format ends with a lone %".into()),
            }
        }
    }
    Ok(())
}

fn to_datetime(v: &Value) -> Option<NaiveDateTime> {
    let us = match v {
        Value::Date(d) => *d as i64 * MICROS_PER_DAY,
        Value::DateTime(us) => *us,
        _ => return None,
    };
    let days = us.div_euclid(MICROS_PER_DAY);
    let rem = us.rem_euclid(MICROS_PER_DAY);
    let date = NaiveDate::from_num_days_from_ce_opt(i32::try_from(days + 719_163).ok()?)?;
    date.and_hms_micro_opt(
        (rem / 3_600_000_000) as u32,
        (rem / 60_000_000 % 60) as u32,
        (rem / 1_000_000 % 60) as u32,
        (rem % 1_000_000) as u32,
    )
}

fn from_datetime(dt: NaiveDateTime, as_date: bool) -> Result<Value, EvalError> {
    // MySQL's date range: years 1000..=9999 are meaningful; beyond it DATE_ADD gives NULL.
    if !(0..=9999).contains(&dt.year()) {
        return Ok(Value::Null);
    }
    let days = dt.date().num_days_from_ce() as i64 - 719_163;
    if as_date {
        return Ok(Value::Date(days as i32));
    }
    let t = dt.time();
    let us = days * MICROS_PER_DAY
        + (t.num_seconds_from_midnight() as i64) * 1_000_000
        + (t.nanosecond() / 1000) as i64;
    Ok(Value::DateTime(us))
}

fn text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::Text(s) => Some(s.as_str().into()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b)),
        Value::Null => None,
        other => Some(other.to_string().into()),
    }
}

/// Maps each character alone (MySQL's simple case mapping: `ß` stays `ß` in UPPER).
fn map_chars(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mut m: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            if m.len() == 1 { m.pop().unwrap() } else { c }
        })
        .collect()
}

/// Evaluates `f` on argument values.
pub fn eval(f: Func, args: &[Value]) -> Result<Value, EvalError> {
    if f == Func::Concat {
        let mut out = String::new();
        for a in args {
            match text(a) {
                Some(s) => out.push_str(&s),
                None => return Ok(Value::Null),
            }
        }
        return Ok(Value::Text(out));
    }
    if matches!(f, Func::NullIf) {
        return Ok(match args[0].sql_cmp(&args[1]) {
            Some(Ordering::Equal) => Value::Null,
            _ => args[0].clone(),
        });
    }
    if matches!(f, Func::Greatest | Func::Least) {
        let mut best: Option<&Value> = None;
        for a in args {
            if a.is_null() {
                return Ok(Value::Null);
            }
            best = match best {
                None => Some(a),
                Some(b) => {
                    let o = a.sql_cmp(b).unwrap_or(Ordering::Equal);
                    let better = if f == Func::Greatest {
                        o == Ordering::Greater
                    } else {
                        o == Ordering::Less
                    };
                    Some(if better { a } else { b })
                }
            };
        }
        return Ok(best.cloned().unwrap_or(Value::Null));
    }
    if args.iter().any(Value::is_null) {
        return Ok(Value::Null);
    }
    let int = |i: usize| match &args[i] {
        Value::Int(n) => *n,
        _ => 0,
    };
    Ok(match f {
        Func::Lower | Func::Upper | Func::Trim => {
            let s = text(&args[0]).unwrap_or_default();
            Value::Text(match f {
                Func::Lower => map_chars(&s, false),
                Func::Upper => map_chars(&s, true),
                _ => s.trim_matches(' ').to_string(),
            })
        }
        Func::Length => Value::Int(match &args[0] {
            Value::Bytes(b) => b.len() as i64,
            v => text(v).map_or(0, |s| s.len() as i64),
        }),
        Func::CharLength => Value::Int(text(&args[0]).map_or(0, |s| s.chars().count() as i64)),
        Func::Substring | Func::Left | Func::Right => {
            let s: Vec<char> = text(&args[0]).unwrap_or_default().chars().collect();
            let len = s.len() as i64;
            let (start, count) = match f {
                Func::Left => (0, int(1).max(0)),
                Func::Right => {
                    let k = int(1).clamp(0, len);
                    (len - k, k)
                }
                _ => {
                    let pos = int(1);
                    let start = match pos {
                        0 => return Ok(Value::Text(String::new())),
                        p if p > 0 => p - 1,
                        p => len + p,
                    };
                    if start < 0 || start >= len {
                        return Ok(Value::Text(String::new()));
                    }
                    (start, if args.len() == 3 { int(2).max(0) } else { len })
                }
            };
            let start = start.clamp(0, len) as usize;
            let end = (start as i64).saturating_add(count).clamp(0, len) as usize;
            Value::Text(s[start..end].iter().collect())
        }
        Func::Year
        | Func::Quarter
        | Func::Month
        | Func::Day
        | Func::Hour
        | Func::Minute
        | Func::Second
        | Func::DayOfWeek
        | Func::Weekday
        | Func::DayOfYear => {
            let Some(dt) = to_datetime(&args[0]) else {
                return Err(EvalError(format!("{f:?} of {}", args[0])));
            };
            Value::Int(match f {
                Func::Year => dt.year() as i64,
                Func::Quarter => dt.month0() as i64 / 3 + 1,
                Func::Month => dt.month() as i64,
                Func::Day => dt.day() as i64,
                Func::Hour => dt.hour() as i64,
                Func::Minute => dt.minute() as i64,
                Func::Second => dt.second() as i64,
                Func::DayOfWeek => dt.weekday().num_days_from_sunday() as i64 + 1,
                Func::Weekday => dt.weekday().num_days_from_monday() as i64,
                _ => dt.ordinal() as i64,
            })
        }
        Func::DateFormat => {
            let Some(dt) = to_datetime(&args[0]) else {
                return Err(EvalError(format!("DATE_FORMAT of {}", args[0])));
            };
            let fmt = text(&args[1]).unwrap_or_default();
            Value::Text(date_format(dt, &fmt))
        }
        Func::AddInterval(unit) => {
            let Some(dt) = to_datetime(&args[0]) else {
                return Err(EvalError(format!("INTERVAL arithmetic on {}", args[0])));
            };
            let n = int(1);
            let as_date = matches!(args[0], Value::Date(_)) && unit.is_calendar();
            let months = |m: i64| -> Option<NaiveDateTime> {
                let m32 = u32::try_from(m.unsigned_abs()).ok()?;
                if m >= 0 {
                    dt.checked_add_months(Months::new(m32))
                } else {
                    dt.checked_sub_months(Months::new(m32))
                }
            };
            let delta = |d: Option<TimeDelta>| d.and_then(|d| dt.checked_add_signed(d));
            let out = match unit {
                Unit::Microsecond => delta(Some(TimeDelta::microseconds(n))),
                Unit::Second => delta(TimeDelta::try_seconds(n)),
                Unit::Minute => delta(TimeDelta::try_minutes(n)),
                Unit::Hour => delta(TimeDelta::try_hours(n)),
                Unit::Day => delta(TimeDelta::try_days(n)),
                Unit::Week => delta(TimeDelta::try_weeks(n)),
                Unit::Month => months(n),
                Unit::Quarter => n.checked_mul(3).and_then(months),
                Unit::Year => n.checked_mul(12).and_then(months),
            };
            match out {
                Some(dt) => from_datetime(dt, as_date)?,
                None => Value::Null,
            }
        }
        Func::Abs => match &args[0] {
            Value::Int(i) => Value::Int(
                i.checked_abs()
                    .ok_or_else(|| EvalError("ABS out of range".into()))?,
            ),
            Value::Dec(d) => Value::Dec(d.abs()),
            Value::Double(x) => Value::Double(
                crate::value::F64::new(x.get().abs()).ok_or_else(|| EvalError("ABS".into()))?,
            ),
            other => return Err(EvalError(format!("ABS of {other}"))),
        },
        Func::FloatShown => match &args[0] {
            Value::Double(x) => {
                let single = x.get() as f32;
                // Rust writes the shortest digits that read back as the same f32.
                let shown: f64 = single.to_string().parse().unwrap_or(x.get());
                Value::Double(crate::value::F64::new(shown).unwrap_or(*x))
            }
            other => other.clone(),
        },
        Func::Concat | Func::NullIf | Func::Greatest | Func::Least => unreachable!("above"),
    })
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// MySQL's DATE_FORMAT for the specifiers of [`DATE_FORMAT_SPECIFIERS`] (English names).
fn date_format(dt: NaiveDateTime, fmt: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut it = fmt.chars();
    let h12 = |h: u32| if h.is_multiple_of(12) { 12 } else { h % 12 };
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(s) = it.next() else { break };
        let _ = match s {
            'Y' => write!(out, "{:04}", dt.year()),
            'y' => write!(out, "{:02}", dt.year().rem_euclid(100)),
            'm' => write!(out, "{:02}", dt.month()),
            'c' => write!(out, "{}", dt.month()),
            'd' => write!(out, "{:02}", dt.day()),
            'e' => write!(out, "{}", dt.day()),
            'D' => {
                let d = dt.day();
                let suffix = match (d % 10, d % 100) {
                    (_, 11..=13) => "th",
                    (1, _) => "st",
                    (2, _) => "nd",
                    (3, _) => "rd",
                    _ => "th",
                };
                write!(out, "{d}{suffix}")
            }
            'H' => write!(out, "{:02}", dt.hour()),
            'k' => write!(out, "{}", dt.hour()),
            'h' | 'I' => write!(out, "{:02}", h12(dt.hour())),
            'l' => write!(out, "{}", h12(dt.hour())),
            'i' => write!(out, "{:02}", dt.minute()),
            's' | 'S' => write!(out, "{:02}", dt.second()),
            'f' => write!(out, "{:06}", dt.nanosecond() / 1000),
            'p' => write!(out, "{}", if dt.hour() < 12 { "AM" } else { "PM" }),
            'T' => write!(
                out,
                "{:02}:{:02}:{:02}",
                dt.hour(),
                dt.minute(),
                dt.second()
            ),
            'r' => write!(
                out,
                "{:02}:{:02}:{:02} {}",
                h12(dt.hour()),
                dt.minute(),
                dt.second(),
                if dt.hour() < 12 { "AM" } else { "PM" }
            ),
            'M' => write!(out, "{}", MONTHS[dt.month0() as usize]),
            'b' => write!(out, "{}", &MONTHS[dt.month0() as usize][..3]),
            'W' => write!(
                out,
                "{}",
                DAYS[dt.weekday().num_days_from_monday() as usize]
            ),
            'a' => write!(
                out,
                "{}",
                &DAYS[dt.weekday().num_days_from_monday() as usize][..3]
            ),
            'j' => write!(out, "{:03}", dt.ordinal()),
            'w' => write!(out, "{}", dt.weekday().num_days_from_sunday()),
            other => write!(out, "{other}"),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{parse_date, parse_datetime};

    #[test]
    fn dates_as_mysql_gives_them() {
        let d = |s| Value::Date(parse_date(s).unwrap());
        let dt = |s| Value::DateTime(parse_datetime(s).unwrap());
        let add = |u, v: Value, n| eval(Func::AddInterval(u), &[v, Value::Int(n)]).unwrap();
        assert_eq!(add(Unit::Month, d("2024-01-31"), 1), d("2024-02-29"));
        assert_eq!(add(Unit::Day, d("2024-03-01"), -1), d("2024-02-29"));
        assert_eq!(
            add(Unit::Hour, d("2024-01-31"), 1),
            dt("2024-01-31 01:00:00")
        );
        let f = eval(
            Func::DateFormat,
            &[
                dt("2024-03-05 14:07:09"),
                Value::Text(
                    "%Y-%m-%d %H:%i:%s %a %b %W %M %j %e %c %y %p %h %l %k %T %r %D %w %%".into(),
                ),
            ],
        )
        .unwrap();
        // MariaDB 10.11's answer.
        assert_eq!(
            f.to_string(),
            "2024-03-05 14:07:09 Tue Mar Tuesday March 065 5 3 24 PM 02 2 14 14:07:09 02:07:09 PM 5th 2 %"
        );
        assert_eq!(
            eval(Func::DayOfWeek, &[d("2024-03-05")]).unwrap(),
            Value::Int(3)
        );
        assert_eq!(
            eval(Func::Weekday, &[d("2024-03-05")]).unwrap(),
            Value::Int(1)
        );
        assert_eq!(
            eval(Func::Quarter, &[d("2024-05-01")]).unwrap(),
            Value::Int(2)
        );
    }

    #[test]
    fn text_as_mysql_gives_it() {
        let t = |s: &str| Value::Text(s.into());
        assert_eq!(eval(Func::Upper, &[t("straße")]).unwrap(), t("STRAßE"));
        assert_eq!(eval(Func::Length, &[t("héllo")]).unwrap(), Value::Int(6));
        assert_eq!(
            eval(Func::CharLength, &[t("héllo")]).unwrap(),
            Value::Int(5)
        );
        assert_eq!(
            eval(Func::Substring, &[t("hello"), Value::Int(2), Value::Int(3)]).unwrap(),
            t("ell")
        );
        assert_eq!(
            eval(Func::Left, &[t("hello"), Value::Int(2)]).unwrap(),
            t("he")
        );
        assert_eq!(eval(Func::Trim, &[t("  a ")]).unwrap(), t("a"));
        assert_eq!(
            eval(Func::Concat, &[t("a"), Value::Null]).unwrap(),
            Value::Null
        );
    }
}
