//! Token authorisation, call by call.

use meetings::auth::new_token;
use meetings::pb;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::helpers::meeting;

fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(t) = token {
        let value: MetadataValue<_> = format!("Bearer {t}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Every RPC once with `token`; for each, the status code if the call was
/// refused (None if it got past authorisation).
async fn call_each(
    app: &crate::helpers::TestApp,
    token: Option<&str>,
) -> Vec<(&'static str, Option<Code>)> {
    let mut c = app.client.clone();
    let id = uuid::Uuid::now_v7().to_string();
    // A refusal names its reason in ErrorInfo; callers branch on it.
    let refused = |r: Result<(), tonic::Status>| match r {
        Err(s) if matches!(s.code(), Code::Unauthenticated | Code::PermissionDenied) => {
            use tonic_types::StatusExt;
            let reason = s.get_error_details().error_info().map(|i| i.reason.clone());
            let expected = if s.code() == Code::Unauthenticated {
                "UNAUTHENTICATED"
            } else {
                "MISSING_SCOPE"
            };
            assert_eq!(reason.as_deref(), Some(expected), "{s:?}");
            Some(s.code())
        }
        _ => None,
    };
    let create = pb::CreateMeetingRequest {
        meeting: Some(meeting("2022-05-05", &["AZ", "JP"])),
        request_id: String::new(),
        ..Default::default()
    };
    let pair = pb::StreamMeetingsByCountryPairRequest {
        country_a: "AZ".into(),
        country_b: "JP".into(),
        ..Default::default()
    };
    let mut import =
        tonic::Request::new(tokio_stream::iter(Vec::<pb::ImportMeetingsRequest>::new()));
    if let Some(t) = token {
        import
            .metadata_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    vec![
        (
            "CreateMeeting",
            refused(c.create_meeting(with_token(create, token)).await.map(drop)),
        ),
        (
            "GetMeeting",
            refused(
                c.get_meeting(with_token(pb::GetMeetingRequest { id: id.clone() }, token))
                    .await
                    .map(drop),
            ),
        ),
        (
            "StreamMeetingsByCountryPair",
            refused(
                c.stream_meetings_by_country_pair(with_token(pair, token))
                    .await
                    .map(drop),
            ),
        ),
        (
            "ImportMeetings",
            refused(c.import_meetings(import).await.map(drop)),
        ),
        (
            "ListMeetings",
            refused(
                c.list_meetings(with_token(pb::ListMeetingsRequest::default(), token))
                    .await
                    .map(drop),
            ),
        ),
        (
            "UpdateMeeting",
            refused(
                c.update_meeting(with_token(
                    pb::UpdateMeetingRequest {
                        meeting: Some(pb::Meeting {
                            id: id.clone(),
                            ..Default::default()
                        }),
                        update_mask: None,
                    },
                    token,
                ))
                .await
                .map(drop),
            ),
        ),
        (
            "DeleteMeeting",
            refused(
                c.delete_meeting(with_token(
                    pb::DeleteMeetingRequest {
                        id: id.clone(),
                        etag: String::new(),
                    },
                    token,
                ))
                .await
                .map(drop),
            ),
        ),
        (
            "WatchMeetings",
            refused(
                c.watch_meetings(with_token(pb::WatchMeetingsRequest::default(), token))
                    .await
                    .map(drop),
            ),
        ),
        (
            "GetCountryPairSummary",
            refused(
                c.get_country_pair_summary(with_token(
                    pb::GetCountryPairSummaryRequest {
                        country_a: "AZ".into(),
                        country_b: "JP".into(),
                        top_topics: 0,
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .map(drop),
            ),
        ),
        (
            "MergeMeetings",
            refused(
                c.merge_meetings(with_token(
                    pb::MergeMeetingsRequest {
                        target_id: id.clone(),
                        source_ids: vec![uuid::Uuid::now_v7().to_string()],
                    },
                    token,
                ))
                .await
                .map(drop),
            ),
        ),
        (
            "FindDuplicateMeetings",
            refused(
                c.find_duplicate_meetings(with_token(
                    pb::FindDuplicateMeetingsRequest {
                        meeting: Some(crate::helpers::meeting("2022-05-05", &["AZ", "JP"])),
                    },
                    token,
                ))
                .await
                .map(drop),
            ),
        ),
    ]
}

const WRITES: [&str; 5] = [
    "CreateMeeting",
    "ImportMeetings",
    "UpdateMeeting",
    "DeleteMeeting",
    "MergeMeetings",
];

#[tokio::test]
async fn each_rpc_checks_its_token_and_scope() {
    let (app, tokens, _file) =
        crate::helpers::spawn_app_with_tokens(&[("read", "reader"), ("write", "writer")]).await;
    let [read, write] = [tokens[0].clone(), tokens[1].clone()];

    for (name, refused) in call_each(&app, None).await {
        assert_eq!(
            refused,
            Some(Code::Unauthenticated),
            "{name} without a token"
        );
    }
    for (name, refused) in call_each(&app, Some("mt_not-a-real-token")).await {
        assert_eq!(
            refused,
            Some(Code::Unauthenticated),
            "{name} with an unknown token"
        );
    }
    for (name, refused) in call_each(&app, Some(&read)).await {
        let expected = WRITES.contains(&name).then_some(Code::PermissionDenied);
        assert_eq!(refused, expected, "{name} with a read token");
    }
    for (name, refused) in call_each(&app, Some(&write)).await {
        assert_eq!(refused, None, "{name} with a write token");
    }
    // Health needs no token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel().await);
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health is open");
    // The refusal carries our ErrorInfo.
    let status = app
        .client
        .clone()
        .list_meetings(pb::ListMeetingsRequest::default())
        .await
        .unwrap_err();
    crate::helpers::assert_error(&status, Code::Unauthenticated, "UNAUTHENTICATED");
}

#[tokio::test]
async fn reflection_needs_a_read_token() {
    use tonic_reflection::pb::v1;
    let (app, tokens, _file) = crate::helpers::spawn_app_with_tokens(&[("read", "")]).await;
    let read = tokens[0].clone();
    let list = || v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel().await);
    let denied = client
        .server_reflection_info(tokio_stream::iter([list()]))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::Unauthenticated);
    let mut request = tonic::Request::new(tokio_stream::iter([list()]));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {read}").parse().unwrap());
    let mut answers = client
        .server_reflection_info(request)
        .await
        .expect("a read token may use reflection")
        .into_inner();
    let answer = answers.message().await.unwrap().expect("an answer");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(listed)) =
        answer.message_response
    else {
        panic!("a list of services: {answer:?}");
    };
    let names: Vec<String> = listed.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"meetings.v1.MeetingService".to_owned()),
        "v1 lists the service: {names:?}"
    );

    // The same over v1alpha (grpcurl 1.8.6 speaks only that).
    use tonic_reflection::pb::v1alpha;
    let mut client =
        v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel().await);
    let alpha_list = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let denied = client
        .server_reflection_info(tokio_stream::iter([alpha_list.clone()]))
        .await
        .unwrap_err();
    crate::helpers::assert_error(&denied, Code::Unauthenticated, "UNAUTHENTICATED");
    let mut request = tonic::Request::new(tokio_stream::iter([alpha_list]));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {read}").parse().unwrap());
    let answer = client
        .server_reflection_info(request)
        .await
        .expect("v1alpha with a read token")
        .into_inner()
        .message()
        .await
        .unwrap()
        .expect("an answer");
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(listed)) =
        answer.message_response
    else {
        panic!("a list of services: {answer:?}");
    };
    assert!(
        listed
            .service
            .iter()
            .any(|s| s.name == "meetings.v1.MeetingService"),
        "v1alpha lists the service"
    );
}

