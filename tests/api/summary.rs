//! GetCountryPairSummary's figures are kept as meetings are written; they
//! must equal a full recomputation from the stored meetings at every
//! moment: with changes still pending (the fold held off) and after the
//! fold.

use std::collections::BTreeSet;

use meetings::pb;
use sqlx::PgPool;

use crate::helpers::*;

/// The fold's advisory lock (storage::figures): holding it holds folds off.
const FIGURES_LOCK: i64 = 0x0066_6967_7572_6573;

const PARTIES: &[&str] = &["AZ", "JP", "TR", "FR", "org:EU"];
const TOPICS: &[&str] = &[
    "Energy",
    "energy",
    "ENERGY",
    "trade",
    "Trade",
    "demining",
    "culture",
    "Culture",
    "transport",
    "education",
    "Ukraine",
    "climate",
];
const OCCASIONS: &[&str] = &["diplomatic relations", "independence", "the treaty"];

/// A small deterministic generator (the test must fail the same way twice).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn party(key: &str, i: usize) -> pb::Participant {
    let (country_code, organization_code) = match key.strip_prefix("org:") {
        Some(org) => (String::new(), org.to_owned()),
        None => (key.to_owned(), String::new()),
    };
    pb::Participant {
        name: format!("Delegate {i} of {key}"),
        title: "Minister".into(),
        country_code,
        organization_code,
        ..Default::default()
    }
}

fn random_meeting(rng: &mut Lcg) -> pb::Meeting {
    let mut parties = BTreeSet::new();
    let wanted = 2 + rng.next(3);
    while parties.len() < wanted {
        parties.insert(PARTIES[rng.next(PARTIES.len())]);
    }
    let mut topics: Vec<String> = Vec::new();
    for _ in 0..rng.next(5) {
        let t = TOPICS[rng.next(TOPICS.len())];
        if !topics.iter().any(|x| x.eq_ignore_ascii_case(t)) {
            topics.push(t.to_owned());
        }
    }
    let year = 2000 + rng.next(8);
    let date = format!("{year}-{:02}-{:02}", 1 + rng.next(12), 1 + rng.next(28));
    pb::Meeting {
        date,
        participants: parties
            .iter()
            .enumerate()
            .map(|(i, p)| party(p, i))
            .collect(),
        topics,
        anniversary: (rng.next(3) == 0).then(|| pb::Anniversary {
            years: 1 + rng.next(3) as u32,
            occasion: OCCASIONS[rng.next(OCCASIONS.len())].into(),
        }),
        format: rng.next(4) as i32,
        ..Default::default()
    }
}

/// Every pair's summary, from the service, equals the recomputation.
async fn assert_summaries_exact(app: &TestApp, when: &str) {
    for (i, a) in PARTIES.iter().enumerate() {
        for b in &PARTIES[i + 1..] {
            let side = |k: &str| match k.strip_prefix("org:") {
                Some(org) => (String::new(), org.to_owned()),
                None => (k.to_owned(), String::new()),
            };
            let ((country_a, organization_a), (country_b, organization_b)) = (side(a), side(b));
            let got = app
                .client
                .clone()
                .get_country_pair_summary(pb::GetCountryPairSummaryRequest {
                    country_a,
                    country_b,
                    organization_a,
                    organization_b,
                    top_topics: 100,
                })
                .await
                .unwrap()
                .into_inner();
            let (low, high) = if a.as_bytes() < b.as_bytes() {
                (a, b)
            } else {
                (b, a)
            };
            let want = recompute(&app.pool, low, high).await;
            let got = Figures {
                count: got.meeting_count as i64,
                first: got.first_meeting_date,
                last: got.last_meeting_date,
                topics: got
                    .top_topics
                    .into_iter()
                    .map(|t| (t.topic, t.meeting_count as i64))
                    .collect(),
                anniversaries: got
                    .anniversaries
                    .into_iter()
                    .map(|a| {
                        (
                            a.occasion,
                            a.since_year,
                            a.meeting_count as i64,
                            a.meeting_id,
                        )
                    })
                    .collect(),
                years: got
                    .meetings_by_year
                    .into_iter()
                    .map(|y| (y.year, y.meeting_count as i64))
                    .collect(),
                formats: got
                    .meetings_by_format
                    .into_iter()
                    .map(|f| (f.format as i16, f.meeting_count as i64))
                    .collect(),
            };
            assert_eq!(got, want, "{when}: pair {low}-{high}");
        }
    }
}

#[derive(Debug, PartialEq)]
struct Figures {
    count: i64,
    first: String,
    last: String,
    topics: Vec<(String, i64)>,
    anniversaries: Vec<(String, i32, i64, String)>,
    years: Vec<(i32, i64)>,
    formats: Vec<(i16, i64)>,
}

