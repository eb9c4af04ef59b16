//! MergeMeetings (by hand), what merged ids resolve to, what watchers see,
//! and ListMeetings' participant filter.

use std::time::Duration;

use meetings::pb;
use pb::MeetingEventKind as Kind;
use tonic::Code;

use crate::helpers::{TestApp, assert_error, ids, meeting, pair, spawn_app, violated_fields};

fn report(date: &str, az: &str, jp: &str, outlet: &str) -> pb::Meeting {
    let mut m = meeting(date, &["AZ", "JP"]);
    m.participants[0].name = az.into();
    m.participants[1].name = jp.into();
    m.sources = vec![pb::Source {
        name: outlet.into(),
        url: String::new(),
    }];
    m
}

async fn merge(
    app: &TestApp,
    target: &str,
    sources: &[&str],
) -> Result<pb::Meeting, tonic::Status> {
    app.client
        .clone()
        .merge_meetings(pb::MergeMeetingsRequest {
            target_id: target.into(),
            source_ids: sources.iter().map(|s| (*s).to_owned()).collect(),
        })
        .await
        .map(|r| r.into_inner().meeting.unwrap())
}

#[tokio::test]
async fn merged_meetings_become_one_and_their_ids_keep_working() {
    let app = spawn_app().await;
    let a = app
        .create(report(
            "2022-05-05",
            "Jeyhun Bayramov",
            "Honda Taro",
            "AZERTAC",
        ))
        .await;
    let b = app
        .create(report(
            "2022-05-06",
            "Ceyhun Bayramov",
            "Taro Honda",
            "MOFA",
        ))
        .await;
    let c = app
        .create(report("2022-05-05", "J. Bayramov", "Honda Taro", "Kyodo"))
        .await;
    let mut watch = app
        .client
        .clone()
        .watch_meetings(pb::WatchMeetingsRequest::default())
        .await
        .unwrap()
        .into_inner();

    let merged = merge(&app, &a.id, &[&b.id]).await.unwrap();
    assert_eq!(merged.id, a.id);
    assert_eq!(merged.merged_ids, [b.id.as_str()]);
    assert_eq!(merged.sources.len(), 2);
    assert_eq!(merged.participants[0].aliases, ["Ceyhun Bayramov"]);
    assert_eq!(merged.end_date, "2022-05-06");
    // The same call again changes nothing.
    assert_eq!(merge(&app, &a.id, &[&b.id]).await.unwrap(), merged);

    // The absorbed id names the survivor; pair streams, lists and
    // summaries see one meeting.
    assert_eq!(app.get(&b.id).await.unwrap(), merged);
    assert_eq!(
        ids(&app.stream(pair("AZ", "JP")).await.unwrap()),
        [a.id.as_str(), c.id.as_str()]
    );
    let summary = app
        .client
        .clone()
        .get_country_pair_summary(pb::GetCountryPairSummaryRequest {
            country_a: "AZ".into(),
            country_b: "JP".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(summary.meeting_count, 2);

    // Merged again, into c: both earlier ids now name c.
    let last = merge(&app, &c.id, &[&a.id]).await.unwrap();
    assert_eq!(last.merged_ids, [a.id.clone(), b.id.clone()]);
    assert_eq!(last.sources.len(), 3);
    for id in [&a.id, &b.id, &c.id] {
        assert_eq!(app.get(id).await.unwrap(), last, "{id}");
    }
    assert_eq!(app.count_meetings().await, 1);
    // Retried: the target stands for its survivor, and the source merged
    // into it is skipped.
    assert_eq!(merge(&app, &a.id, &[&b.id]).await.unwrap(), last);
    // A source merged elsewhere is not found, and the answer says where.
    let other = app.create(meeting("2023-01-01", &["AZ", "JP"])).await;
    let status = merge(&app, &other.id, &[&b.id]).await.unwrap_err();
    let details = assert_error(&status, Code::NotFound, "MEETING_NOT_FOUND");
    let info = details.error_info().unwrap();
    assert_eq!(info.metadata["id"], b.id);
    assert_eq!(info.metadata["merged_into"], c.id);
    assert!(
        status.message().contains("was merged into"),
        "{}",
        status.message()
    );
    app.delete(&other.id).await;

    // Watchers: UPDATED for the target, MERGED naming it for each source.
    // After the three creations.
    let mut events = Vec::new();
    while events.len() < 7 {
        let item = tokio::time::timeout(Duration::from_secs(10), watch.message())
            .await
            .expect("events in time")
            .unwrap()
            .unwrap();
        events.push(item.event.unwrap());
    }
    let events = events.split_off(3);
    let seen: Vec<_> = events
        .iter()
        .map(|e| {
            (
                Kind::try_from(e.kind).unwrap(),
                e.meeting.as_ref().unwrap().id.clone(),
                e.merged_into.clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Kind::Updated, a.id.clone(), String::new()),
            (Kind::Merged, b.id.clone(), a.id.clone()),
            (Kind::Updated, c.id.clone(), String::new()),
            (Kind::Merged, a.id.clone(), c.id.clone()),
        ]
    );
    assert_eq!(
        events[1].meeting.as_ref().unwrap().country_codes,
        ["AZ", "JP"]
    );

    // Deleting the survivor ends every id.
    app.delete(&c.id).await;
    for id in [&a.id, &b.id, &c.id] {
        let status = app.get(id).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    }
}

#[tokio::test]
async fn merge_requests_are_checked() {
    let app = spawn_app().await;
    let a = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let b = app.create(meeting("2022-05-06", &["AZ", "JP"])).await;
    let cases: [(&str, Vec<&str>, &[&str]); 4] = [
        ("nope", vec![b.id.as_str()], &["target_id"]),
        (a.id.as_str(), vec![], &["source_ids"]),
        (
            a.id.as_str(),
            vec![a.id.as_str(), "x"],
            &["source_ids[0]", "source_ids[1]"],
        ),
        (
            a.id.as_str(),
            vec![b.id.as_str(), b.id.as_str()],
            &["source_ids[1]"],
        ),
    ];
    for (target, sources, fields) in cases {
        let status = merge(&app, target, &sources).await.unwrap_err();
        let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
        assert_eq!(violated_fields(&details), fields, "{target} {sources:?}");
    }
    // A repeat names the index the caller sent, invalid ids counted.
    let status = merge(&app, &a.id, &["x", &b.id, &b.id]).await.unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    let violations = &details.bad_request().unwrap().field_violations;
    assert_eq!(violations[1].field, "source_ids[2]");
    assert_eq!(violations[1].description, "repeats source_ids[1]");
    let unknown = uuid::Uuid::now_v7().to_string();
    let status = merge(&app, &a.id, &[&b.id, &unknown]).await.unwrap_err();
    assert_error(&status, Code::NotFound, "MEETING_NOT_FOUND");
    assert_eq!(app.count_meetings().await, 2, "nothing merged");

    // Meetings whose days together span more than 90 days: refused, naming
    // the sources, whichever is the target.
    let later = app.create(meeting("2022-09-01", &["AZ", "JP"])).await;
    for (target, source) in [(&a.id, &later.id), (&later.id, &a.id)] {
        let status = merge(&app, target, &[source]).await.unwrap_err();
        let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
        assert_eq!(violated_fields(&details), ["source_ids"]);
        assert!(
            details.bad_request().unwrap().field_violations[0]
                .description
                .contains("end_date"),
            "{details:?}"
        );
    }
    assert_eq!(app.count_meetings().await, 3, "nothing merged");
}

#[tokio::test]
async fn opposite_merges_at_once_end_as_one_meeting() {
    let app = spawn_app().await;
    for _ in 0..5 {
        let a = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
        let b = app.create(meeting("2022-05-06", &["AZ", "JP"])).await;
        let (sources_a, sources_b) = ([b.id.as_str()], [a.id.as_str()]);
        let (one, other) = tokio::join!(
            merge(&app, &a.id, &sources_a),
            merge(&app, &b.id, &sources_b)
        );
        let (one, other) = (one.unwrap(), other.unwrap());
        assert_eq!(one.id, other.id, "both answer with the survivor");
        assert_eq!(app.count_meetings().await, 1);
        app.delete(&one.id).await;
    }
}

#[tokio::test]
async fn the_participant_filter_finds_names_across_spellings() {
    let app = spawn_app().await;
    let a = app
        .create(report(
            "2022-05-05",
            "Jeyhun Bayramov",
            "Honda Taro",
            "AZERTAC",
        ))
        .await;
    let b = app
        .create(report(
            "2021-03-01",
            "Ceyhun Bayramov",
            "Hayashi Yoshimasa",
            "MOFA",
        ))
        .await;
    let c = app
        .create(report(
            "2020-01-01",
            "Ilham Aliyev",
            "Kishida Fumio",
            "TASS",
        ))
        .await;
    let mut d = report("2019-01-01", "Джейхун Байрамов", "Taro HONDA", "TASS");
    d.participants[1].aliases = vec!["Taro Honda-san".into()];
    let d = app.create(d).await;
    let find = |name: &str| {
        let mut client = app.client.clone();
        let req = pb::ListMeetingsRequest {
            participant: name.into(),
            ..Default::default()
        };
        async move {
            ids(&client
                .list_meetings(req)
                .await
                .unwrap()
                .into_inner()
                .meetings)
        }
    };
    assert_eq!(
        find("bayramov").await,
        [a.id.as_str(), b.id.as_str(), d.id.as_str()]
    );
    // Spellings one edit apart match, as in duplicate matching; words of
    // different participants do not make a name.
    assert_eq!(
        find("Jeyhun Bayramov").await,
        [a.id.as_str(), b.id.as_str(), d.id.as_str()]
    );
    assert_eq!(find("Jeyhun Aliyev").await, Vec::<String>::new());
    assert_eq!(find("Ilham Heydar oglu Aliyev").await, [c.id.as_str()]);
    assert_eq!(find("Taro Honda").await, [a.id.as_str(), d.id.as_str()]);
    assert_eq!(find("Fumio Kishida").await, [c.id.as_str()]);
    assert_eq!(find("Lavrov").await, Vec::<String>::new());
    let status = app
        .client
        .clone()
        .list_meetings(pb::ListMeetingsRequest {
            participant: "-- .".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    assert_eq!(violated_fields(&details), ["participant"]);
    // The filter can be served by the GIN index on the name tokens (a
    // four-row table is read sequentially unless told otherwise).
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT id FROM meetings WHERE name_tokens && ARRAY['bairamov']",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert!(
        plan.iter().any(|l| l.contains("meetings_name_tokens_idx")),
        "{plan:?}"
    );
}
