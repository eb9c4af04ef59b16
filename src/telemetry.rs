//! Logs: the tracing subscriber. (Each call's span is opened by
//! `api::EdgeLayer`.)

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; RUST_LOG sets the level (default info).
/// Does nothing if one is already installed (as in tests).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a terminal: a file or a log collector would
    // get escape sequences in every line.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
