//! `StringToHashBucketFast` (FarmHash Fingerprint64), `StringToHashBucketStrong` (SipHash-2-4
//! keyed by the `key` attr) and the legacy `StringToHashBucket` (TF's MurmurHash2-style
//! `Hash64`). TF reference: core/kernels/string_to_hash_bucket_op.{h,cc},
//! core/lib/hash/hash.cc, core/platform/strong_hash.h.

use super::strings;
use crate::ops::kernels::strings::fingerprint64;
use crate::ops::{take_inputs, BuildCtx, EvalCtx, Op, OpError, Tensors};
use crate::tensor::Tensor;

#[derive(Debug, Clone, Copy)]
pub(super) enum Hasher {
    Fast,
    Legacy,
    Strong(u64, u64),
}

impl Hasher {
    fn hash(self, s: &[u8]) -> u64 {
        match self {
            Hasher::Fast => fingerprint64(s),
            Hasher::Legacy => hash64(s, 0x00DE_CAFC_AFFE),
            Hasher::Strong(k0, k1) => {
                #[allow(deprecated)] // std's SipHasher is exactly SipHash-2-4 with 128-bit keys.
                let mut h = std::hash::SipHasher::new_with_keys(k0, k1);
                std::hash::Hasher::write(&mut h, s);
                std::hash::Hasher::finish(&h)
            }
        }
    }
}

/// `StringToHashBucket{,Fast,Strong}`: `hash(s) % num_buckets` as int64, same shape.
#[derive(Debug)]
pub(super) struct HashBucket {
    hasher: Hasher,
    buckets: u64,
}

impl HashBucket {
    /// `StringToHashBucket{,Fast,Strong}`: `hasher` is `None` for `Strong`, whose keys are
    /// attributes.
    pub(super) fn build(
        cx: &mut BuildCtx<'_>,
        hasher: Option<Hasher>,
    ) -> Result<Box<dyn Op>, OpError> {
        let buckets = cx.attr_i64("num_buckets")?;
        let buckets = u64::try_from(buckets)
            .ok()
            .filter(|&b| b >= 1)
            .ok_or_else(|| OpError::invalid(format!("num_buckets {buckets} must be >= 1")))?;
        let hasher = match hasher {
            Some(h) => h,
            None => match cx.attr_list_i64("key")[..] {
                [k0, k1] => Hasher::Strong(k0 as u64, k1 as u64),
                _ => return Err(OpError::invalid("key must be a list of 2 ints")),
            },
        };
        Ok(Box::new(HashBucket { hasher, buckets }))
    }
}

impl Op for HashBucket {
    fn eval(&self, _: &mut EvalCtx<'_>, inputs: Tensors) -> Result<Tensors, OpError> {
        let [input] = take_inputs(inputs)?;
        // Sequential on purpose: ~6 ns per token (0.06 ms for 9k tokens), less than handing
        // the work to a second thread costs on a loaded machine.
        let out: Vec<i64> = strings(&input, 0)?
            .iter()
            // `buckets <= i64::MAX`, so the remainder fits in i64.
            .map(|s| (self.hasher.hash(s) % self.buckets) as i64)
            .collect();
        Ok(tensors![Tensor::from_vec(input.shape(), out)?])
    }
}

/// TF's `Hash64(data, n, seed)` (core/lib/hash/hash.cc), a MurmurHash64A variant.
fn hash64(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for c in chunks.by_ref() {
        let mut k = u64::from_le_bytes(c.try_into().expect("chunks_exact(8)"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate() {
            h ^= u64::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOD: u64 = (1 << 63) - 1;

    #[test]
    fn strong_is_siphash24() {
        // string_to_hash_bucket_strong(["", "a", "hello world"], 2**63-1, key=[1, 2])
        let h = Hasher::Strong(1, 2);
        let got: Vec<u64> = ["", "a", "hello world"]
            .iter()
            .map(|s| h.hash(s.as_bytes()) % MOD)
            .collect();
        assert_eq!(
            got,
            [443797209252341628, 5158252350249958646, 1015233985318741639]
        );
    }

    #[test]
    fn legacy_hash64() {
        // string_to_hash_bucket(["", "a", "hello world", "x" * 100], 2**63-1)
        let x100 = "x".repeat(100);
        let got: Vec<u64> = ["", "a", "hello world", &x100]
            .iter()
            .map(|s| Hasher::Legacy.hash(s.as_bytes()) % MOD)
            .collect();
        assert_eq!(
            got,
            [
                105434511174508092,
                2996632905371535868,
                936430787915428848,
                6094197843925237000
            ]
        );
    }
}
