//! Which stored meeting a report describes, and what one record of both
//! holds. Two reports describe the same meeting when their parties are the
//! same set, their days overlap allowing one day either way (time zones,
//! reports dated the day after), and for at least two parties a participant
//! of one report matches a participant of the other by name (`NameKey`,
//! aliases included). Titles do not count: the same minister is "Foreign
//! Minister" in one report and "Minister of Foreign Affairs" in another.

use chrono::{Days, NaiveDate};

use super::limits::{MAX_ALIASES, MAX_PARTICIPANTS, MAX_SOURCES, MAX_TOPICS};
use super::{NameKey, NewMeeting, Party, RawMeeting, RawParticipant, RawSource, fold_case};

/// What matching reads of a meeting.
#[derive(Debug, Clone)]
pub struct Report {
    parties: Vec<Party>,
    first: NaiveDate,
    last: NaiveDate,
    /// Each participant's party, and each of their spellings (name first,
    /// then aliases) with its key.
    people: Vec<(Party, Vec<(String, NameKey)>)>,
}

/// A party whose participants matched by name: a spelling from each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameMatch {
    pub party: Party,
    /// As the report (the draft, the new record) spells it.
    pub name: String,
    /// As the stored meeting spells it (its name or an alias).
    pub matched_name: String,
}

/// Parties whose participants must match by name for two reports of the
/// same parties and days to be one meeting.
const MATCHED_PARTIES: usize = 2;

impl Report {
    /// A report from its parts, as a stored record holds them: the
    /// parties (sorted, distinct), the first and last day, and each
    /// participant's party and spellings (name first, then aliases).
    pub fn from_parts(
        mut parties: Vec<Party>,
        first: NaiveDate,
        last: NaiveDate,
        people: Vec<(Party, Vec<String>)>,
    ) -> Self {
        parties.sort();
        parties.dedup();
        Self {
            parties,
            first,
            last,
            people: people
                .into_iter()
                .map(|(party, names)| {
                    let spellings = names
                        .into_iter()
                        .map(|n| {
                            let key = NameKey::new(&n);
                            (n, key)
                        })
                        .collect();
                    (party, spellings)
                })
                .collect(),
        }
    }

    pub fn of(m: &NewMeeting) -> Self {
        Self {
            parties: m.parties().to_vec(),
            first: m.date(),
            last: m.end_date().unwrap_or(m.date()),
            people: m
                .participants()
                .iter()
                .map(|p| {
                    let spellings = std::iter::once(p.name())
                        .chain(p.aliases().iter().map(String::as_str))
                        .map(|n| (n.to_owned(), NameKey::new(n)))
                        .collect();
                    (p.party(), spellings)
                })
                .collect(),
        }
    }

    /// The days a stored meeting may have begun on and still overlap this
    /// report (one day either way): from `MAX_SPAN_DAYS` + 1 before its
    /// first day to one day after its last.
    pub fn candidate_dates(&self) -> (NaiveDate, NaiveDate) {
        let from = self
            .first
            .checked_sub_days(Days::new(super::limits::MAX_SPAN_DAYS + 1))
            .unwrap_or(NaiveDate::MIN);
        let to = self
            .last
            .checked_add_days(Days::new(1))
            .unwrap_or(NaiveDate::MAX);
        (from, to)
    }

    /// The day before the report's first: a stored meeting that overlaps
    /// it, one day either way, ends on or after this day.
    pub fn candidate_end(&self) -> NaiveDate {
        self.first
            .checked_sub_days(Days::new(1))
            .unwrap_or(NaiveDate::MIN)
    }

    pub fn parties(&self) -> &[Party] {
        &self.parties
    }

    /// What matching compares of the report's people, as stored with its
    /// meeting: one item a spelling (names and aliases), its party's key
    /// and then the words of its `NameKey`, separated by spaces
    /// ("AZ jeihun bairamov"). Keys and words have no spaces.
    pub fn match_keys(&self) -> Vec<String> {
        self.people
            .iter()
            .flat_map(|(party, spellings)| {
                spellings.iter().map(move |(_, key)| {
                    let mut item = party.key().to_owned();
                    for word in key.tokens() {
                        item.push(' ');
                        item.push_str(word);
                    }
                    item
                })
            })
            .collect()
    }

    /// The words of every spelling, sorted, once each: what the
    /// participant filter looks up (`NewMeeting::name_tokens`).
    pub fn name_tokens(&self) -> Vec<String> {
        let mut tokens: Vec<String> = self
            .people
            .iter()
            .flat_map(|(_, spellings)| spellings.iter())
            .flat_map(|(_, key)| key.tokens().iter().cloned())
            .collect();
        tokens.sort_unstable();
        tokens.dedup();
        tokens
    }