#[tokio::test]
async fn help_does_not_show_the_database_urls_value() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meetings"))
        .arg("--help")
        .env(
            "DATABASE_URL",
            "postgres://u:help-secret-pw@db.example/meetings",
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DATABASE_URL"), "the flag is documented");
    assert!(!text.contains("help-secret-pw"), "its value is not shown");
}

/// A database that refuses the password: the service stops with an error
/// that names the failure, and neither the error nor the log shows the
/// password of the URL.
#[tokio::test]
async fn a_refused_password_stays_out_of_the_error_and_the_log() {
    use meetings::embedded::EmbeddedPostgres;
    use sqlx::{ConnectOptions, Connection};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let pg = EmbeddedPostgres::start(dir.path(), &[]).await.unwrap();
    let mut admin = pg.connect_options().connect().await.unwrap();
    sqlx::query("CREATE ROLE meetings_app LOGIN PASSWORD 'the-right-one'")
        .execute(&mut admin)
        .await
        .unwrap();
    // Password authentication for every role but the test's superuser.
    let hba = dir.path().join("pgdata").join("pg_hba.conf");
    let superuser = pg.connect_options().get_username().to_owned();
    std::fs::write(
        &hba,
        format!("local all {superuser} trust\nlocal all all scram-sha-256\n"),
    )
    .unwrap();
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let secret = "wrong-pw-that-must-not-leak";
    let url = pg
        .connect_options()
        .username("meetings_app")
        .password(secret)
        .to_url_lossy()
        .to_string();
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_meetings"))
            .args([
                "serve",
                "--listen-addr",
                "127.0.0.1:0",
                "--database-url",
                &url,
            ])
            .env("RUST_LOG", "trace")
            .output(),
    )
    .await
    .expect("the service gives up")
    .unwrap();
    assert!(
        !out.status.success(),
        "it cannot serve without its database"
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("password authentication failed"),
        "the error names the failure: {text}"
    );
    assert!(!text.contains(secret), "the password reached the output");
}

