//! TensorFlow's built-in OpDefs, slimmed to what the compiler reads: default attr values and
//! output arg layouts. TF saves NodeDefs with `strip_default_attrs` and refills them at
//! import from its global op registry; a SavedModel's `stripped_op_list` usually carries the
//! OpDefs, but `tf.saved_model.save(..., signatures={})` lists none for ops used only inside
//! functions. This table is the fallback (the model's own OpDef wins). `op_defaults.pb` is
//! generated from TF 2.21 + tensorflow_text 2.21.1 by `tools/make_op_defaults.py`.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost::Message;

use crate::proto::{OpDef, OpList};

static DATA: &[u8] = include_bytes!("op_defaults.pb");

/// Every built-in OpDef, by op type: each op TF's registry gives a default attr or several
/// output args.
pub(crate) fn table() -> &'static HashMap<String, OpDef> {
    static T: OnceLock<HashMap<String, OpDef>> = OnceLock::new();
    T.get_or_init(|| {
        // The file is compiled in and checked by the tests below; a decode failure would be
        // a build defect, and an empty table only loses the fallback.
        OpList::decode(DATA)
            .map(|l| l.op.into_iter().map(|o| (o.name.clone(), o)).collect())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::attr_value::Value;

    fn builtin(name: &str) -> Option<&'static OpDef> {
        table().get(name)
    }

    fn default_of(op: &str, attr: &str) -> Value {
        builtin(op)
            .unwrap_or_else(|| panic!("{op} missing"))
            .attr
            .iter()
            .find(|a| a.name == attr)
            .and_then(|a| a.default_value.clone())
            .and_then(|v| v.value)
            .unwrap_or_else(|| panic!("{op}.{attr} has no default"))
    }

    #[test]
    fn the_table_decodes_and_holds_tf_defaults() {
        assert!(OpList::decode(DATA).is_ok());
        assert!(table().len() > 1000, "{}", table().len());
        // Values from TF 2.21's op registry (core/ops/*.cc REGISTER_OP).
        assert_eq!(default_of("StringSplitV2", "maxsplit"), Value::I(-1));
        assert_eq!(default_of("MatMul", "transpose_a"), Value::B(false));
        assert_eq!(
            default_of("Conv2D", "data_format"),
            Value::S(b"NHWC".to_vec())
        );
        assert_eq!(
            default_of("Cast", "Truncate"),
            Value::B(false),
            "Cast's Truncate"
        );
        // A tensorflow_text op.
        assert!(builtin("SentencepieceOp").is_some());
        // Several output args: names in order.
        let outs: Vec<&str> = builtin("StringSplitV2")
            .unwrap()
            .output_arg
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(outs, ["indices", "values", "shape"]);
    }
}
