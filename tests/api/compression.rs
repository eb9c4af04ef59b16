//! gzip and zstd: accepted on requests and sent when the client accepts
//! them, on every method, GetMeeting's stored-bytes path included.

use meetings::pb;
use tonic::codec::CompressionEncoding;

use crate::helpers::{meeting, pair, spawn_app};

fn encoding_of<T>(response: &tonic::Response<T>) -> Option<String> {
    response
        .metadata()
        .get("grpc-encoding")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn gzip_and_zstd_both_ways_on_unary_streaming_and_stored_bytes_calls() {
    let app = spawn_app().await;
    let mut plain = meeting("2022-05-05", &["AZ", "JP"]);
    plain.summary = "The ministers discussed energy and demining. ".repeat(50);
    for (encoding, name) in [
        (CompressionEncoding::Gzip, "gzip"),
        (CompressionEncoding::Zstd, "zstd"),
    ] {
        let mut client = app
            .client
            .clone()
            .send_compressed(encoding)
            .accept_compressed(encoding);
        let created = client
            .create_meeting(pb::CreateMeetingRequest {
                meeting: Some(plain.clone()),
                ..Default::default()
            })
            .await
            .expect("a compressed request is accepted");
        assert_eq!(encoding_of(&created).as_deref(), Some(name));
        let created = created.into_inner().meeting.unwrap();

        // GetMeeting answers from stored bytes, compressed too.
        let got = client
            .get_meeting(pb::GetMeetingRequest {
                id: created.id.clone(),
            })
            .await
            .unwrap();
        assert_eq!(encoding_of(&got).as_deref(), Some(name));
        assert_eq!(got.into_inner().meeting.unwrap(), created);

        let listed = client
            .list_meetings(pb::ListMeetingsRequest::default())
            .await
            .unwrap();
        assert_eq!(encoding_of(&listed).as_deref(), Some(name));
        assert!(listed.into_inner().meetings.contains(&created));

        let streamed = client
            .stream_meetings_by_country_pair(pair("AZ", "JP"))
            .await
            .unwrap();
        assert_eq!(encoding_of(&streamed).as_deref(), Some(name));
        let mut stream = streamed.into_inner();
        let mut seen = Vec::new();
        while let Some(item) = stream.message().await.unwrap() {
            seen.push(item.meeting.unwrap());
        }
        assert!(seen.contains(&created));

        let imported = client
            .import_meetings(tokio_stream::iter([pb::ImportMeetingsRequest {
                meeting: Some(meeting("2022-06-01", &["DE", "FR"])),
                ..Default::default()
            }]))
            .await
            .expect("a compressed client stream is accepted");
        assert_eq!(encoding_of(&imported).as_deref(), Some(name));
        assert_eq!(imported.into_inner().created_count, 1);
    }

    // A client that accepts no compression gets none.
    let got = app
        .client
        .clone()
        .list_meetings(pb::ListMeetingsRequest::default())
        .await
        .unwrap();
    assert_eq!(encoding_of(&got), None);
    assert_eq!(app.count_meetings().await, 4);
}

#[tokio::test]
async fn health_is_served_compressed_too() {
    let app = spawn_app().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel().await)
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(encoding_of(&answer).as_deref(), Some("gzip"));
}
