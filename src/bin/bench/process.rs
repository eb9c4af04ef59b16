//! The processes under test: a fresh database and the service.

#[allow(unused_imports)]
use super::*;

pub(crate) struct Database {
    pub(crate) options: PgConnectOptions,
    pub(crate) embedded: Option<(EmbeddedPostgres, tempfile::TempDir)>,
    pub(crate) shared: Option<(PgConnectOptions, String)>,
}

impl Database {
    pub(crate) async fn fresh() -> anyhow::Result<Self> {
        use sqlx::Connection;
        if let Ok(url) = std::env::var("DATABASE_URL") {
            let admin: PgConnectOptions = url.parse()?;
            let name = format!("meetings_bench_{}", Uuid::now_v7().simple());
            let mut conn = sqlx::PgConnection::connect_with(&admin).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
                .execute(&mut conn)
                .await?;
            println!("bench: database {name}");
            return Ok(Self {
                options: admin.clone().database(&name),
                embedded: None,
                shared: Some((admin, name)),
            });
        }
        let dir = tempfile::tempdir()?;
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        let pg = EmbeddedPostgres::start(dir.path(), &[]).await?;
        Ok(Self {
            options: pg.connect_options(),
            embedded: Some((pg, dir)),
            shared: None,
        })
    }

    /// The embedded server's postmaster, whose CPU time covers PostgreSQL's.
    pub(crate) fn postmaster_pid(&self) -> Option<u32> {
        let (pg, _) = self.embedded.as_ref()?;
        let pid = std::fs::read_to_string(pg.data_dir().join("pgdata/postmaster.pid")).ok()?;
        pid.lines().next()?.trim().parse().ok()
    }

    pub(crate) async fn drop(self) {
        use sqlx::Connection;
        if let Some((pg, _dir)) = self.embedded {
            pg.stop().await;
        }
        // BENCH_KEEP_DATABASE leaves a database on DATABASE_URL's server
        // for inspection (sizes of columns, plans) after the run.
        if let Some((admin, name)) = self.shared
            && std::env::var_os("BENCH_KEEP_DATABASE").is_none()
            && let Ok(mut conn) = sqlx::PgConnection::connect_with(&admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

pub(crate) enum Server {
    Child(Child, String),
    Remote(String),
}

/// A run that fails stops its service too, rather than leave it holding
/// connections to the bench's database.
impl Drop for Server {
    fn drop(&mut self) {
        if let Self::Child(child, _) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Server {
    pub(crate) async fn spawn(options: &PgConnectOptions) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(std::env::current_exe()?)
            .arg("--serve")
            .env("DATABASE_URL", options.to_url_lossy().to_string())
            .env("MEETINGS_LISTEN_ADDR", &addr)
            // Several servers may run at once: no admin listener.
            .env("MEETINGS_ADMIN_ADDR", "")
            .env("MEETINGS_DB_POOL_SIZE", CLIENTS.to_string())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .spawn()?;
        let server = Self::Child(child, addr);
        let deadline = Instant::now() + Duration::from_secs(60);
        while server.channel().await.is_err() {
            if Instant::now() > deadline {
                bail!("the service did not start");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }

    pub(crate) fn addr(&self) -> &str {
        match self {
            Self::Child(_, addr) | Self::Remote(addr) => addr,
        }
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        match self {
            Self::Child(child, _) => Some(child.id()),
            Self::Remote(_) => None,
        }
    }

    /// A tonic channel (one HTTP/2 connection), for the streams.
    pub(crate) async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(Channel::from_shared(format!("http://{}", self.addr()))?
            .connect()
            .await?)
    }

    /// Stops the service as an operator would (SIGINT), and waits for it.
    pub(crate) fn stop(mut self) {
        if let Self::Child(child, _) = &mut self {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGINT,
                );
            }
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------- report
