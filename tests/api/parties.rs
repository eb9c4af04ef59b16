//! Organisations and former countries as parties, meetings of several days
//! and their format, through the real server: round trips, lookups by
//! either kind of party, date bounds that select overlapping spans, the
//! summary's timeline, and the request rules with their field paths.

use std::time::Duration;

use meetings::pb;
use pb::MeetingFormat as Format;
use tonic::Code;

use crate::helpers::{TestApp, assert_error, ids, meeting, pair, spawn_app, violated_fields};

fn organisation(name: &str, code: &str) -> pb::Participant {
    pb::Participant {
        name: name.into(),
        title: "Representative".into(),
        organization_code: code.into(),
        ..Default::default()
    }
}

fn country(name: &str, code: &str) -> pb::Participant {
    pb::Participant {
        name: name.into(),
        title: "Minister".into(),
        country_code: code.into(),
        ..Default::default()
    }
}

/// A meeting on `date` with these participants, no topics.
fn with(date: &str, participants: Vec<pb::Participant>) -> pb::Meeting {
    pb::Meeting {
        date: date.into(),
        participants,
        ..Default::default()
    }
}

/// A pair stream request with each side a country ("AZ") or an
/// organisation ("org:EU").
fn sides(a: &str, b: &str) -> pb::StreamMeetingsByCountryPairRequest {
    let mut req = pb::StreamMeetingsByCountryPairRequest::default();
    match a.strip_prefix("org:") {
        Some(o) => req.organization_a = o.into(),
        None => req.country_a = a.into(),
    }
    match b.strip_prefix("org:") {
        Some(o) => req.organization_b = o.into(),
        None => req.country_b = b.into(),
    }
    req
}

