//! Each validation rule, through the real server: the status, the reason and
//! the exact field path of every violation.

use chrono::{Months, Utc};
use meetings::pb;
use tonic::Code;

use crate::helpers::{assert_error, meeting, spawn_app, violated_fields};

fn base() -> pb::Meeting {
    meeting("2022-05-05", &["AZ", "JP"])
}

fn person(name: &str, country: &str) -> pb::Participant {
    pb::Participant {
        name: name.into(),
        title: String::new(),
        country_code: country.into(),
        ..Default::default()
    }
}

fn source(name: &str, url: &str) -> pb::Source {
    pb::Source {
        name: name.into(),
        url: url.into(),
    }
}

fn x(n: usize) -> String {
    "x".repeat(n)
}

fn in_a_year_and_a_day() -> String {
    (Utc::now().date_naive() + Months::new(12) + chrono::Days::new(1)).to_string()
}

/// A change that breaks one rule of a valid meeting.
type Breakage = Box<dyn Fn(&mut pb::Meeting)>;

/// (case, change to a valid meeting, the one field path expected).
fn invalid_cases() -> Vec<(&'static str, Breakage, &'static str)> {
    vec![
        ("date missing", Box::new(|m| m.date.clear()), "meeting.date"),
        (
            "end date before the date",
            Box::new(|m| m.end_date = "2022-05-04".into()),
            "meeting.end_date",
        ),
        (
            "end date 91 days on",
            Box::new(|m| m.end_date = "2022-08-04".into()),
            "meeting.end_date",
        ),
        (
            "end date not a date",
            Box::new(|m| m.end_date = "5 May".into()),
            "meeting.end_date",
        ),
        (
            "format unknown",
            Box::new(|m| m.format = 4),
            "meeting.format",
        ),
        (
            "organisation unknown",
            Box::new(|m| {
                m.participants[1].country_code.clear();
                m.participants[1].organization_code = "XYZ".into();
            }),
            "meeting.participants[1].organization_code",
        ),
        (
            "organisation before its founding",
            Box::new(|m| {
                m.participants[1].country_code.clear();
                m.participants[1].organization_code = "WTO".into();
                m.date = "1994-12-31".into();
            }),
            "meeting.participants[1].organization_code",
        ),
        (
            "country and organisation both",
            Box::new(|m| m.participants[1].organization_code = "UN".into()),
            "meeting.participants[1].organization_code",
        ),
        (
            "former country after it ceased",
            Box::new(|m| m.participants[1].country_code = "YU".into()),
            "meeting.participants[1].country_code",
        ),
        (
            "former country before it began",
            Box::new(|m| {
                m.participants[1].country_code = "CSXX".into();
                m.date = "2003-02-03".into();
            }),
            "meeting.participants[1].country_code",
        ),
        (
            "former code of two countries",
            Box::new(|m| m.participants[1].country_code = "CS".into()),
            "meeting.participants[1].country_code",
        ),
        (
            "location in a country that had ceased",
            Box::new(|m| {
                m.location = Some(pb::Location {
                    city: "Moscow".into(),
                    country_code: "SUHH".into(),
                })
            }),
            "meeting.location.country_code",
        ),
        (
            "date not zero-padded",
            Box::new(|m| m.date = "2022-5-5".into()),
            "meeting.date",
        ),
        (
            "date not a calendar day",
            Box::new(|m| m.date = "2022-02-30".into()),
            "meeting.date",
        ),
        (
            "date with a time",
            Box::new(|m| m.date = "2022-05-05T10:00:00Z".into()),
            "meeting.date",
        ),
        (
            "date before 1800",
            Box::new(|m| m.date = "1799-12-31".into()),
            "meeting.date",
        ),
        (
            "date over a year ahead",
            Box::new(|m| m.date = in_a_year_and_a_day()),
            "meeting.date",
        ),
        (
            "one participant",
            Box::new(|m| m.participants.truncate(1)),
            "meeting.participants",
        ),
        (
            "no participants",
            Box::new(|m| m.participants.clear()),
            "meeting.participants",
        ),
        (
            "201 participants",
            Box::new(|m| {
                m.participants = (0..201)
                    .map(|i| person(&format!("P{i}"), if i % 2 == 0 { "AZ" } else { "JP" }))
                    .collect()
            }),
            "meeting.participants",
        ),
        (
            "one country only",
            Box::new(|m| m.participants = vec![person("A", "AZ"), person("B", "az")]),
            "meeting.participants",
        ),
        (
            "blank name",
            Box::new(|m| m.participants[1].name = "  ".into()),
            "meeting.participants[1].name",
        ),
        (
            "name too long",
            Box::new(|m| m.participants[0].name = x(201)),
            "meeting.participants[0].name",
        ),
        (
            "title too long",
            Box::new(|m| m.participants[0].title = x(201)),
            "meeting.participants[0].title",
        ),
        (
            "unassigned code",
            Box::new(|m| m.participants[1].country_code = "ZZ".into()),
            "meeting.participants[1].country_code",
        ),
        (
            "alpha-3 code",
            Box::new(|m| m.participants[1].country_code = "JPN".into()),
            "meeting.participants[1].country_code",
        ),
        (
            "missing code",
            Box::new(|m| m.participants[1].country_code.clear()),
            "meeting.participants[1].country_code",
        ),
        (
            "same name and country twice",
            Box::new(|m| {
                m.participants.push(pb::Participant {
                    title: "other title".into(),
                    ..m.participants[0].clone()
                })
            }),
            "meeting.participants[2]",
        ),
        (
            "101 topics",
            Box::new(|m| m.topics = (0..101).map(|i| format!("t{i}")).collect()),
            "meeting.topics",
        ),
        (
            "blank topic",
            Box::new(|m| m.topics = vec!["a".into(), " ".into()]),
            "meeting.topics[1]",
        ),
        (
            "topic too long",
            Box::new(|m| m.topics = vec![x(201)]),
            "meeting.topics[0]",
        ),
        (
            "duplicate topic ignoring case",
            Box::new(|m| {
                m.topics = vec![
                    "a".into(),
                    "b".into(),
                    "c".into(),
                    "Energy".into(),
                    "ENERGY".into(),
                ]
            }),
            "meeting.topics[4]",
        ),
        (
            "line break in a topic",
            Box::new(|m| m.topics = vec!["a\nb".into()]),
            "meeting.topics[0]",
        ),
        (
            "anniversary of 0 years",
            Box::new(|m| {
                m.anniversary = Some(pb::Anniversary {
                    years: 0,
                    occasion: "relations".into(),
                })
            }),
            "meeting.anniversary.years",
        ),
        (
            "anniversary of 1001 years",
            Box::new(|m| {
                m.anniversary = Some(pb::Anniversary {
                    years: 1001,
                    occasion: "relations".into(),
                })
            }),
            "meeting.anniversary.years",
        ),
        (
            "anniversary without occasion",
            Box::new(|m| {
                m.anniversary = Some(pb::Anniversary {
                    years: 30,
                    occasion: String::new(),
                })
            }),
            "meeting.anniversary.occasion",
        ),
        (
            "city too long",
            Box::new(|m| {
                m.location = Some(pb::Location {
                    city: x(201),
                    country_code: "AZ".into(),
                })
            }),
            "meeting.location.city",
        ),
        (
            "bad location country",
            Box::new(|m| {
                m.location = Some(pb::Location {
                    city: "Baku".into(),
                    country_code: "XX".into(),
                })
            }),
            "meeting.location.country_code",
        ),
        (
            "21 sources",
            Box::new(|m| m.sources = (0..21).map(|i| source(&format!("S{i}"), "")).collect()),
            "meeting.sources",
        ),
        (
            "source without name",
            Box::new(|m| m.sources = vec![source("", "https://azertag.az")]),
            "meeting.sources[0].name",
        ),
        (
            "ftp url",
            Box::new(|m| m.sources = vec![source("A", "ftp://azertag.az/x")]),
            "meeting.sources[0].url",
        ),
        (
            "relative url",
            Box::new(|m| m.sources = vec![source("A", "/en/news")]),
            "meeting.sources[0].url",
        ),
        (
            "url too long",
            Box::new(|m| {
                m.sources = vec![
                    source("A", ""),
                    source("B", &format!("https://a.az/{}", x(2049 - 13))),
                ]
            }),
            "meeting.sources[1].url",
        ),
        (
            "summary too long",
            Box::new(|m| m.summary = x(20_001)),
            "meeting.summary",
        ),
        (
            "bell in summary",
            Box::new(|m| m.summary = "a\u{7}b".into()),
            "meeting.summary",
        ),
        (
            "NUL in a name",
            Box::new(|m| m.participants[0].name = "a\u{0}b".into()),
            "meeting.participants[0].name",
        ),
        (
            "tab in a title",
            Box::new(|m| m.participants[0].title = "a\tb".into()),
            "meeting.participants[0].title",
        ),
    ]
}

