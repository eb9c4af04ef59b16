//! Token authorisation, call by call.

use std::io::Write;

use meetings::auth::new_token;
use meetings::pb;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::helpers::{Settings, meeting, spawn_app_with};

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
    let refused = |r: Result<(), tonic::Status>| match r {
        Err(s) if matches!(s.code(), Code::Unauthenticated | Code::PermissionDenied) => {
            Some(s.code())
        }
        _ => None,
    };
    let create = pb::CreateMeetingRequest {
        meeting: Some(meeting("2022-05-05", &["AZ", "JP"])),
        request_id: String::new(),
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
                    },
                    token,
                ))
                .await
                .map(drop),
            ),
        ),
    ]
}

const WRITES: [&str; 4] = [
    "CreateMeeting",
    "ImportMeetings",
    "UpdateMeeting",
    "DeleteMeeting",
];

#[tokio::test]
async fn each_rpc_checks_its_token_and_scope() {
    let (read, read_line) = new_token("read", "reader").unwrap();
    let (write, write_line) = new_token("write", "writer").unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "{read_line}\n{write_line}").unwrap();
    let app = spawn_app_with(Settings {
        tokens_file: Some(file.path().to_owned()),
        ..Settings::default()
    })
    .await;

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
    let (read, line) = new_token("read", "").unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "{line}").unwrap();
    let app = spawn_app_with(Settings {
        tokens_file: Some(file.path().to_owned()),
        ..Settings::default()
    })
    .await;
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
    assert!(client.server_reflection_info(request).await.is_ok());
}

#[tokio::test]
async fn tokens_and_database_passwords_never_reach_the_logs() {
    use sqlx::ConnectOptions;
    let app = crate::helpers::spawn_app().await;
    let (token, line) = new_token("read,write", "").unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "{line}").unwrap();
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
