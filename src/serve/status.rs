//! TF Serving's status: a canonical code (gRPC's numbering) plus a message, and the HTTP status
//! TF Serving's REST server maps each code to (ms/http_server.cc `ToHTTPStatusCode`).

use std::fmt;

/// Canonical error codes (tensorflow.error.Code == grpc status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// The `tensorflow.error.Code` enum name (`NOT_FOUND`), as in metrics and status JSON.
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// TF Serving's REST mapping of a code to an HTTP status.
    pub fn http(self) -> u16 {
        match self {
            Code::Ok => 200,
            Code::Cancelled => 499,
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            Code::Unauthenticated => 401,
            Code::Unknown | Code::Internal | Code::DataLoss => 500,
        }
    }
}

/// A failed request: code and message (TF Serving's `absl::Status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Canonical code.
    pub code: Code,
    /// Message shown to the client.
    pub msg: String,
}

impl Status {
    /// A status with `code` and `msg`.
    pub fn new(code: Code, msg: impl Into<String>) -> Status {
        Status {
            code,
            msg: msg.into(),
        }
    }
    /// INVALID_ARGUMENT.
    pub fn invalid(msg: impl Into<String>) -> Status {
        Status::new(Code::InvalidArgument, msg)
    }
    /// NOT_FOUND.
    pub fn not_found(msg: impl Into<String>) -> Status {
        Status::new(Code::NotFound, msg)
    }
    /// UNIMPLEMENTED.
    pub fn unimplemented(msg: impl Into<String>) -> Status {
        Status::new(Code::Unimplemented, msg)
    }
    /// RESOURCE_EXHAUSTED.
    pub fn exhausted(msg: impl Into<String>) -> Status {
        Status::new(Code::ResourceExhausted, msg)
    }
    /// INTERNAL.
    pub fn internal(msg: impl Into<String>) -> Status {
        Status::new(Code::Internal, msg)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.msg)
    }
}

impl std::error::Error for Status {}

impl From<tfhub_error::Error> for Status {
    /// A model error: bad inputs and op failures on them are INVALID_ARGUMENT, as TF's
    /// session Run reports kernel errors; anything else is INTERNAL.
    fn from(e: tfhub_error::Error) -> Status {
        let msg = chain(&e);
        match e {
            tfhub_error::Error::Input { .. } | tfhub_error::Error::Node { .. } => {
                Status::invalid(msg)
            }
            _ => Status::internal(msg),
        }
    }
}

use crate::error as tfhub_error;

/// `a: b: c` for an error and its sources.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
