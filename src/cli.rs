//! The command line: `meetings` (or `meetings serve`) runs the service; the
//! other subcommands are a client of a running one. JSON in and out uses
//! the proto3 JSON mapping, as grpcurl shows it, so a record copied from
//! grpcurl output can be fed back unchanged.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::config::Config;
use crate::pb;
use crate::pb::meeting_service_client::MeetingServiceClient;

/// Diplomatic meeting records over gRPC: serve them, or talk to a server.
#[derive(Debug, Parser)]
#[command(
    name = "meetings",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Server flags, for `meetings` without a subcommand.
    #[command(flatten)]
    pub serve: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (what `meetings` alone does).
    Serve(Config),
    /// Create a meeting from a JSON file: a Meeting, or a CreateMeetingRequest
    /// ({"meeting": ..., "requestId": ...}) as grpcurl takes it.
    Create {
        file: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print one meeting.
    Get {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print every meeting between two parties, one JSON object a line. A
    /// side is a country code ("AZ") or "org:" and an organisation code
    /// ("org:EU").
    Pair {
        side_a: String,
        side_b: String,
        /// Only meetings that end on or after this day (YYYY-MM-DD).
        #[arg(long)]
        from: Option<String>,
        /// Only meetings that began on or before this day (YYYY-MM-DD).
        #[arg(long)]
        to: Option<String>,
        /// Newest first.
        #[arg(long)]
        newest_first: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print meetings, newest first, one JSON object a line.
    List {
        /// Only meetings with a participant from this country.
        #[arg(long)]
        country: Option<String>,
        /// Only meetings with a participant from this organisation.
        #[arg(long)]
        organization: Option<String>,
        /// Only meetings with a participant of this name (any spelling).
        #[arg(long)]
        participant: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Only meetings with this topic (ignoring case).
        #[arg(long)]
        topic: Option<String>,
        /// Full-text search over summary, topics, names and titles.
        #[arg(long)]
        query: Option<String>,
        /// Stop after this many meetings (default: all).
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Import a JSON-lines file (one Meeting or ImportMeetingsRequest a line)
    /// with a progress bar, then print the report.
    Import {
        file: PathBuf,
        /// Merge each meeting into the stored meeting it matches
        /// (DUPLICATE_POLICY_MERGE), unless its line sets "duplicates".
        #[arg(long)]
        merge: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Merge stored meetings into TARGET (MergeMeetings) and print it.
    Merge {
        target: String,
        #[arg(required = true)]
        sources: Vec<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Report, for each meeting of a JSON-lines file, the stored meetings
    /// it would merge with, one JSON object a line; stores nothing.
    Duplicates {
        file: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Make a new bearer token: prints the token (give it to the client; it
    /// is stored nowhere) and the line to add to the tokens file.
    Token {
        /// Comma-separated: read, write (write includes read).
        #[arg(long, default_value = "read")]
        scopes: String,
        /// A name for the tokens file, to tell tokens apart.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Print changes as they happen, one JSON event a line, until Ctrl-C.
    Watch {
        /// With side_b: only changes to this pair's meetings (a country
        /// code, or "org:" and an organisation code).
        side_a: Option<String>,
        side_b: Option<String>,
        /// Resume after this event sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The server's address: http://host:port, or https://host:port for
    /// TLS (the certificate is verified against the system's roots, or
    /// --ca-cert).
    #[arg(long, env = "MEETINGS_ADDR", default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// Bearer token, for a server with a tokens file.
    #[arg(long, env = "MEETINGS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM file of the CA that signed the server's certificate (a private
    /// CA), trusted instead of the system's roots.
    #[arg(long, env = "MEETINGS_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// PEM certificate to present to a server that requires client
    /// certificates (mTLS); with --client-key.
    #[arg(long, env = "MEETINGS_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, env = "MEETINGS_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// Adds the bearer token to every call.
#[derive(Debug, Clone)]
pub struct BearerToken(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type Client =
    MeetingServiceClient<tonic::service::interceptor::InterceptedService<Channel, BearerToken>>;

impl ServerArgs {
    async fn client(&self) -> anyhow::Result<Client> {
        let mut endpoint = Channel::from_shared(self.addr.clone())
            .with_context(|| format!("{:?} is not a server address", self.addr))?;
        let tls = self.addr.starts_with("https://");
        if !tls && (self.ca_cert.is_some() || self.client_cert.is_some()) {
            anyhow::bail!(
                "--ca-cert, --client-cert and --client-key are for TLS: give an https:// address"
            );
        }
        if tls {
            endpoint = endpoint
                .tls_config(self.tls_config()?)
                .context("TLS configuration")?;
        }
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot reach a server at {}", self.addr))?;
        let token = match &self.token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .context("the token has characters a header cannot carry")?,
            ),
            None => None,
        };
        Ok(
            MeetingServiceClient::with_interceptor(channel, BearerToken(token))
                .max_decoding_message_size(64 << 20),
        )
    }
}

impl ServerArgs {
    /// The client's TLS: the system's roots, or the given CA; and the
    /// client certificate, if given.
    fn tls_config(&self) -> anyhow::Result<tonic::transport::ClientTlsConfig> {
        use tonic::transport::{Certificate, ClientTlsConfig, Identity};
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_cert {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read(ca)?)),
            None => config.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        Ok(config)
    }
}

/// Runs a client subcommand.
pub async fn run(command: Command) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        Command::Serve(_) => unreachable!("serving is handled by main"),
        Command::Create { file, server } => {
            let text = read(&file)?;
            let request =
                parse_create(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let created = server
                .client()
                .await?
                .create_meeting(request)
                .await
                .map_err(explain)?;
            print_json(&mut out, &created.into_inner().meeting)?;
        }
        Command::Get { id, server } => {
            let got = server
                .client()
                .await?
                .get_meeting(pb::GetMeetingRequest { id })
                .await
                .map_err(explain)?;
            print_json(&mut out, &got.into_inner().meeting)?;
        }
        Command::Pair {
            side_a,
            side_b,
            from,
            to,
            newest_first,
            server,
        } => {
            let (country_a, organization_a) = side(&side_a);
            let (country_b, organization_b) = side(&side_b);
            let request = pb::StreamMeetingsByCountryPairRequest {
                country_a,
                country_b,
                organization_a,
                organization_b,
                from_date: from.unwrap_or_default(),
                to_date: to.unwrap_or_default(),
                start_after_id: String::new(),
                newest_first,
            };
            let mut stream = server
                .client()
                .await?
                .stream_meetings_by_country_pair(request)
                .await
                .map_err(explain)?
                .into_inner();
            while let Some(item) = stream.message().await.map_err(explain)? {
                print_json(&mut out, &item.meeting)?;
            }
        }
        Command::List {
            country,
            organization,
            participant,
            from,
            to,
            topic,
            query,
            limit,
            server,
        } => {
            let mut client = server.client().await?;
            let mut request = pb::ListMeetingsRequest {
                page_size: 1_000,
                page_token: String::new(),
                country_code: country.unwrap_or_default(),
                organization_code: organization.unwrap_or_default(),
                participant: participant.unwrap_or_default(),
                from_date: from.unwrap_or_default(),
                to_date: to.unwrap_or_default(),
                topic: topic.unwrap_or_default(),
                query: query.unwrap_or_default(),
            };
            let mut printed = 0;
            loop {
                let page = client
                    .list_meetings(request.clone())
                    .await
                    .map_err(explain)?
                    .into_inner();
                for m in &page.meetings {
                    if limit.is_some_and(|l| printed >= l) {
                        return Ok(());
                    }
                    print_json(&mut out, m)?;
                    printed += 1;
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                request.page_token = page.next_page_token;
            }
        }
        Command::Import {
            file,
            merge,
            server,
        } => import(&file, merge, &server, &mut out).await?,
        Command::Duplicates { file, server } => duplicates(&file, &server, &mut out).await?,
        Command::Merge {
            target,
            sources,
            server,
        } => {
            let merged = server
                .client()
                .await?
                .merge_meetings(pb::MergeMeetingsRequest {
                    target_id: target,
                    source_ids: sources,
                })
                .await
                .map_err(explain)?;
            print_json(&mut out, &merged.into_inner().meeting)?;
        }
        Command::Token { scopes, name } => {
            let (token, line) = crate::auth::new_token(&scopes, &name)?;
            writeln!(out, "token: {token}")?;
            writeln!(out, "tokens file line: {line}")?;
        }
        Command::Watch {
            side_a,
            side_b,
            after,
            server,
        } => {
            let (country_a, organization_a) = side(side_a.as_deref().unwrap_or_default());
            let (country_b, organization_b) = side(side_b.as_deref().unwrap_or_default());
            let request = pb::WatchMeetingsRequest {
                country_a,
                country_b,
                organization_a,
                organization_b,
                after_sequence: after,
            };
            let mut stream = server
                .client()
                .await?
                .watch_meetings(request)
                .await
                .map_err(explain)?
                .into_inner();
            loop {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => break,
                    item = stream.message() => match item.map_err(explain)? {
                        Some(item) => print_json(&mut out, &item.event)?,
                        None => break,
                    },
                }
            }
        }
    }
    Ok(())
}

/// A side of a pair as the command line writes it: (country, organisation)
/// fields, from "AZ" or "org:EU".
fn side(arg: &str) -> (String, String) {
    match arg.get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case("org:") => (String::new(), arg[4..].to_owned()),
        _ => (arg.to_owned(), String::new()),
    }
}

fn read(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

fn print_json(out: &mut impl Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut value = serde_json::to_value(value)?;
    canonical_timestamps(&mut value);
    serde_json::to_writer(&mut *out, &value)?;
    writeln!(out)?;
    Ok(())
}

/// The proto3 JSON fields of this API that are google.protobuf.Timestamp.
const TIMESTAMP_FIELDS: [&str; 3] = ["createTime", "updateTime", "eventTime"];

/// Writes timestamps in proto3 JSON's canonical form: pbjson-types writes
/// UTC as `+00:00`, where the canonical form (what grpcurl and every other
/// runtime print) ends in `Z`. Its fractions already have 0, 3, 6 or 9
/// digits.
fn canonical_timestamps(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                match field {
                    serde_json::Value::String(text)
                        if TIMESTAMP_FIELDS.contains(&name.as_str()) =>
                    {
                        if let Some(utc) = text.strip_suffix("+00:00") {
                            *text = format!("{utc}Z");
                        }
                    }
                    other => canonical_timestamps(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(canonical_timestamps),
        _ => {}
    }
}

/// A CreateMeetingRequest from JSON holding either the request or just the
/// meeting (as GetMeeting's output has it under "meeting").
fn parse_create(text: &str) -> Result<pb::CreateMeetingRequest, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("meeting").is_some() {
        serde_json::from_value(value).map_err(|e| format!("not a CreateMeetingRequest: {e}"))
    } else {
        let meeting: pb::Meeting =
            serde_json::from_value(value).map_err(|e| format!("not a Meeting: {e}"))?;
        Ok(pb::CreateMeetingRequest {
            meeting: Some(meeting),
            ..Default::default()
        })
    }
}

/// One line of an import file: an ImportMeetingsRequest or a Meeting.
fn parse_import_line(line: &str) -> Result<pb::ImportMeetingsRequest, String> {
    parse_create(line).map(|r| pb::ImportMeetingsRequest {
        meeting: r.meeting,
        request_id: r.request_id,
        duplicates: r.duplicates,
    })
}

/// Most bad lines listed before giving up on a file.
const MAX_BAD_LINES: usize = 20;

async fn import(
    file: &Path,
    merge: bool,
    server: &ServerArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    // A first pass finds malformed lines, so nothing is sent from a file
    // that would stop half-way.
    let mut bad = Vec::new();
    let mut lines = 0u64;
    for (i, line) in open_lines(file)?.enumerate() {
        let line =
            line.with_context(|| format!("{}: cannot read line {}", file.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        lines += 1;
        if let Err(e) = parse_import_line(&line) {
            bad.push(format!("{}:{}: {e}", file.display(), i + 1));
        }
    }
    if !bad.is_empty() {
        let shown = bad.len().min(MAX_BAD_LINES);
        bail!(
            "{} malformed line(s), nothing imported:\n{}{}",
            bad.len(),
            bad[..shown].join("\n"),
            if bad.len() > shown { "\n..." } else { "" }
        );
    }

    let progress = ProgressBar::new(lines).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} meetings sent ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let reader = {
        let file = file.to_owned();
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            for line in open_lines(&file)? {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                let mut request = parse_import_line(&line).map_err(|e| anyhow::anyhow!(e))?;
                if merge && request.duplicates == 0 {
                    request.duplicates = pb::DuplicatePolicy::Merge as i32;
                }
                if tx.blocking_send(request).is_err() {
                    break;
                }
                progress.inc(1);
            }
            Ok(())
        })
    };
    let report = server
        .client()
        .await?
        .import_meetings(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(explain)?
        .into_inner();
    reader.await??;
    progress.finish_and_clear();
    print_json(out, &report)?;
    eprintln!(
        "{} created, {} merged, {} duplicate, {} rejected",
        report.created_count, report.merged_count, report.duplicate_count, report.rejected_count
    );
    Ok(())
}

/// For each meeting of `file`: `{"index": N, "matches": [...]}` with what
/// FindDuplicateMeetings answers (lines whose meeting is not valid get
/// `"error"` instead).
async fn duplicates(file: &Path, server: &ServerArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let mut client = server.client().await?;
    let mut index = 0u64;
    for (i, line) in open_lines(file)?.enumerate() {
        let line =
            line.with_context(|| format!("{}: cannot read line {}", file.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let request = parse_import_line(&line)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", file.display(), i + 1))?;
        let answer = client
            .find_duplicate_meetings(pb::FindDuplicateMeetingsRequest {
                meeting: request.meeting,
            })
            .await;
        let line = match answer {
            Ok(found) => {
                let mut matches = serde_json::to_value(found.into_inner().matches)?;
                canonical_timestamps(&mut matches);
                serde_json::json!({
                    "index": index,
                    "matches": matches,
                })
            }
            Err(status) => serde_json::json!({
                "index": index,
                "error": explain(status).to_string(),
            }),
        };
        writeln!(out, "{line}")?;
        index += 1;
    }
    Ok(())
}

fn open_lines(file: &Path) -> anyhow::Result<std::io::Lines<BufReader<std::fs::File>>> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    Ok(BufReader::new(f).lines())
}

/// A failed call as a readable error: code, message, and each field
/// violation on its own line, once (a status with one violation often
/// says it in its message already).
fn explain(status: tonic::Status) -> anyhow::Error {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(bad) = status.get_error_details().bad_request() {
        for v in &bad.field_violations {
            let line = format!("{}: {}", v.field, v.description);
            if !status.message().contains(&line) {
                text.push_str(&format!("\n  {line}"));
            }
        }
    }
    anyhow::anyhow!(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_or_a_bare_meeting_both_parse() {
        let request = parse_create(include_str!(
            "../tests/fixtures/azertac-2022-05-05-azerbaijan-japan.json"
        ))
        .unwrap();
        assert_eq!(request.request_id, "azertac-2022-05-05-azerbaijan-japan");
        assert_eq!(request.meeting.unwrap().participants[1].country_code, "JP");
        let bare = parse_create(
            r#"{"date": "2022-05-05", "topics": ["energy"], "country_codes": ["AZ"]}"#,
        )
        .unwrap();
        let meeting = bare.meeting.unwrap();
        assert_eq!(meeting.date, "2022-05-05");
        assert_eq!(
            meeting.country_codes,
            ["AZ"],
            "original field names are accepted too"
        );
    }

    #[test]
    fn grpcurl_output_with_output_only_fields_parses() {
        let copied = r#"{"meeting": {"id": "01a2212b-9ff7-75ef-a633-a2035fbebbf2", "date": "2022-05-05",
            "createTime": "2026-11-28T08:00:36.855077Z", "etag": "v1", "countryCodes": ["AZ", "JP"]}}"#;
        let request = parse_create(copied).unwrap();
        assert_eq!(
            request.meeting.unwrap().create_time.unwrap().nanos,
            855_077_000
        );
    }

    #[test]
    fn malformed_input_says_what_is_wrong() {
        assert!(parse_create("{").unwrap_err().contains("not JSON"));
        assert!(
            parse_create(r#"{"date": 5}"#)
                .unwrap_err()
                .contains("not a Meeting")
        );
        assert!(parse_import_line(r#"{"meeting": {"topics": "energy"}}"#).is_err());
    }
}
