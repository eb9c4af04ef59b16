//! The command-line client, run as a user runs it, against a real server.

use std::io::Write;

use crate::helpers::{TestApp, spawn_app};

/// Runs `meetings ARGS --addr <app>`; returns (success, stdout, stderr).
async fn meetings(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_meetings"))
        .args(args)
        .arg("--addr")
        .arg(format!("http://{}", app.addr))
        .output()
        .await
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/azertac-2022-05-05-azerbaijan-japan.json"
);

#[tokio::test]
async fn create_get_pair_and_list_speak_proto3_json() {
    let app = spawn_app().await;
    let (ok, out, err) = meetings(&app, &["create", FIXTURE]).await;
    assert!(ok, "{err}");
    let created = &json_lines(&out)[0];
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["countryCodes"], serde_json::json!(["AZ", "JP"]));
    assert_eq!(created["participants"][1]["name"], "Honda Taro");

    let (ok, out, _) = meetings(&app, &["get", &id]).await;
    assert!(ok);
    assert_eq!(&json_lines(&out)[0], created);

    // A record copied from that output, output-only fields and all, is
    // accepted as input unchanged.
    let mut copied = tempfile::NamedTempFile::new().unwrap();
    write!(copied, "{out}").unwrap();
    let (ok, out, err) = meetings(&app, &["create", copied.path().to_str().unwrap()]).await;
    assert!(ok, "{err}");
    assert_ne!(json_lines(&out)[0]["id"], created["id"]);

    let (ok, out, _) = meetings(&app, &["pair", "jp", "az", "--from", "2022-01-01"]).await;
    assert!(ok);
    assert_eq!(json_lines(&out).len(), 2);
    let (ok, out, _) = meetings(&app, &["list", "--query", "demining"]).await;
    assert!(ok);
    assert_eq!(json_lines(&out).len(), 2);

    // proto3 JSON's canonical timestamps: UTC as `Z`.
    let created_at = created["createTime"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && !created_at.contains("+00:00"),
        "{created_at}"
    );

    let (ok, _, err) = meetings(&app, &["get", "nope"]).await;
    assert!(!ok);
    assert!(
        err.contains("InvalidArgument") && err.contains("id:"),
        "{err}"
    );
    assert_eq!(
        err.matches("is not a UUID").count(),
        1,
        "the violation once: {err}"
    );
}

#[tokio::test]
async fn import_reports_counts_and_a_bad_file_names_its_line() {
    let app = spawn_app().await;
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for i in 0..50 {
        let mut line = fixture.clone();
        line["requestId"] = serde_json::json!(format!("line-{i}"));
        writeln!(file, "{line}").unwrap();
    }
    // A duplicate and an invalid record (a bare Meeting, original field names).
    writeln!(file, "{}", fixture_with_id(&fixture, "line-0")).unwrap();
    writeln!(
        file,
        r#"{{"date": "2022-02-30", "participants": [], "topics": ["x"]}}"#
    )
    .unwrap();
    let (ok, out, err) = meetings(&app, &["import", file.path().to_str().unwrap()]).await;
    assert!(ok, "{err}");
    let report = &json_lines(&out)[0];
    assert_eq!(report["createdCount"], "50");
    assert_eq!(report["duplicateCount"], "1");
    assert_eq!(report["rejectedCount"], "1");
    assert_eq!(report["rejected"][0]["index"], "51");
    assert_eq!(app.count_meetings().await, 50);

    let mut bad = tempfile::NamedTempFile::new().unwrap();
    writeln!(bad, "{}", fixture_with_id(&fixture, "ok")).unwrap();
    writeln!(bad, "{{not json").unwrap();
    let (ok, _, err) = meetings(&app, &["import", bad.path().to_str().unwrap()]).await;
    assert!(!ok);
    assert!(
        err.contains(":2:") && err.contains("nothing imported"),
        "{err}"
    );
    assert_eq!(
        app.count_meetings().await,
        50,
        "nothing from a malformed file is stored"
    );
}

fn fixture_with_id(fixture: &serde_json::Value, request_id: &str) -> serde_json::Value {
    let mut v = fixture.clone();
    v["requestId"] = serde_json::json!(request_id);
    v
}

#[tokio::test]
async fn import_merge_duplicates_and_merge_commands() {
    let app = spawn_app().await;
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    // The example as three outlets report it.
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for (i, (az, jp)) in [
        ("Jeyhun Bayramov", "Honda Taro"),
        ("Ceyhun Bayramov", "Taro Honda"),
        ("Джейхун Байрамов", "HONDA Taro"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut m = fixture["meeting"].clone();
        m["participants"][0]["name"] = serde_json::json!(az);
        m["participants"][1]["name"] = serde_json::json!(jp);
        m["sources"] = serde_json::json!([{"name": format!("outlet {i}")}]);
        writeln!(file, "{m}").unwrap();
    }
    let path = file.path().to_str().unwrap();

    // What would merge, before anything is stored: nothing.
    let (ok, out, err) = meetings(&app, &["duplicates", path]).await;
    assert!(ok, "{err}");
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    assert!(
        lines.iter().all(|l| l["matches"] == serde_json::json!([])),
        "{out}"
    );

    let (ok, out, err) = meetings(&app, &["import", "--merge", path]).await;
    assert!(ok, "{err}");
    let report = &json_lines(&out)[0];
    assert_eq!(report["createdCount"], "1");
    assert_eq!(report["mergedCount"], "2");
    let (ok, out, _) = meetings(&app, &["pair", "AZ", "JP"]).await;
    assert!(ok);
    let stored = json_lines(&out);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["sources"].as_array().unwrap().len(), 3);
    let id = stored[0]["id"].as_str().unwrap().to_owned();

    // Now each line matches the stored meeting.
    let (ok, out, _) = meetings(&app, &["duplicates", path]).await;
    assert!(ok);
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    assert!(
        lines
            .iter()
            .all(|l| l["matches"][0]["meeting"]["id"] == serde_json::json!(id)),
        "{out}"
    );

    // merge: another meeting of the pair, merged by hand.
    let (ok, out, err) = meetings(&app, &["create", FIXTURE]).await;
    assert!(ok, "{err}");
    let other = json_lines(&out)[0]["id"].as_str().unwrap().to_owned();
    let (ok, out, err) = meetings(&app, &["merge", &id, &other]).await;
    assert!(ok, "{err}");
    assert_eq!(json_lines(&out)[0]["mergedIds"], serde_json::json!([other]));
    let (ok, out, _) = meetings(&app, &["list", "--participant", "bayramov"]).await;
    assert!(ok);
    assert_eq!(json_lines(&out).len(), 1);
}
