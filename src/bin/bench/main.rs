//! bench: the service's rates next to PostgreSQL's own, side by side in one
//! run. See the README's performance section.
//!
//! It starts a fresh database (an embedded PostgreSQL in a temporary
//! directory, or a new database on the server DATABASE_URL names), starts
//! the service on it as a child process (this binary, re-executed), loads
//! data through the service's RPCs, and measures each figure next to its
//! reference, round after round, quoting medians.

mod client;
mod compression;
mod data;
mod phases;
mod process;
mod procfs;
mod report;
mod scale;
mod workloads;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{NaiveDate, Utc};
use clap::Parser;
use meetings::api::{IMPORT_BATCH, stored_record};
use meetings::domain::NewMeeting;
use meetings::embedded::EmbeddedPostgres;
use meetings::pb;
use meetings::storage::{NewRow, PoolSettings, Storage};
use prost::Message;
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::Mutex;
use tonic::transport::Channel;
use uuid::Uuid;

use client::*;
use data::*;
use process::*;
use procfs::*;
use report::*;
use workloads::*;

#[derive(Debug, Parser)]
#[command(about = "Measure the meetings service against PostgreSQL's own rates")]
struct Args {
    /// A small, fast run (CI runs this to keep the benchmark working).
    #[arg(long)]
    quick: bool,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Aim at a running server instead of starting one; its database must be
    /// DATABASE_URL (for the references). No RSS figures then.
    #[arg(long)]
    addr: Option<String>,
    /// Rounds per figure; medians are quoted.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measure only these figures (comma-separated); all when absent.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Phase>,
    /// Meetings of the realistic archive the reads are timed on (`scale`
    /// figures); 1,000,000 in a full run, 20,000 in a quick one.
    #[arg(long)]
    scale: Option<usize>,
    /// HTTP/2 connections the concurrent callers share (at most 32).
    #[arg(long, default_value_t = CLIENTS)]
    connections: usize,
    /// Internal: run as the service (the child process).
    #[arg(long, hide = true)]
    serve: bool,
}

/// The figures a run can measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    Create,
    Import,
    Get,
    Stream,
    Rss,
    /// ImportMeetings of three report streams of the same meetings with
    /// DUPLICATE_POLICY_MERGE, next to the same streams with KEEP.
    Merge,
    /// Reads of a realistic archive at 10,000, 100,000 and `--scale`
    /// meetings, and its bytes a meeting (a database of its own).
    Scale,
    /// Bytes on the wire and rates of a 1,000-meeting ListMeetings page
    /// and of the pair stream, uncompressed, gzip and zstd (after
    /// `stream`, on its pair).
    Compression,
}

/// Sizes of one run.
struct Plan {
    creates_concurrent: usize,
    creates_single: usize,
    gets: usize,
    imports: usize,
    stream_meetings: usize,
    rss_meetings: usize,
    merge_meetings: usize,
    scale_meetings: usize,
}

const CLIENTS: usize = 32;
const STREAM_PAIR: (&str, &str) = ("AZ", "JP");

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.serve {
        return runtime.block_on(serve());
    }
    runtime.block_on(run(args))
}

/// The child: the service exactly as `meetings` runs it, configured by the
/// environment.
async fn serve() -> anyhow::Result<()> {
    let config = meetings::config::Config::parse_from(["meetings"]);
    let telemetry = meetings::telemetry::init(config.log_format)?;
    let app = meetings::startup::Application::build(config).await?;
    let result = app
        .run_until_stopped(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    telemetry.shutdown();
    result
}

async fn run(args: Args) -> anyhow::Result<()> {
    let plan = if args.quick {
        Plan {
            creates_concurrent: 1_000,
            creates_single: 200,
            gets: 4_000,
            imports: 5_000,
            stream_meetings: 5_000,
            rss_meetings: 5_000,
            merge_meetings: 1_000,
            scale_meetings: args.scale.unwrap_or(20_000),
        }
    } else {
        Plan {
            creates_concurrent: 10_000,
            creates_single: 1_000,
            gets: 40_000,
            imports: 100_000,
            stream_meetings: 200_000,
            rss_meetings: 1_000_000,
            merge_meetings: 10_000,
            scale_meetings: args.scale.unwrap_or(1_000_000),
        }
    };
    let rounds = args.rounds.max(1);

    let db = Database::fresh().await?;
    let storage = Storage::connect(
        db.options.clone(),
        &PoolSettings {
            max_connections: CLIENTS as u32,
            acquire_timeout: Duration::from_secs(30),
        },
        None,
    )
    .await?;
    let server = match &args.addr {
        Some(addr) => Server::Remote(addr.clone()),
        None => Server::spawn(&db.options).await?,
    };
    let channel = server.channel().await?;
    println!(
        "bench: {} run, {rounds} rounds, {} cores",
        if args.quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut bench = Bench {
        plan,
        rounds,
        connections: args.connections.clamp(1, CLIENTS),
        storage,
        server,
        db,
        channel,
        report: Report::default(),
        seq: 0,
    };
    let runs = |phase| args.only.is_empty() || args.only.contains(&phase);
    if runs(Phase::Create) {
        bench.creates().await?;
    }
    if runs(Phase::Import) {
        bench.import().await?;
    }
    if runs(Phase::Get) {
        bench.gets().await?;
    }
    let in_pair = if runs(Phase::Stream) {
        bench.stream().await?
    } else {
        0
    };
    if runs(Phase::Compression) {
        let in_pair = if in_pair > 0 {
            in_pair
        } else {
            bench.load_stream_pair().await?
        };
        bench.compression(in_pair).await?;
    }
    if runs(Phase::Merge) {
        bench.merge().await?;
    }
    if let Some(pid) = bench.server.pid().filter(|_| runs(Phase::Rss)) {
        bench.rss(pid, in_pair).await?;
    }
    if runs(Phase::Scale) {
        let n = bench.plan.scale_meetings;
        bench.scale(n).await?;
    }

    bench.report.print();
    if let Some(path) = &args.json {
        std::fs::write(path, bench.report.json())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    bench.server.stop();
    bench.storage.pool().close().await;
    bench.db.drop().await;
    Ok(())
}

/// What every phase of a run works with.
struct Bench {
    plan: Plan,
    rounds: usize,
    /// HTTP/2 connections the concurrent callers share.
    connections: usize,
    /// The references' own pool on the service's database.
    storage: Storage,
    server: Server,
    db: Database,
    channel: Channel,
    report: Report,
    /// Sample meetings used so far: each load takes new ones.
    seq: usize,
}
