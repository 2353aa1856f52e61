//! The difference type that carries accumulable aggregates (COUNT, SUM, AVG).
//!
//! Contract: accumulation is exact integer addition (`i128` slots), hence associative and
//! commutative, so differential dataflow may consolidate updates in any order and grouping.
//! Slot 0 counts the rows of the group; each aggregate owns further slots: its non-NULL count,
//! and for SUM/AVG the sum of the mantissas at the argument's static scale, split in base-10^22
//! limbs ([`decimal_limbs`]: one for an integer argument, three for a decimal of up to 65
//! digits) so that no slot comes near overflow; the total is rebuilt with checked arithmetic
//! ([`decimal_total`]).
//!
//! SUM/AVG of a DOUBLE is exact too: each double is an integer multiple of 2^-1074, added into
//! [`DOUBLE_LIMBS`] base-2^64 limbs (a fixed-point number spanning the whole double range), and
//! the total is rounded to the nearest double once, when it is read ([`double_total`]). The sum
//! is therefore independent of arrival order, worker count and retractions; MySQL adds doubles
//! one by one in scan order, so the two can differ in the last bits (ten times 0.1: MySQL
//! 0.9999999999999999, cdcflow 1, the correctly rounded sum).

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Multiply, Semigroup};
use ethnum::I256;
use serde::{Deserialize, Serialize};

/// Accumulated slots; a shorter vector is padded with zeros.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Accum(pub Vec<i128>);

impl Accum {
    /// Slot `i`, zero when absent.
    pub fn get(&self, i: usize) -> i128 {
        self.0.get(i).copied().unwrap_or(0)
    }
}

impl IsZero for Accum {
    fn is_zero(&self) -> bool {
        self.0.iter().all(|x| *x == 0)
    }
}

