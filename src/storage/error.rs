//! PostgreSQL's error codes that the service acts on, by name, and which
//! database errors mean "unavailable" rather than a bug.

/// SQLSTATE 40P01: two transactions waited on each other.
pub const DEADLOCK_DETECTED: &str = "40P01";
/// SQLSTATE class 08: connection exceptions.
const CONNECTION_EXCEPTION_CLASS: &str = "08";
/// SQLSTATE 57P01, 57P02, 57P03: the server is shutting down (by an
/// administrator, after a crash) or cannot accept connections yet.
const ADMIN_SHUTDOWN: &str = "57P01";
const CRASH_SHUTDOWN: &str = "57P02";
const CANNOT_CONNECT_NOW: &str = "57P03";
/// SQLSTATE 53300: too many connections.
const TOO_MANY_CONNECTIONS: &str = "53300";

/// Whether `e` means "the database cannot be reached or is shutting down",
/// worth a retry by the caller, as opposed to a bug.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with(CONNECTION_EXCEPTION_CLASS)
                || [
                    ADMIN_SHUTDOWN,
                    CRASH_SHUTDOWN,
                    CANNOT_CONNECT_NOW,
                    TOO_MANY_CONNECTIONS,
                ]
                .contains(&&*code)
        }),
        _ => false,
    }
}

/// Whether `e` is PostgreSQL's SQLSTATE `code`.
pub fn has_code(e: &sqlx::Error, code: &str) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some(code))
}