    /// Widens the report to what a merge of `other` into its meeting can
    /// add to matching: `other`'s days and spellings (of the same
    /// parties). Matching only gains from it, so a report that matches the
    /// merged meeting matches this one.
    pub fn absorb(&mut self, other: &Report) {
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        self.people.extend(other.people.iter().cloned());
    }

    /// A stored meeting's report from its parties, days and stored
    /// `match_keys`, without the names as spelled (a `NameMatch` made from
    /// it names the matched words). None if a key names no party (written
    /// by another registry).
    pub fn from_match_keys(
        mut parties: Vec<Party>,
        first: NaiveDate,
        last: NaiveDate,
        keys: &[String],
    ) -> Option<Self> {
        parties.sort();
        parties.dedup();
        let mut people = Vec::with_capacity(keys.len());
        for item in keys {
            let (party, words) = item.split_once(' ').unwrap_or((item, ""));
            let party = Party::from_key(party)?;
            let key = NameKey::from_tokens(words.split(' ').filter(|w| !w.is_empty()));
            people.push((party, vec![(words.to_owned(), key)]));
        }
        Some(Self {
            parties,
            first,
            last,
            people,
        })
    }
}

/// Why `report` describes the same meeting as `stored`, or None when it
/// does not.
pub fn same_meeting(report: &Report, stored: &Report) -> Option<Vec<NameMatch>> {
    if report.parties != stored.parties {
        return None;
    }
    let one_day = Days::new(1);
    let overlap = report.first <= stored.last.checked_add_days(one_day)?
        && stored.first <= report.last.checked_add_days(one_day)?;
    // One meeting lasts at most MAX_SPAN_DAYS: reports whose days together
    // would span more describe two meetings (a MERGE could not hold them
    // in one, so REJECT and FindDuplicateMeetings must not match them
    // either).
    let span = report.last.max(stored.last) - report.first.min(stored.first);
    let too_long = u64::try_from(span.num_days()).is_ok_and(|d| d > super::limits::MAX_SPAN_DAYS);
    if !overlap || too_long {
        return None;
    }
    let mut matches = Vec::new();
    'party: for &party in &report.parties {
        for (_, mine) in report.people.iter().filter(|(p, _)| *p == party) {
            for (_, theirs) in stored.people.iter().filter(|(p, _)| *p == party) {
                for (name, key) in mine {
                    if let Some((matched, _)) = theirs.iter().find(|(_, k)| key.matches(k)) {
                        matches.push(NameMatch {
                            party,
                            name: name.clone(),
                            matched_name: matched.clone(),
                        });
                        continue 'party;
                    }
                }
            }
        }
    }
    (matches.len() >= MATCHED_PARTIES).then_some(matches)
}

/// One record of a stored meeting and a new report of it: the stored
/// values first. Sources are added (the same URL, or without URLs the same
/// name, once); topics united ignoring case, first spelling kept;
/// participants united, a matching participant keeping its first spelling
/// and the report's as an alias; the last day widened; summary, location,
/// anniversary and format kept unless the stored meeting has none. Lists
/// stop growing at their limits (20 sources, 100 topics, 200 participants,
/// 20 aliases): a meeting reported by a hundred outlets keeps taking
/// reports, and keeps its first sources.
pub fn merge(stored: RawMeeting, report: RawMeeting) -> RawMeeting {
    let mut m = stored;
    // The days of both: from the earlier first day to the later last day
    // (dates as validated, ISO 8601, which order as text).
    let first = [&m.date, &report.date]
        .into_iter()
        .filter(|d| !d.is_empty())
        .min()
        .cloned()
        .unwrap_or_default();
    let last = [&m.date, &m.end_date, &report.date, &report.end_date]
        .into_iter()
        .filter(|d| !d.is_empty())
        .max()
        .cloned()
        .unwrap_or_default();
    if first < m.date {
        if m.end_date.is_empty() {
            m.end_date = m.date.clone();
        }
        m.date = first;
    }
    if last > m.date && last > m.end_date {
        m.end_date = last;
    }
    if m.format == 0 {
        m.format = report.format;
    }
    if m.location.is_none() {
        m.location = report.location;
    }
    if m.anniversary.is_none() {
        m.anniversary = report.anniversary;
    }
    if m.summary.is_empty() {
        m.summary = report.summary;
    }
    for topic in report.topics {
        let key = fold_case(&topic);
        if m.topics.len() < MAX_TOPICS && !m.topics.iter().any(|t| fold_case(t) == key) {
            m.topics.push(topic);
        }
    }
    for source in report.sources {
        if m.sources.len() < MAX_SOURCES && !m.sources.iter().any(|s| same_source(s, &source)) {
            m.sources.push(source);
        }
    }
    // A stored participant takes at most one of the report's: two people
    // of one party that both match a name ("Kim" and "Kim Jong Un", "Kim
    // Yo Jong") stay two people.
    let mut taken = vec![false; m.participants.len()];
    for person in report.participants {
        merge_participant(&mut m.participants, &mut taken, person);
    }
    m
}

