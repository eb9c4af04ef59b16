use std::time::Duration;

use futures_util::future::join_all;
use meetings::pb;
use tonic::Code;

use crate::helpers::{
    Settings, assert_error, create_all, eventually, ids, many, meeting, pair, spawn_app,
    spawn_app_with, violated_fields,
};

/// Sorted like the stream: by (date, id).
fn sorted(mut v: Vec<pb::Meeting>) -> Vec<pb::Meeting> {
    v.sort_by(|a, b| (&a.date, &a.id).cmp(&(&b.date, &b.id)));
    v
}

#[tokio::test]
async fn the_pair_is_unordered_and_case_insensitive() {
    let app = spawn_app().await;
    let m = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    app.create(meeting("2022-05-06", &["AZ", "TR"])).await;
    for (a, b) in [("AZ", "JP"), ("JP", "AZ"), ("az", "jp"), ("Jp", "aZ")] {
        assert_eq!(
            app.stream(pair(a, b)).await.unwrap(),
            std::slice::from_ref(&m),
            "{a}/{b}"
        );
    }
    assert!(app.stream(pair("JP", "TR")).await.unwrap().is_empty());
}

#[tokio::test]
async fn multilateral_meetings_belong_to_every_pair_of_their_countries() {
    let app = spawn_app().await;
    let summit = app
        .create(meeting("2023-01-01", &["AZ", "JP", "TR", "AZ"]))
        .await;
    let bilateral = app.create(meeting("2023-01-02", &["AZ", "TR"])).await;
    assert_eq!(
        ids(&app.stream(pair("AZ", "JP")).await.unwrap()),
        std::slice::from_ref(&summit.id)
    );
    assert_eq!(
        ids(&app.stream(pair("JP", "TR")).await.unwrap()),
        std::slice::from_ref(&summit.id)
    );
    assert_eq!(
        ids(&app.stream(pair("TR", "AZ")).await.unwrap()),
        [summit.id.clone(), bilateral.id.clone()]
    );
    assert!(app.stream(pair("AZ", "US")).await.unwrap().is_empty());
}

#[tokio::test]
async fn both_orders_date_bounds_and_resume() {
    let app = spawn_app().await;
    let dates = [
        "2020-01-01",
        "2021-06-15",
        "2021-06-15",
        "2021-06-15",
        "2022-05-05",
        "2023-12-31",
    ];
    let all = sorted(
        create_all(
            &app,
            dates.iter().map(|d| meeting(d, &["AZ", "JP"])).collect(),
        )
        .await,
    );
    app.create(meeting("2021-06-15", &["AZ", "FR"])).await;

    let asc = app.stream(pair("AZ", "JP")).await.unwrap();
    assert_eq!(asc, all, "ascending by (date, id)");
    let desc = app
        .stream(pb::StreamMeetingsByCountryPairRequest {
            newest_first: true,
            ..pair("AZ", "JP")
        })
        .await
        .unwrap();
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(desc, reversed, "descending by (date, id)");

    // Inclusive bounds.
    let bounded = pb::StreamMeetingsByCountryPairRequest {
        from_date: "2021-06-15".into(),
        to_date: "2022-05-05".into(),
        ..pair("AZ", "JP")
    };
    assert_eq!(app.stream(bounded.clone()).await.unwrap(), all[1..5]);
    let only_to = pb::StreamMeetingsByCountryPairRequest {
        to_date: "2021-06-14".into(),
        ..pair("AZ", "JP")
    };
    assert_eq!(app.stream(only_to).await.unwrap(), all[..1]);
    let bounded_desc = pb::StreamMeetingsByCountryPairRequest {
        newest_first: true,
        ..bounded.clone()
    };
    assert_eq!(
        app.stream(bounded_desc.clone()).await.unwrap(),
        reversed[1..5]
    );

    // Resume after a meeting the client already has, in either order,
    // including in the middle of meetings sharing one date.
    for k in 0..all.len() {
        let resumed = pb::StreamMeetingsByCountryPairRequest {
            start_after_id: all[k].id.clone(),
            ..pair("AZ", "JP")
        };
        assert_eq!(
            app.stream(resumed).await.unwrap(),
            all[k + 1..],
            "after #{k}"
        );
        let resumed = pb::StreamMeetingsByCountryPairRequest {
            start_after_id: reversed[k].id.clone(),
            newest_first: true,
            ..pair("AZ", "JP")
        };
        assert_eq!(
            app.stream(resumed).await.unwrap(),
            reversed[k + 1..],
            "after #{k} newest first"
        );
    }
    // Resume and bounds together: the later of the two starts wins.
    let resumed = pb::StreamMeetingsByCountryPairRequest {
        start_after_id: all[2].id.clone(),
        ..bounded.clone()
    };
    assert_eq!(app.stream(resumed).await.unwrap(), all[3..5]);
    let resumed = pb::StreamMeetingsByCountryPairRequest {
        start_after_id: all[0].id.clone(),
        ..bounded
    };
    assert_eq!(app.stream(resumed).await.unwrap(), all[1..5]);
}

