//! TF1 load steps, as TF's `load_v1_in_v2` treats TF1 exports (TF1 Hub modules, TF1
//! SavedModels, Estimator exports): a meta graph without a `saver_def` is restored by TF's
//! default `Saver` (one `RestoreV2` keyed by each global variable's name, then
//! `Assign`/`AssignVariableOp`); a meta graph without an init op runs
//! `Scaffold.default_local_init_op()`'s table initializers (the `table_initializer`
//! collection) and local-variable initializers. The empty tag set of a TF1 Hub module is
//! chosen by `choose_meta_graph`, its `saved_model_assets` read by `meta::MetaView`.

use std::collections::HashMap;

use prost::Message;

use crate::proto::collection_def::Kind;
use crate::proto::{attr_value, AttrValue, MetaGraphDef, NodeDef, TensorProto, VariableDef};

fn node_list(mg: &MetaGraphDef, key: &str) -> Vec<String> {
    match mg.collection_def.get(key).and_then(|c| c.kind.as_ref()) {
        Some(Kind::NodeList(l)) => l.value.clone(),
        _ => Vec::new(),
    }
}

fn variable_defs(mg: &MetaGraphDef, key: &str) -> Vec<VariableDef> {
    match mg.collection_def.get(key).and_then(|c| c.kind.as_ref()) {
        Some(Kind::BytesList(l)) => l
            .value
            .iter()
            .filter_map(|b| VariableDef::decode(b.as_slice()).ok())
            .collect(),
        _ => Vec::new(),
    }
}

fn op_name(tensor: &str) -> &str {
    let t = tensor.trim_start_matches('^');
    t.rsplit_once(':').map_or(t, |(n, _)| n)
}

/// Targets of TF's default local init op when a meta graph names no init op: every table
/// initializer and every local variable's initializer.
pub(crate) fn default_init_targets(mg: &MetaGraphDef) -> Vec<String> {
    let mut t = node_list(mg, "table_initializer");
    t.extend(
        variable_defs(mg, "local_variables")
            .into_iter()
            .map(|v| op_name(&v.initializer_name).to_string())
            .filter(|n| !n.is_empty()),
    );
    t.into_iter().map(|n| op_name(&n).to_string()).collect()
}

fn attr(v: attr_value::Value) -> AttrValue {
    AttrValue { value: Some(v) }
}

fn string_const(name: &str, values: Vec<Vec<u8>>) -> NodeDef {
    use crate::proto::{tensor_shape_proto::Dim, TensorShapeProto};
    let n = values.len() as i64;
    let tensor = TensorProto {
        dtype: crate::tensor::DType::String.to_proto(),
        tensor_shape: Some(TensorShapeProto {
            dim: vec![Dim {
                size: n,
                ..Default::default()
            }],
            ..Default::default()
        }),
        string_val: values,
        ..Default::default()
    };
    let mut attrs = HashMap::new();
    attrs.insert(
        "value".to_string(),
        attr(attr_value::Value::Tensor(Box::new(tensor))),
    );
    attrs.insert(
        "dtype".to_string(),
        attr(attr_value::Value::Type(
            crate::tensor::DType::String.to_proto(),
        )),
    );
    NodeDef {
        name: name.to_string(),
        op: "Const".into(),
        attr: attrs.into_iter().collect(),
        ..Default::default()
    }
}

/// TF's default `Saver()` for a meta graph without a `saver_def` (load_v1_in_v2 via
/// saver.py `_create_saver_from_imported_meta_graph`): the global variables' nodes copied
/// from `graph`, then `RestoreV2` of each under its op name and an assignment. Returns the
/// nodes, the prefix placeholder's name and the target to run; `None` when the meta graph
/// has no global variables.
pub(crate) fn default_saver(
    mg: &MetaGraphDef,
    graph: &[NodeDef],
) -> Option<(Vec<NodeDef>, String, String)> {
    let vars = variable_defs(mg, "variables");
    if vars.is_empty() {
        return None;
    }
    let by_name: HashMap<&str, &NodeDef> = graph.iter().map(|n| (n.name.as_str(), n)).collect();
    let mut nodes: Vec<NodeDef> = Vec::new();
    let mut keys = Vec::new();
    let mut dtypes = Vec::new();
    let mut var_nodes = Vec::new();
    for v in &vars {
        let name = op_name(&v.variable_name);
        let Some(node) = by_name.get(name) else {
            continue;
        };
        let dtype = match node.attr.get("dtype").and_then(|a| a.value.clone()) {
            Some(attr_value::Value::Type(t)) => t,
            _ => continue,
        };
        // Ref variables are keyed by op name; resource variables by their shared name.
        let key = match node.attr.get("shared_name").and_then(|a| a.value.as_ref()) {
            Some(attr_value::Value::S(s)) if v.is_resource && !s.is_empty() => s.clone(),
            _ => name.as_bytes().to_vec(),
        };
        keys.push(key);
        dtypes.push(dtype);
        let mut node = (*node).clone();
        node.input.clear();
        var_nodes.push((node, v.is_resource));
    }
    if var_nodes.is_empty() {
        return None;
    }
    let prefix = "tfhub_default_saver/Const".to_string();
    nodes.push(NodeDef {
        name: prefix.clone(),
        op: "Placeholder".into(),
        attr: [(
            "dtype".to_string(),
            attr(attr_value::Value::Type(
                crate::tensor::DType::String.to_proto(),
            )),
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    });
    let n = keys.len();
    nodes.push(string_const("tfhub_default_saver/tensor_names", keys));
    nodes.push(string_const(
        "tfhub_default_saver/shape_and_slices",
        vec![Vec::new(); n],
    ));
    nodes.push(NodeDef {
        name: "tfhub_default_saver/RestoreV2".into(),
        op: "RestoreV2".into(),
        input: vec![
            prefix.clone(),
            "tfhub_default_saver/tensor_names".into(),
            "tfhub_default_saver/shape_and_slices".into(),
        ],
        attr: [(
            "dtypes".to_string(),
            attr(attr_value::Value::List(Box::new(attr_value::ListValue {
                r#type: dtypes,
                ..Default::default()
            }))),
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    });
    let mut assigns = Vec::new();
    for (i, (var, resource)) in var_nodes.into_iter().enumerate() {
        let a = format!("tfhub_default_saver/Assign_{i}");
        nodes.push(NodeDef {
            name: a.clone(),
            op: if resource {
                "AssignVariableOp"
            } else {
                "Assign"
            }
            .into(),
            input: vec![
                var.name.clone(),
                format!("tfhub_default_saver/RestoreV2:{i}"),
            ],
            ..Default::default()
        });
        assigns.push(format!("^{a}"));
        nodes.push(var);
    }
    let target = "tfhub_default_saver/restore_all".to_string();
    nodes.push(NodeDef {
        name: target.clone(),
        op: "NoOp".into(),
        input: assigns,
        ..Default::default()
    });
    Some((nodes, prefix, target))
}
