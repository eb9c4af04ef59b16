//! Property tests of validation over arbitrary meetings: it never panics,
//! what it accepts obeys every rule, what it rejects is reported with paths,
//! and normalising is idempotent.

use chrono::NaiveDate;
use meetings::api::meeting_to_pb;
use meetings::domain::NewMeeting;
use meetings::pb;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z .'-]{0,12}",
        " {0,2}[a-zA-Z]{1,8} {0,2}",
        "\\PC{0,30}",
        ".{0,8}",
        "[a-z]{195,205}",
        Just(String::new()),
        Just("\u{7}bell".to_owned()),
        Just("line\nbreak".to_owned()),
        Just("\u{200B}\u{FEFF}".to_owned()),
        Just("Mini\u{202E}ster".to_owned()),
        Just("Cafe\u{301}".to_owned()),
        Just("STRASSE".to_owned()),
        Just("Straße".to_owned()),
    ]
}

fn country() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "AZ", "jp", " TR ", "fr", "DE", "ZZ", "", "XK", "USA", "a", "Jp", "SU", "suhh", "DD", "CS",
        "CSHH", "YU", "SUH",
    ])
    .prop_map(str::to_owned)
}

fn organization() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "", "", "EU", "au", " NATO ", "XYZ", "AZ"])
        .prop_map(str::to_owned)
}

/// Former countries and organisations as the reference knows them: (code,
/// first day, last day), from docs/registry/ as a reader would copy them.
const REFERENCE_FORMER: [(&str, &str, &str, &str); 4] = [
    ("SUHH", "SU", "1922-12-30", "1991-12-26"),
    ("DDDE", "DD", "1949-10-07", "1990-10-03"),
    ("CSHH", "", "1918-10-28", "1992-12-31"),
    ("YUCS", "YU", "1918-12-01", "2003-02-04"),
];
const REFERENCE_ORGANIZATIONS: [(&str, &str); 3] = [
    ("EU", "1993-11-01"),
    ("AU", "2002-07-09"),
    ("NATO", "1949-04-04"),
];

fn date() -> impl Strategy<Value = String> {
    prop_oneof![
        (1790i32..2030, 1u32..14, 0u32..33).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        "[0-9-]{0,12}",
        Just("2022-05-05".to_owned()),
    ]
}

fn participant() -> impl Strategy<Value = pb::Participant> {
    (text(), text(), country(), organization()).prop_map(
        |(name, title, country_code, organization_code)| pb::Participant {
            name,
            title,
            country_code,
            organization_code,
            ..Default::default()
        },
    )
}

/// Meetings that are mostly valid, with a chance of a faulty title,
/// summary or source.
fn mostly_valid() -> impl Strategy<Value = pb::Meeting> {
    (
        (1900i32..2025, 1u32..13, 1u32..29),
        prop::collection::vec(
            (
                "[A-Z][a-z]{1,10}",
                text(),
                prop::sample::select(vec!["AZ", "jp", " TR ", "fr", "org:EU", "su"]),
            ),
            0..6,
        ),
        prop::collection::vec("[a-z]{1,12}", 0..6),
        prop::option::of((1u32..1001, "[a-z ]{1,30}")),
        text(),
        prop::collection::vec(
            prop_oneof![Just(String::new()), "https://[a-z]{1,8}\\.az/[a-z]{0,5}"],
            0..3,
        ),
    )
        .prop_map(|((y, m, d), people, topics, anniversary, summary, urls)| {
            let mut participants = vec![
                pb::Participant {
                    name: "Jeyhun Bayramov".into(),
                    country_code: "AZ".into(),
                    ..Default::default()
                },
                pb::Participant {
                    name: "Honda Taro".into(),
                    country_code: "JP".into(),
                    ..Default::default()
                },
            ];
            participants.extend(
                people
                    .into_iter()
                    .enumerate()
                    .map(|(i, (name, title, code))| match code.strip_prefix("org:") {
                        Some(org) => pb::Participant {
                            name: format!("{name} {i}"),
                            title,
                            organization_code: org.to_owned(),
                            ..Default::default()
                        },
                        None => pb::Participant {
                            name: format!("{name} {i}"),
                            title,
                            country_code: code.to_owned(),
                            ..Default::default()
                        },
                    }),
            );
            pb::Meeting {
                date: format!("{y:04}-{m:02}-{d:02}"),
                participants,
                topics: topics
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| format!("{t} {i}"))
                    .collect(),
                anniversary: anniversary
                    .map(|(years, occasion)| pb::Anniversary { years, occasion }),
                summary,
                sources: urls
                    .into_iter()
                    .map(|url| pb::Source {
                        name: "AZERTAC".into(),
                        url,
                    })
                    .collect(),
                ..Default::default()
            }
        })
}