/// The same report: the same URL when both have one, else the same name.
fn same_source(a: &RawSource, b: &RawSource) -> bool {
    if !a.url.is_empty() && !b.url.is_empty() {
        a.url == b.url
    } else {
        fold_case(&a.name) == fold_case(&b.name)
    }
}

/// Adds `person` to `people`: as another spelling of the participant of
/// the same party it matches by name and that no other person of the
/// report took (`taken`), or as a participant of its own. A spelling with
/// fewer words than the name it matches ("Kim" for "Kim Jong Un") is not
/// kept as an alias: it would match more people than the name does.
fn merge_participant(
    people: &mut Vec<RawParticipant>,
    taken: &mut Vec<bool>,
    person: RawParticipant,
) {
    let spellings: Vec<NameKey> = std::iter::once(&person.name)
        .chain(&person.aliases)
        .map(|n| NameKey::new(n))
        .collect();
    let same_party = |p: &RawParticipant| {
        p.country_code.eq_ignore_ascii_case(&person.country_code)
            && p.organization_code
                .eq_ignore_ascii_case(&person.organization_code)
    };
    let full = people.len() >= MAX_PARTICIPANTS;
    let found = people.iter_mut().zip(taken.iter_mut()).find(|(p, taken)| {
        !**taken
            && same_party(p)
            && std::iter::once(&p.name)
                .chain(&p.aliases)
                .any(|n| spellings.iter().any(|k| k.matches(&NameKey::new(n))))
    });
    match found {
        Some((p, taken)) => {
            *taken = true;
            if p.title.is_empty() {
                p.title = person.title;
            }
            let words = NameKey::new(&p.name).tokens().len();
            for (spelling, key) in std::iter::once(person.name)
                .chain(person.aliases)
                .zip(&spellings)
            {
                let folded = fold_case(&spelling);
                let known = std::iter::once(&p.name)
                    .chain(&p.aliases)
                    .any(|n| fold_case(n) == folded);
                if !known && key.tokens().len() >= words && p.aliases.len() < MAX_ALIASES {
                    p.aliases.push(spelling);
                }
            }
        }
        None if full => {}
        None => {
            people.push(person);
            taken.push(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(name: &str, country: &str) -> RawParticipant {
        RawParticipant {
            name: name.into(),
            country_code: country.into(),
            ..Default::default()
        }
    }

    fn raw(date: &str, people: &[(&str, &str)]) -> RawMeeting {
        RawMeeting {
            date: date.into(),
            participants: people.iter().map(|(n, c)| person(n, c)).collect(),
            ..Default::default()
        }
    }

    fn report(m: RawMeeting) -> Report {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        Report::of(&NewMeeting::parse(m, "meeting", today).unwrap())
    }

    const BAKU: [(&str, &str); 2] = [("Jeyhun Bayramov", "AZ"), ("Honda Taro", "JP")];

    #[test]
    fn stored_match_keys_match_as_the_report_they_were_made_from() {
        let stored = report(RawMeeting {
            participants: vec![
                RawParticipant {
                    aliases: vec!["Ceyhun Bayramov".into()],
                    ..person("Jeyhun Bayramov", "AZ")
                },
                person("Honda Taro", "JP"),
                RawParticipant {
                    organization_code: "EU".into(),
                    ..person("Charles Michel", "")
                },
            ],
            ..raw("2022-05-05", &[])
        });
        let keys = stored.match_keys();
        assert_eq!(keys[0], "AZ jeihun bairamov");
        assert_eq!(keys.len(), 4, "one item a spelling: {keys:?}");
        let first = NaiveDate::from_ymd_opt(2022, 5, 5).unwrap();
        let read = Report::from_match_keys(stored.parties.clone(), first, first, &keys).unwrap();
        assert_eq!(read.match_keys(), keys);
        for spelling in [("Dzheykhun Bairamov", "AZ"), ("Ceyhun Bayramov", "AZ")] {
            let other = report(raw("2022-05-06", &[spelling, ("Taro Honda", "JP")]));
            // Parties differ from the three of `stored`: compared as sets.
            assert!(same_meeting(&other, &read).is_none());
            let two =
                Report::from_match_keys(other.parties.clone(), first, first, &keys[..3]).unwrap();
            assert!(same_meeting(&other, &two).is_some(), "{spelling:?}");
        }
        let unknown = ["xx:NOPE jeihun".to_owned()];
        assert!(Report::from_match_keys(Vec::new(), first, first, &unknown).is_none());
    }

    #[test]
    fn reports_of_one_meeting_match_with_their_reasons() {
        let stored = report(raw("2022-05-05", &BAKU));
        let other = report(raw(
            "2022-05-06",
            &[("Ceyhun Bayramov", "az"), ("Taro Honda", "JP")],
        ));
        let reasons = same_meeting(&other, &stored).unwrap();
        assert_eq!(reasons.len(), 2);
        assert_eq!(reasons[0].name, "Ceyhun Bayramov");
        assert_eq!(reasons[0].matched_name, "Jeyhun Bayramov");
    }

    #[test]
    fn other_people_other_days_and_other_parties_do_not_match() {
        let stored = report(raw("2022-05-05", &BAKU));
        let afternoon = report(raw(
            "2022-05-05",
            &[("Ilham Aliyev", "AZ"), ("Kishida Fumio", "JP")],
        ));
        assert!(same_meeting(&afternoon, &stored).is_none());
        let week_later = report(raw("2022-05-12", &BAKU));
        assert!(same_meeting(&week_later, &stored).is_none());
        let mut summit = raw("2022-05-05", &BAKU);
        summit.participants.push(person("Hakan Fidan", "TR"));
        assert!(same_meeting(&report(summit), &stored).is_none());
        // Only one party's people match.
        let half = report(raw(
            "2022-05-05",
            &[("Jeyhun Bayramov", "AZ"), ("Kishida Fumio", "JP")],
        ));
        assert!(same_meeting(&half, &stored).is_none());
    }

    #[test]
    fn merging_unites_and_keeps_the_first_spellings() {
        let mut stored = raw("2022-05-05", &BAKU);
        stored.topics = vec!["Energy".into()];
        stored.sources = vec![RawSource {
            name: "AZERTAC".into(),
            url: "https://azertag.az/1".into(),
        }];
        let mut other = raw(
            "2022-05-05",
            &[
                ("Ceyhun Bayramov", "AZ"),
                ("Taro Honda", "JP"),
                ("Aide", "JP"),
            ],
        );
        other.end_date = "2022-05-06".into();
        other.topics = vec!["energy".into(), "demining".into()];
        other.summary = "Met in Baku.".into();
        other.sources = vec![
            RawSource {
                name: "AZERTAC English".into(),
                url: "https://azertag.az/1".into(),
            },
            RawSource {
                name: "MOFA Japan".into(),
                url: String::new(),
            },
        ];
        let m = merge(stored, other);
        assert_eq!(m.end_date, "2022-05-06");
        assert_eq!(m.topics, ["Energy", "demining"]);
        assert_eq!(m.summary, "Met in Baku.");
        assert_eq!(m.sources.len(), 2);
        let names: Vec<_> = m.participants.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["Jeyhun Bayramov", "Honda Taro", "Aide"]);
        assert_eq!(m.participants[0].aliases, ["Ceyhun Bayramov"]);
        assert_eq!(m.participants[1].aliases, ["Taro Honda"]);
    }

    #[test]
    fn a_merge_keeps_people_and_days_apart() {
        // Two people who both match a surname stay two people.
        let stored = raw("2017-08-08", &[("Kim", "KP"), ("Moon Jae-in", "KR")]);
        let other = raw(
            "2017-08-08",
            &[
                ("Kim Jong Un", "KP"),
                ("Kim Yo Jong", "KP"),
                ("Moon Jae-in", "KR"),
            ],
        );
        let m = merge(stored, other);
        let names: Vec<_> = m.participants.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["Kim", "Moon Jae-in", "Kim Yo Jong"]);
        assert_eq!(m.participants[0].aliases, ["Kim Jong Un"]);

        // A shorter spelling is not kept as an alias.
        let stored = raw(
            "2018-04-27",
            &[("Kim Jong Un", "KP"), ("Moon Jae-in", "KR")],
        );
        let m = merge(stored, raw("2018-04-27", &[("Kim", "KP"), ("Moon", "KR")]));
        assert!(m.participants.iter().all(|p| p.aliases.is_empty()), "{m:?}");

        // An earlier report widens the first day, a later one the last.
        let m = merge(raw("2022-06-08", &BAKU), raw("2022-06-07", &BAKU));
        assert_eq!(
            (m.date.as_str(), m.end_date.as_str()),
            ("2022-06-07", "2022-06-08")
        );
        let mut long = raw("2022-06-08", &BAKU);
        long.end_date = "2022-06-10".into();
        let m = merge(long, raw("2022-06-11", &BAKU));
        assert_eq!(
            (m.date.as_str(), m.end_date.as_str()),
            ("2022-06-08", "2022-06-11")
        );
        let m = merge(raw("2022-06-08", &BAKU), raw("2022-06-08", &BAKU));
        assert_eq!((m.date.as_str(), m.end_date.as_str()), ("2022-06-08", ""));
    }
}
