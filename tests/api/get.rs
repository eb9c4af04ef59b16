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
