//! A byte trie over the vocabulary (pieces to ids), built at load from the parsed model. It
//! answers what sentencepiece asks its darts tries: every vocabulary entry that is a prefix of
//! the text at a position (unigram lattice, user-defined symbol matcher).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
struct Node {
    /// First outgoing edge in `labels`/`targets`.
    first: u32,
    /// Number of outgoing edges (sorted by label).
    len: u16,
    /// The id stored at this node, or -1.
    value: i32,
}

/// Immutable byte trie mapping keys to non-negative `i32` values.
#[derive(Debug, Clone)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
    labels: Vec<u8>,
    targets: Vec<u32>,
    /// Root children by first byte (0 = none), so the first step is one load.
    root: Box<[u32; 256]>,
}

impl Trie {
    /// Builds the trie. Later duplicates of a key overwrite earlier ones.
    pub(crate) fn build<'a>(entries: impl IntoIterator<Item = (&'a [u8], i32)>) -> Trie {
        // Temporary pointer trie, then flattened breadth-first.
        let mut tmp: Vec<(BTreeMap<u8, usize>, i32)> = vec![(BTreeMap::new(), -1)];
        for (key, v) in entries {
            let mut n = 0;
            for &b in key {
                let next = tmp.len();
                let child = *tmp[n].0.entry(b).or_insert(next);
                if child == next {
                    tmp.push((BTreeMap::new(), -1));
                }
                n = child;
            }
            tmp[n].1 = v;
        }
        let mut order = vec![0usize];
        let mut new_index = vec![0u32; tmp.len()];
        let mut i = 0;
        while i < order.len() {
            let n = order[i];
            for &c in tmp[n].0.values() {
                new_index[c] = order.len() as u32;
                order.push(c);
            }
            i += 1;
        }
        let mut nodes = Vec::with_capacity(order.len());
        let mut labels = Vec::with_capacity(order.len());
        let mut targets = Vec::with_capacity(order.len());
        for &n in &order {
            nodes.push(Node {
                first: labels.len() as u32,
                len: tmp[n].0.len() as u16,
                value: tmp[n].1,
            });
            for (&b, &c) in &tmp[n].0 {
                labels.push(b);
                targets.push(new_index[c]);
            }
        }
        let mut root = Box::new([0u32; 256]);
        for (&b, &c) in &tmp[0].0 {
            root[b as usize] = new_index[c];
        }
        Trie {
            nodes,
            labels,
            targets,
            root,
        }
    }

    fn child(&self, node: usize, b: u8) -> Option<usize> {
        if node == 0 {
            let c = self.root[b as usize];
            return (c != 0).then_some(c as usize);
        }
        let n = self.nodes[node];
        let lo = n.first as usize;
        let labels = &self.labels[lo..lo + n.len as usize];
        let i = if labels.len() <= 8 {
            labels.iter().position(|&l| l == b)?
        } else {
            labels.binary_search(&b).ok()?
        };
        Some(self.targets[lo + i] as usize)
    }

    /// Calls `f(length, value)` for every key that is a prefix of `text`, shortest first.
    #[inline]
    pub(crate) fn prefixes(&self, text: &[u8], mut f: impl FnMut(usize, i32)) {
        let mut node = 0;
        for (i, &b) in text.iter().enumerate() {
            match self.child(node, b) {
                Some(c) => node = c,
                None => return,
            }
            let v = self.nodes[node].value;
            if v >= 0 {
                f(i + 1, v);
            }
        }
    }

    /// Length of the longest key that is a prefix of `text`.
    pub(crate) fn longest_prefix(&self, text: &[u8]) -> Option<usize> {
        let mut best = None;
        self.prefixes(text, |len, _| best = Some(len));
        best
    }
}
