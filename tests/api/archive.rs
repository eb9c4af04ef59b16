//! An archive-sized import of realistic trip records, as a news platform
//! would load its history: official trips of US presidents and secretaries
//! of state to about 170 countries since 1905, former countries and Kosovo
//! among them, most lasting several days, a few with an organisation, none
//! listing topics. The generator is here, deterministic; the records go
//! through `meetings import` (the command-line client) into the real server.

use std::collections::BTreeMap;
use std::io::Write;

use meetings::pb;

use crate::helpers::spawn_app;

/// Trips in the generated archive.
const TRIPS: usize = 4_300;

/// Presidents of the United States since 1905, with their terms (years).
const PRESIDENTS: [(&str, i32, i32); 20] = [
    ("Theodore Roosevelt", 1905, 1908),
    ("William Howard Taft", 1909, 1912),
    ("Woodrow Wilson", 1913, 1920),
    ("Warren G. Harding", 1921, 1922),
    ("Calvin Coolidge", 1923, 1928),
    ("Herbert Hoover", 1929, 1932),
    ("Franklin D. Roosevelt", 1933, 1944),
    ("Harry S. Truman", 1945, 1952),
    ("Dwight D. Eisenhower", 1953, 1960),
    ("John F. Kennedy", 1961, 1963),
    ("Lyndon B. Johnson", 1964, 1968),
    ("Richard Nixon", 1969, 1973),
    ("Gerald Ford", 1974, 1976),
    ("Jimmy Carter", 1977, 1980),
    ("Ronald Reagan", 1981, 1988),
    ("George H. W. Bush", 1989, 1992),
    ("Bill Clinton", 1993, 2000),
    ("George W. Bush", 2001, 2008),
    ("Barack Obama", 2009, 2016),
    ("Joe Biden", 2021, 2024),
];

/// Former countries and Kosovo, with the years trips to them are dated in
/// (within the days each existed; docs/registry/former-states.md).
const HISTORIC: [(&str, i32, i32); 7] = [
    ("SUHH", 1923, 1990),
    ("DDDE", 1950, 1989),
    ("CSHH", 1919, 1991),
    ("YUCS", 1919, 2002),
    ("ANHH", 1955, 2009),
    ("CSXX", 2004, 2005),
    ("XK", 1999, 2024),
];

/// Organisations met on some trips, with the first year they existed.
const ORGANISATIONS: [(&str, i32); 4] = [("NATO", 1950), ("UN", 1946), ("EU", 1994), ("OAS", 1949)];

/// A small deterministic generator (64-bit LCG): the archive is the same on
/// every run, without a random-number crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn between(&mut self, low: i32, high: i32) -> i32 {
        low + self.below((high - low + 1) as usize) as i32
    }
}

/// The archive: `n` trips, deterministic by `seed`.
pub fn trips(n: usize, seed: u64) -> Vec<pb::Meeting> {
    let mut rng = Lcg(seed);
    // Today's countries (not the US), about 165 of them, in a fixed order.
    let mut today: Vec<&str> = rust_iso3166::ALL
        .iter()
        .map(|c| c.alpha2)
        .filter(|c| *c != "US")
        .collect();
    today.sort_unstable();
    let today: Vec<&str> = today
        .into_iter()
        .step_by(3)
        .chain(["GB", "FR", "DE", "JP", "CN"])
        .collect();
    (0..n)
        .map(|i| {
            // One trip in ten goes to a former country or Kosovo.
            let (country, year) = if i % 10 == 0 {
                let (code, from, until) = HISTORIC[rng.below(HISTORIC.len())];
                (code, rng.between(from, until))
            } else {
                (today[rng.below(today.len())], rng.between(1946, 2024))
            };
            let date = chrono::NaiveDate::from_ymd_opt(
                year,
                1 + rng.below(12) as u32,
                1 + rng.below(28) as u32,
            )
            .unwrap();
            // Two thirds last more than a day.
            let days = if rng.below(3) == 0 {
                0
            } else {
                1 + rng.below(6) as u64
            };
            let (traveller, title) = match PRESIDENTS
                .iter()
                .find(|(_, from, to)| (*from..=*to).contains(&year))
            {
                Some((name, ..)) if rng.below(2) == 0 => {
                    ((*name).to_owned(), "President of the United States")
                }
                _ => (format!("Secretary of State ({year})"), "Secretary of State"),
            };
            let mut participants = vec![
                pb::Participant {
                    name: traveller,
                    title: title.into(),
                    country_code: "US".into(),
                    ..Default::default()
                },
                pb::Participant {
                    name: format!("Head of government of {country} ({year})"),
                    title: "Prime Minister".into(),
                    country_code: country.into(),
                    ..Default::default()
                },
            ];
            if i % 25 == 0 {
                let (org, since) = ORGANISATIONS[rng.below(ORGANISATIONS.len())];
                if year >= since {
                    participants.push(pb::Participant {
                        name: format!("Secretary General of {org} ({year})"),
                        organization_code: org.into(),
                        ..Default::default()
                    });
                }
            }
            let format = match rng.below(10) {
                0 => pb::MeetingFormat::Unspecified,
                1 if year > 1960 => pb::MeetingFormat::PhoneCall,
                _ => pb::MeetingFormat::InPerson,
            };
            pb::Meeting {
                date: date.to_string(),
                end_date: if days == 0 {
                    String::new()
                } else {
                    (date + chrono::Days::new(days)).to_string()
                },
                format: format as i32,
                location: Some(pb::Location {
                    city: format!("Capital of {country}"),
                    country_code: country.into(),
                }),
                participants,
                sources: vec![pb::Source {
                    name: "Office of the Historian, U.S. Department of State".into(),
                    url: format!("https://history.state.gov/departmenthistory/travels/{i}"),
                }],
                ..Default::default()
            }
        })
        .collect()
}

