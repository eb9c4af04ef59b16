//! TLS and mutual TLS, with certificates made here.

use std::path::PathBuf;

use meetings::pb;
use meetings::pb::meeting_service_client::MeetingServiceClient;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::helpers::{Settings, meeting, spawn_app_with};

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client: (String, String),
}

impl Pki {
    /// A CA, a server certificate for localhost signed by it, and a client
    /// certificate signed by it.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, client) = Self::issue(dir.path());
        Self {
            dir,
            ca_pem,
            client,
        }
    }

    /// Replaces the files with a new CA's: what a certificate rotation does.
    fn rotate(&mut self) {
        (self.ca_pem, self.client) = Self::issue(self.dir.path());
    }

    /// Writes a new CA and server certificate into `dir`; returns the CA
    /// and a client certificate it signed.
    fn issue(dir: &std::path::Path) -> (String, (String, String)) {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &*ca).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let server = leaf(
            vec!["localhost".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = leaf(
            vec!["news-platform".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        std::fs::write(dir.join("server.pem"), &server.0).unwrap();
        std::fs::write(dir.join("server.key"), &server.1).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("client.pem"), &client.0).unwrap();
        std::fs::write(dir.join("client.key"), &client.1).unwrap();
        (ca.pem(), client)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn server(&self, mutual: bool) -> (PathBuf, PathBuf, Option<PathBuf>) {
        (
            self.path("server.pem"),
            self.path("server.key"),
            mutual.then(|| self.path("ca.pem")),
        )
    }

    async fn channel(
        &self,
        addr: std::net::SocketAddr,
        with_client_cert: bool,
    ) -> Result<Channel, tonic::transport::Error> {
        self.channel_trusting(&self.ca_pem, addr, with_client_cert)
            .await
    }

    async fn channel_trusting(
        &self,
        ca_pem: &str,
        addr: std::net::SocketAddr,
        with_client_cert: bool,
    ) -> Result<Channel, tonic::transport::Error> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .domain_name("localhost");
        if with_client_cert {
            tls = tls.identity(Identity::from_pem(&self.client.0, &self.client.1));
        }
        Channel::from_shared(format!("https://localhost:{}", addr.port()))
            .unwrap()
            .tls_config(tls)?
            .connect()
            .await
    }
}

async fn create_over(channel: Channel) -> Result<pb::Meeting, tonic::Status> {
    MeetingServiceClient::new(channel)
        .create_meeting(pb::CreateMeetingRequest {
            meeting: Some(meeting("2022-05-05", &["AZ", "JP"])),
            request_id: String::new(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().meeting.unwrap())
}

#[tokio::test]
async fn tls_serves_trusting_clients_and_not_plaintext_ones() {
    let pki = Pki::new();
    let app = spawn_app_with(Settings {
        tls: Some(pki.server(false)),
        ..Settings::default()
    })
    .await;
    let channel = pki.channel(app.addr, false).await.expect("TLS handshake");
    create_over(channel).await.expect("a call over TLS");
    // The plaintext client of the test app cannot talk to it.
    assert!(
        app.client
            .clone()
            .list_meetings(pb::ListMeetingsRequest::default())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let pki = Pki::new();
    let app = spawn_app_with(Settings {
        tls: Some(pki.server(true)),
        ..Settings::default()
    })
    .await;
    let with_cert = pki.channel(app.addr, true).await.expect("mTLS handshake");
    create_over(with_cert)
        .await
        .expect("a call with a client certificate");
    let refused = match pki.channel(app.addr, false).await {
        Err(_) => true,
        Ok(channel) => create_over(channel).await.is_err(),
    };
    assert!(refused, "no client certificate, no service");
    assert_eq!(app.count_meetings().await, 1);
}

#[tokio::test]
async fn plaintext_on_a_non_loopback_address_needs_an_explicit_flag() {
    use clap::Parser;
    let mut config = meetings::config::Config::parse_from(["meetings"]);
    config.listen_addr = "0.0.0.0:0".parse().unwrap();
    // Refused before any database is touched.
    config.database_url = Some("postgres://nobody@127.0.0.1:1/none".into());
    let err = meetings::startup::Application::build(config)
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("--allow-plaintext"), "{err:#}");
}

/// SIGHUP reads the certificate and key again: new connections get the new
/// certificate, connections already open stay and keep working, and files
/// that are not valid leave the certificate as it was.
#[tokio::test]
async fn sighup_reloads_the_certificate_for_new_connections_and_keeps_open_ones() {
    use sqlx::ConnectOptions;
    let app = crate::helpers::spawn_app().await;
    let mut pki = Pki::new();
    let url = app.pool.connect_options().to_url_lossy().to_string();
    let server = crate::helpers::ServerProcess::spawn(
        &url,
        &[
            "--tls-cert".as_ref(),
            pki.path("server.pem").as_os_str(),
            "--tls-key".as_ref(),
            pki.path("server.key").as_os_str(),
        ],
        "info",
    );
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    let started = crate::helpers::eventually(std::time::Duration::from_secs(30), || async {
        pki.channel(addr, false).await.is_ok()
    })
    .await;
    assert!(started, "the server serves TLS");
    let open = pki.channel(addr, false).await.unwrap();
    create_over(open.clone()).await.expect("a call over TLS");

    let old_ca = pki.ca_pem.clone();
    pki.rotate();
    let hangup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(server.child.id().unwrap() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap()
    };
    hangup();
    let renewed = crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
        pki.channel(addr, false).await.is_ok()
    })
    .await;
    assert!(renewed, "a new connection gets the new certificate");
    create_over(pki.channel(addr, false).await.unwrap())
        .await
        .expect("a call on a new connection");
    assert!(
        pki.channel_trusting(&old_ca, addr, false).await.is_err(),
        "new connections no longer get the old certificate"
    );
    // The connection opened before the reload is still the same one (a
    // reconnection would meet a certificate its client does not trust).
    create_over(open).await.expect("an open connection stays");

    std::fs::write(pki.path("server.key"), "not a key\n").unwrap();
    hangup();
    let logged = crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
        std::fs::read_to_string(server.log.path())
            .unwrap()
            .contains("the previous certificate stays")
    })
    .await;
    assert!(logged, "the log says why the files were not taken");
    create_over(
        pki.channel(addr, false)
            .await
            .expect("the certificate stays"),
    )
    .await
    .unwrap();
    assert_eq!(app.count_meetings().await, 4);
}