async fn summary(
    app: &TestApp,
    req: pb::GetCountryPairSummaryRequest,
) -> Result<pb::GetCountryPairSummaryResponse, tonic::Status> {
    app.client
        .clone()
        .get_country_pair_summary(req)
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn new_fields_round_trip_through_the_generated_client() {
    let app = spawn_app().await;
    let mut sent = with(
        "2009-03-31",
        vec![
            country("Barack Obama", "us"),
            organisation("José Manuel Barroso", "eu"),
            organisation("Jaap de Hoop Scheffer", "Nato"),
            country("Hashim Thaçi", "xk"),
        ],
    );
    sent.end_date = "2009-04-03".into();
    sent.format = Format::InPerson as i32;
    sent.location = Some(pb::Location {
        city: "Strasbourg".into(),
        country_code: "FR".into(),
    });
    let stored = app.create(sent).await;
    assert_eq!(stored.end_date, "2009-04-03");
    assert_eq!(stored.format, Format::InPerson as i32);
    assert_eq!(stored.country_codes, ["US", "XK"]);
    assert_eq!(stored.organization_codes, ["EU", "NATO"]);
    assert_eq!(stored.participants[1].organization_code, "EU");
    assert_eq!(stored.participants[1].country_code, "");
    assert_eq!(stored.participants[2].organization_code, "NATO");
    assert_eq!(stored.participants[3].country_code, "XK");
    assert!(stored.topics.is_empty(), "a meeting may list no topics");
    assert_eq!(app.get(&stored.id).await.unwrap(), stored);

    // Former countries: the four-letter code, and the former two-letter
    // code taken as it.
    let mut soviet = with(
        "1985-11-19",
        vec![
            country("Mikhail Gorbachev", "SU"),
            country("Ronald Reagan", "US"),
        ],
    );
    soviet.end_date = "1985-11-20".into();
    soviet.format = Format::InPerson as i32;
    soviet.location = Some(pb::Location {
        city: "Geneva".into(),
        country_code: "CH".into(),
    });
    let soviet = app.create(soviet).await;
    assert_eq!(soviet.country_codes, ["SUHH", "US"]);
    assert_eq!(soviet.participants[0].country_code, "SUHH");
    let call = app
        .create(pb::Meeting {
            format: Format::PhoneCall as i32,
            ..with(
                "1990-10-03",
                vec![
                    country("Lothar de Maizière", "dd"),
                    country("James Baker", "US"),
                ],
            )
        })
        .await;
    assert_eq!(call.country_codes, ["DDDE", "US"]);
    assert_eq!(call.format, Format::PhoneCall as i32);
    assert_eq!(call.end_date, "");
}

#[tokio::test]
async fn pairs_take_an_organisation_on_either_side() {
    let app = spawn_app().await;
    let az_eu = app
        .create(with(
            "2022-07-18",
            vec![
                country("Ilham Aliyev", "AZ"),
                organisation("Ursula von der Leyen", "EU"),
            ],
        ))
        .await;
    let eu_un = app
        .create(with(
            "2022-07-19",
            vec![
                organisation("Josep Borrell", "EU"),
                organisation("António Guterres", "UN"),
                country("Jeyhun Bayramov", "AZ"),
            ],
        ))
        .await;
    // Australia and the African Union share the code AU: they are different
    // parties.
    let australia = app.create(meeting("2022-07-20", &["AU", "AZ"])).await;
    let african_union = app
        .create(with(
            "2022-07-21",
            vec![
                country("Jeyhun Bayramov", "AZ"),
                organisation("Moussa Faki", "AU"),
            ],
        ))
        .await;

    let both = ids(&[az_eu.clone(), eu_un.clone()]);
    assert_eq!(ids(&app.stream(sides("AZ", "org:EU")).await.unwrap()), both);
    assert_eq!(ids(&app.stream(sides("org:eu", "az")).await.unwrap()), both);
    assert_eq!(
        ids(&app.stream(sides("org:UN", "org:EU")).await.unwrap()),
        [eu_un.id.as_str()]
    );
    assert_eq!(
        ids(&app.stream(pair("AZ", "AU")).await.unwrap()),
        [australia.id.as_str()]
    );
    assert_eq!(
        ids(&app.stream(sides("AZ", "org:AU")).await.unwrap()),
        [african_union.id.as_str()]
    );
    assert_eq!(african_union.organization_codes, ["AU"]);
    assert_eq!(african_union.country_codes, ["AZ"]);

    // ListMeetings by organisation, alone and with a country.
    let list = |country: &str, organisation: &str| {
        let mut client = app.client.clone();
        let req = pb::ListMeetingsRequest {
            country_code: country.into(),
            organization_code: organisation.into(),
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
    assert_eq!(list("", "eu").await, [eu_un.id.clone(), az_eu.id.clone()]);
    assert_eq!(list("AZ", "UN").await, [eu_un.id.as_str()]);
    assert_eq!(list("", "AU").await, [african_union.id.as_str()]);
    assert_eq!(list("AU", "").await, [australia.id.as_str()]);

    // The summary names each side in its own field.
    let s = summary(
        &app,
        pb::GetCountryPairSummaryRequest {
            organization_a: "EU".into(),
            country_b: "az".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (
            s.country_a.as_str(),
            s.organization_a.as_str(),
            s.country_b.as_str(),
            s.organization_b.as_str(),
            s.meeting_count
        ),
        ("AZ", "", "", "EU", 2)
    );
}

#[tokio::test]
async fn organisation_pairs_do_not_depend_on_the_database_collation() {
    let app = spawn_app().await;
    // As on a server whose default collation is linguistic (en_US, ICU),
    // where "org:EU" sorts before "US" although its bytes sort after.
    sqlx::raw_sql(
        "ALTER TABLE meetings ALTER COLUMN country_codes TYPE text[] COLLATE \"und-x-icu\";
         ALTER TABLE meeting_country_pairs
             ALTER COLUMN country_low TYPE text COLLATE \"und-x-icu\",
             ALTER COLUMN country_high TYPE text COLLATE \"und-x-icu\";",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let m = app
        .create(with(
            "2022-07-18",
            vec![
                country("Antony Blinken", "US"),
                organisation("Josep Borrell", "EU"),
                country("Dmytro Kuleba", "UA"),
            ],
        ))
        .await;
    for (a, b) in [("US", "org:EU"), ("org:EU", "UA"), ("UA", "US")] {
        assert_eq!(
            ids(&app.stream(sides(a, b)).await.unwrap()),
            [m.id.as_str()],
            "{a}-{b}"
        );
    }
    let s = summary(
        &app,
        pb::GetCountryPairSummaryRequest {
            country_a: "US".into(),
            organization_b: "EU".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (
            s.country_a.as_str(),
            s.organization_b.as_str(),
            s.meeting_count
        ),
        ("US", "EU", 1)
    );
}

#[tokio::test]
async fn date_bounds_select_meetings_whose_days_overlap_them() {
    let app = spawn_app().await;
    let mut summit = meeting("2009-03-31", &["US", "GB"]);
    summit.end_date = "2009-04-03".into();
    let summit = app.create(summit).await;
    let before = app.create(meeting("2009-03-20", &["US", "GB"])).await;
    let after = app.create(meeting("2009-04-10", &["US", "GB"])).await;
    let mut long = meeting("2009-01-10", &["US", "GB"]);
    long.end_date = "2009-04-09".into(); // 89 days
    let long = app.create(long).await;

    let bounded =
        |from: &str, to: &str, newest_first: bool| pb::StreamMeetingsByCountryPairRequest {
            from_date: from.into(),
            to_date: to.into(),
            newest_first,
            ..pair("GB", "US")
        };
    // A bound inside the summit's days finds it, though it began earlier.
    assert_eq!(
        ids(&app
            .stream(bounded("2009-04-02", "2009-04-02", false))
            .await
            .unwrap()),
        [long.id.clone(), summit.id.clone()]
    );
    assert_eq!(
        ids(&app.stream(bounded("2009-04-03", "", false)).await.unwrap()),
        [long.id.clone(), summit.id.clone(), after.id.clone()]
    );
    assert_eq!(
        ids(&app.stream(bounded("2009-04-03", "", true)).await.unwrap()),
        [after.id.clone(), summit.id.clone(), long.id.clone()]
    );
    assert_eq!(
        ids(&app
            .stream(bounded("2009-04-04", "2009-04-09", false))
            .await
            .unwrap()),
        [long.id.as_str()]
    );
    assert_eq!(
        ids(&app.stream(bounded("", "2009-03-30", false)).await.unwrap()),
        [long.id.clone(), before.id.clone()]
    );

    // Resuming after a meeting that began before from_date goes on from it.
    let resumed = app
        .stream(pb::StreamMeetingsByCountryPairRequest {
            start_after_id: long.id.clone(),
            ..bounded("2009-04-02", "", false)
        })
        .await
        .unwrap();
    assert_eq!(ids(&resumed), [summit.id.as_str(), after.id.as_str()]);

    // ListMeetings applies the same rule.
    let listed = app
        .client
        .clone()
        .list_meetings(pb::ListMeetingsRequest {
            from_date: "2009-04-02".into(),
            to_date: "2009-04-05".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .meetings;
    assert_eq!(ids(&listed), [summit.id.clone(), long.id.clone()]);
}

#[tokio::test]
async fn the_summary_gives_meetings_per_year_and_per_format() {
    let app = spawn_app().await;
    for (date, format) in [
        ("1992-03-02", Format::InPerson),
        ("1992-09-01", Format::PhoneCall),
        ("1994-01-01", Format::Unspecified),
        ("2022-05-05", Format::VideoCall),
        ("2022-06-05", Format::PhoneCall),
    ] {
        let mut m = meeting(date, &["AZ", "JP"]);
        m.format = format as i32;
        app.create(m).await;
    }
    app.create(meeting("1993-01-01", &["AZ", "TR"])).await;
    let s = summary(
        &app,
        pb::GetCountryPairSummaryRequest {
            country_a: "JP".into(),
            country_b: "AZ".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let years: Vec<_> = s
        .meetings_by_year
        .iter()
        .map(|y| (y.year, y.meeting_count))
        .collect();
    assert_eq!(years, [(1992, 2), (1994, 1), (2022, 2)]);
    let formats: Vec<_> = s
        .meetings_by_format
        .iter()
        .map(|f| (Format::try_from(f.format).unwrap(), f.meeting_count))
        .collect();
    assert_eq!(
        formats,
        [
            (Format::Unspecified, 1),
            (Format::InPerson, 1),
            (Format::PhoneCall, 2),
            (Format::VideoCall, 1)
        ]
    );
    assert_eq!((s.country_a.as_str(), s.country_b.as_str()), ("AZ", "JP"));
}

#[tokio::test]
async fn watchers_of_an_organisation_pair_see_its_changes() {
    let app = spawn_app().await;
    let mut stream = app
        .client
        .clone()
        .watch_meetings(pb::WatchMeetingsRequest {
            country_a: "AZ".into(),
            organization_b: "EU".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    app.create(meeting("2022-05-05", &["AZ", "AU"])).await;
    let m = app
        .create(with(
            "2022-05-06",
            vec![country("A", "AZ"), organisation("B", "EU")],
        ))
        .await;
    app.delete(&m.id).await;
    let mut events = Vec::new();
    while events.len() < 2 {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        events.push(item.event.unwrap());
    }
    assert_eq!(events[0].meeting.as_ref().unwrap(), &m);
    let deleted = events[1].meeting.as_ref().unwrap();
    assert_eq!(
        (
            deleted.id.as_str(),
            &deleted.country_codes,
            &deleted.organization_codes
        ),
        (
            m.id.as_str(),
            &vec!["AZ".to_owned()],
            &vec!["EU".to_owned()]
        ),
        "a deletion names the meeting's countries and organisations"
    );
}

#[tokio::test]
async fn updates_change_the_span_and_the_format() {
    let app = spawn_app().await;
    let m = app.create(meeting("2022-05-05", &["AZ", "JP"])).await;
    let update = |meeting: pb::Meeting, paths: &[&str]| pb::UpdateMeetingRequest {
        meeting: Some(meeting),
        update_mask: Some(pbjson_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    };
    let changed = app
        .client
        .clone()
        .update_meeting(update(
            pb::Meeting {
                id: m.id.clone(),
                end_date: "2022-05-07".into(),
                format: Format::VideoCall as i32,
                ..Default::default()
            },
            &["end_date", "format"],
        ))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(changed.end_date, "2022-05-07");
    assert_eq!(changed.format, Format::VideoCall as i32);
    assert_eq!(changed.participants, m.participants);
    // Found by a bound after its first day.
    let found = app
        .stream(pb::StreamMeetingsByCountryPairRequest {
            from_date: "2022-05-07".into(),
            ..pair("AZ", "JP")
        })
        .await
        .unwrap();
    assert_eq!(ids(&found), [m.id.as_str()]);
    // A client built before end_date and format existed sends "*" without
    // them: they stay.
    let old_client = app
        .client
        .clone()
        .update_meeting(update(
            pb::Meeting {
                id: m.id.clone(),
                date: m.date.clone(),
                participants: m.participants.clone(),
                summary: "Met in Baku.".into(),
                ..Default::default()
            },
            &["*"],
        ))
        .await
        .unwrap()
        .into_inner()
        .meeting
        .unwrap();
    assert_eq!(old_client.summary, "Met in Baku.");
    assert_eq!(
        old_client.topics,
        Vec::<String>::new(),
        "\"*\" replaces the others"
    );
    assert_eq!(
        (old_client.end_date.as_str(), old_client.format),
        ("2022-05-07", Format::VideoCall as i32)
    );
    // A new date that leaves the end date more than 90 days on is refused.
    let status = app
        .client
        .clone()
        .update_meeting(update(
            pb::Meeting {
                id: m.id.clone(),
                date: "2022-01-01".into(),
                ..Default::default()
            },
            &["date"],
        ))
        .await
        .unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_MEETING");
    assert_eq!(violated_fields(&details), ["meeting.end_date"]);
}

#[tokio::test]
async fn a_record_with_many_new_faults_reports_each_with_its_path() {
    let app = spawn_app().await;
    let mut m = with(
        "1995-06-01",
        vec![
            country("A", "SUHH"),
            organisation("B", "BRICS"),
            organisation("C", "XYZ"),
            pb::Participant {
                name: "D".into(),
                country_code: "JP".into(),
                organization_code: "UN".into(),
                ..Default::default()
            },
            country("E", ""),
            country("F", "CS"),
            country("G", "YUCS"),
        ],
    );
    m.end_date = "1995-05-31".into();
    m.format = 42;
    m.location = Some(pb::Location {
        city: "Berlin".into(),
        country_code: "DDDE".into(),
    });
    let status = app.try_create(m).await.unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_MEETING");
    let violations = &details.bad_request().unwrap().field_violations;
    let found: Vec<_> = violations
        .iter()
        .map(|v| (v.field.as_str(), v.description.as_str()))
        .collect();
    let fields: Vec<_> = found.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        fields,
        [
            "meeting.end_date",
            "meeting.format",
            "meeting.location.country_code",
            "meeting.participants[0].country_code",
            "meeting.participants[1].organization_code",
            "meeting.participants[2].organization_code",
            "meeting.participants[3].organization_code",
            "meeting.participants[4].country_code",
            "meeting.participants[5].country_code",
        ]
    );
    let says = |i: usize, what: &str| {
        assert!(
            found[i].1.contains(what),
            "{:?} should say {what:?}",
            found[i]
        );
    };
    says(0, "before the meeting's date 1995-06-01");
    says(1, "42");
    says(2, "ceased to exist on 1990-10-03");
    says(3, "ceased to exist on 1991-12-26");
    says(4, "founded on 2006-09-20");
    says(5, "registry");
    says(6, "country_code");
    says(7, "required");
    says(8, "CSHH");
    says(8, "CSXX");
    assert_eq!(app.count_meetings().await, 0);
}

#[tokio::test]
async fn pair_requests_name_the_faulty_side() {
    let app = spawn_app().await;
    let cases: [(pb::StreamMeetingsByCountryPairRequest, &[&str]); 6] = [
        (
            pb::StreamMeetingsByCountryPairRequest {
                country_a: "AZ".into(),
                organization_a: "EU".into(),
                country_b: "JP".into(),
                ..Default::default()
            },
            &["organization_a"],
        ),
        (sides("AZ", "org:XYZ"), &["organization_b"]),
        (sides("org:EU", "org:eu"), &["organization_b"]),
        (sides("AZ", "az"), &["country_b"]),
        (sides("", "org:EU"), &["country_a"]),
        (sides("CS", "org:EU"), &["country_a"]),
    ];
    for (req, fields) in cases {
        let status = app.stream(req.clone()).await.unwrap_err();
        let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
        assert_eq!(violated_fields(&details), fields, "{req:?}");
    }
    let status = app
        .client
        .clone()
        .list_meetings(pb::ListMeetingsRequest {
            organization_code: "ZZZ".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    assert_eq!(violated_fields(&details), ["organization_code"]);
    let status = summary(
        &app,
        pb::GetCountryPairSummaryRequest {
            organization_a: "EU".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    let details = assert_error(&status, Code::InvalidArgument, "INVALID_REQUEST");
    assert_eq!(violated_fields(&details), ["country_b"]);
}
