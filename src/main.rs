use std::process::ExitCode;

use clap::Parser;
use meetings::cli::{Cli, Command};
use meetings::config::Config;
use meetings::startup::Application;
use meetings::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(config)) => serve(config).await,
        Some(command) => meetings::cli::run(command).await.map_err(|e| {
            eprintln!("error: {e:#}");
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(()) => ExitCode::FAILURE,
    }
}

/// Runs the service; errors are logged (once) here.
async fn serve(config: Config) -> Result<(), ()> {
    // SIGHUP's default action ends the process: from here on it is the
    // service's (a reload once serving; ignored while starting).
    let _hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    let telemetry = telemetry::init(config.log_format).map_err(|e| {
        eprintln!("error: {e:#}");
    })?;
    if telemetry.exporting() {
        tracing::info!("exporting traces over OTLP");
    }
    let result = run(config).await.map_err(|e| {
        tracing::error!(error = format!("{e:#}"), "meetings failed");
    });
    telemetry.shutdown();
    result
}

async fn run(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    tracing::info!(addr = %app.local_addr(), "serving meetings.v1.MeetingService");
    app.run_until_stopped(shutdown_signal()).await
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("can install a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
