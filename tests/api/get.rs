use meetings::pb;
use tonic::Code;

use crate::helpers::{assert_error, meeting, spawn_app, violated_fields};

#[tokio::test]
async fn get_returns_the_stored_meeting() {
    let app = spawn_app().await;
    let created = app.create(meeting("2019-07-08", &["FR", "DE"])).await;
    assert_eq!(app.get(&created.id).await.unwrap(), created);
}

#[tokio::test]
async fn a_malformed_id_is_invalid_argument() {
    let app = spawn_app().await;
    for id in [
        "",
        "42",
        "not-a-uuid",
        "01a2212b-9ff7-75ef-a633-a2035fbebbf",
    ] {
        let status = app
            .client
            .clone()
            .get_meeting(pb::GetMeetingRequest { id: id.into() })
            .await
            .unwrap_err();
        let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
        assert_eq!(violated_fields(&details), ["id"], "for {id:?}");
    }
}

#[tokio::test]
async fn an_unknown_id_is_not_found() {
    let app = spawn_app().await;
    app.create(meeting("2019-07-08", &["FR", "DE"])).await;
    let id = uuid::Uuid::now_v7().to_string();
    let status = app
        .client
        .clone()
        .get_meeting(pb::GetMeetingRequest { id: id.clone() })
        .await
        .unwrap_err();
    let details = assert_error(&status, Code::NotFound, "MEETING_NOT_FOUND");
    assert_eq!(details.error_info().unwrap().metadata.get("id"), Some(&id));
}

/// Concurrent lookups are answered by shared statements: each caller must
/// still get its own meeting, or NOT_FOUND for an id that does not exist.
#[tokio::test]
async fn concurrent_lookups_each_get_their_own_answer() {
    let app = spawn_app().await;
    let mut stored = Vec::new();
    for day in 1..=8 {
        stored.push(
            app.create(meeting(&format!("2019-07-0{day}"), &["FR", "DE"]))
                .await,
        );
    }
    let calls = (0..200).map(|i| {
        let app = &app;
        let expected = (i % 3 != 0).then(|| stored[i % stored.len()].clone());
        async move {
            let id = expected
                .as_ref()
                .map_or_else(|| uuid::Uuid::now_v7().to_string(), |m| m.id.clone());
            (expected, app.get(&id).await)
        }
    });
    for (expected, got) in futures_util::future::join_all(calls).await {
        match expected {
            Some(m) => assert_eq!(got.unwrap(), m),
            None => assert_eq!(got.unwrap_err().code(), Code::NotFound),
        }
    }
}
