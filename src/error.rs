//! The service's one error type and the one place that maps it to a gRPC
//! status. Internal causes are logged here, once, and never reach a caller.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use uuid::Uuid;

use crate::domain::Violations;

/// Domain of every `google.rpc.ErrorInfo` this service sends.
pub const ERROR_DOMAIN: &str = "meetings.v1";

/// Field violations in one status, at most (the last says how many more):
/// with quoted input cut short, a status stays well under the 8 KiB of
/// metadata that C-core clients (Python, Ruby, C++) accept.
pub const MAX_VIOLATIONS_IN_STATUS: usize = 20;

/// Every way a call can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request broke validation rules; `reason` is the ErrorInfo reason.
    #[error("{message}: {violations}")]
    InvalidArgument {
        reason: &'static str,
        message: &'static str,
        violations: Violations,
    },
    #[error("meeting {0} not found")]
    MeetingNotFound(Uuid),
    /// The meeting exists no more as a meeting of its own: it was merged
    /// into `into` (MergeMeetings), where the caller can find it.
    #[error("meeting {id} was merged into meeting {into}")]
    MeetingMerged { id: Uuid, into: Uuid },
    #[error("request_id was already used for a different meeting")]
    RequestIdReused { request_id: String },
    #[error("the meeting matches stored meeting {0} (DUPLICATE_POLICY_REJECT)")]
    DuplicateMeeting(Uuid),
    #[error("meeting {0} was changed since its etag was read: read it again")]
    EtagMismatch(Uuid),
    /// `through` is the newest expired number: the oldest that may still be
    /// kept is the one after it.
    #[error("events up to sequence {through} have expired: start again from a full read")]
    EventsExpired { through: i64 },
    /// An ImportMeetings stream stopped before its end: message `index`
    /// could not be read, or the server is shutting down.
    #[error(
        "{problem}; the import stopped there: {created} meetings were created, \
         {merged} merged into others and {duplicates} were duplicates before it, and meetings from message {resume_index} \
         on were not stored (send them again; request_ids make that safe)",
        problem = match cause {
            ImportStop::TooLarge => format!("message {index} of the import stream exceeds the message size limit"),
            ImportStop::Malformed => format!("message {index} of the import stream is not a valid ImportMeetingsRequest"),
            ImportStop::ShuttingDown => "the server is shutting down".to_owned(),
        }
    )]
    ImportStopped {
        index: u64,
        resume_index: u64,
        cause: ImportStop,
        created: u64,
        merged: u64,
        duplicates: u64,
        rejected: u64,
    },
    /// A WatchMeetings position beyond the newest event.
    #[error("after_sequence is beyond the newest event, {newest}: was the database restored?")]
    SequenceAhead { newest: i64 },
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A call slot was not free: the server's (`scope` "server"), or the
    /// share of the call's connection or caller.
    #[error("too many calls open on this {scope} (at most {limit}); retry later")]
    Overloaded { scope: &'static str, limit: usize },
    #[error("the call's deadline passed")]
    DeadlineExceeded,
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// A statement run for several calls at once failed; its cause was
    /// logged once, for all of them.
    #[error("a batched statement failed")]
    BatchFailed { unavailable: bool },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an import stopped before its stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStop {
    /// A message was over the size limit.
    TooLarge,
    /// A message did not decode.
    Malformed,
    /// The server is stopping.
    ShuttingDown,
}

impl Error {
    pub fn invalid_meeting(violations: Violations) -> Self {
        Self::InvalidArgument {
            reason: "INVALID_MEETING",
            message: "the meeting is not valid",
            violations,
        }
    }

    pub fn invalid_request(violations: Violations) -> Self {
        Self::InvalidArgument {
            reason: "INVALID_REQUEST",
            message: "the request is not valid",
            violations,
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    /// The ErrorInfo reason callers branch on.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidArgument { reason, .. } => reason,
            Self::MeetingNotFound(_) | Self::MeetingMerged { .. } => "MEETING_NOT_FOUND",
            Self::RequestIdReused { .. } => "REQUEST_ID_REUSED",
            Self::DuplicateMeeting(_) => "DUPLICATE_MEETING",
            Self::EtagMismatch(_) => "ETAG_MISMATCH",
            Self::EventsExpired { .. } => "EVENTS_EXPIRED",
            Self::ImportStopped { cause, .. } => match cause {
                ImportStop::TooLarge => "MESSAGE_TOO_LARGE",
                ImportStop::Malformed => "INVALID_REQUEST",
                ImportStop::ShuttingDown => "SHUTTING_DOWN",
            },
            Self::SequenceAhead { .. } => "SEQUENCE_AHEAD",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::Overloaded { .. } => "TOO_MANY_CALLS",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::Unavailable(_) => "DATABASE_UNAVAILABLE",
            Self::Internal(_) | Self::BatchFailed { unavailable: false } => "INTERNAL",
            Self::BatchFailed { unavailable: true } => "DATABASE_UNAVAILABLE",
        }
    }

    /// How long a caller should wait before retrying (google.rpc.RetryInfo),
    /// for errors a retry can get past: the server busy, shutting down or
    /// without its database. None for the rest (a message too large, say,
    /// fails again however long one waits).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        use std::time::Duration;
        match self {
            // Another instance (or this one, restarted) takes the retry.
            Self::ShuttingDown
            | Self::ImportStopped {
                cause: ImportStop::ShuttingDown,
                ..
            } => Some(Duration::from_millis(100)),
            // A slot frees as soon as one call ends.
            Self::Overloaded { .. } => Some(Duration::from_millis(200)),
            // A database restart or failover takes seconds.
            Self::Unavailable(_) | Self::BatchFailed { unavailable: true } => {
                Some(Duration::from_secs(1))
            }
            _ => None,
        }
    }

    /// The error with its cause, for the log of a background task, which
    /// handles its own errors (callers of an RPC see a status without it).
    pub fn detail(&self) -> String {
        match self {
            Self::Unavailable(cause) => format!("database unavailable: {cause}"),
            Self::Internal(cause) => format!("internal error: {cause:#}"),
            other => other.to_string(),
        }
    }

    /// Logs an internal cause (the only place one is logged); callers see
    /// a status without it.
    pub fn log_cause(&self) {
        match self {
            Self::Unavailable(cause) => tracing::warn!(error = %cause, "database unavailable"),
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
            }
            _ => {}
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if crate::storage::is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Internal(e.into())
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let mut details = ErrorDetails::new();
        let mut metadata = HashMap::new();
        let (code, message) = match &e {
            Error::InvalidArgument {
                message,
                violations,
                ..
            } => {
                for v in violations.reported(MAX_VIOLATIONS_IN_STATUS) {
                    details.add_bad_request_violation(v.field, v.description);
                }
                let first = violations.iter().next();
                let message = match (violations.total(), first) {
                    (1, Some(v)) => format!("{message}: {}: {}", v.field, v.description),
                    (n, _) => format!("{message}: {n} violations, see the BadRequest details"),
                };
                (Code::InvalidArgument, message)
            }
            Error::MeetingNotFound(id) => {
                metadata.insert("id".to_owned(), id.to_string());
                (Code::NotFound, e.to_string())
            }
            Error::MeetingMerged { id, into } => {
                metadata.insert("id".to_owned(), id.to_string());
                metadata.insert("merged_into".to_owned(), into.to_string());
                (Code::NotFound, e.to_string())
            }
            Error::RequestIdReused { request_id } => {
                metadata.insert("request_id".to_owned(), request_id.clone());
                (Code::AlreadyExists, e.to_string())
            }
            Error::DuplicateMeeting(id) => {
                metadata.insert("meeting_id".to_owned(), id.to_string());
                (Code::AlreadyExists, e.to_string())
            }
            Error::EtagMismatch(id) => {
                metadata.insert("id".to_owned(), id.to_string());
                (Code::Aborted, e.to_string())
            }
            Error::EventsExpired { through } => {
                metadata.insert("oldest_sequence".to_owned(), (through + 1).to_string());
                (Code::OutOfRange, e.to_string())
            }
            Error::ImportStopped {
                index,
                resume_index,
                cause,
                created,
                merged,
                duplicates,
                rejected,
            } => {
                for (key, value) in [
                    ("index", index),
                    ("resume_index", resume_index),
                    ("created_count", created),
                    ("merged_count", merged),
                    ("duplicate_count", duplicates),
                    ("rejected_count", rejected),
                ] {
                    metadata.insert(key.to_owned(), value.to_string());
                }
                let code = match cause {
                    ImportStop::TooLarge => Code::ResourceExhausted,
                    ImportStop::Malformed => Code::InvalidArgument,
                    ImportStop::ShuttingDown => Code::Unavailable,
                };
                (code, e.to_string())
            }
            Error::SequenceAhead { newest } => {
                metadata.insert("newest_sequence".to_owned(), newest.to_string());
                (Code::OutOfRange, e.to_string())
            }
            Error::ShuttingDown => (Code::Unavailable, e.to_string()),
            Error::Overloaded { scope, limit } => {
                metadata.insert("scope".to_owned(), (*scope).to_owned());
                metadata.insert("limit".to_owned(), limit.to_string());
                (Code::ResourceExhausted, e.to_string())
            }
            Error::DeadlineExceeded => (Code::DeadlineExceeded, e.to_string()),
            Error::Unavailable(_) | Error::BatchFailed { unavailable: true } => {
                e.log_cause();
                (
                    Code::Unavailable,
                    "the database is unavailable; retry later".to_owned(),
                )
            }
            Error::Internal(_) | Error::BatchFailed { unavailable: false } => {
                e.log_cause();
                (Code::Internal, "internal error".to_owned())
            }
        };
        details.set_error_info(e.reason(), ERROR_DOMAIN, metadata);
        if let Some(delay) = e.retry_after() {
            details.set_retry_info(Some(delay));
        }
        Status::with_error_details(code, message, details)
    }
}
