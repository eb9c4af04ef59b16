//! Reports of one meeting from several outlets: merged into one record
//! (DUPLICATE_POLICY_MERGE), refused (REJECT) or kept (KEEP), concurrently
//! and in imports, and found by FindDuplicateMeetings.

use meetings::pb;
use pb::DuplicatePolicy as Policy;
use tonic::Code;

use crate::helpers::{TestApp, assert_error, ids, pair, spawn_app};

fn person(name: &str, title: &str, country: &str) -> pb::Participant {
    pb::Participant {
        name: name.into(),
        title: title.into(),
        country_code: country.into(),
        ..Default::default()
    }
}

/// The meeting of 2022-05-05 in Baku as AZERTAC reported it.
fn azertac() -> pb::Meeting {
    pb::Meeting {
        date: "2022-05-05".into(),
        participants: vec![
            person("Jeyhun Bayramov", "Minister of Foreign Affairs", "AZ"),
            person(
                "Honda Taro",
                "Parliamentary Vice-Minister for Foreign Affairs",
                "JP",
            ),
        ],
        topics: vec!["energy".into(), "economy".into()],
        sources: vec![pb::Source {
            name: "AZERTAC".into(),
            url: "https://azertag.az/en/xeber/1".into(),
        }],
        ..Default::default()
    }
}

/// The same meeting as Japan's foreign ministry reported it, a day later.
fn mofa() -> pb::Meeting {
    pb::Meeting {
        date: "2022-05-06".into(),
        participants: vec![
            person("Ceyhun Bayramov", "Foreign Minister", "AZ"),
            person("Taro Honda", "Vice-Minister", "JP"),
        ],
        topics: vec!["Energy".into(), "demining".into()],
        summary: "Vice-Minister Honda visited Baku.".into(),
        sources: vec![pb::Source {
            name: "MOFA Japan".into(),
            url: "https://www.mofa.go.jp/press/1".into(),
        }],
        ..Default::default()
    }
}