/// What a stored meeting must keep of a trip: its days, format, parties
/// and people.
fn essentials(m: &pb::Meeting) -> String {
    let people: Vec<_> = m
        .participants
        .iter()
        .map(|p| format!("{}/{}/{}", p.name, p.country_code, p.organization_code))
        .collect();
    format!(
        "{} {} {} {}",
        m.date,
        m.end_date,
        m.format,
        people.join(",")
    )
}

/// The pairs of a trip, as party keys ("US", "org:NATO").
fn pairs(m: &pb::Meeting) -> Vec<(String, String)> {
    let mut parties: Vec<String> = m
        .participants
        .iter()
        .map(|p| match p.organization_code.as_str() {
            "" => p.country_code.clone(),
            o => format!("org:{o}"),
        })
        .collect();
    parties.sort();
    parties.dedup();
    let mut out = Vec::new();
    for (i, a) in parties.iter().enumerate() {
        for b in &parties[i + 1..] {
            out.push((a.clone(), b.clone()));
        }
    }
    out
}

#[tokio::test]
async fn an_archive_of_trips_imports_whole_through_the_command_line() {
    let app = spawn_app().await;
    let archive = trips(TRIPS, 1905);
    assert!(archive.iter().filter(|m| !m.end_date.is_empty()).count() > TRIPS / 2);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for m in &archive {
        writeln!(file, "{}", serde_json::to_string(m).unwrap()).unwrap();
    }
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_meetings"))
        .args(["import", file.path().to_str().unwrap(), "--addr"])
        .arg(format!("http://{}", app.addr))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(report["createdCount"], TRIPS.to_string(), "{report}");
    assert_eq!(report.get("rejectedCount"), None, "{report}");

    // Every pair counts what the file has.
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for m in &archive {
        for p in pairs(m) {
            *expected.entry(p).or_default() += 1;
        }
    }
    assert!(expected.len() > 170, "{} pairs", expected.len());
    let mut client = app.client.clone();
    for ((a, b), count) in &expected {
        let side = |s: &str| match s.strip_prefix("org:") {
            Some(o) => (String::new(), o.to_owned()),
            None => (s.to_owned(), String::new()),
        };
        let ((country_a, organization_a), (country_b, organization_b)) = (side(a), side(b));
        let summary = client
            .get_country_pair_summary(pb::GetCountryPairSummaryRequest {
                country_a,
                country_b,
                organization_a,
                organization_b,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(summary.meeting_count, *count, "pair {a}-{b}");
    }

    // Spans, formats and people come back as sent.
    let mut stored = Vec::new();
    let mut request = pb::ListMeetingsRequest {
        page_size: 1_000,
        ..Default::default()
    };
    loop {
        let page = client
            .list_meetings(request.clone())
            .await
            .unwrap()
            .into_inner();
        stored.extend(page.meetings.iter().map(essentials));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    let mut sent: Vec<_> = archive.iter().map(essentials).collect();
    sent.sort();
    stored.sort();
    assert_eq!(stored.len(), TRIPS);
    assert_eq!(stored, sent);
}
