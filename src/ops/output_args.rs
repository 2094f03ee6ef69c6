//! Output argument lists of multi-output ops, for graphs that reference `node:out_arg:i` on an
//! op their MetaGraph has no `OpDef` for. TF's SavedModel export strips the op list to the ops
//! it reaches through the graph and called functions, but not the bodies of `While`/`If`, so a
//! `tf.map_fn` body's `RaggedRange:rt_dense_values` or `RaggedTensorFromVariant:
//! output_dense_values` would otherwise resolve to output 0. Names and list attributes are the
//! ops' `REGISTER_OP` output args (TF core and tensorflow_text 2.21).

use std::collections::BTreeMap;

use crate::proto::{attr_value, AttrValue};

/// How many tensors an output arg holds.
#[derive(Clone, Copy)]
enum Len {
    One,
    /// `number_attr` (`N * T`).
    Attr(&'static str),
}

use Len::{Attr, One};

const OUTPUTS: &[(&str, &[(&str, Len)])] = &[
    (
        "FastBertNormalize",
        &[
            ("output_values", One),
            ("output_offsets", One),
            ("output_row_splits", One),
        ],
    ),
    (
        "FastWordpieceTokenizeWithOffsets",
        &[
            ("output_subwords", One),
            ("output_ids", One),
            ("output_row_splits", One),
            ("start_values", One),
            ("end_values", One),
        ],
    ),
    (
        "RaggedGather",
        &[
            ("output_nested_splits", Attr("OUTPUT_RAGGED_RANK")),
            ("output_dense_values", One),
        ],
    ),
    (
        "RaggedRange",
        &[("rt_nested_splits", One), ("rt_dense_values", One)],
    ),
    (
        "RaggedTensorFromVariant",
        &[
            ("output_nested_splits", Attr("output_ragged_rank")),
            ("output_dense_values", One),
        ],
    ),
    (
        "RegexSplitWithOffsets",
        &[
            ("tokens", One),
            ("begin_offsets", One),
            ("end_offsets", One),
            ("row_splits", One),
        ],
    ),
    (
        "TFText>RoundRobinTrim",
        &[("values", Attr("N")), ("row_splits", Attr("N"))],
    ),
    (
        "TFText>WhitespaceTokenizeWithOffsetsV2",
        &[
            ("output_tokens", One),
            ("output_row_splits", One),
            ("output_start_offsets", One),
            ("output_end_offsets", One),
        ],
    ),
    ("TopKV2", &[("values", One), ("indices", One)]),
    (
        "UnicodeDecodeWithOffsets",
        &[
            ("row_splits", One),
            ("char_values", One),
            ("char_to_byte_starts", One),
        ],
    ),
    (
        "UnicodeDecode",
        &[("row_splits", One), ("char_values", One)],
    ),
    (
        "UnicodeScriptTokenizeWithOffsets",
        &[
            ("output_values", One),
            ("output_values_inner_splits", One),
            ("output_offset_starts", One),
            ("output_offset_limits", One),
            ("output_outer_splits", One),
        ],
    ),
    ("Unique", &[("y", One), ("idx", One)]),
    (
        "WhitespaceTokenizeWithOffsets",
        &[
            ("output_values", One),
            ("output_values_inner_splits", One),
            ("output_offset_starts", One),
            ("output_offset_limits", One),
            ("output_outer_splits", One),
        ],
    ),
    (
        "WordpieceTokenizeWithOffsets",
        &[
            ("output_values", One),
            ("output_row_lengths", One),
            ("start_values", One),
            ("limit_values", One),
        ],
    ),
];

/// Flat index of `out_arg:idx` on `op`, if `op` is in the table and its list lengths are in
/// `attrs`.
pub(crate) fn offset(
    op: &str,
    out_arg: &str,
    idx: usize,
    attrs: &BTreeMap<String, AttrValue>,
) -> Option<usize> {
    let (_, args) = OUTPUTS.iter().find(|(name, _)| *name == op)?;
    let mut off = 0usize;
    for &(name, len) in args.iter() {
        if name == out_arg {
            return Some(off + idx);
        }
        off += match len {
            One => 1,
            Attr(a) => match attrs.get(a)?.value.as_ref()? {
                attr_value::Value::I(n) => usize::try_from(*n).ok()?,
                _ => return None,
            },
        };
    }
    None
}