fn meeting() -> impl Strategy<Value = pb::Meeting> {
    prop_oneof![mostly_valid(), anything()]
}

fn anything() -> impl Strategy<Value = pb::Meeting> {
    (
        (date(), prop_oneof![Just(String::new()), date()], -1i32..5),
        prop::collection::vec(participant(), 0..6),
        prop::collection::vec(text(), 0..5),
        prop::option::of((0u32..1100, text())),
        prop::option::of((text(), country())),
        prop::collection::vec(
            (
                text(),
                prop_oneof![
                    Just(String::new()),
                    "https?://[a-z]{1,8}\\.az/[a-z]{0,5}",
                    ".{0,10}"
                ],
            ),
            0..3,
        ),
        text(),
    )
        .prop_map(
            |(
                (date, end_date, format),
                participants,
                topics,
                anniversary,
                location,
                sources,
                summary,
            )| pb::Meeting {
                date,
                end_date,
                format,
                participants,
                topics,
                anniversary: anniversary
                    .map(|(years, occasion)| pb::Anniversary { years, occasion }),
                location: location.map(|(city, country_code)| pb::Location { city, country_code }),
                sources: sources
                    .into_iter()
                    .map(|(name, url)| pb::Source { name, url })
                    .collect(),
                summary,
                ..Default::default()
            },
        )
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
}

fn clean(s: &str, multiline: bool) -> bool {
    s.trim() == s
        && !s
            .chars()
            .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
}

