//! Common-subexpression elimination while a body compiles: a stateless step with the same op
//! type, attributes and inputs as an earlier step is not built again; its readers read the
//! earlier step's outputs instead.
//!
//! Why: exported text graphs (ragged tensors, `BertPackInputs`) repeat the same shape
//! arithmetic many times over (`Shape(x)`, `row_splits[1:]`, `Cast`, `Range` on the same
//! values): a BERT preprocessor's serving function has ~240 such duplicates, which at batch 1
//! are a large part of the per-call cost (each evaluation allocates). TF's Grappler removes
//! them the same way (its common-subgraph elimination in `arithmetic_optimizer.cc`).
//!
//! Exactness: the kept step computes the same value from the same inputs, so results are
//! unchanged; it runs earlier in the plan than the dropped one, so a bad input fails at that
//! earlier step, which it already did before (it fails on the same inputs). Stateful ops, ops
//! reading TF1 ref edges (their value changes between reads) and ops without data inputs are
//! never merged. Control inputs are part of a step's identity, as in Grappler's node
//! signatures: two equal steps with other control inputs (a guard `Assert`, or a TF1 `cond`
//! pivot whose deadness a branch's step inherits) stay apart. Constant inputs are compared by value (small ones), so two `Const` nodes with
//! equal values count as the same input.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::Src;
use crate::proto::AttrValue;
use crate::tensor::{Data, Tensor};

/// Constants with more elements than this are compared by node, not by value.
const MAX_CONST_KEY_ELEMENTS: usize = 64;

/// The merging state of one body.
#[derive(Default)]
pub(super) struct Cse {
    /// Step key → node index of the first step with that key.
    seen: HashMap<String, usize>,
    /// Dropped node → node whose outputs replace its outputs.
    alias: HashMap<usize, usize>,
}

impl Cse {
    /// `s`, with a dropped node's output replaced by its kept twin's.
    pub(super) fn resolve(&self, s: Src) -> Src {
        match s {
            Src::Out(ni, k) => Src::Out(self.alias.get(&ni).copied().unwrap_or(ni), k),
            Src::Arg(_) => s,
        }
    }

    /// The node whose outputs stand for node `ni`'s (itself unless `ni` was dropped).
    pub(super) fn node(&self, ni: usize) -> usize {
        self.alias.get(&ni).copied().unwrap_or(ni)
    }

    /// Whether node `ni` (op `op`, attributes `attrs`, resolved data `inputs`, control
    /// inputs `controls`, each a resolved node index or a name) repeats an
    /// earlier step: then it is recorded as that step's twin and `true` is returned (the
    /// caller drops it); otherwise it is remembered as a step others may repeat.
    pub(super) fn merge(
        &mut self,
        ni: usize,
        op: &str,
        attrs: &BTreeMap<String, AttrValue>,
        inputs: &[Src],
        controls: &mut [String],
        consts: &HashMap<Src, Tensor>,
    ) -> bool {
        let mut key = String::with_capacity(64);
        key.push_str(op);
        for s in inputs {
            key.push('|');
            match consts.get(s).and_then(const_key) {
                Some(k) => key.push_str(&k),
                None => {
                    let _ = write!(key, "{s:?}");
                }
            }
        }
        // `BTreeMap`: attributes in name order, so equal maps print equally.
        let _ = write!(key, "|{attrs:?}");
        // Control inputs as a set (their order means nothing).
        controls.sort_unstable();
        for c in controls.iter() {
            key.push_str("|^");
            key.push_str(c);
        }
        match self.seen.get(&key) {
            Some(&first) => {
                self.alias.insert(ni, first);
                true
            }
            None => {
                self.seen.insert(key, ni);
                false
            }
        }
    }
}

