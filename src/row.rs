//! [`Row`]: a row of values packed into one byte string.
//!
//! A table row, a key, a joined row and a document are all rows; the engine sorts, compares,
//! hashes, copies and stores them in every arrangement, so their representation is most of its
//! work. A row is one allocation: its values one after the other, each a tag byte and its
//! payload, in an encoding that preserves order. Comparing two rows byte by byte (`memcmp`)
//! gives exactly the order of their value lists (lexicographic, by [`Value`]'s `Ord`, a row
//! before the longer rows it is a prefix of); equal rows have equal bytes. Projecting,
//! concatenating and truncating copy byte ranges without decoding values.
//!
//! The encoding (tags in [`Value`]'s variant order):
//! - `Null`: the tag alone;
//! - `Int`, `DateTime`, `Time`: 8 big-endian bytes with the sign bit flipped; `Date`: 4;
//! - `Double`: the 8 bytes of its total order (negative: all bits flipped; otherwise the sign
//!   bit), `-0.0` as `0.0`;
//! - `Dec`: a length byte (`0x80 + n` for a non-negative mantissa of `n` significant bytes,
//!   `0x7f - n` for a negative one), the `n` big-endian bytes of its magnitude (of its
//!   complement when negative), then the scale: by mantissa, then scale, as [`Decimal`]
//!   orders;
//! - `Text`, `Bytes`: the bytes with every 0x00 written 0x00 0xff, then 0x00 0x00.
//!
//! Serde writes a row as the list of its values, as before it was packed: checkpoints do not
//! depend on the encoding.

use std::cmp::Ordering;
use std::fmt;

use ethnum::I256;
use memchr::memchr;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::value::{Decimal, F64, Value};

const NULL: u8 = 0;
const INT: u8 = 1;
const DEC: u8 = 2;
const TEXT: u8 = 3;
const BYTES: u8 = 4;
const DATE: u8 = 5;
const DATETIME: u8 = 6;
const DOUBLE: u8 = 7;
const TIME: u8 = 8;

const SIGN: u64 = 1 << 63;

/// A row of values, packed (see the module documentation). Ordering, equality and hashing are
/// those of the bytes, which agree with the value list's.
#[derive(Clone, Default, Eq)]
pub struct Row {
    bytes: Vec<u8>,
}

impl std::hash::Hash for Row {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.bytes.hash(h)
    }
}

// Rows are short (a key is often 9 bytes): comparing them in 8-byte words inline is faster
// than a call to `memcmp` per comparison, which is most of what sorting and merging batches do.
impl Ord for Row {
    #[inline]
    fn cmp(&self, o: &Row) -> Ordering {
        cmp_bytes(&self.bytes, &o.bytes)
    }
}

/// Byte order, compared in 8-byte words inline.
#[inline]
fn cmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_be_bytes(a[i..i + 8].try_into().expect("8 bytes"));
        let y = u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    a[i..n].cmp(&b[i..n]).then(a.len().cmp(&b.len()))
}

impl PartialOrd for Row {
    #[inline]
    fn partial_cmp(&self, o: &Row) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl PartialEq for Row {
    #[inline]
    fn eq(&self, o: &Row) -> bool {
        let (a, b) = (&self.bytes[..], &o.bytes[..]);
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i + 8 <= a.len() {
            if a[i..i + 8] != b[i..i + 8] {
                return false;
            }
            i += 8;
        }
        a[i..] == b[i..]
    }
}

impl Row {
    /// An empty row.
    pub const fn new() -> Row {
        Row { bytes: Vec::new() }
    }

    /// An empty row with room for about `n` values.
    pub fn with_capacity(n: usize) -> Row {
        Row {
            bytes: Vec::with_capacity(n * 9),
        }
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        let mut n = 0;
        let mut at = 0;
        while at < self.bytes.len() {
            at = self.skip(at);
            n += 1;
        }
        n
    }

    /// Whether the row has no values.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The value at `i`; panics when `i` is out of range (a planning bug, never data).
    pub fn get(&self, i: usize) -> Value {
        self.try_get(i)
            .unwrap_or_else(|| panic!("row has no value at {i}"))
    }

    /// The value at `i`, or `None` past the end.
    pub fn try_get(&self, i: usize) -> Option<Value> {
        let at = self.offset(i)?;
        (at < self.bytes.len()).then(|| self.decode(at).0)
    }

    /// The values, in order.
    pub fn iter(&self) -> Values<'_> {
        Values { row: self, at: 0 }
    }

