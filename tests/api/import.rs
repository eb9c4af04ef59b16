use meetings::pb;

use crate::helpers::{meeting, spawn_app};

fn request(i: usize) -> pb::ImportMeetingsRequest {
    let day = chrono::NaiveDate::from_ymd_opt(1950, 1, 1).unwrap() + chrono::Days::new(i as u64);
    pb::ImportMeetingsRequest {
        meeting: Some(meeting(&day.to_string(), &["AZ", "JP"])),
        request_id: format!("import-{i}"),
        ..Default::default()
    }
}

#[tokio::test]
async fn twenty_thousand_records_with_invalid_and_duplicate_ones_are_counted_exactly() {
    let app = spawn_app().await;
    const N: usize = 20_000;
    let mut requests = Vec::with_capacity(N);
    let mut expected_rejected = Vec::new();
    let mut expected_duplicates = 0;
    for i in 0..N {
        let mut r = request(i);
        if i % 97 == 5 {
            r.meeting.as_mut().unwrap().participants[1].country_code = "ZZ".into();
            expected_rejected.push((i as u64, "meeting.participants[1].country_code"));
        } else if i % 113 == 7 && i > 200 {
            // A retry of an earlier record (same key, same meeting).
            let earlier = i - 150;
            if earlier % 97 == 5 {
                // That one was rejected, so this one is new.
                r = request(earlier);
            } else {
                r = request(earlier);
                expected_duplicates += 1;
            }
        }
        requests.push(r);
    }
    // One key reused for a different meeting.
    let mut reused = request(10);
    reused.meeting.as_mut().unwrap().topics = vec!["something else".into()];
    requests.push(reused);
    expected_rejected.push((N as u64, "request_id"));

    let report = app.import(requests).await;
    assert_eq!(report.rejected_count, expected_rejected.len() as u64);
    assert_eq!(report.duplicate_count, expected_duplicates);
    let created = (N + 1) as u64 - report.rejected_count - report.duplicate_count;
    assert_eq!(report.created_count, created);
    assert_eq!(app.count_meetings().await, created as i64);
    let got: Vec<_> = report
        .rejected
        .iter()
        .map(|r| {
            assert_eq!(r.violations.len(), 1, "{r:?}");
            (r.index, r.violations[0].field.as_str())
        })
        .collect();
    assert_eq!(got, expected_rejected);
    assert_eq!(report.rejected[0].request_id, "import-5");

    // Everything stored is streamed with its pair.
    let streamed = app
        .stream(pb::StreamMeetingsByCountryPairRequest {
            country_a: "JP".into(),
            country_b: "AZ".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(streamed.len() as u64, created);
}

#[tokio::test]
async fn importing_the_same_records_again_stores_nothing_new() {
    let app = spawn_app().await;
    let requests: Vec<_> = (0..1_200).map(request).collect();
    let first = app.import(requests.clone()).await;
    assert_eq!(
        (
            first.created_count,
            first.duplicate_count,
            first.rejected_count
        ),
        (1_200, 0, 0)
    );
    let again = app.import(requests).await;
    assert_eq!(
        (
            again.created_count,
            again.duplicate_count,
            again.rejected_count
        ),
        (0, 1_200, 0)
    );
    assert_eq!(app.count_meetings().await, 1_200);
}

#[tokio::test]
async fn a_missing_meeting_is_rejected_and_an_empty_import_is_fine() {
    let app = spawn_app().await;
    let report = app.import(vec![]).await;
    assert_eq!(report, pb::ImportMeetingsResponse::default());
    let report = app
        .import(vec![
            pb::ImportMeetingsRequest {
                meeting: None,
                request_id: "x".into(),
                ..Default::default()
            },
            request(1),
        ])
        .await;
    assert_eq!((report.created_count, report.rejected_count), (1, 1));
    assert_eq!(report.rejected[0].index, 0);
    assert_eq!(report.rejected[0].violations[0].field, "meeting");
}

#[tokio::test]
async fn rejected_details_are_capped_but_all_counted() {
    let app = spawn_app().await;
    let requests: Vec<_> = (0..1_500)
        .map(|i| {
            let mut r = request(i);
            r.meeting.as_mut().unwrap().date = "bad".into();
            r
        })
        .collect();
    let report = app.import(requests).await;
    assert_eq!(report.rejected_count, 1_500);
    assert_eq!(report.rejected.len(), 1_000);
    assert_eq!(report.rejected[999].index, 999);
}

/// Batches of one import commit concurrently. Here the second and third
/// batches hold the first one's keys in the opposite order, so their
/// inserts wait on each other's keys (PostgreSQL may end one with a
/// deadlock, which the server retries): every record is still counted
/// once, as created or as a duplicate.
#[tokio::test]
async fn batches_committing_together_with_the_same_keys_count_each_record_once() {
    let app = spawn_app().await;
    const BATCH: usize = 500;
    let mut requests: Vec<_> = (0..BATCH).map(request).collect();
    requests.extend((0..BATCH).rev().map(request));
    requests.extend((0..BATCH).map(request));
    let report = app.import(requests).await;
    assert_eq!(report.rejected_count, 0, "{report:?}");
    assert_eq!(report.created_count, BATCH as u64);
    assert_eq!(report.duplicate_count, 2 * BATCH as u64);
    assert_eq!(app.count_meetings().await, BATCH as i64);
}