/// A small constant's value as a key (dtype, shape and exact elements); `None` for large
/// constants and dtypes compared by node instead.
fn const_key(t: &Tensor) -> Option<String> {
    if t.len() > MAX_CONST_KEY_ELEMENTS {
        return None;
    }
    let mut k = format!("c{}{:?}", t.dtype().name(), t.shape());
    // Floats by bit pattern (keeps -0.0 and NaN payloads apart).
    let _ = match t.data() {
        Data::F32(b) => write!(k, "{:?}", b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()),
        Data::F64(b) => write!(k, "{:?}", b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()),
        Data::I8(b) => write!(k, "{:?}", &b[..]),
        Data::I16(b) => write!(k, "{:?}", &b[..]),
        Data::I32(b) => write!(k, "{:?}", &b[..]),
        Data::I64(b) => write!(k, "{:?}", &b[..]),
        Data::U8(b) => write!(k, "{:?}", &b[..]),
        Data::U16(b) => write!(k, "{:?}", &b[..]),
        Data::U32(b) => write!(k, "{:?}", &b[..]),
        Data::U64(b) => write!(k, "{:?}", &b[..]),
        Data::Bool(b) => write!(k, "{:?}", &b[..]),
        Data::String(b) => write!(k, "{:?}", b.iter().map(|s| &s[..]).collect::<Vec<&[u8]>>()),
        _ => return None,
    };
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_steps_merge_and_constants_compare_by_value() {
        let mut consts = HashMap::new();
        consts.insert(Src::Out(0, 0), Tensor::vector(vec![1i32]));
        consts.insert(Src::Out(1, 0), Tensor::vector(vec![1i32]));
        consts.insert(Src::Out(2, 0), Tensor::vector(vec![1i64]));
        consts.insert(Src::Out(3, 0), Tensor::vector(vec![-0.0f32]));
        consts.insert(Src::Out(4, 0), Tensor::vector(vec![0.0f32]));
        let attrs = BTreeMap::new();
        let mut cse = Cse::default();
        let x = Src::Arg(0);
        assert!(!cse.merge(10, "Sub", &attrs, &[x, Src::Out(0, 0)], &mut [], &consts));
        // Another Const with the same value: the same step.
        assert!(cse.merge(11, "Sub", &attrs, &[x, Src::Out(1, 0)], &mut [], &consts));
        assert_eq!(cse.resolve(Src::Out(11, 0)), Src::Out(10, 0));
        assert_eq!(cse.resolve(Src::Out(12, 1)), Src::Out(12, 1));
        // Other dtype, other op, other input order: different steps.
        assert!(!cse.merge(12, "Sub", &attrs, &[x, Src::Out(2, 0)], &mut [], &consts));
        assert!(!cse.merge(13, "AddV2", &attrs, &[x, Src::Out(0, 0)], &mut [], &consts));
        assert!(!cse.merge(14, "Sub", &attrs, &[Src::Out(0, 0), x], &mut [], &consts));
        // -0.0 and 0.0 are different constants.
        assert!(!cse.merge(15, "Mul", &attrs, &[x, Src::Out(3, 0)], &mut [], &consts));
        assert!(!cse.merge(16, "Mul", &attrs, &[x, Src::Out(4, 0)], &mut [], &consts));
        // Different attributes: different steps.
        let mut a2 = BTreeMap::new();
        a2.insert("T".to_string(), AttrValue::default());
        assert!(!cse.merge(17, "Sub", &a2, &[x, Src::Out(0, 0)], &mut [], &consts));
        assert!(cse.merge(18, "Sub", &a2, &[x, Src::Out(1, 0)], &mut [], &consts));
        // Other control inputs: different steps; the same set in another order: the same.
        let mut c1 = ["n3".to_string(), "n5".to_string()];
        let mut c2 = ["n5".to_string(), "n3".to_string()];
        assert!(!cse.merge(19, "Sub", &a2, &[x, Src::Out(1, 0)], &mut c1, &consts));
        assert!(cse.merge(20, "Sub", &a2, &[x, Src::Out(1, 0)], &mut c2, &consts));
        assert_eq!(cse.node(20), 19);
        assert_eq!(cse.node(21), 21);
    }
}