async fn create(
    app: &TestApp,
    meeting: pb::Meeting,
    duplicates: Policy,
) -> Result<pb::CreateMeetingResponse, tonic::Status> {
    app.client
        .clone()
        .create_meeting(pb::CreateMeetingRequest {
            meeting: Some(meeting),
            duplicates: duplicates as i32,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_second_report_merges_into_the_first() {
    let app = spawn_app().await;
    let first = create(&app, azertac(), Policy::Merge).await.unwrap();
    assert_eq!(
        first.merged_into, "",
        "nothing to merge with: stored as new"
    );
    let first = first.meeting.unwrap();
    let second = create(&app, mofa(), Policy::Merge).await.unwrap();
    assert_eq!(second.merged_into, first.id);
    let merged = second.meeting.unwrap();
    assert_eq!(merged.id, first.id);
    assert_eq!(merged.date, "2022-05-05", "the first report's date is kept");
    assert_eq!(merged.end_date, "2022-05-06", "the days widened");
    assert_eq!(merged.topics, ["energy", "economy", "demining"]);
    assert_eq!(merged.summary, "Vice-Minister Honda visited Baku.");
    assert_eq!(merged.sources.len(), 2);
    assert_eq!(merged.participants.len(), 2);
    assert_eq!(merged.participants[0].name, "Jeyhun Bayramov");
    assert_eq!(merged.participants[0].aliases, ["Ceyhun Bayramov"]);
    assert_eq!(merged.participants[0].title, "Minister of Foreign Affairs");
    assert_eq!(merged.participants[1].aliases, ["Taro Honda"]);
    assert_eq!(merged.etag, "v2");
    assert_eq!(app.get(&first.id).await.unwrap(), merged);
    assert_eq!(
        ids(&app.stream(pair("AZ", "JP")).await.unwrap()),
        [first.id.as_str()]
    );

    // The same report again changes nothing.
    let again = create(&app, mofa(), Policy::Merge).await.unwrap();
    assert_eq!(again.merged_into, first.id);
    assert_eq!(again.meeting.unwrap(), merged);
    assert_eq!(app.count_meetings().await, 1);
}

#[tokio::test]
async fn keep_stores_every_report_and_reject_names_the_stored_meeting() {
    let app = spawn_app().await;
    let first = create(&app, azertac(), Policy::Unspecified).await.unwrap();
    let kept = create(&app, mofa(), Policy::Keep).await.unwrap();
    assert_eq!(kept.merged_into, "");
    assert_ne!(kept.meeting.unwrap().id, first.meeting.as_ref().unwrap().id);
    assert_eq!(app.count_meetings().await, 2);

    let app = spawn_app().await;
    let first = create(&app, azertac(), Policy::Keep)
        .await
        .unwrap()
        .meeting
        .unwrap();
    let status = create(&app, mofa(), Policy::Reject).await.unwrap_err();
    let details = assert_error(&status, Code::AlreadyExists, "DUPLICATE_MEETING");
    assert_eq!(
        details.error_info().unwrap().metadata.get("meeting_id"),
        Some(&first.id)
    );
    assert_eq!(app.count_meetings().await, 1);
    // Without a match, REJECT stores.
    let mut other = mofa();
    other.participants[1].name = "Kishida Fumio".into();
    assert!(create(&app, other, Policy::Reject).await.is_ok());
}

#[tokio::test]
async fn near_misses_stay_separate_meetings() {
    let app = spawn_app().await;
    let first = create(&app, azertac(), Policy::Merge)
        .await
        .unwrap()
        .meeting
        .unwrap();
    // The same pair and day, other people (the presidents in the morning).
    let mut presidents = azertac();
    presidents.participants = vec![
        person("Ilham Aliyev", "President", "AZ"),
        person("Kishida Fumio", "Prime Minister", "JP"),
    ];
    // The same people a week later.
    let mut later = mofa();
    later.date = "2022-05-12".into();
    // The same people inside a summit with a third country.
    let mut summit = mofa();
    summit
        .participants
        .push(person("Hakan Fidan", "Minister of Foreign Affairs", "TR"));
    for m in [presidents, later, summit] {
        let r = create(&app, m, Policy::Merge).await.unwrap();
        assert_eq!(r.merged_into, "");
        assert_ne!(r.meeting.unwrap().id, first.id);
    }
    assert_eq!(app.count_meetings().await, 4);
}

#[tokio::test]
async fn concurrent_reports_of_one_meeting_end_as_one() {
    let app = spawn_app().await;
    let spellings = [
        ("Jeyhun Bayramov", "Honda Taro"),
        ("Ceyhun Bayramov", "Taro Honda"),
        ("Jeyhun Bairamov", "HONDA Taro"),
        ("J. Bayramov", "Taro Honda"),
    ];
    let calls = (0..16).map(|i| {
        let (az, jp) = spellings[i % spellings.len()];
        let mut m = azertac();
        m.participants[0].name = az.into();
        m.participants[1].name = jp.into();
        m.sources[0].url = format!("https://outlet-{i}.example/report");
        let app = &app;
        async move { create(app, m, Policy::Merge).await.unwrap() }
    });
    let answers = futures_util::future::join_all(calls).await;
    assert_eq!(app.count_meetings().await, 1, "one meeting for 16 reports");
    let stored = app.stream(pair("AZ", "JP")).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].sources.len(), 16, "every report's source is kept");
    let created = answers.iter().filter(|a| a.merged_into.is_empty()).count();
    assert_eq!(
        created, 1,
        "one report stored it, the others merged into it"
    );
}

#[tokio::test]
async fn an_import_merges_reports_into_earlier_meetings_of_its_stream() {
    let app = spawn_app().await;
    let streams = [azertac(), mofa(), {
        let mut wire = mofa();
        wire.participants[0].name = "Jeyhun Bayramov".into();
        wire.sources[0] = pb::Source {
            name: "Reuters".into(),
            url: String::new(),
        };
        wire
    }];
    // Ten meetings on ten days, each reported three times in one stream.
    let mut requests = Vec::new();
    for report in &streams {
        for day in 0..10 {
            let mut m = report.clone();
            let date =
                chrono::NaiveDate::from_ymd_opt(2022, 6, 1).unwrap() + chrono::Days::new(day * 7);
            m.date = date.to_string();
            requests.push(pb::ImportMeetingsRequest {
                meeting: Some(m),
                duplicates: Policy::Merge as i32,
                ..Default::default()
            });
        }
    }
    let report = app.import(requests).await;
    assert_eq!(
        (
            report.created_count,
            report.merged_count,
            report.rejected_count
        ),
        (10, 20, 0)
    );
    let stored = app.stream(pair("AZ", "JP")).await.unwrap();
    assert_eq!(stored.len(), 10);
    assert!(stored.iter().all(|m| m.sources.len() == 3), "{stored:?}");

    // REJECT in an import: counted as rejected, naming the stored meeting.
    let report = app
        .import(vec![pb::ImportMeetingsRequest {
            meeting: Some({
                let mut m = mofa();
                m.date = "2022-06-01".into();
                m
            }),
            duplicates: Policy::Reject as i32,
            ..Default::default()
        }])
        .await;
    assert_eq!(report.rejected_count, 1);
    let violation = &report.rejected[0].violations[0];
    assert_eq!(violation.field, "meeting");
    assert!(
        violation.description.contains(&stored[0].id),
        "{violation:?}"
    );
}

#[tokio::test]
async fn a_report_that_matches_a_meeting_widened_by_its_batch_merges_into_it() {
    let app = spawn_app().await;
    // A meeting of one day stored; then, in one import, a report that
    // widens it to three more days and a report of the last of those days,
    // which matches the stored meeting only as widened.
    let stored = create(&app, azertac(), Policy::Keep)
        .await
        .unwrap()
        .meeting
        .unwrap();
    assert_eq!(stored.date, "2022-05-05");
    let widening = pb::Meeting {
        date: "2022-05-06".into(),
        end_date: "2022-05-08".into(),
        ..mofa()
    };
    let last_day = pb::Meeting {
        date: "2022-05-09".into(),
        ..mofa()
    };
    let report = app
        .import(
            [widening, last_day]
                .into_iter()
                .map(|m| pb::ImportMeetingsRequest {
                    meeting: Some(m),
                    duplicates: Policy::Merge as i32,
                    ..Default::default()
                })
                .collect(),
        )
        .await;
    assert_eq!((report.created_count, report.merged_count), (0, 2));
    let all = app.stream(pair("AZ", "JP")).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].id, stored.id);
    assert_eq!(all[0].end_date, "2022-05-09");
}