    /// Appends a value.
    pub fn push(&mut self, v: Value) {
        self.push_ref(&v);
    }

    /// Appends a copy of a value.
    pub fn push_ref(&mut self, v: &Value) {
        let b = &mut self.bytes;
        match v {
            Value::Null => b.push(NULL),
            Value::Int(i) => {
                b.push(INT);
                b.extend_from_slice(&(*i as u64 ^ SIGN).to_be_bytes());
            }
            Value::Dec(d) => {
                b.push(DEC);
                encode_mantissa(d.mantissa(), b);
                b.push(d.scale);
            }
            Value::Text(t) => {
                b.push(TEXT);
                encode_bytes(t.as_bytes(), b);
            }
            Value::Bytes(x) => {
                b.push(BYTES);
                encode_bytes(x, b);
            }
            Value::Date(d) => {
                b.push(DATE);
                b.extend_from_slice(&(*d as u32 ^ (1 << 31)).to_be_bytes());
            }
            Value::DateTime(us) => {
                b.push(DATETIME);
                b.extend_from_slice(&(*us as u64 ^ SIGN).to_be_bytes());
            }
            Value::Double(x) => {
                b.push(DOUBLE);
                let x = if x.get() == 0.0 { 0.0f64 } else { x.get() };
                let bits = x.to_bits();
                let ordered = if bits & SIGN != 0 { !bits } else { bits ^ SIGN };
                b.extend_from_slice(&ordered.to_be_bytes());
            }
            Value::Time(us) => {
                b.push(TIME);
                b.extend_from_slice(&(*us as u64 ^ SIGN).to_be_bytes());
            }
        }
    }

    /// An empty row with room for `n` bytes of encoded values.
    pub fn with_encoded_capacity(n: usize) -> Row {
        Row {
            bytes: Vec::with_capacity(n),
        }
    }

    /// Appends the value at `i` of `other` (copied as bytes); panics when `i` is out of range.
    pub fn push_from(&mut self, other: &Row, i: usize) {
        let at = other
            .offset(i)
            .filter(|&at| at < other.bytes.len())
            .unwrap_or_else(|| panic!("row has no value at {i}"));
        let end = other.skip(at);
        self.bytes.extend_from_slice(&other.bytes[at..end]);
    }

    /// Appends the values of `other`.
    pub fn extend_from_row(&mut self, other: &Row) {
        self.bytes.extend_from_slice(&other.bytes);
    }

    /// Appends the values of a borrowed row.
    pub fn extend_from_ref(&mut self, other: RowRef<'_>) {
        self.bytes.extend_from_slice(other.0);
    }

    /// Makes this row a copy of `other`, reusing its allocation.
    pub fn clone_from_ref(&mut self, other: RowRef<'_>) {
        self.bytes.clear();
        self.bytes.extend_from_slice(other.0);
    }

    /// `self` followed by `other`.
    pub fn concat(&self, other: &Row) -> Row {
        let mut bytes = Vec::with_capacity(self.bytes.len() + other.bytes.len());
        bytes.extend_from_slice(&self.bytes);
        bytes.extend_from_slice(&other.bytes);
        Row { bytes }
    }

    /// The values at `columns`, in that order (copied as bytes, not decoded).
    pub fn project(&self, columns: &[usize]) -> Row {
        let ranges = ranges(&self.bytes);
        let mut bytes = Vec::with_capacity(
            columns
                .iter()
                .map(|&c| ranges[c].1 - ranges[c].0)
                .sum::<usize>(),
        );
        for &c in columns {
            let (a, b) = ranges[c];
            bytes.extend_from_slice(&self.bytes[a..b]);
        }
        Row { bytes }
    }

    /// Appends the values of `other` at `columns`, in that order.
    pub fn extend_projected(&mut self, other: RowRef<'_>, columns: &[usize]) {
        let ranges = ranges(other.0);
        for &c in columns {
            let (a, b) = ranges[c];
            self.bytes.extend_from_slice(&other.0[a..b]);
        }
    }

    /// Replaces the value at `i`, returning the old one.
    pub fn replace(&mut self, i: usize, v: Value) -> Value {
        let at = self
            .offset(i)
            .filter(|&at| at < self.bytes.len())
            .unwrap_or_else(|| panic!("row has no value at {i}"));
        let (old, end) = self.decode(at);
        let tail = self.bytes.split_off(end);
        self.bytes.truncate(at);
        self.push_ref(&v);
        self.bytes.extend_from_slice(&tail);
        old
    }