/// A pair's figures computed from every stored meeting of the pair.
async fn recompute(pool: &PgPool, low: &str, high: &str) -> Figures {
    let (count, first, last): (i64, Option<chrono::NaiveDate>, Option<chrono::NaiveDate>) =
        sqlx::query_as(
            "SELECT count(*), min(date), max(date) FROM meeting_country_pairs \
             WHERE country_low = $1 AND country_high = $2",
        )
        .bind(low)
        .bind(high)
        .fetch_one(pool)
        .await
        .unwrap();
    let topics: Vec<(String, i64)> = sqlx::query_as(include_str!("sql/pair_top_topics.sql"))
        .bind(low)
        .bind(high)
        .bind(100i64)
        .fetch_all(pool)
        .await
        .unwrap();
    let anniversaries: Vec<(String, i32, i64, uuid::Uuid)> =
        sqlx::query_as(include_str!("sql/pair_anniversaries.sql"))
            .bind(low)
            .bind(high)
            .fetch_all(pool)
            .await
            .unwrap();
    let years: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT extract(year FROM date)::int4, count(*) FROM meeting_country_pairs \
         WHERE country_low = $1 AND country_high = $2 GROUP BY 1 ORDER BY 1",
    )
    .bind(low)
    .bind(high)
    .fetch_all(pool)
    .await
    .unwrap();
    let formats: Vec<(i16, i64)> = sqlx::query_as(
        "SELECT m.format, count(*) FROM meeting_country_pairs p \
         JOIN meetings m ON m.id = p.meeting_id \
         WHERE p.country_low = $1 AND p.country_high = $2 GROUP BY 1 ORDER BY 1",
    )
    .bind(low)
    .bind(high)
    .fetch_all(pool)
    .await
    .unwrap();
    let date = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    Figures {
        count,
        first: date(first),
        last: date(last),
        topics,
        anniversaries: anniversaries
            .into_iter()
            .map(|(o, y, n, id)| (o, y, n, id.to_string()))
            .collect(),
        years,
        formats,
    }
}