#[tokio::test]
async fn bad_requests_are_invalid_argument_with_their_fields() {
    let app = spawn_app().await;
    let cases: Vec<(pb::StreamMeetingsByCountryPairRequest, Vec<&str>)> = vec![
        (pair("AZ", "az"), vec!["country_b"]),
        (pair("", "JP"), vec!["country_a"]),
        (pair("AZ", "ZZ"), vec!["country_b"]),
        (pair("AZE", "JPN"), vec!["country_a", "country_b"]),
        (
            pb::StreamMeetingsByCountryPairRequest {
                from_date: "2022-02-30".into(),
                ..pair("AZ", "JP")
            },
            vec!["from_date"],
        ),
        (
            pb::StreamMeetingsByCountryPairRequest {
                to_date: "yesterday".into(),
                ..pair("AZ", "JP")
            },
            vec!["to_date"],
        ),
        (
            pb::StreamMeetingsByCountryPairRequest {
                from_date: "2022-01-02".into(),
                to_date: "2022-01-01".into(),
                ..pair("AZ", "JP")
            },
            vec!["to_date"],
        ),
        (
            pb::StreamMeetingsByCountryPairRequest {
                start_after_id: "x".into(),
                ..pair("AZ", "JP")
            },
            vec!["start_after_id"],
        ),
    ];
    for (req, fields) in cases {
        let status = app.stream(req.clone()).await.unwrap_err();
        let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
        assert_eq!(violated_fields(&details), fields, "{req:?}");
    }
    let unknown = pb::StreamMeetingsByCountryPairRequest {
        start_after_id: uuid::Uuid::now_v7().to_string(),
        ..pair("AZ", "JP")
    };
    assert_error(
        &app.stream(unknown).await.unwrap_err(),
        Code::NotFound,
        "MEETING_NOT_FOUND",
    );
}

#[tokio::test]
async fn a_stream_of_fifty_thousand_meetings_is_complete_and_ordered() {
    let app = spawn_app().await;
    const N: usize = 50_000;
    create_all(&app, many(N)).await;

    let mut stream = app
        .client
        .clone()
        .stream_meetings_by_country_pair(pair("JP", "AZ"))
        .await
        .unwrap()
        .into_inner();
    let mut count = 0;
    let mut last: Option<(String, String)> = None;
    while let Some(item) = stream.message().await.unwrap() {
        let m = item.meeting.unwrap();
        let key = (m.date, m.id);
        if let Some(prev) = &last {
            assert!(
                prev < &key,
                "strictly ascending (date, id): {prev:?} then {key:?}"
            );
        }
        last = Some(key);
        count += 1;
    }
    assert_eq!(count, N);
}

#[tokio::test]
async fn a_client_that_cancels_frees_the_database_connection() {
    let app = spawn_app_with(Settings {
        db_pool_size: 3,
        ..Settings::default()
    })
    .await;
    create_all(&app, many(3_000)).await;

    let mut stream = app
        .client
        .clone()
        .stream_meetings_by_country_pair(pair("AZ", "JP"))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..5 {
        stream.message().await.unwrap().expect("a record");
    }
    drop(stream);

    let pool = app.pool.clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            let pool = pool.clone();
            // The change-feed listener keeps one connection for itself.
            async move { pool.size() as usize - pool.num_idle() <= 1 }
        })
        .await,
        "every server connection but the listener's is idle again (size {}, idle {})",
        app.pool.size(),
        app.pool.num_idle()
    );
    // And the server still answers from its small pool.
    let got = app
        .stream(pb::StreamMeetingsByCountryPairRequest {
            to_date: "1900-01-03".into(),
            ..pair("AZ", "JP")
        })
        .await;
    assert_eq!(got.unwrap().len(), 3);
}

#[tokio::test]
async fn concurrent_streams_outnumbering_the_pool_all_complete() {
    let app = spawn_app_with(Settings {
        db_pool_size: 2,
        ..Settings::default()
    })
    .await;
    create_all(&app, many(1_500)).await;
    let streams = (0..12).map(|_| app.stream(pair("AZ", "JP")));
    for result in join_all(streams).await {
        assert_eq!(result.unwrap().len(), 1_500);
    }
}