    /// Keeps the first `n` values.
    pub fn truncate(&mut self, n: usize) {
        if let Some(at) = self.offset(n) {
            self.bytes.truncate(at);
        }
    }

    /// The encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        self.bytes.len()
    }

    /// The byte offset of value `i` (`len` of the bytes for `i == len()`), `None` beyond.
    fn offset(&self, i: usize) -> Option<usize> {
        let mut at = 0;
        for _ in 0..i {
            if at >= self.bytes.len() {
                return None;
            }
            at = self.skip(at);
        }
        Some(at)
    }

    /// The offset after the value at `at`.
    fn skip(&self, at: usize) -> usize {
        skip(&self.bytes, at)
    }

    /// The encoded values, borrowed.
    pub fn as_ref(&self) -> RowRef<'_> {
        RowRef(&self.bytes)
    }

    /// The value at `at` and the offset after it.
    fn decode(&self, at: usize) -> (Value, usize) {
        let b = &self.bytes;
        let word = |at: usize| u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        match b[at] {
            NULL => (Value::Null, at + 1),
            INT => (Value::Int((word(at + 1) ^ SIGN) as i64), at + 9),
            DATETIME => (Value::DateTime((word(at + 1) ^ SIGN) as i64), at + 9),
            TIME => (Value::Time((word(at + 1) ^ SIGN) as i64), at + 9),
            DOUBLE => {
                let o = word(at + 1);
                let bits = if o & SIGN != 0 { o ^ SIGN } else { !o };
                let x = F64::new(f64::from_bits(bits)).expect("a stored double is finite");
                (Value::Double(x), at + 9)
            }
            DATE => {
                let d = u32::from_be_bytes(b[at + 1..at + 5].try_into().expect("4 bytes"));
                (Value::Date((d ^ (1 << 31)) as i32), at + 5)
            }
            DEC => {
                let n = mantissa_len(b[at + 1]);
                let start = at + 2;
                let m = decode_mantissa(b[at + 1], &b[start..start + n]);
                let scale = b[start + n];
                let d = Decimal::from_wide(m, scale).expect("a stored decimal is in range");
                (Value::Dec(d), start + n + 1)
            }
            TEXT | BYTES => {
                let (bytes, len) = decode_bytes(&b[at + 1..]);
                let v = if b[at] == TEXT {
                    Value::Text(String::from_utf8(bytes).expect("stored text is UTF-8"))
                } else {
                    Value::Bytes(bytes)
                };
                (v, at + 1 + len)
            }
            t => unreachable!("row tag {t}"),
        }
    }
}

/// The byte range of every value of an encoded row.
fn ranges(b: &[u8]) -> smallvec::SmallVec<[(usize, usize); 16]> {
    let mut out = smallvec::SmallVec::new();
    let mut at = 0;
    while at < b.len() {
        let end = skip(b, at);
        out.push((at, end));
        at = end;
    }
    out
}

/// The offset after the value at `at` of an encoded row.
fn skip(b: &[u8], at: usize) -> usize {
    match b[at] {
        NULL => at + 1,
        INT | DATETIME | DOUBLE | TIME => at + 9,
        DATE => at + 5,
        DEC => at + 1 + 1 + mantissa_len(b[at + 1]) + 1,
        TEXT | BYTES => at + 1 + text_end(&b[at + 1..]).1,
        t => unreachable!("row tag {t}"),
    }
}

/// A row borrowed from where it is stored (an arrangement's batch keeps many rows in one
/// buffer): the same encoding, ordered as [`Row`] is.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RowRef<'a>(&'a [u8]);

impl Ord for RowRef<'_> {
    #[inline]
    fn cmp(&self, o: &Self) -> Ordering {
        cmp_bytes(self.0, o.0)
    }
}

impl PartialOrd for RowRef<'_> {
    #[inline]
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl<'a> RowRef<'a> {
    /// The encoded row stored at `bytes` (which must be one, from [`RowRef::bytes`]).
    pub(crate) fn from_encoded(bytes: &'a [u8]) -> RowRef<'a> {
        RowRef(bytes)
    }

    /// The encoded values.
    pub fn bytes(self) -> &'a [u8] {
        self.0
    }

    /// An owned copy.
    pub fn to_row(self) -> Row {
        Row {
            bytes: self.0.to_vec(),
        }
    }
}

impl PartialEq<&Row> for RowRef<'_> {
    fn eq(&self, o: &&Row) -> bool {
        self.0 == &o.bytes[..]
    }
}

