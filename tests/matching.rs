//! Duplicate matching measured on the labelled evaluation set
//! (tests/fixtures/duplicates/pairs.jsonl, made by generate.py beside it):
//! precision and recall of "these two reports describe one meeting".
//!
//!     cargo test --release --test matching -- --nocapture
//!
//! prints them, with the misses by kind of variation; with
//! MATCHING_DETAIL=1 it also prints each pair it gets wrong.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use meetings::domain::{NewMeeting, Report, same_meeting};
use meetings::pb;

const PAIRS: &str = include_str!("fixtures/duplicates/pairs.jsonl");

#[derive(serde::Deserialize)]
struct Pair {
    label: String,
    kind: String,
    a: pb::Meeting,
    b: pb::Meeting,
}

fn report(m: pb::Meeting) -> Report {
    let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    Report::of(&NewMeeting::parse(m, "meeting", today).expect("the set's reports are valid"))
}

#[test]
fn matching_meets_its_precision_and_recall_goals() {
    let (mut tp, mut fp, mut fn_, mut tn) = (0u32, 0u32, 0u32, 0u32);
    let mut misses: BTreeMap<String, u32> = BTreeMap::new();
    for line in PAIRS.lines() {
        let pair: Pair = serde_json::from_str(line).unwrap();
        let detail = format!(
            "{}: {:?} {:?} / {:?} {:?}",
            pair.kind,
            pair.a.date,
            pair.a
                .participants
                .iter()
                .map(|p| format!("{}:{}", p.country_code, p.name))
                .collect::<Vec<_>>(),
            pair.b.date,
            pair.b
                .participants
                .iter()
                .map(|p| format!("{}:{}", p.country_code, p.name))
                .collect::<Vec<_>>(),
        );
        let same = same_meeting(&report(pair.b), &report(pair.a)).is_some();
        if std::env::var_os("MATCHING_DETAIL").is_some() && (same != (pair.label == "same")) {
            println!("{} {detail}", pair.label);
        }
        match (pair.label.as_str(), same) {
            ("same", true) => tp += 1,
            ("same", false) => {
                fn_ += 1;
                *misses.entry(format!("missed {}", pair.kind)).or_default() += 1;
            }
            ("different", true) => {
                fp += 1;
                *misses
                    .entry(format!("wrongly matched {}", pair.kind))
                    .or_default() += 1;
            }
            _ => tn += 1,
        }
    }
    let precision = f64::from(tp) / f64::from(tp + fp);
    let recall = f64::from(tp) / f64::from(tp + fn_);
    println!(
        "duplicate matching: precision {precision:.3}, recall {recall:.3} \
         ({tp} found, {fn_} missed of {} same; {fp} wrongly matched of {} near misses)",
        tp + fn_,
        fp + tn
    );
    for (what, n) in &misses {
        println!("  {what}: {n}");
    }
    assert!(tp + fn_ >= 300 && fp + tn >= 300, "the set is large enough");
    assert!(precision >= 0.99, "precision {precision:.3} < 0.99");
    assert!(recall >= 0.95, "recall {recall:.3} < 0.95");
}
