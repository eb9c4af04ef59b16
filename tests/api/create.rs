use std::collections::HashSet;

use meetings::pb;
use tonic::Code;

use crate::helpers::{assert_error, azertac_request, meeting, spawn_app};

async fn create_article(app: &crate::helpers::TestApp) -> pb::Meeting {
    app.client
        .clone()
        .create_meeting(azertac_request())
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap()
}

#[tokio::test]
async fn the_example_article_round_trips_field_by_field() {
    let app = spawn_app().await;
    let created = create_article(&app).await;

    assert!(
        uuid::Uuid::try_parse(&created.id).is_ok(),
        "id {:?} is a UUID",
        created.id
    );
    assert_eq!(created.id, created.id.to_lowercase());
    assert_eq!(created.date, "2022-05-05");
    assert_eq!(
        created.location,
        Some(pb::Location {
            city: "Baku".into(),
            country_code: "AZ".into()
        })
    );
    let people: Vec<_> = created
        .participants
        .iter()
        .map(|p| (p.name.as_str(), p.title.as_str(), p.country_code.as_str()))
        .collect();
    assert_eq!(
        people,
        [
            ("Jeyhun Bayramov", "Minister of Foreign Affairs", "AZ"),
            (
                "Honda Taro",
                "Parliamentary Vice-Minister for Foreign Affairs",
                "JP"
            ),
        ]
    );
    assert_eq!(
        created.anniversary,
        Some(pb::Anniversary {
            years: 30,
            occasion: "establishment of diplomatic relations".into()
        })
    );
    assert_eq!(created.topics.len(), 16);
    assert_eq!(created.topics[0], "energy");
    assert!(created.topics.contains(&"demining".to_owned()));
    assert_eq!(created.topics.last().unwrap(), "situation in Ukraine");
    assert!(
        created
            .summary
            .starts_with("Azerbaijan's Foreign Minister Jeyhun Bayramov met")
    );
    assert_eq!(created.sources.len(), 1);
    assert_eq!(created.sources[0].name, "AZERTAC");
    assert_eq!(created.sources[0].url, "https://azertag.az/en");
    assert_eq!(created.country_codes, ["AZ", "JP"]);
    let create_time = created.create_time.expect("create_time is set");
    assert!(create_time.seconds > 1_700_000_000);
    assert_eq!(created.update_time, Some(create_time));
    assert!(!created.etag.is_empty(), "an etag is set");

    let fetched = app.get(&created.id).await.unwrap();
    assert_eq!(fetched, created);
    // The input, minus output-only fields, is exactly what was sent.
    let sent = azertac_request().meeting.unwrap();
    assert_eq!(meetings::api::without_output_fields(fetched), sent);
}

#[tokio::test]
async fn text_is_trimmed_codes_upper_cased_and_output_fields_ignored() {
    let app = spawn_app().await;
    let mut m = meeting("2020-01-02", &["az", " jp "]);
    m.participants[0].name = "  Jeyhun Bayramov\t".into();
    m.topics = vec!["  energy ".into()];
    m.location = Some(pb::Location {
        city: " Baku ".into(),
        country_code: "az".into(),
    });
    m.id = "not-an-id".into();
    m.country_codes = vec!["US".into()];
    m.create_time = Some(pbjson_types::Timestamp {
        seconds: 5,
        nanos: 0,
    });
    let created = app.create(m).await;
    assert_ne!(created.id, "not-an-id");
    assert_eq!(created.participants[0].name, "Jeyhun Bayramov");
    assert_eq!(created.participants[0].country_code, "AZ");
    assert_eq!(created.participants[1].country_code, "JP");
    assert_eq!(created.topics, ["energy"]);
    assert_eq!(created.location.unwrap().city, "Baku");
    assert_eq!(created.country_codes, ["AZ", "JP"]);
    assert_ne!(created.create_time.unwrap().seconds, 5);
}

#[tokio::test]
async fn country_codes_are_distinct_and_sorted() {
    let app = spawn_app().await;
    let created = app
        .create(meeting("2021-03-04", &["TR", "AZ", "TR", "GE"]))
        .await;
    assert_eq!(created.country_codes, ["AZ", "GE", "TR"]);
}