impl fmt::Debug for RowRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_row().fmt(f)
    }
}

/// The values of a row, decoded in order.
pub struct Values<'a> {
    row: &'a Row,
    at: usize,
}

impl Iterator for Values<'_> {
    type Item = Value;
    fn next(&mut self) -> Option<Value> {
        if self.at >= self.row.bytes.len() {
            return None;
        }
        let (v, end) = self.row.decode(self.at);
        self.at = end;
        Some(v)
    }
}

fn significant_bytes(u: ethnum::U256) -> usize {
    (256 - u.leading_zeros() as usize).div_ceil(8)
}

fn encode_mantissa(m: I256, out: &mut Vec<u8>) {
    let u = m.unsigned_abs();
    let n = significant_bytes(u);
    let be = u.to_be_bytes();
    let digits = &be[32 - n..];
    if m.is_negative() {
        out.push(0x7f - n as u8);
        out.extend(digits.iter().map(|x| !x));
    } else {
        out.push(0x80 + n as u8);
        out.extend_from_slice(digits);
    }
}

fn mantissa_len(head: u8) -> usize {
    if head >= 0x80 {
        (head - 0x80) as usize
    } else {
        (0x7f - head) as usize
    }
}

fn decode_mantissa(head: u8, digits: &[u8]) -> I256 {
    let mut be = [0u8; 32];
    let n = digits.len();
    if head >= 0x80 {
        be[32 - n..].copy_from_slice(digits);
        I256::from_be_bytes(be)
    } else {
        for (o, x) in be[32 - n..].iter_mut().zip(digits) {
            *o = !x;
        }
        -I256::from_be_bytes(be)
    }
}