#[tokio::test]
async fn a_report_that_would_span_more_than_90_days_with_its_match_is_a_meeting_of_its_own() {
    // MERGE, REJECT and FindDuplicateMeetings alike.
    let app = spawn_app().await;
    let long = pb::Meeting {
        date: "2000-01-01".into(),
        end_date: "2000-03-31".into(),
        ..azertac()
    };
    let stored = create(&app, long, Policy::Keep).await.unwrap();
    // The day after its last: it matches, but one meeting of both would
    // last 92 days.
    let after = pb::Meeting {
        date: "2000-04-01".into(),
        ..mofa()
    };
    // Every way of matching agrees: not found, not a duplicate to refuse.
    let found = app
        .client
        .clone()
        .find_duplicate_meetings(pb::FindDuplicateMeetingsRequest {
            meeting: Some(after.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(found.matches.is_empty(), "{found:?}");
    let before = pb::Meeting {
        date: "1999-12-31".into(),
        ..mofa()
    };
    let refused_not = create(&app, before, Policy::Reject).await.unwrap();
    let answer = create(&app, after, Policy::Merge).await.unwrap();
    assert_eq!(answer.merged_into, "");
    let stored = stored.meeting.unwrap().id;
    assert_ne!(answer.meeting.unwrap().id, stored);
    assert_ne!(refused_not.meeting.unwrap().id, stored);
    assert_eq!(app.count_meetings().await, 3);
}

#[tokio::test]
async fn a_policy_the_server_does_not_know_is_refused() {
    let app = spawn_app().await;
    for policy in [4, 7, -1, i32::MAX] {
        let status = app
            .client
            .clone()
            .create_meeting(pb::CreateMeetingRequest {
                meeting: Some(azertac()),
                duplicates: policy,
                ..Default::default()
            })
            .await
            .unwrap_err();
        let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
        assert_eq!(crate::helpers::violated_fields(&details), ["duplicates"]);
    }
    let report = app
        .import(vec![pb::ImportMeetingsRequest {
            meeting: Some(azertac()),
            duplicates: 9,
            ..Default::default()
        }])
        .await;
    assert_eq!(report.rejected_count, 1);
    assert_eq!(report.rejected[0].violations[0].field, "duplicates");
    assert_eq!(app.count_meetings().await, 0);
}

#[tokio::test]
async fn find_duplicates_names_the_matches_and_stores_nothing() {
    let app = spawn_app().await;
    let first = create(&app, azertac(), Policy::Keep)
        .await
        .unwrap()
        .meeting
        .unwrap();
    let found = app
        .client
        .clone()
        .find_duplicate_meetings(pb::FindDuplicateMeetingsRequest {
            meeting: Some(mofa()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.matches.len(), 1);
    let only = &found.matches[0];
    assert_eq!(only.meeting.as_ref().unwrap().id, first.id);
    let names: Vec<_> = only
        .names
        .iter()
        .map(|n| {
            (
                n.country_code.as_str(),
                n.name.as_str(),
                n.matched_name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("AZ", "Ceyhun Bayramov", "Jeyhun Bayramov"),
            ("JP", "Taro Honda", "Honda Taro")
        ]
    );
    assert_eq!(app.count_meetings().await, 1);
    let status = app
        .client
        .clone()
        .find_duplicate_meetings(pb::FindDuplicateMeetingsRequest { meeting: None })
        .await
        .unwrap_err();
    assert_error(&status, Code::InvalidArgument, "INVALID_MEETING");
}

#[tokio::test]
async fn a_retried_merge_with_its_request_id_answers_the_same() {
    let app = spawn_app().await;
    let first = create(&app, azertac(), Policy::Keep)
        .await
        .unwrap()
        .meeting
        .unwrap();
    let request = pb::CreateMeetingRequest {
        meeting: Some(mofa()),
        request_id: "mofa-1".into(),
        duplicates: Policy::Merge as i32,
    };
    let once = app
        .client
        .clone()
        .create_meeting(request.clone())
        .await
        .unwrap()
        .into_inner();
    let twice = app
        .client
        .clone()
        .create_meeting(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(once.merged_into, first.id);
    assert_eq!(twice.meeting, once.meeting);
    assert_eq!(twice.merged_into, first.id, "the retry says where it went");
    assert_eq!(app.count_meetings().await, 1);

    // A retry of a create that stored its report as new says nothing was
    // merged, also under MERGE.
    let new = pb::CreateMeetingRequest {
        meeting: Some(pb::Meeting {
            date: "2023-01-10".into(),
            ..azertac()
        }),
        request_id: "azertac-2".into(),
        duplicates: Policy::Merge as i32,
    };
    for _ in 0..2 {
        let answer = app
            .client
            .clone()
            .create_meeting(new.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.merged_into, "");
    }
    assert_eq!(app.count_meetings().await, 2);
}

#[tokio::test]
async fn aliases_are_checked_like_names() {
    let app = spawn_app().await;
    let mut m = azertac();
    m.participants[0].aliases = vec![
        "Ceyhun Bayramov".into(),
        "jeyhun bayramov".into(),
        " ".into(),
    ];
    let status = create(&app, m, Policy::Keep).await.unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_MEETING");
    assert_eq!(
        crate::helpers::violated_fields(&details),
        [
            "meeting.participants[0].aliases[1]",
            "meeting.participants[0].aliases[2]"
        ]
    );
}

#[tokio::test]
async fn an_import_of_many_batches_merges_across_them() {
    let app = spawn_app().await;
    // 700 meetings a week apart, reported twice: more than one batch of
    // each stream, so batches chain and commit while others start.
    let n = 700u64;
    let mut requests = Vec::new();
    for report in [azertac(), mofa()] {
        for i in 0..n {
            let mut m = report.clone();
            let date = chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap()
                + chrono::Days::new(i * 7 + u64::from(report.date == "2022-05-06"));
            m.date = date.to_string();
            requests.push(pb::ImportMeetingsRequest {
                meeting: Some(m),
                duplicates: Policy::Merge as i32,
                ..Default::default()
            });
        }
    }
    let report = app.import(requests).await;
    assert_eq!(
        (
            report.created_count,
            report.merged_count,
            report.rejected_count
        ),
        (n, n, 0)
    );
    let stored = app.stream(pair("AZ", "JP")).await.unwrap();
    assert_eq!(stored.len() as u64, n);
    assert!(
        stored
            .iter()
            .all(|m| m.sources.len() == 2 && m.etag == "v2")
    );
}

#[tokio::test]
async fn concurrent_reports_across_a_month_boundary_end_as_one() {
    let app = spawn_app().await;
    let calls = (0..12).map(|i| {
        let mut m = azertac();
        // Reported on the last day of May or the first of June.
        m.date = if i % 2 == 0 {
            "2022-05-31"
        } else {
            "2022-06-01"
        }
        .into();
        if i % 3 == 0 {
            m.end_date = "2022-06-02".into();
        }
        m.sources[0].url = format!("https://outlet-{i}.example/report");
        let app = &app;
        async move { create(app, m, Policy::Merge).await.unwrap() }
    });
    futures_util::future::join_all(calls).await;
    assert_eq!(app.count_meetings().await, 1);
    let stored = app.stream(pair("AZ", "JP")).await.unwrap();
    assert_eq!(stored[0].sources.len(), 12);
}

#[tokio::test]
async fn a_meeting_reported_by_many_outlets_keeps_taking_reports() {
    let app = spawn_app().await;
    let mut answers = Vec::new();
    for i in 0..25 {
        let mut m = mofa();
        m.sources[0] = pb::Source {
            name: format!("Outlet {i}"),
            url: format!("https://outlet-{i}.example/report"),
        };
        answers.push(create(&app, m, Policy::Merge).await.unwrap());
    }
    assert!(answers[1..].iter().all(|a| !a.merged_into.is_empty()));
    let stored = answers.last().unwrap().meeting.clone().unwrap();
    assert_eq!(stored.sources.len(), 20, "the first 20 sources are kept");
    assert_eq!(stored.sources[0].name, "Outlet 0");
    assert_eq!(app.count_meetings().await, 1);
}

#[tokio::test]
async fn a_report_of_the_last_day_of_a_long_meeting_finds_it() {
    let app = spawn_app().await;
    let mut talks = azertac();
    talks.date = "2022-03-01".into();
    talks.end_date = "2022-05-20".into();
    let talks = create(&app, talks, Policy::Keep)
        .await
        .unwrap()
        .meeting
        .unwrap();
    let mut last_day = mofa();
    last_day.date = "2022-05-21".into();
    let merged = create(&app, last_day, Policy::Merge).await.unwrap();
    assert_eq!(merged.merged_into, talks.id);
    assert_eq!(merged.meeting.unwrap().end_date, "2022-05-21");
    // Two days after it ended: another meeting.
    let mut later = mofa();
    later.date = "2022-05-23".into();
    assert_eq!(
        create(&app, later, Policy::Merge)
            .await
            .unwrap()
            .merged_into,
        ""
    );
}