/// Runs `meetings list` against `addr` with `args`; (success, stderr).
async fn cli_list(addr: &str, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_meetings"))
        .args(["list", "--addr", addr])
        .args(args)
        .env_remove("MEETINGS_CA_CERT")
        .env_remove("MEETINGS_CLIENT_CERT")
        .env_remove("MEETINGS_CLIENT_KEY")
        .env_remove("MEETINGS_TOKEN")
        .output()
        .await
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The command-line client reaches TLS and mTLS servers: https:// with a
/// private CA, and a client certificate where the server requires one.
#[tokio::test]
async fn the_cli_speaks_tls_and_mutual_tls() {
    let pki = Pki::new();
    let tls = spawn_app_with(Settings {
        tls: Some(pki.server(false)),
        ..Settings::default()
    })
    .await;
    let https = format!("https://localhost:{}", tls.addr.port());
    let ca = pki.path("ca.pem");
    let (ok, err) = cli_list(&https, &["--ca-cert".as_ref(), ca.as_os_str()]).await;
    assert!(ok, "{err}");
    // The system's roots do not know the test CA.
    let (ok, err) = cli_list(&https, &[]).await;
    assert!(!ok && err.contains("cannot reach a server"), "{err}");
    // TLS options with a plaintext address are a mistake, said as one.
    let (ok, err) = cli_list(
        &format!("http://localhost:{}", tls.addr.port()),
        &["--ca-cert".as_ref(), ca.as_os_str()],
    )
    .await;
    assert!(!ok && err.contains("https://"), "{err}");

    let mutual = spawn_app_with(Settings {
        tls: Some(pki.server(true)),
        ..Settings::default()
    })
    .await;
    let https = format!("https://localhost:{}", mutual.addr.port());
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    let (ok, err) = cli_list(
        &https,
        &[
            "--ca-cert".as_ref(),
            ca.as_os_str(),
            "--client-cert".as_ref(),
            cert.as_os_str(),
            "--client-key".as_ref(),
            key.as_os_str(),
        ],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _) = cli_list(&https, &["--ca-cert".as_ref(), ca.as_os_str()]).await;
    assert!(!ok, "no client certificate, no service");
}