fn encode_bytes(x: &[u8], out: &mut Vec<u8>) {
    out.reserve(x.len() + 2);
    let mut rest = x;
    while let Some(i) = memchr(0, rest) {
        out.extend_from_slice(&rest[..=i]);
        out.push(0xff);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.extend_from_slice(&[0, 0]);
}

/// Where an encoded text ends: `(content length in bytes of the encoding before the
/// terminator, length including the terminator)`.
fn text_end(b: &[u8]) -> (usize, usize) {
    let mut i = 0;
    loop {
        let z = i + memchr(0, &b[i..]).expect("a terminated text");
        if b[z + 1] == 0 {
            return (z, z + 2);
        }
        i = z + 2;
    }
}

fn decode_bytes(b: &[u8]) -> (Vec<u8>, usize) {
    let (content, len) = text_end(b);
    let enc = &b[..content];
    let mut out = Vec::with_capacity(content);
    let mut rest = enc;
    while let Some(i) = memchr(0, rest) {
        out.extend_from_slice(&rest[..=i]);
        rest = &rest[i + 2..];
    }
    out.extend_from_slice(rest);
    (out, len)
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for v in self.iter() {
            seq.serialize_element(&v)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Row, D::Error> {
        Vec::<Value>::deserialize(d).map(Row::from)
    }
}

impl From<Vec<Value>> for Row {
    fn from(values: Vec<Value>) -> Row {
        values.into_iter().collect()
    }
}

impl From<&[Value]> for Row {
    fn from(values: &[Value]) -> Row {
        let mut row = Row::with_capacity(values.len());
        values.iter().for_each(|v| row.push_ref(v));
        row
    }
}

impl PartialEq<Vec<Value>> for Row {
    fn eq(&self, other: &Vec<Value>) -> bool {
        *self == Row::from(&other[..])
    }
}

impl FromIterator<Value> for Row {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Row {
        let mut row = Row::new();
        row.extend(iter);
        row
    }
}

impl<'a> IntoIterator for &'a Row {
    type Item = Value;
    type IntoIter = Values<'a>;
    fn into_iter(self) -> Values<'a> {
        self.iter()
    }
}

impl Extend<Value> for Row {
    fn extend<I: IntoIterator<Item = Value>>(&mut self, iter: I) {
        let iter = iter.into_iter();
        // The upper bound where there is one (`collect` into a `Result` gives no lower one).
        let (lower, upper) = iter.size_hint();
        self.bytes.reserve(upper.unwrap_or(lower).min(64) * 9);
        iter.for_each(|v| self.push_ref(&v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Value> {
        let dec = |s: &str| Value::Dec(Decimal::parse(s).expect("a decimal"));
        vec![
            Value::Null,
            Value::Int(i64::MIN),
            Value::Int(-1),
            Value::Int(0),
            Value::Int(1),
            Value::Int(i64::MAX),
            dec("-99999999999999999999999999999999999999999999999999999999999999999"),
            dec("-256.00"),
            dec("-255.00"),
            dec("-1.5"),
            dec("-0.01"),
            dec("0"),
            dec("0.00"),
            dec("0.01"),
            dec("1.5"),
            dec("255.00"),
            dec("256.00"),
            dec("12345678901234567890123456789012345678901234.5678"),
            Value::Text(String::new()),
            Value::Text("\0".into()),
            Value::Text("\0\0a".into()),
            Value::Text("a".into()),
            Value::Text("a\0".into()),
            Value::Text("a\0b".into()),
            Value::Text("ab".into()),
            Value::Text("é".into()),
            Value::Bytes(vec![]),
            Value::Bytes(vec![0, 0xff]),
            Value::Bytes(vec![0xff, 0]),
            Value::Date(i32::MIN),
            Value::Date(-1),
            Value::Date(0),
            Value::Date(20000),
            Value::DateTime(-5),
            Value::DateTime(1_700_000_000_000_000),
            Value::Double(F64::new(f64::MIN).unwrap()),
            Value::Double(F64::new(-1.5).unwrap()),
            Value::Double(F64::new(-0.0).unwrap()),
            Value::Double(F64::new(0.0).unwrap()),
            Value::Double(F64::new(1e-300).unwrap()),
            Value::Double(F64::new(2.5).unwrap()),
            Value::Double(F64::new(f64::MAX).unwrap()),
            Value::Time(-3_020_399_000_000),
            Value::Time(0),
            Value::Time(3_020_399_999_999),
        ]
    }

    #[test]
    fn values_round_trip() {
        let vals = samples();
        let row: Row = vals.iter().cloned().collect();
        assert_eq!(row.len(), vals.len());
        assert_eq!(row.iter().collect::<Vec<_>>(), vals);
        for (i, v) in vals.iter().enumerate() {
            assert_eq!(&row.get(i), v);
        }
        assert_eq!(row.try_get(vals.len()), None);
    }

    #[test]
    fn byte_order_is_the_value_list_order() {
        let vals = samples();
        // Single values, pairs (a prefix and what follows it) and rows of different lengths.
        let mut rows: Vec<Vec<Value>> = vals.iter().map(|v| vec![v.clone()]).collect();
        for a in vals.iter().step_by(3) {
            for b in vals.iter().step_by(4) {
                rows.push(vec![a.clone(), b.clone()]);
            }
        }
        rows.push(vec![]);
        for a in &rows {
            for b in &rows {
                let (pa, pb) = (Row::from(a.clone()), Row::from(b.clone()));
                assert_eq!(pa.cmp(&pb), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(pa == pb, a == b, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn project_concat_replace_truncate() {
        let row = Row::from(vec![
            Value::Int(7),
            Value::Text("a\0b".into()),
            Value::Null,
            Value::Dec(Decimal::new(-12345, 2)),
        ]);
        assert_eq!(
            row.project(&[3, 1, 1]),
            vec![
                Value::Dec(Decimal::new(-12345, 2)),
                Value::Text("a\0b".into()),
                Value::Text("a\0b".into()),
            ]
        );
        let both = row.concat(&Row::from(vec![Value::Int(1)]));
        assert_eq!(both.len(), 5);
        assert_eq!(both.get(4), Value::Int(1));
        let mut r = row.clone();
        assert_eq!(r.replace(1, Value::Int(2)), Value::Text("a\0b".into()));
        assert_eq!(
            r,
            vec![
                Value::Int(7),
                Value::Int(2),
                Value::Null,
                Value::Dec(Decimal::new(-12345, 2))
            ]
        );
        r.truncate(2);
        assert_eq!(r, vec![Value::Int(7), Value::Int(2)]);
        let mut p = Row::new();
        p.extend_projected(row.as_ref(), &[2, 0]);
        assert_eq!(p, vec![Value::Null, Value::Int(7)]);
        p.push_from(&row, 1);
        assert_eq!(
            p,
            vec![Value::Null, Value::Int(7), Value::Text("a\0b".into())]
        );
    }

    #[test]
    fn serde_is_the_value_list() {
        let vals = samples();
        let row = Row::from(vals.clone());
        let json = serde_json::to_string(&row).expect("serializes");
        assert_eq!(json, serde_json::to_string(&vals).expect("serializes"));
        let back: Row = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, row);
    }
}
