//! Ops tfhub refuses to run: anything with ambient authority, i.e. anything that reaches
//! outside the tensors it is given (files, sockets, other processes, host-language code).
//!
//! A model is data, not a program with the user's rights: such ops are refused **at load**,
//! wherever they are reachable (signatures, init and restore plans, any function they call),
//! and listed all at once, each with why. They are never built, so nothing can run them, not
//! even constant folding. Nodes that no signature reaches (TF2's own saver subgraph with
//! `SaveV2`, `MergeV2Checkpoints`) are pruned before this check and do not block a load.
//!
//! The two file-reading ops real models need stay allowed, confined to the model directory:
//! `RestoreV2` reads only the checkpoint tfhub opened at load, and
//! `InitializeTableFromTextFileV2` reads only regular files inside the model directory
//! ([`super::Session::confine`]). TF's op list was searched for file, reader, dataset,
//! summary, debug, RPC, collective and py-func ops (TF 2.21 `tf.raw_ops`); unknown ops are
//! not run either (they are reported as unsupported).

use std::collections::BTreeMap;

use crate::proto::{attr_value, AttrValue};

const WRITES: &str = "writes files";
const READS: &str = "reads files outside the model";
const MMAPS: &str = "memory-maps a file named by the graph";
const CODE: &str = "runs host-language code";
const NET: &str = "talks to other processes or the network";
const DEBUG: &str = "writes debug dumps to files or sockets";
const FS: &str = "reconfigures file systems";

/// (op, why) for ops refused whatever their attributes. Sorted by op name.
const ALWAYS: &[(&str, &str)] = &[
    ("BigQueryReader", NET),
    ("CSVDataset", READS),
    ("CSVDatasetV2", READS),
    ("CacheDataset", WRITES),
    ("CacheDatasetV2", WRITES),
    ("CloseSummaryWriter", WRITES),
    ("CollectiveAllToAllV2", NET),
    ("CollectiveAllToAllV3", NET),
    ("CollectiveAssignGroupV2", NET),
    ("CollectiveBcastRecv", NET),
    ("CollectiveBcastRecvV2", NET),
    ("CollectiveBcastSend", NET),
    ("CollectiveBcastSendV2", NET),
    ("CollectiveGather", NET),
    ("CollectiveGatherV2", NET),
    ("CollectiveInitializeCommunicator", NET),
    ("CollectivePermute", NET),
    ("CollectiveReduce", NET),
    ("CollectiveReduceScatterV2", NET),
    ("CollectiveReduceV2", NET),
    ("CollectiveReduceV3", NET),
    ("CreateSummaryDbWriter", WRITES),
    ("CreateSummaryFileWriter", WRITES),
    ("DataServiceDataset", NET),
    ("DataServiceDatasetV2", NET),
    ("DataServiceDatasetV3", NET),
    ("DataServiceDatasetV4", NET),
    ("DatasetToTFRecord", WRITES),
    ("DebugIdentity", DEBUG),
    ("DebugIdentityV2", DEBUG),
    ("DebugIdentityV3", DEBUG),
    ("DebugNanCount", DEBUG),
    ("DebugNumericSummary", DEBUG),
    ("DebugNumericSummaryV2", DEBUG),
    ("DistributedSave", WRITES),
    ("EagerPyFunc", CODE),
    ("ExperimentalCSVDataset", READS),
    ("ExperimentalDatasetToTFRecord", WRITES),
    ("ExperimentalLMDBDataset", READS),
    ("ExperimentalMatchingFilesDataset", READS),
    ("ExperimentalSqlDataset", READS),
    ("FileSystemSetConfiguration", FS),
    ("FixedLengthRecordDataset", READS),
    ("FixedLengthRecordDatasetV2", READS),
    ("FixedLengthRecordReader", READS),
    ("FixedLengthRecordReaderV2", READS),
    ("FlushSummaryWriter", WRITES),
    ("GcsConfigureBlockCache", FS),
    ("GcsConfigureCredentials", FS),
    ("GenerateVocabRemapping", READS),
    ("ImmutableConst", MMAPS),
    ("ImportEvent", WRITES),
    ("LMDBDataset", READS),
    ("LMDBReader", READS),
    ("ListSnapshotChunksDataset", READS),
    ("LoadAndRemapMatrix", READS),
    ("LoadDataset", READS),
    ("MatchingFiles", READS),
    ("MatchingFilesDataset", READS),
    ("MergeV2Checkpoints", WRITES),
    ("NcclAllReduce", NET),
    ("NcclBroadcast", NET),
    ("NcclReduce", NET),
    ("PyFunc", CODE),
    ("PyFuncStateless", CODE),
    ("ReadFile", READS),
    ("ReaderRead", READS),
    ("ReaderReadUpTo", READS),
    ("ReaderReadUpToV2", READS),
    ("ReaderReadV2", READS),
    ("ReaderRestoreState", READS),
    ("ReaderRestoreStateV2", READS),
    ("RecordInput", READS),
    ("Recv", NET),
    ("RegisterDataset", NET),
    ("RegisterDatasetV2", NET),
    ("RemoteCall", NET),
    ("Restore", READS),
    ("RestoreSlice", READS),
    ("Rpc", NET),
    ("Save", WRITES),
    ("SaveDataset", WRITES),
    ("SaveDatasetV2", WRITES),
    ("SaveSlices", WRITES),
    ("SaveV2", WRITES),
    ("Send", NET),
    ("SnapshotChunkDataset", READS),
    ("SnapshotDataset", WRITES),
    ("SnapshotDatasetReader", READS),
    ("SnapshotDatasetV2", WRITES),
    ("SnapshotNestedDatasetReader", READS),
    ("SqlDataset", READS),
    ("StatsAggregatorSetSummaryWriter", WRITES),
    ("TFRecordDataset", READS),
    ("TFRecordDatasetV2", READS),
    ("TFRecordReader", READS),
    ("TFRecordReaderV2", READS),
    ("TextLineDataset", READS),
    ("TextLineReader", READS),
    ("TextLineReaderV2", READS),
    ("TryRpc", NET),
    ("WholeFileReader", READS),
    ("WholeFileReaderV2", READS),
    ("WriteAudioSummary", WRITES),
    ("WriteFile", WRITES),
    ("WriteGraphSummary", WRITES),
    ("WriteHistogramSummary", WRITES),
    ("WriteImageSummary", WRITES),
    ("WriteRawProtoSummary", WRITES),
    ("WriteScalarSummary", WRITES),
    ("WriteSummary", WRITES),
    ("_HostRecv", NET),
    ("_HostSend", NET),
    ("_Recv", NET),
    ("_Send", NET),
];