#[tokio::test]
async fn each_rule_reports_its_field_path() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    for (case, change, field) in invalid_cases() {
        let mut m = base();
        change(&mut m);
        let status = client
            .create_meeting(pb::CreateMeetingRequest {
                meeting: Some(m),
                request_id: String::new(),
                ..Default::default()
            })
            .await
            .expect_err(case);
        let details = assert_error(&status, Code::InvalidArgument, "INVALID_MEETING");
        assert_eq!(violated_fields(&details), [field], "case {case:?}");
    }
    assert_eq!(app.count_meetings().await, 0, "nothing invalid is stored");
}

#[tokio::test]
async fn missing_meeting_and_long_request_id_are_reported() {
    let app = spawn_app().await;
    let status = app
        .client
        .clone()
        .create_meeting(pb::CreateMeetingRequest {
            meeting: None,
            request_id: x(129),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_MEETING");
    assert_eq!(violated_fields(&details), ["request_id", "meeting"]);
}

#[tokio::test]
async fn a_record_with_many_faults_reports_them_all() {
    let app = spawn_app().await;
    let m = pb::Meeting {
        date: "2022-13-01".into(),
        participants: vec![
            person("Jeyhun Bayramov", "AZ"),
            person("", "QQ"),
            person("Jeyhun Bayramov", "az"),
        ],
        topics: vec!["energy".into(), "".into(), "Energy".into()],
        anniversary: Some(pb::Anniversary {
            years: 0,
            occasion: String::new(),
        }),
        sources: vec![source("AZERTAC", "mailto:news@azertag.az")],
        summary: "ok\u{1b}".into(),
        ..Default::default()
    };
    let status = app.try_create(m).await.unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_MEETING");
    let mut fields = violated_fields(&details);
    fields.sort();
    assert_eq!(
        fields,
        [
            "meeting.anniversary.occasion",
            "meeting.anniversary.years",
            "meeting.date",
            "meeting.participants[1].country_code",
            "meeting.participants[1].name",
            "meeting.participants[2]",
            "meeting.sources[0].url",
            "meeting.summary",
            "meeting.topics[1]",
            "meeting.topics[2]",
        ]
    );
    assert!(
        status.message().contains("10 violations"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn limits_are_inclusive() {
    let app = spawn_app().await;
    let today = Utc::now().date_naive();
    let mut m = pb::Meeting {
        date: "1800-01-01".into(),
        participants: (0..200)
            .map(|i| pb::Participant {
                name: format!("{i:0>200}"),
                title: x(200),
                country_code: ["AZ", "JP", "TR", "GE"][i % 4].into(),
                ..Default::default()
            })
            .collect(),
        topics: (0..100).map(|i| format!("{i:0>200}")).collect(),
        anniversary: Some(pb::Anniversary {
            years: 1000,
            occasion: x(200),
        }),
        location: Some(pb::Location {
            city: x(200),
            country_code: "AZ".into(),
        }),
        summary: format!("a\r\n\t{}", x(19_996)),
        sources: (0..20)
            .map(|i| {
                source(
                    &format!("{i:0>200}"),
                    &format!("https://a.az/{}", x(2048 - 13)),
                )
            })
            .collect(),
        ..Default::default()
    };
    let created = app.create(m.clone()).await;
    assert_eq!(created.participants.len(), 200);
    assert_eq!(created.country_codes, ["AZ", "GE", "JP", "TR"]);
    m.date = (today + Months::new(12)).to_string();
    m.summary = "Baku\n".into();
    app.create(m).await;
    // Six pairs among four countries, for each of the two meetings.
    let pairs: i64 = sqlx::query_scalar("SELECT count(*) FROM meeting_country_pairs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(pairs, 12);
}

#[tokio::test]
async fn text_is_normalised_and_compared_with_unicode_case_folding() {
    use crate::helpers::{assert_error, meeting, violated_fields};
    let app = crate::helpers::spawn_app().await;
    // "é" composed and decomposed are one topic; "Straße" and "STRASSE" too.
    for (topics, repeated) in [
        (vec!["Caf\u{e9}", "Cafe\u{301}"], "meeting.topics[1]"),
        (vec!["Straße", "STRASSE"], "meeting.topics[1]"),
    ] {
        let mut m = meeting("2022-05-05", &["AZ", "JP"]);
        m.topics = topics.iter().map(|t| t.to_string()).collect();
        let status = app.try_create(m).await.unwrap_err();
        let details = assert_error(&status, tonic::Code::InvalidArgument, "INVALID_MEETING");
        assert_eq!(violated_fields(&details), [repeated], "{topics:?}");
    }
    let mut m = meeting("2022-05-05", &["AZ", "JP"]);
    m.participants[1].name = "JEYHUN BAYRAMOV STRASSE".into();
    m.participants[1].country_code = "AZ".into();
    m.participants[0].name = "Jeyhun Bayramov Straße".into();
    m.participants.push(meetings::pb::Participant {
        name: "Honda Taro".into(),
        title: String::new(),
        country_code: "JP".into(),
        ..Default::default()
    });
    let status = app.try_create(m).await.unwrap_err();
    let details = assert_error(&status, tonic::Code::InvalidArgument, "INVALID_MEETING");
    assert_eq!(violated_fields(&details), ["meeting.participants[1]"]);

    // Stored in NFC: a decomposed name comes back composed.
    let mut m = meeting("2022-05-05", &["AZ", "JP"]);
    m.participants[0].name = "Jose\u{301} Martinez".into();
    m.topics = vec!["Cafe\u{301}".into()];
    let created = app.create(m).await;
    assert_eq!(created.topics, ["Caf\u{e9}"]);
    assert_eq!(created.participants[0].name, "Jos\u{e9} Martinez");
}

#[tokio::test]
async fn invisible_and_bidi_control_text_is_refused() {
    use crate::helpers::{assert_error, meeting, violated_fields};
    let app = crate::helpers::spawn_app().await;
    let mut m = meeting("2022-05-05", &["AZ", "JP"]);
    m.participants[0].name = "\u{200B}\u{200B}".into();
    m.participants[1].name = "\u{FEFF}".into();
    m.participants[1].title = "Minister\u{202E}retsiniM".into();
    m.topics = vec!["energy\u{2066}".into()];
    let status = app.try_create(m).await.unwrap_err();
    let details = assert_error(&status, tonic::Code::InvalidArgument, "INVALID_MEETING");
    assert_eq!(
        violated_fields(&details),
        [
            "meeting.participants[0].name",
            "meeting.participants[1].name",
            "meeting.participants[1].title",
            "meeting.topics[0]",
        ]
    );
}