fn with_request_id(m: pb::Meeting, request_id: &str) -> pb::CreateMeetingRequest {
    pb::CreateMeetingRequest {
        meeting: Some(m),
        request_id: request_id.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_retry_with_the_same_request_id_returns_the_first_result() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    let first = client
        .create_meeting(with_request_id(
            meeting("2022-05-05", &["AZ", "JP"]),
            "req-1",
        ))
        .await
        .unwrap()
        .into_inner();
    // Same meeting, written differently but equal once normalised.
    let mut again = meeting("2022-05-05", &["AZ", "JP"]);
    again.topics = vec![" trade ".into()];
    again.participants[1].country_code = "jp".into();
    again.participants[0].name = format!("  {}", again.participants[0].name);
    let second = client
        .create_meeting(with_request_id(again, "req-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, second);
    assert_eq!(app.count_meetings().await, 1);

    // Without a request_id, the same meeting is stored again.
    app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    assert_eq!(app.count_meetings().await, 2);
}

#[tokio::test]
async fn the_same_request_id_with_a_different_meeting_is_already_exists() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    client
        .create_meeting(with_request_id(
            meeting("2022-05-05", &["AZ", "JP"]),
            "req-1",
        ))
        .await
        .unwrap();
    let status = client
        .create_meeting(with_request_id(
            meeting("2022-05-06", &["AZ", "JP"]),
            "req-1",
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::AlreadyExists, "REQUEST_ID_REUSED");
    assert_eq!(app.count_meetings().await, 1);
}

#[tokio::test]
async fn concurrent_creates_with_one_request_id_store_one_meeting() {
    let app = spawn_app().await;
    let calls = (0..16).map(|_| {
        let mut client = app.client.clone();
        tokio::spawn(async move {
            client
                .create_meeting(with_request_id(
                    meeting("2022-05-05", &["AZ", "JP"]),
                    "race",
                ))
                .await
                .map(|r| r.into_inner().meeting.unwrap().id)
        })
    });
    let mut ids = HashSet::new();
    for call in calls.collect::<Vec<_>>() {
        ids.insert(call.await.unwrap().expect("every racing call succeeds"));
    }
    assert_eq!(ids.len(), 1, "all calls return the same meeting");
    assert_eq!(app.count_meetings().await, 1);
    let pairs: i64 = sqlx::query_scalar("SELECT count(*) FROM meeting_country_pairs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(pairs, 1);
}

/// A meeting's participants, topics and pair are stored in the columns
/// reads filter on (its sources only in its record).
#[tokio::test]
async fn participants_topics_and_pairs_are_stored_with_the_meeting() {
    let app = spawn_app().await;
    let created = create_article(&app).await;
    let id = uuid::Uuid::parse_str(&created.id).unwrap();
    let count = |table: &'static str| {
        let pool = app.pool.clone();
        async move {
            let sql = format!("SELECT count(*) FROM {table} WHERE meeting_id = $1");
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("meeting_country_pairs").await, 1);
    let row = sqlx::query(
        "SELECT topics, participant_names, participant_titles, \
         participant_country_codes FROM meetings WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let list = |column: &str| -> Vec<String> { sqlx::Row::get(&row, column) };
    assert_eq!(list("topics"), created.topics);
    let field = |f: fn(&pb::Participant) -> &String| {
        created
            .participants
            .iter()
            .map(f)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(list("participant_names"), field(|p| &p.name));
    assert_eq!(list("participant_titles"), field(|p| &p.title));
    assert_eq!(list("participant_country_codes"), ["AZ", "JP"]);
}

/// Lists keep their items and order, whatever the list, in the topics
/// column and in the stored record (sources have no column): no sources,
/// one source without a URL (an empty item), several with and without
/// URLs, and text with commas, quotes, braces and non-ASCII characters.
#[tokio::test]
async fn lists_keep_every_item_in_order() {
    let app = spawn_app().await;
    let source = |name: &str, url: &str| pb::Source {
        name: name.to_owned(),
        url: url.to_owned(),
    };
    let cases = [
        (vec!["trade"], vec![]),
        (vec!["energy", "trade"], vec![source("AZERTAC", "")]),
        (
            vec!["\"quoted\", {braced}", "Ünïcödé, 日本", "NULL", "a\\b"],
            vec![
                source("AZERTAC", "https://azertag.az/en/xeber/1"),
                source("Kyodo, \"News\"", ""),
                source("{NHK}", "https://www3.nhk.or.jp/a,b"),
            ],
        ),
    ];
    for (topics, sources) in cases {
        let mut m = meeting("2022-05-05", &["AZ", "JP"]);
        m.topics = topics.iter().map(|t| t.to_string()).collect();
        m.sources = sources.clone();
        let created = app.create(m).await;
        let stored_topics: Vec<String> =
            sqlx::query_scalar("SELECT topics FROM meetings WHERE id = $1")
                .bind(uuid::Uuid::parse_str(&created.id).unwrap())
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert_eq!(stored_topics, topics);
        let read = app.get(&created.id).await.unwrap();
        assert_eq!(read.topics, topics);
        assert_eq!(read.sources, sources);
    }
}

/// A key remembers what was asked with it: the identical retry after an
/// update gets the meeting as it is now, after a delete NOT_FOUND; never
/// ALREADY_EXISTS, never a second meeting.
#[tokio::test]
async fn a_key_remembers_its_request_across_updates_and_deletes() {
    let app = spawn_app().await;
    let asked = meeting("2022-05-05", &["AZ", "JP"]);
    let first = app
        .client
        .clone()
        .create_meeting(with_request_id(asked.clone(), "remember-1"))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    let updated = app
        .client
        .clone()
        .update_meeting(pb::UpdateMeetingRequest {
            meeting: Some(pb::Meeting {
                id: first.id.clone(),
                summary: "Corrected later.".into(),
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    let retry = app
        .client
        .clone()
        .create_meeting(with_request_id(asked.clone(), "remember-1"))
        .await
        .expect("an identical retry after an update succeeds")
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(retry, updated, "the meeting as it is now");
    // A different meeting with the key is still refused.
    let status = app
        .client
        .clone()
        .create_meeting(with_request_id(
            meeting("2022-05-06", &["AZ", "JP"]),
            "remember-1",
        ))
        .await
        .unwrap_err();
    assert_error(&status, Code::AlreadyExists, "REQUEST_ID_REUSED");

    app.delete(&first.id).await;
    let status = app
        .client
        .clone()
        .create_meeting(with_request_id(asked.clone(), "remember-1"))
        .await
        .unwrap_err();
    let details = assert_error(&status, Code::NotFound, "MEETING_NOT_FOUND");
    assert_eq!(details.error_info().unwrap().metadata["id"], first.id);
    assert_eq!(app.count_meetings().await, 0, "no second meeting");
    // The same through ImportMeetings: a duplicate, nothing stored.
    let report = app
        .import(vec![pb::ImportMeetingsRequest {
            meeting: Some(asked),
            request_id: "remember-1".into(),
            ..Default::default()
        }])
        .await;
    assert_eq!((report.created_count, report.duplicate_count), (0, 1));
    assert_eq!(app.count_meetings().await, 0);
}

/// Records are stored as zstd frames (in the meeting and its pair rows'
/// copies) and read back as the encoded meeting; a record stored before
/// compression (the plain encoding) reads the same, through every read.
#[tokio::test]
async fn records_are_stored_compressed_and_plain_ones_still_read() {
    use prost::Message;

    let app = spawn_app().await;
    let created = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let id = uuid::Uuid::parse_str(&created.id).unwrap();
    let heads: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT substring(record FROM 1 FOR 4) FROM meetings WHERE id = $1 \
         UNION ALL SELECT substring(record FROM 1 FOR 4) FROM meeting_country_pairs \
         WHERE meeting_id = $1",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(heads, vec![vec![0x28, 0xB5, 0x2F, 0xFD]; 2], "zstd frames");
    assert_eq!(app.get(&created.id).await.unwrap(), created);

    // As an earlier version stored it.
    sqlx::query("UPDATE meetings SET record = $2 WHERE id = $1")
        .bind(id)
        .bind(created.encode_to_vec())
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE meeting_country_pairs SET record = $2 WHERE meeting_id = $1")
        .bind(id)
        .bind(created.encode_to_vec())
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(app.get(&created.id).await.unwrap(), created);
    let streamed = app
        .stream(pb::StreamMeetingsByCountryPairRequest {
            country_a: "AZ".into(),
            country_b: "JP".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(streamed, std::slice::from_ref(&created));
    let listed = app
        .client
        .clone()
        .list_meetings(pb::ListMeetingsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .meetings;
    assert_eq!(listed, [created]);
}
