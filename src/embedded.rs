//! The embedded default database: a private PostgreSQL server started from
//! the installed server binaries when no DATABASE_URL is given.
//!
//! It listens only on a Unix socket in a private directory (no TCP port, so
//! it cannot collide with a server already running on the machine), keeps
//! its data in a directory that survives restarts, runs as an unprivileged
//! user when started as root (initdb and postgres refuse root), and is
//! stopped when the handle is stopped or dropped.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid, User};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// Name of the database the service uses inside the embedded server.
const DATABASE: &str = "meetings";
const SUPERUSER: &str = "postgres";
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running embedded PostgreSQL server.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    child: Option<Child>,
    socket_dir: tempfile::TempDir,
    port: u16,
    data_dir: PathBuf,
    bindir: PathBuf,
    /// Extra `-c` settings.
    settings: Vec<String>,
    /// The unprivileged user it runs as, when started as root.
    owner: Option<User>,
}

/// Where the embedded server keeps its files by default: /var/lib/meetings
/// for root (a place the unprivileged server user can reach), otherwise the
/// user's data directory.
pub fn default_data_dir() -> PathBuf {
    if Uid::effective().is_root() {
        return PathBuf::from("/var/lib/meetings");
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("meetings")
}

impl EmbeddedPostgres {
    /// Starts a server on `data_dir` (created and initialised if needed).
    /// `settings` are extra `postgres -c` settings.
    pub async fn start(data_dir: &Path, settings: &[(&str, &str)]) -> anyhow::Result<Self> {
        let bindir = find_bindir().context(
            "no PostgreSQL server binaries (initdb, postgres) found on PATH, through \
             `pg_config --bindir` or under /usr/lib/postgresql/*/bin: install PostgreSQL \
             or set DATABASE_URL to use an existing server",
        )?;
        let owner = server_user()?;
        fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let pgdata = data_dir.join("pgdata");
        if !pgdata.join("PG_VERSION").exists() {
            initdb(&bindir, &pgdata, owner.as_ref())?;
        }

        let socket_dir = tempfile::Builder::new()
            .prefix("meetings-pg.")
            .tempdir_in("/tmp")
            .context("cannot create the socket directory")?;
        if let Some(user) = &owner {
            chown(socket_dir.path(), user)?;
        }
        let port = free_port()?;
        let mut server = Self {
            child: None,
            socket_dir,
            port,
            data_dir: data_dir.to_owned(),
            bindir,
            settings: settings.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            owner,
        };
        let log_path = server.log_path();
        server.child = Some(server.spawn_postgres()?);
        server.wait_ready(&log_path).await?;
        server.create_database().await?;
        tracing::info!(
            data_dir = %data_dir.display(),
            log = %log_path.display(),
            socket_dir = %server.socket_dir.path().display(),
            "embedded PostgreSQL started"
        );
        Ok(server)
    }

    fn log_path(&self) -> PathBuf {
        self.data_dir.join("postgres.log")
    }

    /// Starts the postgres process on this server's data directory, socket
    /// directory and port.
    fn spawn_postgres(&self) -> anyhow::Result<Child> {
        let log_path = self.log_path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let mut cmd = Command::new(self.bindir.join("postgres"));
        cmd.arg("-D")
            .arg(self.data_dir.join("pgdata"))
            .arg("-k")
            .arg(self.socket_dir.path())
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses="]);
        for setting in &self.settings {
            cmd.arg("-c").arg(setting);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .current_dir(&self.data_dir);
        as_user(&mut cmd, self.owner.as_ref());
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // If this process dies without stopping the server, the kernel
                // asks it to shut down fast instead of leaving it orphaned.
                nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from)
            });
        }
        cmd.spawn().context("cannot start postgres")
    }

    /// Stops the server the hard way (immediate mode: no checkpoint, as in
    /// a crash), for fault tests. `restart` brings it back.
    pub async fn kill_immediately(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), Signal::SIGQUIT);
            while matches!(child.try_wait(), Ok(None)) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Stops (`frozen`) or resumes every process of the server with
    /// SIGSTOP/SIGCONT: a server that keeps its connections open and
    /// answers nothing, as behind a network partition, for fault tests.
    pub fn freeze(&self, frozen: bool) {
        let Some(child) = &self.child else { return };
        let sig = if frozen {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        let postmaster = child.id();
        // The postmaster's children are its backends and helpers.
        let children = fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|stat| {
                        // Fields after the command name, which is in parentheses.
                        let rest = &stat[stat.rfind(')')? + 1..];
                        rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                    })
                    == Some(postmaster)
            });
        for pid in std::iter::once(postmaster).chain(children) {
            signal(pid, sig);
        }
    }

    /// Starts the server again, where it was (same socket and port), after
    /// `kill_immediately`; it recovers from its write-ahead log.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.is_none() {
            self.child = Some(self.spawn_postgres()?);
            self.wait_ready(&self.log_path()).await?;
        }
        Ok(())
    }

    /// Makes `data_dir` a streaming replica of this server
    /// (`pg_basebackup -R -X stream`): `start` on it then runs a hot
    /// standby that follows this server.
    pub fn base_backup(&self, data_dir: &Path) -> anyhow::Result<()> {
        let pgdata = data_dir.join("pgdata");
        private_dir(&pgdata, self.owner.as_ref())?;
        // Beside the server binaries, else wherever PATH finds it (a
        // directory of server wrappers may not hold the client tools).
        let beside = self.bindir.join("pg_basebackup");
        let program = if beside.is_file() {
            beside
        } else {
            PathBuf::from("pg_basebackup")
        };
        let mut cmd = Command::new(program);
        cmd.arg("-D")
            .arg(&pgdata)
            .args(["-R", "-X", "stream", "-c", "fast", "-U", SUPERUSER])
            .arg("-h")
            .arg(self.socket_dir.path())
            .args(["-p", &self.port.to_string()])
            .current_dir(&pgdata);
        run_as(cmd, self.owner.as_ref(), "pg_basebackup", &pgdata)
    }

    /// How to reach the service's database in this server.
    pub fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(self.socket_dir.path())
            .port(self.port)
            .username(SUPERUSER)
            .database(DATABASE)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    async fn wait_ready(&mut self, log_path: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let options = self.connect_options().database("postgres");
        loop {
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!(
                    "embedded PostgreSQL exited at start ({status}); its log {} ends with:\n{}",
                    log_path.display(),
                    log_tail(log_path)
                );
            }
            match PgConnection::connect_with(&options).await {
                Ok(conn) => {
                    conn.close().await.ok();
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(e)
                        .context("embedded PostgreSQL did not accept connections in time");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }

    async fn create_database(&self) -> anyhow::Result<()> {
        let mut conn =
            PgConnection::connect_with(&self.connect_options().database("postgres")).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            sqlx::query("CREATE DATABASE meetings")
                .execute(&mut conn)
                .await?;
        }
        conn.close().await?;
        Ok(())
    }

    /// Shuts the server down (fast mode: active sessions are ended, data is
    /// checkpointed) and waits for it to exit.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), Signal::SIGINT);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) {
                if Instant::now() > deadline {
                    tracing::warn!("embedded PostgreSQL did not stop in time; killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tracing::info!("embedded PostgreSQL stopped");
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        // Reached without `stop` (a panic, a test ending): stop synchronously,
        // frozen or not (a stopped process would not see the signal).
        self.freeze(false);
        if let Some(mut child) = self.child.take() {
            signal(child.id(), Signal::SIGINT);
            let deadline = Instant::now() + STOP_TIMEOUT;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, sig: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(pid), sig);
    }
}

fn initdb(bindir: &Path, pgdata: &Path, owner: Option<&User>) -> anyhow::Result<()> {
    private_dir(pgdata, owner)?;
    tracing::info!(pgdata = %pgdata.display(), "initialising the embedded PostgreSQL data directory");
    let mut cmd = Command::new(bindir.join("initdb"));
    cmd.arg("-D")
        .arg(pgdata)
        .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-locale"])
        .current_dir(pgdata);
    run_as(cmd, owner, "initdb", pgdata)
}

/// A data directory only the server's user may enter, as PostgreSQL
/// requires.
fn private_dir(pgdata: &Path, owner: Option<&User>) -> anyhow::Result<()> {
    fs::create_dir_all(pgdata).with_context(|| format!("cannot create {}", pgdata.display()))?;
    fs::set_permissions(pgdata, fs::Permissions::from_mode(0o700))?;
    if let Some(user) = owner {
        chown(pgdata, user)?;
    }
    Ok(())
}

/// Runs a PostgreSQL tool (`name`) on `pgdata` as the server's user; its
/// error output becomes the error.
fn run_as(mut cmd: Command, owner: Option<&User>, name: &str, pgdata: &Path) -> anyhow::Result<()> {
    cmd.stdin(Stdio::null());
    as_user(&mut cmd, owner);
    let out = cmd.output().with_context(|| format!("cannot run {name}"))?;
    if !out.status.success() {
        bail!(
            "{name} failed for {} ({}):\n{}",
            pgdata.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The user the server runs as: None to stay as we are, or, as root, the
/// `postgres` system user (else `nobody`).
fn server_user() -> anyhow::Result<Option<User>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Some(user) = User::from_name(name)? {
            return Ok(Some(user));
        }
    }
    bail!(
        "running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as"
    )
}

fn as_user(cmd: &mut Command, user: Option<&User>) {
    if let Some(user) = user {
        cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
}

fn chown(path: &Path, user: &User) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
        .with_context(|| format!("cannot hand {} to user {}", path.display(), user.name))
}

fn free_port() -> anyhow::Result<u16> {
    // Only names the socket file: the server does not listen on TCP.
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn find_bindir() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("postgres").is_file() && dir.join("initdb").is_file();
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|d| has_server(d))
    {
        return Some(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
