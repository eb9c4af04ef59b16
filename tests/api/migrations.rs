//! Upgrades: data written under an older schema reads right after the
//! later migrations, which reshape it (event rows per statement, event
//! records keyed by meeting, participants and lower-cased topics on the
//! meeting).

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::helpers::spawn_app;

/// An event row as migrated: (event_id, sequence, kind, meeting_ids,
/// meeting_codes, event_count).
type EventRow = (i64, Option<i64>, i16, Vec<uuid::Uuid>, Vec<String>, i32);
/// A meeting's migrated arrays: (id, participant names, titles, country
/// codes, lower-cased topics).
type MeetingArrays = (
    uuid::Uuid,
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
);

/// The last migration before the change feed's rows per statement.
const BEFORE_EVENT_BATCHES: i64 = 20261128000007;

#[tokio::test]
async fn data_written_before_the_reshaping_migrations_survives_them() {
    let app = spawn_app().await;
    // An empty schema of the test's database, migrated only so far.
    sqlx::query("CREATE SCHEMA upgrade")
        .execute(&app.pool)
        .await
        .unwrap();
    let options: PgConnectOptions = (*app.pool.connect_options())
        .clone()
        .options([("search_path", "upgrade")]);
    let mut conn = PgConnection::connect_with(&options).await.unwrap();
    let migrator = sqlx::migrate!("./migrations");
    migrator
        .run_to(BEFORE_EVENT_BATCHES, &mut conn)
        .await
        .unwrap();

    // Two meetings, one with participants given in an order unlike their
    // names' and a topic with a non-ASCII capital; their events: a numbered
    // CREATED, a numbered UPDATED with its record, an unnumbered DELETED,
    // and a record whose event has expired.
    let a = uuid::Uuid::now_v7();
    let b = uuid::Uuid::now_v7();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO meetings (id, date, topics, source_names, source_urls, country_codes,
                               record, create_time, update_time, created_event_id)
         VALUES ('{a}', '2022-05-05', ARRAY['Energy', 'Ükraine'], '{{}}', '{{}}',
                 ARRAY['AZ', 'JP'], 'a2', now(), now(), 1),
                ('{b}', '2022-05-06', ARRAY['trade'], '{{}}', '{{}}', ARRAY['DE', 'FR'],
                 'b1', now(), now(), 2);
         INSERT INTO meeting_participants (meeting_id, position, name, title, country_code)
         VALUES ('{a}', 2, 'Alpha', 'Vice-Minister', 'JP'),
                ('{a}', 1, 'Zulu', 'Minister', 'AZ');
         INSERT INTO meeting_events (event_id, sequence, kind, meeting_id, country_codes)
         VALUES (1, 1, 1, '{a}', ARRAY['AZ', 'JP']),
                (3, 2, 2, '{a}', ARRAY['AZ', 'JP']),
                (4, NULL, 3, '{b}', ARRAY['DE', 'FR']);
         INSERT INTO meeting_event_records (event_id, record)
         VALUES (1, 'a1'), (3, 'a2'), (99, 'expired');"
    )))
    .execute(&mut conn)
    .await
    .unwrap();

    migrator.run(&mut conn).await.unwrap();

    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT event_id, sequence, kind, meeting_ids, meeting_codes, event_count \
             FROM meeting_events ORDER BY event_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let one = |id, seq, kind, m, codes: &str| (id, seq, kind, vec![m], vec![codes.to_owned()], 1);
    assert_eq!(
        events,
        [
            one(1, Some(1), 1, a, "AZ,JP"),
            one(3, Some(2), 2, a, "AZ,JP"),
            one(4, None, 3, b, "DE,FR"),
        ]
    );
    let records: Vec<(i64, uuid::Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT event_id, meeting_id, record FROM meeting_event_records ORDER BY event_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        records,
        [(1, a, b"a1".to_vec()), (3, a, b"a2".to_vec())],
        "records keyed by meeting; the expired one gone"
    );

    let meetings: Vec<MeetingArrays> = sqlx::query_as(
        "SELECT id, participant_names, participant_titles, participant_country_codes, \
             topics_lower FROM meetings ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let strings = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(meetings[0].0, a);
    assert_eq!(
        meetings[0].1,
        strings(&["Zulu", "Alpha"]),
        "in position order"
    );
    assert_eq!(meetings[0].2, strings(&["Minister", "Vice-Minister"]));
    assert_eq!(meetings[0].3, strings(&["AZ", "JP"]));
    assert_eq!(meetings[0].4[0], "energy");
    assert_eq!(meetings[1].1, Vec::<String>::new(), "no participant rows");
    assert_eq!(meetings[1].4, strings(&["trade"]));

    let gone: Option<String> = sqlx::query_scalar(
        "SELECT coalesce(to_regclass('meeting_participants')::text, \
                         to_regproc('meetings_lower_topics')::text)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        gone, None,
        "the participants table and the function are gone"
    );
    conn.close().await.unwrap();
}

