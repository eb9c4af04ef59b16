//! UpdateMeeting, DeleteMeeting, ListMeetings, GetCountryPairSummary.

use meetings::pb;
use tonic::Code;

use crate::helpers::{TestApp, assert_error, ids, meeting, pair, spawn_app, violated_fields};

fn mask(paths: &[&str]) -> Option<pbjson_types::FieldMask> {
    Some(pbjson_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

async fn update(
    app: &TestApp,
    meeting: pb::Meeting,
    paths: &[&str],
) -> Result<pb::Meeting, tonic::Status> {
    app.client
        .clone()
        .update_meeting(pb::UpdateMeetingRequest {
            meeting: Some(meeting),
            update_mask: mask(paths),
        })
        .await
        .map(|r| r.into_inner().meeting.unwrap())
}

#[tokio::test]
async fn an_update_replaces_the_masked_fields_and_moves_the_pair_index() {
    let app = spawn_app().await;
    let created = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let patch = pb::Meeting {
        id: created.id.clone(),
        etag: created.etag.clone(),
        topics: vec!["energy".into(), "demining".into()],
        participants: meeting("2000-01-01", &["AZ", "TR"]).participants,
        summary: "not in the mask".into(),
        ..Default::default()
    };
    let updated = update(&app, patch, &["topics", "participants"])
        .await
        .unwrap();
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.topics, ["energy", "demining"]);
    assert_eq!(updated.country_codes, ["AZ", "TR"]);
    assert_eq!(
        updated.summary, "",
        "fields outside the mask keep their value"
    );
    assert_eq!(updated.date, "2022-05-05");
    assert_ne!(updated.etag, created.etag);
    assert_eq!(updated.create_time, created.create_time);
    let (before, after) = (created.update_time.unwrap(), updated.update_time.unwrap());
    assert!((after.seconds, after.nanos) > (before.seconds, before.nanos));
    assert_eq!(app.get(&created.id).await.unwrap(), updated);
    assert!(app.stream(pair("AZ", "JP")).await.unwrap().is_empty());
    assert_eq!(app.stream(pair("TR", "AZ")).await.unwrap(), [updated]);
}

#[tokio::test]
async fn star_replaces_everything_and_an_empty_mask_only_what_is_set() {
    let app = spawn_app().await;
    let mut m = meeting("2022-05-05", &["AZ", "JP"]);
    m.anniversary = Some(pb::Anniversary {
        years: 30,
        occasion: "diplomatic relations".into(),
    });
    let created = app.create(m).await;

    let only_summary = pb::Meeting {
        id: created.id.clone(),
        summary: "Met in Baku.".into(),
        ..Default::default()
    };
    let updated = update(&app, only_summary, &[]).await.unwrap();
    assert_eq!(updated.summary, "Met in Baku.");
    assert_eq!(updated.anniversary, created.anniversary);
    assert_eq!(updated.topics, created.topics);

    let mut all = meeting("2023-01-01", &["FR", "DE"]);
    all.id = created.id.clone();
    let replaced = update(&app, all, &["*"]).await.unwrap();
    assert_eq!(replaced.anniversary, None);
    assert_eq!(replaced.summary, "");
    assert_eq!(replaced.country_codes, ["DE", "FR"]);
}

#[tokio::test]
async fn bad_updates_are_rejected_with_their_fields() {
    let app = spawn_app().await;
    let created = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;

    let one_participant = pb::Meeting {
        id: created.id.clone(),
        participants: meeting("2022-05-05", &["AZ"]).participants,
        ..Default::default()
    };
    let status = update(&app, one_participant, &["participants"])
        .await
        .unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_MEETING");
    assert_eq!(violated_fields(&details), ["meeting.participants"]);

    let status = update(
        &app,
        pb::Meeting {
            id: created.id.clone(),
            ..Default::default()
        },
        &["title"],
    )
    .await
    .unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    assert_eq!(violated_fields(&details), ["update_mask.paths[0]"]);

    let status = update(&app, pb::Meeting::default(), &["topics"])
        .await
        .unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    assert_eq!(violated_fields(&details), ["meeting.id"]);

    let unknown = pb::Meeting {
        id: uuid::Uuid::now_v7().to_string(),
        ..Default::default()
    };
    assert_error(
        &update(&app, unknown, &["topics"]).await.unwrap_err(),
        Code::NotFound,
        "MEETING_NOT_FOUND",
    );
    assert_eq!(
        app.get(&created.id).await.unwrap(),
        created,
        "nothing changed"
    );
}

#[tokio::test]
async fn a_stale_etag_is_aborted_and_only_one_of_racing_updates_wins() {
    let app = spawn_app().await;
    let created = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let racers = (0..8).map(|i| {
        let patch = pb::Meeting {
            id: created.id.clone(),
            etag: created.etag.clone(),
            summary: format!("version from racer {i}"),
            ..Default::default()
        };
        let mut client = app.client.clone();
        tokio::spawn(async move {
            client
                .update_meeting(pb::UpdateMeetingRequest {
                    meeting: Some(patch),
                    update_mask: mask(&["summary"]),
                })
                .await
        })
    });
    let mut won = 0;
    for r in racers.collect::<Vec<_>>() {
        match r.await.unwrap() {
            Ok(_) => won += 1,
            Err(status) => {
                assert_error(&status, Code::Aborted, "ETAG_MISMATCH");
            }
        }
    }
    assert_eq!(won, 1, "exactly one update with the same etag wins");

    let stale = pb::Meeting {
        id: created.id.clone(),
        etag: created.etag.clone(),
        summary: "late".into(),
        ..Default::default()
    };
    assert_error(
        &update(&app, stale, &["summary"]).await.unwrap_err(),
        Code::Aborted,
        "ETAG_MISMATCH",
    );
}

#[tokio::test]
async fn a_deleted_meeting_is_gone_from_get_stream_and_list() {
    let app = spawn_app().await;
    let kept = app.create(meeting("2021-01-01", &["AZ", "JP"])).await;
    let gone = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let mut client = app.client.clone();

    let stale = client
        .delete_meeting(pb::DeleteMeetingRequest {
            id: gone.id.clone(),
            etag: "v999".into(),
        })
        .await
        .unwrap_err();
    assert_error(&stale, Code::Aborted, "ETAG_MISMATCH");

    client
        .delete_meeting(pb::DeleteMeetingRequest {
            id: gone.id.clone(),
            etag: gone.etag.clone(),
        })
        .await
        .unwrap();
    assert_error(
        &app.get(&gone.id).await.unwrap_err(),
        Code::NotFound,
        "MEETING_NOT_FOUND",
    );
    assert_eq!(
        app.stream(pair("AZ", "JP")).await.unwrap(),
        std::slice::from_ref(&kept)
    );
    let pair_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM meeting_country_pairs WHERE meeting_id = $1")
            .bind(uuid::Uuid::parse_str(&gone.id).unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(pair_rows, 0, "the deleted meeting's pair rows");
    let listed = client
        .list_meetings(pb::ListMeetingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.meetings, [kept]);
    let again = client
        .delete_meeting(pb::DeleteMeetingRequest {
            id: gone.id.clone(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_error(&again, Code::NotFound, "MEETING_NOT_FOUND");
    let malformed = client
        .delete_meeting(pb::DeleteMeetingRequest {
            id: "x".into(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_error(&malformed, Code::InvalidArgument, "INVALID_REQUEST");
}

async fn list(
    app: &TestApp,
    req: pb::ListMeetingsRequest,
) -> Result<pb::ListMeetingsResponse, tonic::Status> {
    app.client
        .clone()
        .list_meetings(req)
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn pages_are_newest_first_and_stable_while_meetings_are_inserted() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for day in 1..=5 {
        created.push(
            app.create(meeting(&format!("2022-01-0{day}"), &["AZ", "JP"]))
                .await,
        );
    }
    let first = list(
        &app,
        pb::ListMeetingsRequest {
            page_size: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        ids(&first.meetings),
        [created[4].id.clone(), created[3].id.clone()]
    );
    assert!(!first.next_page_token.is_empty());

    // Newer and older meetings arrive between pages: the next page goes on
    // from where the first ended, skipping and repeating nothing.
    app.create(meeting("2023-01-01", &["AZ", "JP"])).await;
    let older = app.create(meeting("2021-12-31", &["AZ", "JP"])).await;
    let mut token = first.next_page_token;
    let mut rest = Vec::new();
    while !token.is_empty() {
        let page = list(
            &app,
            pb::ListMeetingsRequest {
                page_size: 2,
                page_token: token,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        rest.extend(page.meetings);
        token = page.next_page_token;
    }
    assert_eq!(
        ids(&rest),
        [
            created[2].id.clone(),
            created[1].id.clone(),
            created[0].id.clone(),
            older.id.clone()
        ]
    );

    let everything = list(
        &app,
        pb::ListMeetingsRequest {
            page_size: 5_000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(everything.meetings.len(), 7);
    assert!(everything.next_page_token.is_empty());
}

#[tokio::test]
async fn filters_narrow_the_list() {
    let app = spawn_app().await;
    let mut a = meeting("2022-05-05", &["AZ", "JP"]);
    a.topics = vec!["Energy".into(), "demining".into()];
    a.summary = "The ministers discussed reconstruction of liberated territories.".into();
    a.participants[0].name = "Jeyhun Bayramov".into();
    let a = app.create(a).await;
    let mut b = meeting("2019-03-01", &["FR", "DE"]);
    b.topics = vec!["energy security".into(), "Ükraine".into()];
    let b = app.create(b).await;

    let by = |f: fn(&mut pb::ListMeetingsRequest)| {
        let mut req = pb::ListMeetingsRequest::default();
        f(&mut req);
        req
    };
    let cases: Vec<(pb::ListMeetingsRequest, Vec<String>)> = vec![
        (by(|r| r.country_code = "jp".into()), vec![a.id.clone()]),
        (by(|r| r.country_code = "DE".into()), vec![b.id.clone()]),
        (
            by(|r| r.from_date = "2020-01-01".into()),
            vec![a.id.clone()],
        ),
        (by(|r| r.to_date = "2019-03-01".into()), vec![b.id.clone()]),
        (by(|r| r.topic = "ENERGY".into()), vec![a.id.clone()]),
        (
            by(|r| r.topic = "energy security".into()),
            vec![b.id.clone()],
        ),
        // Case is ignored beyond ASCII too, whatever the database's locale.
        (by(|r| r.topic = "üKRAINE".into()), vec![b.id.clone()]),
        (
            by(|r| r.query = "reconstruction".into()),
            vec![a.id.clone()],
        ),
        (by(|r| r.query = "bayramov".into()), vec![a.id.clone()]),
        (
            by(|r| r.query = "energy".into()),
            vec![a.id.clone(), b.id.clone()],
        ),
        (
            by(|r| r.query = "energy -demining".into()),
            vec![b.id.clone()],
        ),
        (
            by(|r| r.query = "\"energy security\"".into()),
            vec![b.id.clone()],
        ),
        (by(|r| r.query = "nothing-like-this".into()), vec![]),
    ];
    for (req, expected) in cases {
        assert_eq!(
            ids(&list(&app, req.clone()).await.unwrap().meetings),
            expected,
            "{req:?}"
        );
    }
}

#[tokio::test]
async fn bad_list_requests_are_invalid_argument() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    }
    let page = list(
        &app,
        pb::ListMeetingsRequest {
            page_size: 1,
            country_code: "AZ".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let cases: Vec<(pb::ListMeetingsRequest, &str)> = vec![
        (
            pb::ListMeetingsRequest {
                page_size: -1,
                ..Default::default()
            },
            "page_size",
        ),
        (
            pb::ListMeetingsRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            // A token with other filters than the ones that issued it.
            pb::ListMeetingsRequest {
                page_size: 1,
                page_token: page.next_page_token.clone(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            pb::ListMeetingsRequest {
                country_code: "ZZ".into(),
                ..Default::default()
            },
            "country_code",
        ),
        (
            pb::ListMeetingsRequest {
                from_date: "2022-02-30".into(),
                ..Default::default()
            },
            "from_date",
        ),
    ];
    for (req, field) in cases {
        let status = list(&app, req.clone()).await.unwrap_err();
        let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
        assert_eq!(violated_fields(&details), [field], "{req:?}");
    }
}

#[tokio::test]
async fn a_pair_summary_counts_dates_topics_and_anniversaries() {
    let app = spawn_app().await;
    let mut first = meeting("1995-03-01", &["AZ", "JP"]);
    first.topics = vec!["Energy".into(), "trade".into()];
    let first = app.create(first).await;
    let mut article = meeting("2022-05-05", &["AZ", "JP", "TR"]);
    article.topics = vec!["energy".into(), "demining".into()];
    article.anniversary = Some(pb::Anniversary {
        years: 30,
        occasion: "establishment of diplomatic relations".into(),
    });
    let article = app.create(article).await;
    app.create(meeting("2023-01-01", &["AZ", "TR"])).await;

    let summary = app
        .client
        .clone()
        .get_country_pair_summary(pb::GetCountryPairSummaryRequest {
            country_a: "jp".into(),
            country_b: "az".into(),
            top_topics: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.country_a.as_str(), summary.country_b.as_str()),
        ("AZ", "JP")
    );
    assert_eq!(summary.meeting_count, 2);
    assert_eq!(summary.first_meeting_date, "1995-03-01");
    assert_eq!(summary.last_meeting_date, "2022-05-05");
    let topics: Vec<_> = summary
        .top_topics
        .iter()
        .map(|t| (t.topic.to_lowercase(), t.meeting_count))
        .collect();
    assert_eq!(topics[0], ("energy".to_owned(), 2));
    assert_eq!(topics.len(), 3);
    assert_eq!(summary.anniversaries.len(), 1);
    let a = &summary.anniversaries[0];
    assert_eq!((a.since_year, a.meeting_count), (1992, 1));
    assert_eq!(a.occasion, "establishment of diplomatic relations");
    assert_eq!(a.meeting_id, article.id);
    assert_ne!(a.meeting_id, first.id);

    let empty = app
        .client
        .clone()
        .get_country_pair_summary(pb::GetCountryPairSummaryRequest {
            country_a: "US".into(),
            country_b: "CA".into(),
            top_topics: 5,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (empty.meeting_count, empty.first_meeting_date.as_str()),
        (0, "")
    );

    let status = app
        .client
        .clone()
        .get_country_pair_summary(pb::GetCountryPairSummaryRequest {
            country_a: "AZ".into(),
            country_b: "az".into(),
            top_topics: 101,
            ..Default::default()
        })
        .await
        .unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    assert_eq!(violated_fields(&details), ["country_b", "top_topics"]);
}

/// A rewrite replaces every pair row of a meeting of three countries: after
/// a date change, each pair's stream holds the meeting once, as updated,
/// and after a deletion none does.
#[tokio::test]
async fn a_rewrite_replaces_every_pair_row_of_the_meeting() {
    let app = spawn_app().await;
    let created = app.create(meeting("2022-05-05", &["AZ", "JP", "TR"])).await;
    let patch = pb::Meeting {
        id: created.id.clone(),
        date: "2021-01-01".into(),
        ..Default::default()
    };
    let updated = update(&app, patch, &["date"]).await.unwrap();
    for (a, b) in [("AZ", "JP"), ("AZ", "TR"), ("JP", "TR")] {
        assert_eq!(
            app.stream(pair(a, b)).await.unwrap(),
            std::slice::from_ref(&updated),
            "{a}-{b}"
        );
    }
    app.delete(&created.id).await;
    for (a, b) in [("AZ", "JP"), ("AZ", "TR"), ("JP", "TR")] {
        assert!(app.stream(pair(a, b)).await.unwrap().is_empty(), "{a}-{b}");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM meeting_country_pairs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn a_mask_that_changes_nothing_is_refused_and_star_stands_alone() {
    let app = spawn_app().await;
    let created = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM meeting_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // An empty mask and nothing set: nothing to change.
    let status = update(
        &app,
        pb::Meeting {
            id: created.id.clone(),
            ..Default::default()
        },
        &[],
    )
    .await
    .unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    assert_eq!(violated_fields(&details), ["update_mask"]);
    // "*" with another path: the message says "*" must stand alone.
    let status = update(
        &app,
        pb::Meeting {
            id: created.id.clone(),
            summary: "x".into(),
            ..Default::default()
        },
        &["*", "summary"],
    )
    .await
    .unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    assert_eq!(violated_fields(&details), ["update_mask.paths[0]"]);
    let v = &details.bad_request().unwrap().field_violations[0];
    assert!(
        v.description.contains("only path") && !v.description.contains("not an updatable"),
        "{v:?}"
    );
    let got = app.get(&created.id).await.unwrap();
    assert_eq!(got.etag, created.etag, "no new version");
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM meeting_events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events_after, events_before, "no UPDATED event");
}

#[tokio::test]
async fn a_summary_names_a_topic_as_first_stored() {
    let app = spawn_app().await;
    for (date, topic) in [
        ("2022-05-05", "Energy"),
        ("2021-01-01", "ENERGY"),
        ("2023-01-01", "energy"),
    ] {
        let mut m = meeting(date, &["AZ", "JP"]);
        m.topics = vec![topic.into()];
        app.create(m).await;
    }
    let summary = app
        .client
        .clone()
        .get_country_pair_summary(pb::GetCountryPairSummaryRequest {
            country_a: "AZ".into(),
            country_b: "JP".into(),
            top_topics: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.top_topics.len(), 1);
    assert_eq!(summary.top_topics[0].topic, "Energy");
    assert_eq!(summary.top_topics[0].meeting_count, 3);
}

#[tokio::test]
async fn database_notices_are_not_sent_to_the_service() {
    let app = spawn_app().await;
    let level: String = sqlx::query_scalar("SHOW client_min_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(level, "warning");
}

/// Tokens that decode as base64 but were not issued as they are: another
/// position, another filter digest, or the old unsigned form.
#[tokio::test]
async fn forged_page_tokens_are_invalid_argument() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = spawn_app().await;
    for day in 1..=5 {
        app.create(meeting(&format!("2022-05-0{day}"), &["AZ", "JP"]))
            .await;
    }
    let list = |token: String| {
        let mut client = app.client.clone();
        async move {
            client
                .list_meetings(pb::ListMeetingsRequest {
                    page_size: 2,
                    page_token: token,
                    ..Default::default()
                })
                .await
        }
    };
    let issued = list(String::new())
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    assert!(list(issued.clone()).await.is_ok(), "the issued token works");
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(&issued).unwrap()).unwrap();
    let parts: Vec<&str> = text.split('|').collect();
    let other_id = uuid::Uuid::now_v7().to_string();
    let forged = [
        // Another position, the same signature.
        [parts[0], "2022-05-05", parts[2], parts[3], parts[4]].join("|"),
        [parts[0], parts[1], other_id.as_str(), parts[3], parts[4]].join("|"),
        // Another filter digest.
        [parts[0], parts[1], parts[2], "0123456789abcdef", parts[4]].join("|"),
        // Another signature.
        [
            parts[0],
            parts[1],
            parts[2],
            parts[3],
            "00112233445566778899aabbccddeeff",
        ]
        .join("|"),
        // The unsigned form of version 1.
        format!("1|{}|{}|{}", parts[1], parts[2], parts[3]),
    ];
    for token in forged {
        let status = list(URL_SAFE_NO_PAD.encode(&token)).await.unwrap_err();
        let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
        assert_eq!(violated_fields(&details), ["page_token"], "{token}");
    }
}
