//! The difference type that carries accumulable aggregates (COUNT, SUM, AVG).
//!
//! Contract: accumulation is exact integer addition (`i128` slots), hence associative and
//! commutative, so differential dataflow may consolidate updates in any order and grouping.
//! Slot 0 counts the rows of the group; each aggregate owns further slots: its non-NULL count,
//! and for SUM/AVG the sum of the mantissas at the argument's static scale, split in two limbs
//! (`high * 10^18 + low`) so that no slot comes near overflow; the total is rebuilt with checked
//! arithmetic.

use differential_dataflow::difference::{Abelian, IsZero, Monoid, Multiply, Semigroup};
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

#[cfg(test)]
mod tests {
    use super::*;

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
