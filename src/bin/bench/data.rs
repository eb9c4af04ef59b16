//! The sample meetings the bench loads.

#[allow(unused_imports)]
use super::*;

pub(crate) const TOPICS: [&str; 16] = [
    "energy",
    "alternative energy",
    "economy",
    "humanitarian cooperation",
    "inter-parliamentary relations",
    "energy security",
    "liberated territories",
    "restoration and reconstruction",
    "demining",
    "ecology and environmental protection",
    "cultural heritage",
    "normalization of relations",
    "regional peace and development",
    "cooperation within international organizations",
    "regional issues",
    "situation in Ukraine",
];

pub(crate) const OTHER_PAIRS: [(&str, &str); 6] = [
    ("TR", "GE"),
    ("FR", "DE"),
    ("US", "CA"),
    ("IN", "BR"),
    ("KZ", "UZ"),
    ("IT", "ES"),
];

/// Meetings shaped like the AZERTAC example (2 participants, 16 topics, a
/// summary, a source), on the given pair or spread over other pairs.
pub(crate) fn sample_meetings(
    start: usize,
    n: usize,
    pair: Option<(&str, &str)>,
) -> Vec<pb::Meeting> {
    (start..start + n)
        .map(|i| sample_meeting(i, pair))
        .collect()
}

/// `n` meetings from `start`, as the report of one outlet (`spelling` 0 to
/// 2): each outlet spells the participants differently (a transliteration,
/// the word order, a hyphen), dates one of them a day later, and names
/// itself as the source.
pub(crate) fn report_stream(start: usize, n: usize, spelling: usize) -> Vec<pb::Meeting> {
    (start..start + n)
        .map(|i| {
            let mut m = sample_meeting(i, None);
            let (minister, vice) = match spelling {
                0 => (format!("Jeyhun Bayramov {i}"), format!("Honda Taro {i}")),
                1 => (format!("Ceyhun Bayramov {i}"), format!("{i} Taro Honda")),
                _ => (format!("Dzheykhun Bairamov {i}"), format!("Taro-Honda {i}")),
            };
            m.participants[0].name = minister;
            m.participants[1].name = vice;
            if spelling == 1 {
                let day: chrono::NaiveDate = m.date.parse().expect("sample dates parse");
                m.date = (day + chrono::Days::new(1)).to_string();
            }
            m.sources = vec![pb::Source {
                name: ["AZERTAC", "MOFA Japan", "Reuters"][spelling].into(),
                url: format!("https://outlet-{spelling}.example/{i}"),
            }];
            m
        })
        .collect()
}

pub(crate) fn sample_meeting(i: usize, pair: Option<(&str, &str)>) -> pb::Meeting {
    {
        {
            let (a, b) = pair.unwrap_or(OTHER_PAIRS[i % OTHER_PAIRS.len()]);
            let date = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap()
                + chrono::Days::new((i * 7 % 45_000) as u64);
            pb::Meeting {
                date: date.to_string(),
                location: Some(pb::Location { city: "Baku".into(), country_code: a.into() }),
                participants: vec![
                    pb::Participant { name: format!("Minister {i}"), title: "Minister of Foreign Affairs".into(), country_code: a.into(), ..Default::default() },
                    pb::Participant {
                        name: format!("Vice-Minister {i}"),
                        title: "Parliamentary Vice-Minister for Foreign Affairs".into(),
                        country_code: b.into(),
                        ..Default::default()
                    },
                ],
                anniversary: Some(pb::Anniversary { years: 30, occasion: "establishment of diplomatic relations".into() }),
                topics: TOPICS.iter().map(|t| (*t).to_owned()).collect(),
                summary: "The sides exchanged views on cooperation in energy, alternative energy, the economy, humanitarian \
                          and inter-parliamentary relations, the reconstruction of the liberated territories and demining, \
                          cooperation within international organizations and regional issues, including the situation in Ukraine."
                    .into(),
                sources: vec![pb::Source { name: "AZERTAC".into(), url: format!("https://azertag.az/en/{i}") }],
                ..Default::default()
            }
        }
    }
}

// ---------------------------------------------------------------- runs