impl Semigroup for Accum {
    fn plus_equals(&mut self, rhs: &Self) {
        if self.0.len() < rhs.0.len() {
            self.0.resize(rhs.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&rhs.0) {
            *a += *b;
        }
    }
}

impl Monoid for Accum {
    fn zero() -> Self {
        Accum(Vec::new())
    }
}

impl Abelian for Accum {
    fn negate(&mut self) {
        for a in &mut self.0 {
            *a = -*a;
        }
    }
}

impl Multiply<isize> for Accum {
    type Output = Accum;
    fn multiply(mut self, rhs: &isize) -> Accum {
        for a in &mut self.0 {
            *a *= *rhs as i128;
        }
        self
    }
}

/// The base of a decimal sum's limbs: each limb of one value is below 10^22, so a slot holds
/// the sum of more than 10^16 values before it could overflow.
const DEC_BASE: i128 = 10_000_000_000_000_000_000_000;

/// The limbs of a decimal of up to 65 digits (10^66 < 10^(22·3)): the most any sum uses.
pub const DECIMAL_LIMBS: usize = 3;

/// The limbs a SUM/AVG of this argument accumulates in: one for an integer (any `i64` fits one
/// slot with room for 10^19 additions), [`DECIMAL_LIMBS`] for a decimal.
pub fn decimal_limbs(integer: bool) -> usize {
    if integer { 1 } else { DECIMAL_LIMBS }
}

/// Writes the mantissa `m` as little-endian base-10^22 limbs into `limbs` (the last limb takes
/// what is left); `None` when it does not fit that many limbs.
pub fn split_decimal(m: I256, limbs: &mut [i128]) -> Option<()> {
    let (last, low) = limbs.split_last_mut()?;
    if let Ok(mut small) = i128::try_from(m) {
        for l in low {
            *l = small % DEC_BASE;
            small /= DEC_BASE;
        }
        *last = small;
        return Some(());
    }
    let base = I256::new(DEC_BASE);
    let mut m = m;
    for l in low {
        *l = (m % base).as_i128();
        m /= base;
    }
    *last = i128::try_from(m).ok()?;
    Some(())
}

/// The mantissa held in little-endian base-10^22 `limbs`; `None` when it overflows.
pub fn decimal_total(limbs: &[i128]) -> Option<I256> {
    let base = I256::new(DEC_BASE);
    let mut total = I256::ZERO;
    for &l in limbs.iter().rev() {
        total = total.checked_mul(base)?.checked_add(I256::new(l))?;
    }
    Some(total)
}

/// The limbs of an exact double sum: 2^-1074 up to 2^1024, with room for carries.
pub const DOUBLE_LIMBS: usize = 35;

/// Adds the exact value of the finite double `x` into `limbs` (at least [`DOUBLE_LIMBS`] long):
/// at most two limbs change, by less than 2^64 each.
pub fn add_double(x: f64, limbs: &mut [i128]) {
    let bits = x.to_bits();
    let raw_exp = ((bits >> 52) & 0x7ff) as u32;
    let frac = bits & ((1u64 << 52) - 1);
    // x = m * 2^(offset - 1074), m < 2^53.
    let (m, offset) = if raw_exp == 0 {
        (frac, 0)
    } else {
        (frac | 1u64 << 52, raw_exp - 1)
    };
    if m == 0 {
        return;
    }
    let wide = u128::from(m) << (offset % 64);
    let (lo, hi) = ((wide as u64) as i128, (wide >> 64) as i128);
    let i = (offset / 64) as usize;
    let sign = if bits >> 63 == 1 { -1 } else { 1 };
    limbs[i] += sign * lo;
    limbs[i + 1] += sign * hi;
}

/// The sum held in `limbs`, rounded to the nearest double (ties to even); `None` when it is
/// beyond the range of a double.
pub fn double_total(limbs: &[i128]) -> Option<f64> {
    // Carry into a two's-complement number of 64-bit limbs.
    let mut digits: Vec<u64> = Vec::with_capacity(limbs.len() + 2);
    let mut carry: i128 = 0;
    for &l in limbs {
        let v = l.checked_add(carry)?;
        digits.push(v.rem_euclid(1 << 64) as u64);
        carry = v.div_euclid(1 << 64);
    }
    while carry != 0 && carry != -1 {
        digits.push(carry.rem_euclid(1 << 64) as u64);
        carry = carry.div_euclid(1 << 64);
    }
    let negative = carry == -1;
    if negative {
        // Magnitude of a negative two's-complement number: invert and add one.
        let mut one = true;
        for d in &mut digits {
            let (v, o) = (!*d).overflowing_add(u64::from(one));
            *d = v;
            one = one && o;
        }
    }
    let Some(top) = digits.iter().rposition(|d| *d != 0) else {
        return Some(0.0);
    };
    // Highest set bit, in units of 2^-1074.
    let p = top * 64 + 63 - digits[top].leading_zeros() as usize;
    let bit = |i: usize| digits[i / 64] >> (i % 64) & 1 == 1;
    let magnitude = if p < 53 {
        // Below 2^53 units the value is exactly representable (subnormal or small normal).
        digits[0] as f64 * f64::from_bits(1)
    } else {
        // The 53 bits from p down, rounded to nearest, ties to even.
        let mut q: u64 = 0;
        for i in (p - 52..=p).rev() {
            q = q << 1 | u64::from(bit(i));
        }
        let round = bit(p - 53);
        // Any bit below the rounding bit: whole digits below its digit, then its lower bits.
        let (d, b) = ((p - 53) / 64, (p - 53) % 64);
        let sticky = digits[..d].iter().any(|x| *x != 0) || digits[d] & ((1u64 << b) - 1) != 0;
        let mut p = p;
        if round && (sticky || q & 1 == 1) {
            q += 1;
            if q == 1 << 53 {
                q >>= 1;
                p += 1;
            }
        }
        // q * 2^(p - 52 - 1074) with 2^52 <= q < 2^53: biased exponent p - 51.
        let biased = p as u64 - 51;
        if biased >= 0x7ff {
            return None;
        }
        f64::from_bits(biased << 52 | (q - (1 << 52)))
    };
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_limbs_round_trip_and_add_exactly() {
        let p = |s: &str| crate::value::Decimal::parse(s).unwrap().mantissa();
        for s in [
            "0",
            "-1",
            "123456789012345678901234567890",
            "-99999999999999999999999999999999999999999999999999999999999999999",
            "170141183460469231731687303715884105728",
        ] {
            let mut l = [0i128; 3];
            split_decimal(p(s), &mut l).unwrap();
            assert_eq!(decimal_total(&l), Some(p(s)), "{s}");
        }
        let mut one = [0i128; 1];
        split_decimal(I256::new(i64::MIN as i128), &mut one).unwrap();
        assert_eq!(one, [i64::MIN as i128]);
        // Limbs add slot by slot: the total of the sums is the sum of the totals.
        let (mut a, mut b) = ([0i128; 3], [0i128; 3]);
        split_decimal(
            p("99999999999999999999999999999999999999999999999999999999999999999"),
            &mut a,
        )
        .unwrap();
        split_decimal(
            p("-12345678901234567890123456789012345678901234567890"),
            &mut b,
        )
        .unwrap();
        let sum: Vec<i128> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        assert_eq!(
            decimal_total(&sum),
            Some(p(
                "99999999999999987654321098765432109876543210987654321098765432109"
            ))
        );
    }

    use super::*;

    fn exact_sum(xs: &[f64]) -> Option<f64> {
        let mut limbs = vec![0i128; DOUBLE_LIMBS];
        for x in xs {
            add_double(*x, &mut limbs);
        }
        double_total(&limbs)
    }

    #[test]
    fn double_sums_are_exact_then_rounded_once() {
        assert_eq!(exact_sum(&[0.1; 10]), Some(1.0));
        assert_eq!(exact_sum(&[0.1, 0.2]), Some(0.1 + 0.2));
        assert_eq!(exact_sum(&[1e308, 1e308, -1e308]), Some(1e308));
        assert_eq!(exact_sum(&[1e308, 1e308]), None, "beyond a double");
        assert_eq!(
            exact_sum(&[-f64::MAX, -f64::MAX, f64::MAX]),
            Some(-f64::MAX)
        );
        assert_eq!(exact_sum(&[1e100, 1.0, -1e100]), Some(1.0));
        assert_eq!(exact_sum(&[5e-324, 5e-324]), Some(1e-323));
        assert_eq!(
            exact_sum(&[f64::MIN_POSITIVE, -5e-324]),
            Some(f64::MIN_POSITIVE - 5e-324)
        );
        assert_eq!(exact_sum(&[-2.5, 0.25]), Some(-2.25));
        assert_eq!(exact_sum(&[]), Some(0.0));
        assert_eq!(exact_sum(&[3.0, -3.0]), Some(0.0));
        // Ties to even: 2^53 + 1 is halfway between 2^53 and 2^53 + 2.
        assert_eq!(
            exact_sum(&[9007199254740992.0, 1.0]),
            Some(9007199254740992.0)
        );
        assert_eq!(
            exact_sum(&[9007199254740994.0, 1.0]),
            Some(9007199254740996.0)
        );
        assert_eq!(
            exact_sum(&[9007199254740992.0, 1.0, 1e-300]),
            Some(9007199254740994.0),
            "a sticky bit below the halfway point rounds up"
        );
    }

    #[test]
    fn double_sums_do_not_depend_on_order_or_retractions() {
        // A deterministic pseudo-random mix of magnitudes and signs.
        let mut s = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let xs: Vec<f64> = (0..500)
            .map(|_| {
                let m = (next() % 2_000_001) as f64 - 1_000_000.0;
                m * 10f64.powi((next() % 40) as i32 - 20)
            })
            .collect();
        let forward = exact_sum(&xs);
        let mut rev = xs.clone();
        rev.reverse();
        assert_eq!(forward, exact_sum(&rev));
        let mut limbs = vec![0i128; DOUBLE_LIMBS];
        for x in &xs {
            add_double(*x, &mut limbs);
            add_double(1e300, &mut limbs);
            add_double(-1e300, &mut limbs);
        }
        assert_eq!(double_total(&limbs), forward);
    }

    #[test]
    fn accumulates_exactly_in_any_order() {
        let a = Accum(vec![1, 1, 1999]);
        let b = Accum(vec![1, 0, 0]);
        let mut x = a.clone();
        x.plus_equals(&b);
        let mut y = b.clone();
        y.plus_equals(&a);
        assert_eq!(x, y);
        let mut z = x.clone();
        z.plus_equals(&a.clone().multiply(&-1));
        z.plus_equals(&b.clone().multiply(&-1));
        assert!(z.is_zero());
    }
}