#[tokio::test]
async fn topic_keys_made_by_an_earlier_rule_are_recomputed_at_start() {
    let app = spawn_app().await;
    let mut m = crate::helpers::meeting("2022-05-05", &["AZ", "JP"]);
    m.topics = vec!["Ükraine".into(), "Straße".into()];
    let created = app.create(m).await;
    // As migration 0010 left them on a C-locale server: lower() changes
    // ASCII letters only; and no version recorded for the rule.
    sqlx::query(
        "UPDATE meetings SET topics_lower = ARRAY['Ükraine', 'straße'] WHERE id = $1::uuid",
    )
    .bind(&created.id)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM derived_value_versions")
        .execute(&app.pool)
        .await
        .unwrap();

    // A service started on that database repairs them before serving.
    let restarted = app.second_instance().await;
    for topic in ["ükraine", "ÜKRAINE", "STRASSE", "strasse"] {
        let found = restarted
            .client
            .clone()
            .list_meetings(meetings::pb::ListMeetingsRequest {
                topic: topic.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .meetings;
        assert_eq!(found.len(), 1, "topic {topic:?} finds the meeting");
        assert_eq!(found[0].id, created.id);
    }
    let version: i32 = sqlx::query_scalar(
        "SELECT version FROM derived_value_versions WHERE name = 'topics_lower'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(version, meetings::domain::TOPIC_KEY_VERSION);
}

/// The last migration before organisations, spans and formats (0016).
const BEFORE_PARTIES: i64 = 20261203000015;
/// The advisory lock keys of the change-feed sequencer and of the
/// partition upkeep (src/storage/events.rs, partitions.rs).
const SEQUENCER_LOCK: i64 = 0x6d65_6574_696e_6773;
const PARTITIONS_LOCK: i64 = 0x6d74_6770_6172_7473;

#[tokio::test]
async fn meetings_stored_before_parties_and_spans_read_unchanged_after_them() {
    use meetings::pb;
    use prost::Message;

    let app = spawn_app().await;
    // An upgrade stops the old instances first (README, Upgrades); this
    // one keeps running, so its change-feed sequencer and partition upkeep
    // are held off (their advisory locks, taken here) until the upgraded
    // instance has migrated: they would otherwise work on the schema while
    // the test rewrites it.
    let mut quiet = app.pool.acquire().await.unwrap().detach();
    sqlx::query("SELECT pg_advisory_lock(k) FROM unnest($1::int8[]) AS k")
        .bind([SEQUENCER_LOCK, PARTITIONS_LOCK])
        .execute(&mut quiet)
        .await
        .unwrap();
    // The schema as migration 0015 left it: the test database without 0016
    // and the migrations after it.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP TABLE meeting_redirects, pair_figure_changes, pair_figures;
         ALTER TABLE meetings ADD COLUMN summary text NOT NULL DEFAULT '',
                              ADD COLUMN source_names text[] NOT NULL DEFAULT '{{}}',
                              ADD COLUMN source_urls text[] NOT NULL DEFAULT '{{}}';
         DROP TABLE meeting_events, meeting_event_records, meeting_event_expiry;
         CREATE TABLE meeting_events (
             event_id bigserial PRIMARY KEY, sequence bigint, kind smallint NOT NULL,
             event_time timestamptz NOT NULL DEFAULT now(), meeting_ids uuid[] NOT NULL,
             meeting_codes text[] NOT NULL, event_count integer NOT NULL,
             previous_codes text[], merged_into uuid);
         CREATE UNIQUE INDEX meeting_events_sequence_idx ON meeting_events (sequence)
             WHERE sequence IS NOT NULL;
         CREATE INDEX meeting_events_unsequenced_idx ON meeting_events (event_id)
             WHERE sequence IS NULL;
         CREATE TABLE meeting_event_records (
             event_id bigint NOT NULL, record bytea NOT NULL, meeting_id uuid NOT NULL,
             PRIMARY KEY (event_id, meeting_id));
         DELETE FROM derived_value_versions
         WHERE name IN ('name_tokens', 'match_keys', 'pair_figures');
         ALTER TABLE meetings DROP COLUMN match_keys;
         ALTER TABLE meeting_events DROP COLUMN merged_into;
         ALTER TABLE meetings DROP COLUMN name_tokens, DROP COLUMN participant_aliases;
         ALTER TABLE meeting_country_pairs DROP CONSTRAINT meeting_country_pairs_check;
         ALTER TABLE meeting_country_pairs ADD CONSTRAINT meeting_country_pairs_check
             CHECK (country_low < country_high);
         ALTER TABLE meetings DROP CONSTRAINT meetings_end_date_check,
                              DROP CONSTRAINT meetings_format_check,
                              DROP COLUMN end_date, DROP COLUMN format;
         ALTER TABLE meeting_country_pairs DROP COLUMN end_date;
         DELETE FROM _sqlx_migrations WHERE version > {BEFORE_PARTIES};"
    )))
    .execute(&app.pool)
    .await
    .unwrap();

    // Two meetings as that schema's writer stored them: columns, pair rows
    // with copies of the record, one CREATED event row for both.
    let ids = [uuid::Uuid::now_v7(), uuid::Uuid::now_v7()];
    let records: Vec<pb::Meeting> = ids
        .iter()
        .zip(["2022-05-05", "1992-03-02"])
        .map(|(id, date)| pb::Meeting {
            id: id.to_string(),
            country_codes: vec!["AZ".into(), "JP".into()],
            etag: "v1".into(),
            create_time: Some(pbjson_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            update_time: Some(pbjson_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..crate::helpers::meeting(date, &["AZ", "JP"])
        })
        .collect();
    for (id, record) in ids.iter().zip(&records) {
        let bytes = record.encode_to_vec();
        sqlx::query(
            "INSERT INTO meetings (id, date, topics, source_names, source_urls, country_codes,
                                   record, create_time, update_time, version, search,
                                   participant_names, participant_titles,
                                   participant_country_codes, topics_lower, created_event_id)
             VALUES ($1, $2::date, ARRAY['trade'], '{}', '{}', ARRAY['AZ', 'JP'], $3,
                     to_timestamp(1700000000), to_timestamp(1700000000), 1,
                     to_tsvector('simple', 'trade'), ARRAY['Delegate 0 of AZ', 'Delegate 1 of JP'],
                     ARRAY['Minister of Foreign Affairs', 'Minister of Foreign Affairs'],
                     ARRAY['AZ', 'JP'], ARRAY['trade'], 900);
             ",
        )
        .bind(id)
        .bind(&record.date)
        .bind(&bytes)
        .execute(&app.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO meeting_country_pairs (country_low, country_high, date, meeting_id, record)
             VALUES ('AZ', 'JP', $2::date, $1, $3)",
        )
        .bind(id)
        .bind(&record.date)
        .bind(&bytes)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO meeting_events (event_id, kind, meeting_ids, meeting_codes, event_count)
         VALUES (900, 1, $1, ARRAY['AZ,JP', 'AZ,JP'], 2)",
    )
    .bind(&ids[..])
    .execute(&app.pool)
    .await
    .unwrap();

    // A service started on that database applies 0016, then serves them.
    let upgraded = app.second_instance().await;
    sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut quiet)
        .await
        .unwrap();
    for record in &records {
        assert_eq!(&upgraded.get(&record.id).await.unwrap(), record);
    }
    let newest_first = vec![records[0].clone(), records[1].clone()];
    let oldest_first = vec![records[1].clone(), records[0].clone()];
    assert_eq!(
        upgraded
            .stream(crate::helpers::pair("JP", "AZ"))
            .await
            .unwrap(),
        oldest_first
    );
    let bounded = pb::StreamMeetingsByCountryPairRequest {
        from_date: "2022-05-05".into(),
        ..crate::helpers::pair("AZ", "JP")
    };
    assert_eq!(
        upgraded.stream(bounded).await.unwrap(),
        [records[0].clone()],
        "a meeting of one day overlaps a bound on its day"
    );
    let after_it = pb::StreamMeetingsByCountryPairRequest {
        from_date: "2022-05-06".into(),
        ..crate::helpers::pair("AZ", "JP")
    };
    assert_eq!(
        upgraded.stream(after_it).await.unwrap(),
        [],
        "and only on its day"
    );
    let listed = upgraded
        .client
        .clone()
        .list_meetings(pb::ListMeetingsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .meetings;
    assert_eq!(listed, newest_first);
    // Their name tokens were computed at start: the participant filter
    // finds them.
    let by_name = upgraded
        .client
        .clone()
        .list_meetings(pb::ListMeetingsRequest {
            participant: "delegate 0 of az".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .meetings;
    assert_eq!(by_name, newest_first);
    // And their match keys: a report of one of them merges into it.
    let unkeyed: i64 = sqlx::query_scalar("SELECT count(*) FROM meetings WHERE match_keys IS NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(unkeyed, 0);
    let report = pb::Meeting {
        date: "2022-05-06".into(),
        ..records[0].clone()
    };
    let rejected = upgraded
        .client
        .clone()
        .create_meeting(pb::CreateMeetingRequest {
            meeting: Some(meetings::api::without_output_fields(report)),
            duplicates: pb::DuplicatePolicy::Reject as i32,
            ..Default::default()
        })
        .await
        .expect_err("the report matches the stored meeting");
    assert_eq!(rejected.code(), tonic::Code::AlreadyExists);
    assert!(
        rejected.message().contains(&records[0].id),
        "{}",
        rejected.message()
    );
    let summary = upgraded
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
    assert_eq!(
        summary
            .meetings_by_format
            .iter()
            .map(|f| (f.format, f.meeting_count))
            .collect::<Vec<_>>(),
        [(pb::MeetingFormat::Unspecified as i32, 2)]
    );
    let mut watch = upgraded
        .client
        .clone()
        .watch_meetings(pb::WatchMeetingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let item = tokio::time::timeout(std::time::Duration::from_secs(10), watch.message())
            .await
            .expect("the stored events arrive")
            .unwrap()
            .unwrap();
        seen.push(item.event.unwrap().meeting.unwrap());
    }
    let mut expected = records.clone();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(seen, expected);

    // A stored meeting is updated (its pair rows rewritten with a span)
    // and deleted as any other.
    let updated = upgraded
        .client
        .clone()
        .update_meeting(pb::UpdateMeetingRequest {
            meeting: Some(pb::Meeting {
                id: records[1].id.clone(),
                end_date: "1992-03-04".into(),
                ..Default::default()
            }),
            update_mask: Some(pbjson_types::FieldMask {
                paths: vec!["end_date".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(updated.end_date, "1992-03-04");
    let found = upgraded
        .stream(pb::StreamMeetingsByCountryPairRequest {
            from_date: "1992-03-04".into(),
            to_date: "1992-03-04".into(),
            ..crate::helpers::pair("AZ", "JP")
        })
        .await
        .unwrap();
    assert_eq!(found, [updated]);
    upgraded.delete(&records[0].id).await;
    assert_eq!(upgraded.count_meetings().await, 1);
}