async fn pending_changes(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pair_figure_changes")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// One round of mixed writes: single creates, an import (some records
/// merged into stored meetings), updates, MergeMeetings and deletes, the
/// earliest meetings of the pairs among them.
async fn mixed_writes(app: &TestApp, rng: &mut Lcg, stored: &mut Vec<pb::Meeting>) {
    let mut client = app.client.clone();
    for _ in 0..15 {
        stored.push(app.create(random_meeting(rng)).await);
    }
    // An import: new meetings, and reports of stored ones with other topics
    // and an anniversary, merged into them.
    let mut requests: Vec<pb::ImportMeetingsRequest> = (0..40)
        .map(|_| pb::ImportMeetingsRequest {
            meeting: Some(random_meeting(rng)),
            ..Default::default()
        })
        .collect();
    for _ in 0..5 {
        let known = &stored[rng.next(stored.len())];
        let mut report = known.clone();
        for field in [&mut report.id, &mut report.etag] {
            field.clear();
        }
        report.create_time = None;
        report.update_time = None;
        report.country_codes.clear();
        report.organization_codes.clear();
        report.merged_ids.clear();
        report.topics = vec![TOPICS[rng.next(TOPICS.len())].to_owned()];
        requests.push(pb::ImportMeetingsRequest {
            meeting: Some(report),
            duplicates: pb::DuplicatePolicy::Merge as i32,
            ..Default::default()
        });
    }
    let report = app.import(requests).await;
    assert_eq!(report.rejected_count, 0, "{report:?}");
    // Updates: topics, date and parties move meetings between figures.
    for _ in 0..10 {
        let i = rng.next(stored.len());
        let current = app.get(&stored[i].id).await.unwrap();
        let fresh = random_meeting(rng);
        let patch = pb::Meeting {
            id: current.id.clone(),
            etag: current.etag.clone(),
            topics: fresh.topics,
            date: fresh.date,
            participants: fresh.participants,
            anniversary: fresh.anniversary,
            format: fresh.format,
            ..Default::default()
        };
        let paths = ["topics", "date", "participants", "anniversary", "format"];
        let updated = client
            .update_meeting(pb::UpdateMeetingRequest {
                meeting: Some(patch),
                update_mask: Some(pbjson_types::FieldMask {
                    paths: paths[..1 + rng.next(paths.len())]
                        .iter()
                        .map(|p| (*p).to_owned())
                        .collect(),
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .meeting
            .unwrap();
        stored[i] = updated;
    }
    // MergeMeetings of two meetings that share a pair.
    let (a, b) = (stored.len() - 1, stored.len() - 2);
    if client
        .merge_meetings(pb::MergeMeetingsRequest {
            target_id: stored[a].id.clone(),
            source_ids: vec![stored[b].id.clone()],
        })
        .await
        .is_ok()
    {
        stored.remove(b);
    }
    // Deletes: the oldest created (the first spelling of its topics) and
    // the earliest by date (the first meeting of its anniversaries).
    let earliest = (0..stored.len())
        .min_by_key(|&i| stored[i].date.clone())
        .unwrap();
    let gone = stored.remove(earliest);
    app.delete(&gone.id).await;
    let gone = stored.remove(0);
    app.delete(&gone.id).await;
    for _ in 0..3 {
        let gone = stored.remove(rng.next(stored.len()));
        app.delete(&gone.id).await;
    }
}

#[tokio::test]
async fn pair_summaries_equal_a_full_recomputation_with_changes_pending_and_folded() {
    let app = spawn_app().await;
    let mut rng = Lcg(16);
    let mut stored = Vec::new();
    for round in 0..3 {
        // Folds held off: every change of the round is pending.
        let mut hold = app.pool.begin().await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(FIGURES_LOCK)
            .execute(&mut *hold)
            .await
            .unwrap();
        mixed_writes(&app, &mut rng, &mut stored).await;
        assert!(pending_changes(&app.pool).await > 0);
        assert_summaries_exact(&app, &format!("round {round}, changes pending")).await;
        hold.rollback().await.unwrap();
        // Folded: nothing pending any more.
        assert!(
            eventually(std::time::Duration::from_secs(20), || async {
                pending_changes(&app.pool).await == 0
            })
            .await,
            "the fold took every change in"
        );
        assert_summaries_exact(&app, &format!("round {round}, folded")).await;
    }
    let stored_figures: i64 = sqlx::query_scalar("SELECT count(*) FROM pair_figures")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(stored_figures > 0);
}

#[tokio::test]
async fn figures_of_meetings_stored_before_them_are_counted_at_start() {
    let app = spawn_app().await;
    let mut rng = Lcg(7);
    for _ in 0..30 {
        app.create(random_meeting(&mut rng)).await;
    }
    // As if the figures had never been counted (a database upgraded from
    // before them): the next start counts them from the meetings.
    sqlx::raw_sql(
        "DELETE FROM pair_figures; DELETE FROM pair_figure_changes; \
         DELETE FROM derived_value_versions WHERE name = 'pair_figures'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let second = app.second_instance().await;
    assert_summaries_exact(&second, "counted at start").await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM pair_figures")
        .fetch_one(&second.pool)
        .await
        .unwrap();
    assert!(stored > 0);
}

/// Writers of one round run at once, each a create, an update or a delete
/// at a time with pauses, so that their changes commit in any order and the
/// fold (running freely, once a second) takes some of them in mid-round.
async fn concurrent_round(app: &TestApp, seed: u64, ids: &[String]) {
    let writers = (0..4u64).map(|w| {
        let app_client = app.client.clone();
        let ids = ids.to_vec();
        async move {
            let mut rng = Lcg(seed * 31 + w);
            let mut client = app_client;
            for _ in 0..12 {
                let id = ids[rng.next(ids.len())].clone();
                match rng.next(3) {
                    0 => {
                        client
                            .create_meeting(pb::CreateMeetingRequest {
                                meeting: Some(random_meeting(&mut rng)),
                                ..Default::default()
                            })
                            .await
                            .unwrap();
                    }
                    1 => {
                        let fresh = random_meeting(&mut rng);
                        // Another writer may have deleted it: NOT_FOUND.
                        let _ = client
                            .update_meeting(pb::UpdateMeetingRequest {
                                meeting: Some(pb::Meeting {
                                    id,
                                    topics: fresh.topics,
                                    participants: fresh.participants,
                                    date: fresh.date,
                                    anniversary: fresh.anniversary,
                                    ..Default::default()
                                }),
                                update_mask: Some(pbjson_types::FieldMask {
                                    paths: ["topics", "participants", "date", "anniversary"]
                                        .map(str::to_owned)
                                        .to_vec(),
                                }),
                            })
                            .await;
                    }
                    _ => {
                        let _ = client
                            .delete_meeting(pb::DeleteMeetingRequest {
                                id,
                                etag: String::new(),
                            })
                            .await;
                    }
                }
                tokio::time::sleep(std::time::Duration::from_millis(rng.next(150) as u64)).await;
            }
        }
    });
    futures_util::future::join_all(writers).await;
}

#[tokio::test]
async fn pair_summaries_stay_exact_with_concurrent_writers_and_the_fold_running() {
    let app = spawn_app().await;
    let mut rng = Lcg(42);
    for round in 0..4u64 {
        let mut ids = Vec::new();
        for _ in 0..20 {
            ids.push(app.create(random_meeting(&mut rng)).await.id);
        }
        concurrent_round(&app, round, &ids).await;
        // Writers stopped; the fold may be anywhere in its work.
        assert_summaries_exact(&app, &format!("concurrent round {round}")).await;
    }
    assert!(
        eventually(std::time::Duration::from_secs(20), || async {
            pending_changes(&app.pool).await == 0
        })
        .await
    );
    assert_summaries_exact(&app, "all folded").await;
}