fn attr_bytes<'a>(attrs: &'a BTreeMap<String, AttrValue>, name: &str) -> Option<&'a [u8]> {
    match attrs.get(name).and_then(|a| a.value.as_ref()) {
        Some(attr_value::Value::S(s)) => Some(s),
        _ => None,
    }
}

/// Why `op` (with these attributes) must never run, or `None` if it may be built.
pub(crate) fn refusal(op: &str, attrs: &BTreeMap<String, AttrValue>) -> Option<&'static str> {
    if let Ok(i) = ALWAYS.binary_search_by(|(name, _)| (*name).cmp(op)) {
        return Some(ALWAYS[i].1);
    }
    match op {
        // `tf.print(..., output_stream="file:///path")` appends to that file; stderr/stdout
        // printing is not ambient authority over the file system.
        "PrintV2" => attr_bytes(attrs, "output_stream")
            .filter(|s| s.starts_with(b"file://"))
            .map(|_| "writes files (output_stream is a file)"),
        // A descriptor_source other than the linked-in pool names a descriptor file to read.
        "DecodeProtoV2" | "EncodeProto" => attr_bytes(attrs, "descriptor_source")
            .filter(|s| !s.is_empty() && *s != b"local://")
            .map(|_| "reads files outside the model (descriptor_source is a file)"),
        // `debug_ops_spec` makes a Copy dump its tensor to a file:// or grpc:// URL.
        "Copy" | "CopyHost" => match attrs.get("debug_ops_spec").and_then(|a| a.value.as_ref()) {
            Some(attr_value::Value::List(l)) if !l.s.is_empty() => Some(DEBUG),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        assert!(ALWAYS.windows(2).all(|w| w[0].0 < w[1].0), "sort ALWAYS");
    }

    #[test]
    fn attribute_dependent_refusals() {
        let s = |v: &str| AttrValue {
            value: Some(attr_value::Value::S(v.as_bytes().to_vec())),
        };
        let mut a = BTreeMap::new();
        assert_eq!(refusal("PrintV2", &a), None);
        a.insert("output_stream".to_string(), s("stderr"));
        assert_eq!(refusal("PrintV2", &a), None);
        a.insert("output_stream".to_string(), s("file:///tmp/x"));
        assert!(refusal("PrintV2", &a).is_some());
        let mut d = BTreeMap::new();
        d.insert("descriptor_source".to_string(), s("local://"));
        assert_eq!(refusal("DecodeProtoV2", &d), None);
        d.insert("descriptor_source".to_string(), s("/etc/passwd"));
        assert!(refusal("DecodeProtoV2", &d).is_some());
        assert_eq!(refusal("WriteFile", &a), Some(WRITES));
        assert_eq!(refusal("AddV2", &a), None);
    }
}