#[tokio::test]
async fn tokens_and_database_passwords_never_reach_the_logs() {
    use sqlx::ConnectOptions;
    let app = crate::helpers::spawn_app().await;
    let (tokens, file) = crate::helpers::tokens_file(&[("read,write", "")]);
    let token = tokens[0].clone();
    let password = "pw-that-must-not-leak";
    let url = app
        .pool
        .connect_options()
        .as_ref()
        .clone()
        .password(password)
        .to_url_lossy()
        .to_string();
    let mut server = crate::helpers::ServerProcess::start(
        &url,
        &["--tokens-file".as_ref(), file.path().as_os_str()],
        "trace",
    )
    .await;
    let mut client =
        pb::meeting_service_client::MeetingServiceClient::new(server.channel().await.unwrap());
    let create = pb::CreateMeetingRequest {
        meeting: Some(meeting("2022-05-05", &["AZ", "JP"])),
        request_id: String::new(),
        ..Default::default()
    };
    client
        .create_meeting(with_token(create, Some(&token)))
        .await
        .expect("a call with the token");
    let wrong = format!("{token}-but-wrong");
    let refused = client
        .list_meetings(with_token(pb::ListMeetingsRequest::default(), Some(&wrong)))
        .await
        .unwrap_err();
    assert!(
        !refused.message().contains(&wrong),
        "the error does not echo the token"
    );

    let pid = server.child.id().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), server.child.wait())
        .await
        .expect("the server stops on SIGTERM")
        .unwrap();
    let logs = std::fs::read_to_string(server.log.path()).unwrap();
    assert!(logs.contains("request finished"), "trace logs were written");
    for secret in [token.as_str(), wrong.as_str(), password] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    assert!(!logs.to_lowercase().contains("authorization: bearer"));
}

/// SIGHUP reads the tokens file again: the next calls on the same
/// connection use the new tokens; a file that is not valid keeps the
/// tokens as they were, and the log says why.
#[tokio::test]
async fn sighup_reloads_the_tokens_file_and_keeps_the_old_tokens_on_a_bad_one() {
    use sqlx::ConnectOptions;
    let app = crate::helpers::spawn_app().await;
    let (old, old_line) = new_token("read", "old-reader").unwrap();
    let (new, new_line) = new_token("read", "new-reader").unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{old_line}\n")).unwrap();
    let url = app.pool.connect_options().to_url_lossy().to_string();
    let server = crate::helpers::ServerProcess::start(
        &url,
        &["--tokens-file".as_ref(), file.path().as_os_str()],
        "info",
    )
    .await;
    let channel = server.channel().await.unwrap();
    let list = |token: &str| {
        let mut client = pb::meeting_service_client::MeetingServiceClient::new(channel.clone());
        let request = with_token(pb::ListMeetingsRequest::default(), Some(token));
        async move {
            client
                .list_meetings(request)
                .await
                .map(|_| ())
                .map_err(|s| s.code())
        }
    };
    let hangup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(server.child.id().unwrap() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap()
    };
    assert_eq!(list(&old).await, Ok(()));
    assert_eq!(list(&new).await, Err(Code::Unauthenticated));

    std::fs::write(file.path(), format!("{new_line}\n")).unwrap();
    hangup();
    let reloaded = crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
        list(&new).await.is_ok()
    })
    .await;
    assert!(reloaded, "the new token is accepted after SIGHUP");
    assert_eq!(list(&old).await, Err(Code::Unauthenticated));

    std::fs::write(file.path(), "not a tokens file\n").unwrap();
    hangup();
    let logged = crate::helpers::eventually(std::time::Duration::from_secs(10), || async {
        std::fs::read_to_string(server.log.path())
            .unwrap()
            .contains("the previous tokens stay")
    })
    .await;
    assert!(logged, "the log says why the file was not taken");
    assert_eq!(list(&new).await, Ok(()), "the tokens stay as they were");
}
