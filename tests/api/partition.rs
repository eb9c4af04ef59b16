//! A database that stops answering without closing anything (a network
//! partition: packets held, no reset): calls end with UNAVAILABLE instead
//! of waiting for the kernel to give up on the connections, and the
//! service recovers when packets flow again. The partition is a TCP proxy
//! in front of a database server of the test's own, which can hold every
//! byte in both directions.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use meetings::embedded::EmbeddedPostgres;
use meetings::pb;
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixStream};
use tokio::sync::watch;
use tonic::Code;

use crate::helpers::{Settings, assert_error, eventually, meeting, spawn_app_on};

/// Forwards TCP connections to the server's Unix socket until paused;
/// while paused, it neither reads nor writes (nothing is lost: bytes read
/// before the pause are written after it).
struct Proxy {
    addr: SocketAddr,
    paused: watch::Sender<bool>,
    _task: tokio_util::task::AbortOnDropHandle<()>,
}

impl Proxy {
    async fn start(socket: std::path::PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (paused, _) = watch::channel(false);
        let task = {
            let paused = paused.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    let Ok(server) = UnixStream::connect(&socket).await else {
                        continue;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(pump(client_read, server_write, paused.subscribe()));
                    tokio::spawn(pump(server_read, client_write, paused.subscribe()));
                }
            })
        };
        Self {
            addr,
            paused,
            _task: tokio_util::task::AbortOnDropHandle::new(task),
        }
    }

    fn partition(&self, on: bool) {
        self.paused.send_replace(on);
    }
}

async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    mut paused: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if paused.wait_for(|p| !*p).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if paused.wait_for(|p| !*p).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A call with a long deadline: an answer before it is the service's own.
fn patient<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(Duration::from_secs(60));
    request
}

#[tokio::test]
async fn a_database_that_stops_answering_gives_unavailable_and_the_service_recovers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = EmbeddedPostgres::start(dir.path(), &[]).await.unwrap();
    let options = server.connect_options();
    let socket = options
        .get_socket()
        .expect("the embedded server listens on a Unix socket")
        .join(format!(".s.PGSQL.{}", options.get_port()));
    let proxy = Proxy::start(socket).await;
    let url = format!(
        "postgres://{}@{}/{}",
        options.get_username(),
        proxy.addr,
        options.get_database().unwrap_or("postgres")
    );
    let app = spawn_app_on(url, Settings::default()).await;
    let stored = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let mut client = app.client.clone();

    // A statement in flight when the partition starts: an update waiting
    // for a row lock that a session outside the partition holds.
    let mut holder = sqlx::PgConnection::connect_with(&options).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM meetings WHERE id = $1 FOR UPDATE")
        .bind(uuid::Uuid::parse_str(&stored.id).unwrap())
        .execute(&mut holder)
        .await
        .unwrap();
    let update = tokio::spawn({
        let mut client = app.client.clone();
        let id = stored.id.clone();
        async move {
            client
                .update_meeting(patient(pb::UpdateMeetingRequest {
                    meeting: Some(pb::Meeting {
                        id,
                        summary: "changed".into(),
                        ..Default::default()
                    }),
                    update_mask: None,
                }))
                .await
        }
    });
    // The update's statement is on the server, waiting for the lock.
    let watcher = sqlx::PgPool::connect_with(options.clone()).await.unwrap();
    let waiting = eventually(Duration::from_secs(10), || {
        let watcher = watcher.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_locks WHERE NOT granted")
                .fetch_one(&watcher)
                .await
                .unwrap()
                > 0
        }
    })
    .await;
    assert!(waiting, "the update waits for the lock");
    assert!(!update.is_finished(), "the update waits for the lock");
    proxy.partition(true);
    // Without an answer from the database, the call ends on the service's
    // own account: not at the client's deadline (60 s), nor at the
    // server's request timeout (30 s, DEADLINE_EXCEEDED).
    let waited = update.await.unwrap().unwrap_err();
    assert_error(&waited, Code::Unavailable, "DATABASE_UNAVAILABLE");
    let get = client
        .get_meeting(patient(pb::GetMeetingRequest {
            id: stored.id.clone(),
        }))
        .await
        .unwrap_err();
    assert_error(&get, Code::Unavailable, "DATABASE_UNAVAILABLE");
    let create = client
        .create_meeting(patient(pb::CreateMeetingRequest {
            meeting: Some(meeting("2022-05-06", &["AZ", "JP"])),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_error(&create, Code::Unavailable, "DATABASE_UNAVAILABLE");
    let summary = client
        .get_country_pair_summary(patient(pb::GetCountryPairSummaryRequest {
            country_a: "AZ".into(),
            country_b: "JP".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_error(&summary, Code::Unavailable, "DATABASE_UNAVAILABLE");
    let mut stream = client
        .stream_meetings_by_country_pair(patient(pb::StreamMeetingsByCountryPairRequest {
            country_a: "AZ".into(),
            country_b: "JP".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let end = stream.message().await.unwrap_err();
    assert_error(&end, Code::Unavailable, "DATABASE_UNAVAILABLE");

    // Packets flow again: calls succeed, with no restart.
    proxy.partition(false);
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    let recovered = eventually(Duration::from_secs(30), || {
        let mut client = app.client.clone();
        let id = stored.id.clone();
        async move {
            client
                .get_meeting(pb::GetMeetingRequest { id })
                .await
                .is_ok()
        }
    })
    .await;
    assert!(recovered, "reads succeed once the database answers again");
    app.create(meeting("2022-05-07", &["AZ", "JP"])).await;
    assert_eq!(app.get(&stored.id).await.unwrap(), stored);
}