/// The rules of a meeting, written again here from the README's
/// validation section, independently of the service's code: the paths of
/// every field whose rule `raw` breaks.
fn broken_rules(raw: &pb::Meeting, today: NaiveDate) -> std::collections::BTreeSet<String> {
    use std::collections::{BTreeSet, HashSet};
    use unicode_normalization::UnicodeNormalization;
    let mut broken = BTreeSet::new();
    let norm = |s: &str| s.nfc().collect::<String>().trim().to_owned();
    let invisible = |c: char| {
        matches!(c as u32,
            0xAD | 0x34F | 0x61C | 0x115F..=0x1160 | 0x17B4..=0x17B5 | 0x180B..=0x180F
            | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0x3164 | 0xFE00..=0xFE0F
            | 0xFEFF | 0xFFA0 | 0xFFF0..=0xFFF8 | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF)
    };
    // A text rule: (min, max) characters after trimming, no control
    // characters (line breaks and tabs only when multiline), no bidi
    // controls unless multiline, and not only invisible characters.
    let text_ok = |raw: &str, min: usize, max: usize, multiline: bool| {
        let t = norm(raw);
        let n = t.chars().count();
        n >= min
            && n <= max
            && !t
                .chars()
                .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
            && (multiline
                || !t.chars().any(
                    |c| matches!(c as u32, 0x202A..=0x202E | 0x2066..=0x2069 | 0x2028 | 0x2029),
                ))
            && (t.is_empty() || !t.chars().all(|c| c.is_whitespace() || invisible(c)))
    };
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    // A country code's party, if the code is valid on `on` (when known).
    let country_party = |raw: &str, on: Option<NaiveDate>| -> Option<String> {
        let c = raw.trim().to_ascii_uppercase();
        if c == "XK" || (c.len() == 2 && rust_iso3166::from_alpha2(&c).is_some()) {
            return Some(c);
        }
        let (code, _, from, until) = REFERENCE_FORMER
            .iter()
            .find(|(code, alpha2, ..)| *code == c || (!alpha2.is_empty() && *alpha2 == c))?;
        on.is_none_or(|d| d >= day(from) && d <= day(until))
            .then(|| (*code).to_owned())
    };
    let organization_party = |raw: &str, on: Option<NaiveDate>| -> Option<String> {
        let c = raw.trim().to_ascii_uppercase();
        let (code, founded) = REFERENCE_ORGANIZATIONS
            .iter()
            .find(|(code, _)| *code == c)?;
        on.is_none_or(|d| d >= day(founded))
            .then(|| format!("org:{code}"))
    };
    let fold = |s: &str| unicase::UniCase::new(norm(s)).to_folded_case();
    let mut add = |path: String| {
        broken.insert(path);
    };

    // Date.
    let date_ok = raw.date.len() == 10
        && NaiveDate::parse_from_str(&raw.date, "%Y-%m-%d").is_ok_and(|d| {
            d.format("%Y-%m-%d").to_string() == raw.date
                && d >= NaiveDate::from_ymd_opt(1800, 1, 1).unwrap()
                && d <= today.checked_add_months(chrono::Months::new(12)).unwrap()
        });
    if !date_ok {
        add("meeting.date".into());
    }
    let on = date_ok.then(|| day(&raw.date));
    if !raw.end_date.is_empty() {
        let end = NaiveDate::parse_from_str(&raw.end_date, "%Y-%m-%d")
            .ok()
            .filter(|d| {
                raw.end_date.len() == 10 && d.format("%Y-%m-%d").to_string() == raw.end_date
            });
        let ok = match (end, on) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(end), Some(start)) => end >= start && end <= start + chrono::Days::new(90),
        };
        if !ok {
            add("meeting.end_date".into());
        }
    }
    if !(0..=3).contains(&raw.format) {
        add("meeting.format".into());
    }
    // Participants.
    if !(2..=200).contains(&raw.participants.len()) {
        add("meeting.participants".into());
    }
    let mut seen = HashSet::new();
    let mut countries = HashSet::new();
    for (i, p) in raw.participants.iter().enumerate() {
        let name = text_ok(&p.name, 1, 200, false);
        let title = text_ok(&p.title, 0, 200, false);
        if !name {
            add(format!("meeting.participants[{i}].name"));
        }
        if !title {
            add(format!("meeting.participants[{i}].title"));
        }
        let party = match (p.country_code.trim(), p.organization_code.trim()) {
            ("", "") => {
                add(format!("meeting.participants[{i}].country_code"));
                None
            }
            (c, "") => country_party(c, on).or_else(|| {
                add(format!("meeting.participants[{i}].country_code"));
                None
            }),
            ("", o) => organization_party(o, on).or_else(|| {
                add(format!("meeting.participants[{i}].organization_code"));
                None
            }),
            _ => {
                add(format!("meeting.participants[{i}].organization_code"));
                None
            }
        };
        if let (true, true, Some(party)) = (name, title, party) {
            countries.insert(party.clone());
            if !seen.insert((fold(&p.name), party)) {
                add(format!("meeting.participants[{i}]"));
            }
        }
    }
    if raw.participants.len() >= 2 && countries.len() < 2 {
        add("meeting.participants".into());
    }
    // Topics.
    if raw.topics.len() > 100 {
        add("meeting.topics".into());
    }
    let mut topics = HashSet::new();
    for (i, t) in raw.topics.iter().enumerate() {
        // Faulty, or the same as an earlier one ignoring case.
        if !text_ok(t, 1, 200, false) || !topics.insert(fold(t)) {
            add(format!("meeting.topics[{i}]"));
        }
    }
    // Anniversary, location, sources, summary.
    if let Some(a) = &raw.anniversary {
        if !(1..=1000).contains(&a.years) {
            add("meeting.anniversary.years".into());
        }
        if !text_ok(&a.occasion, 1, 200, false) {
            add("meeting.anniversary.occasion".into());
        }
    }
    if let Some(l) = &raw.location {
        if !text_ok(&l.city, 0, 200, false) {
            add("meeting.location.city".into());
        }
        if !l.country_code.trim().is_empty() && country_party(&l.country_code, on).is_none() {
            add("meeting.location.country_code".into());
        }
    }
    if raw.sources.len() > 20 {
        add("meeting.sources".into());
    }
    for (i, src) in raw.sources.iter().enumerate() {
        if !text_ok(&src.name, 1, 200, false) {
            add(format!("meeting.sources[{i}].name"));
        }
        let url = norm(&src.url);
        let url_ok = text_ok(&src.url, 0, 2_048, false)
            && (url.is_empty()
                || url::Url::parse(&url)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()));
        if !url_ok {
            add(format!("meeting.sources[{i}].url"));
        }
    }
    if !text_ok(&raw.summary, 0, 20_000, true) {
        add("meeting.summary".into());
    }
    broken
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The service and the reference agree: an accepted meeting breaks no
    /// rule, and every violation reported names a field whose rule the
    /// reference finds broken.
    #[test]
    fn validation_agrees_with_a_reference_checker(raw in meeting()) {
        let broken = broken_rules(&raw, today());
        match NewMeeting::parse(raw, "meeting", today()) {
            Ok(_) => prop_assert!(broken.is_empty(), "accepted, but breaks {:?}", broken),
            Err(violations) => {
                for v in violations.iter() {
                    prop_assert!(
                        broken.contains(&v.field),
                        "reported {} ({}), but the reference finds only {:?}",
                        v.field, v.description, broken
                    );
                }
            }
        }
    }

    #[test]
    fn validation_accepts_only_what_the_rules_allow(raw in meeting()) {
        match NewMeeting::parse(raw, "meeting", today()) {
            Ok(m) => {
                let n = m.participants().len();
                prop_assert!((2..=200).contains(&n));
                let parties = m.parties();
                prop_assert!(parties.len() >= 2);
                prop_assert_eq!(m.party_pairs().len(), parties.len() * (parties.len() - 1) / 2);
                prop_assert_eq!(
                    m.country_codes().count() + m.organization_codes().count(),
                    parties.len()
                );
                for p in m.participants() {
                    prop_assert!(clean(p.name(), false) && !p.name().is_empty());
                    prop_assert!(clean(p.title(), false));
                    let code = p.party().code();
                    prop_assert!(code.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
                    prop_assert!(p.party().exists_on(m.date()).is_ok());
                }
                if let Some(end) = m.end_date() {
                    prop_assert!(end >= m.date() && end <= m.date() + chrono::Days::new(90));
                }
                prop_assert!(m.topics().len() <= 100);
                let mut lower: Vec<_> = m.topics().iter().map(|t| t.to_lowercase()).collect();
                lower.sort();
                lower.dedup();
                prop_assert_eq!(lower.len(), m.topics().len(), "topics unique ignoring case");
                prop_assert!(m.topics().iter().all(|t| clean(t, false) && (1..=200).contains(&t.chars().count())));
                prop_assert!(clean(m.summary(), true));
                prop_assert!(m.date() >= NaiveDate::from_ymd_opt(1800, 1, 1).unwrap());
                if let Some(a) = m.anniversary() {
                    prop_assert!((1..=1000).contains(&a.years()));
                }
                for s in m.sources() {
                    prop_assert!(s.url().is_empty() || s.url().starts_with("http"));
                }
                // Normalising is idempotent: the stored form parses to itself.
                let again = NewMeeting::parse(meeting_to_pb(&m), "meeting", today());
                prop_assert_eq!(again.as_ref(), Ok(&m));
            }
            Err(violations) => {
                prop_assert!(!violations.is_empty());
                for v in violations.iter() {
                    prop_assert!(v.field.starts_with("meeting."), "path {}", v.field);
                    prop_assert!(!v.description.is_empty());
                }
            }
        }
    }
}

/// The generator must reach the accepting side often enough for the
/// property above to say something about accepted meetings.
#[test]
fn the_generator_produces_valid_meetings_too() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = meeting();
    let accepted = (0..2_000)
        .filter(|_| {
            let raw = strategy.new_tree(&mut runner).unwrap().current();
            NewMeeting::parse(raw, "meeting", today()).is_ok()
        })
        .count();
    assert!(
        accepted >= 20,
        "only {accepted} of 2,000 generated meetings were valid"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    /// What a server does with any bytes as a CreateMeetingRequest: decode,
    /// then validate. Neither may panic. (A stable-toolchain stand-in for
    /// coverage-guided fuzzing of the same path.)
    #[test]
    fn mangled_bytes_never_panic_the_decoder_or_validator(
        m in meeting(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        use prost::Message;
        // A real request's bytes, with some bytes changed and the tail cut.
        let mut bytes = pb::CreateMeetingRequest { meeting: Some(m), request_id: "r".into(), ..Default::default() }.encode_to_vec();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(request) = pb::CreateMeetingRequest::decode(&bytes[..])
            && let Some(m) = request.meeting
        {
            let _ = NewMeeting::parse(m, "meeting", today());
        }
    }
}
