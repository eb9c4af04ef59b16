use std::collections::{BTreeSet, HashMap};
use std::fmt::Display;

use chrono::NaiveDate;

use super::text::parse_text;
use super::{CountryCode, CountryPair, Violations, parse_meeting_date};

/// Limits of a meeting record; the proto documents the same numbers.
pub mod limits {
    pub const MIN_PARTICIPANTS: usize = 2;
    pub const MAX_PARTICIPANTS: usize = 200;
    pub const MAX_TOPICS: usize = 100;
    pub const MAX_SOURCES: usize = 20;
    pub const MAX_SHORT_TEXT: usize = 200;
    pub const MAX_SUMMARY: usize = 20_000;
    pub const MAX_URL: usize = 2_048;
    pub const MAX_ANNIVERSARY_YEARS: u32 = 1_000;
    pub const MAX_REQUEST_ID: usize = 128;
}
use limits::*;

/// A meeting that passed every validation rule, normalised (text trimmed,
/// country codes upper-case), ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMeeting {
    date: NaiveDate,
    location: Option<Location>,
    participants: Vec<Participant>,
    anniversary: Option<Anniversary>,
    topics: Vec<String>,
    /// `topics`, each as `topic_key` makes it.
    topic_keys: Vec<String>,
    summary: String,
    sources: Vec<Source>,
    /// The distinct participant countries, sorted.
    country_codes: Vec<CountryCode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    city: String,
    country_code: Option<CountryCode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    name: String,
    title: String,
    country_code: CountryCode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anniversary {
    years: u32,
    occasion: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    name: String,
    url: String,
}

/// A caller's idempotency key: 1 to 128 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestId(String);

impl RequestId {
    /// None for an empty key (the call is then not idempotent).
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.trim() != raw {
            return Err("must not start or end with white space".into());
        }
        parse_text(raw, 1, MAX_REQUEST_ID, false).map(|s| Some(Self(s)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Collects violations under a path prefix such as `meeting`.
struct Checker<'a> {
    prefix: &'a str,
    violations: Violations,
}

impl Checker<'_> {
    /// A field's path; fields are passed as `Display` (often `format_args!`)
    /// so that a valid meeting formats none.
    fn path(&self, field: impl Display) -> String {
        format!("{}.{field}", self.prefix)
    }

    fn check<T>(&mut self, field: impl Display, result: Result<T, String>) -> Option<T> {
        result
            .map_err(|e| self.violations.add(self.path(field), e))
            .ok()
    }

    fn text(&mut self, field: impl Display, raw: String, min: usize, max: usize) -> Option<String> {
        self.check(field, parse_text(raw, min, max, false))
    }

    fn too_many(&mut self, field: &str, what: &str, count: usize, min: usize, max: usize) -> bool {
        if count < min || count > max {
            let range = if min == 0 {
                format!("at most {max}")
            } else {
                format!("{min} to {max}")
            };
            self.violations.add(
                self.path(field),
                format!("must list {range} {what}, has {count}"),
            );
        }
        count > max
    }
}

/// A meeting as a caller sends it, before validation: every field as
/// given. The wire layer makes one from the protobuf message
/// (`api::convert`); the domain knows no wire types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawMeeting {
    pub date: String,
    pub location: Option<RawLocation>,
    pub participants: Vec<RawParticipant>,
    pub anniversary: Option<RawAnniversary>,
    pub topics: Vec<String>,
    pub summary: String,
    pub sources: Vec<RawSource>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawLocation {
    pub city: String,
    pub country_code: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawParticipant {
    pub name: String,
    pub title: String,
    pub country_code: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawAnniversary {
    pub years: u32,
    pub occasion: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSource {
    pub name: String,
    pub url: String,
}

impl NewMeeting {
    /// Validates a meeting as sent by a caller, reporting every violation
    /// with its path under `prefix` (e.g. `meeting.topics[3]`). `today`
    /// bounds the date (one year ahead at most).
    pub fn parse(
        raw: impl Into<RawMeeting>,
        prefix: &str,
        today: NaiveDate,
    ) -> Result<Self, Violations> {
        let raw: RawMeeting = raw.into();
        let mut c = Checker {
            prefix,
            violations: Violations::new(),
        };
        let date = c.check("date", parse_meeting_date(&raw.date, today));
        let location = raw.location.and_then(|l| parse_location(&mut c, l));
        let participants = parse_participants(&mut c, raw.participants);
        let anniversary = raw.anniversary.and_then(|a| {
            let years = c.check("anniversary.years", check_years(a.years));
            let occasion = c.text("anniversary.occasion", a.occasion, 1, MAX_SHORT_TEXT);
            Some(Anniversary {
                years: years?,
                occasion: occasion?,
            })
        });
        let topics = parse_topics(&mut c, raw.topics);
        let summary = c.check("summary", parse_text(raw.summary, 0, MAX_SUMMARY, true));
        let sources = parse_sources(&mut c, raw.sources);

        let Checker { violations, .. } = c;
        match (date, participants, topics, summary, sources) {
            (
                Some(date),
                Some(participants),
                Some((topics, topic_keys)),
                Some(summary),
                Some(sources),
            ) if violations.is_empty() => {
                let codes: BTreeSet<_> = participants.iter().map(|p| p.country_code).collect();
                Ok(Self {
                    date,
                    location,
                    participants,
                    anniversary,
                    topics,
                    topic_keys,
                    summary,
                    sources,
                    country_codes: codes.into_iter().collect(),
                })
            }
            _ => Err(violations),
        }
    }

    pub fn date(&self) -> NaiveDate {
        self.date
    }
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }
    pub fn participants(&self) -> &[Participant] {
        &self.participants
    }
    pub fn anniversary(&self) -> Option<&Anniversary> {
        self.anniversary.as_ref()
    }
    pub fn topics(&self) -> &[String] {
        &self.topics
    }
    /// The topics as topic filters compare them (`topic_key`), in order.
    pub fn topic_keys(&self) -> &[String] {
        &self.topic_keys
    }
    /// Empty when there is none.
    pub fn summary(&self) -> &str {
        &self.summary
    }
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// The distinct participant countries, sorted.
    pub fn country_codes(&self) -> &[CountryCode] {
        &self.country_codes
    }

    /// How many pairs of countries the meeting belongs to: its rows in the
    /// pair index.
    pub fn pair_count(&self) -> usize {
        let n = self.country_codes.len();
        n * n.saturating_sub(1) / 2
    }

    /// Every unordered pair of distinct participant countries: the rows of
    /// the pair index (which the insert statement makes from the codes).
    pub fn country_pairs(&self) -> Vec<CountryPair> {
        let codes = self.country_codes();
        let mut pairs = Vec::with_capacity(codes.len() * codes.len().saturating_sub(1) / 2);
        for (i, &a) in codes.iter().enumerate() {
            pairs.extend(
                codes[i + 1..]
                    .iter()
                    .filter_map(|&b| CountryPair::new(a, b)),
            );
        }
        pairs
    }
}

fn check_years(years: u32) -> Result<u32, String> {
    if (1..=MAX_ANNIVERSARY_YEARS).contains(&years) {
        Ok(years)
    } else {
        Err(format!(
            "must be from 1 to {MAX_ANNIVERSARY_YEARS}, is {years}"
        ))
    }
}

fn parse_location(c: &mut Checker<'_>, raw: RawLocation) -> Option<Location> {
    let city = c.text("location.city", raw.city, 0, MAX_SHORT_TEXT);
    let country_code = if raw.country_code.trim().is_empty() {
        Some(None)
    } else {
        c.check(
            "location.country_code",
            CountryCode::parse(&raw.country_code),
        )
        .map(Some)
    };
    let location = Location {
        city: city?,
        country_code: country_code?,
    };
    // An empty location message is the same as none.
    (!location.city.is_empty() || location.country_code.is_some()).then_some(location)
}

fn parse_participants(c: &mut Checker<'_>, raw: Vec<RawParticipant>) -> Option<Vec<Participant>> {
    if c.too_many(
        "participants",
        "participants",
        raw.len(),
        MIN_PARTICIPANTS,
        MAX_PARTICIPANTS,
    ) {
        return None;
    }
    let before = c.violations.clone();
    let mut seen: HashMap<(String, CountryCode), usize> = HashMap::with_capacity(raw.len());
    let mut participants = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let name = c.text(
            format_args!("participants[{i}].name"),
            p.name,
            1,
            MAX_SHORT_TEXT,
        );
        let title = c.text(
            format_args!("participants[{i}].title"),
            p.title,
            0,
            MAX_SHORT_TEXT,
        );
        let code = c.check(
            format_args!("participants[{i}].country_code"),
            CountryCode::parse(&p.country_code),
        );
        if let (Some(name), Some(title), Some(country_code)) = (name, title, code) {
            if let Some(first) = seen.insert((super::fold_case(&name), country_code), i) {
                c.violations.add(
                    c.path(format_args!("participants[{i}]")),
                    format!("repeats participants[{first}]: the same name and country"),
                );
            }
            participants.push(Participant {
                name,
                title,
                country_code,
            });
        }
    }
    if c.violations != before {
        return None;
    }
    let countries: BTreeSet<_> = participants.iter().map(|p| p.country_code).collect();
    if participants.len() >= MIN_PARTICIPANTS && countries.len() < 2 {
        c.violations.add(
            c.path("participants"),
            "must come from at least 2 distinct countries",
        );
        return None;
    }
    Some(participants)
}

/// What makes two topics the same (ignoring case, with Unicode's full case
/// folding, after NFC normalisation): the duplicate check, the stored
/// folded topics and ListMeetings' topic filter all compare this. Stored
/// keys made by an earlier rule are recomputed at start (see
/// `storage::Storage::refresh_topic_keys`); change `TOPIC_KEY_VERSION`
/// with the rule.
pub fn topic_key(topic: &str) -> String {
    super::fold_case(topic)
}

/// Version of `topic_key`'s rule, stored with the keys it made.
pub const TOPIC_KEY_VERSION: i32 = 2;

/// The topics, and each as `topic_key` makes it.
fn parse_topics(c: &mut Checker<'_>, raw: Vec<String>) -> Option<(Vec<String>, Vec<String>)> {
    if c.too_many("topics", "topics", raw.len(), 1, MAX_TOPICS) || raw.is_empty() {
        return None;
    }
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(raw.len());
    let mut topics = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (i, t) in raw.into_iter().enumerate() {
        match c.text(format_args!("topics[{i}]"), t, 1, MAX_SHORT_TEXT) {
            Some(topic) => {
                if let Some(first) = seen.insert(topic_key(&topic), i) {
                    c.violations.add(
                        c.path(format_args!("topics[{i}]")),
                        format!("repeats topics[{first}] (ignoring case)"),
                    );
                    ok = false;
                }
                topics.push(topic);
            }
            None => ok = false,
        }
    }
    // All valid and distinct: `seen` holds each topic's key once, under its
    // index.
    ok.then(|| {
        let mut lower = vec![String::new(); topics.len()];
        for (key, i) in seen {
            lower[i] = key;
        }
        (topics, lower)
    })
}

fn parse_sources(c: &mut Checker<'_>, raw: Vec<RawSource>) -> Option<Vec<Source>> {
    if c.too_many("sources", "sources", raw.len(), 0, MAX_SOURCES) {
        return None;
    }
    let mut sources = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (i, s) in raw.into_iter().enumerate() {
        let name = c.text(format_args!("sources[{i}].name"), s.name, 1, MAX_SHORT_TEXT);
        let url = c.check(format_args!("sources[{i}].url"), parse_url(s.url));
        match (name, url) {
            (Some(name), Some(url)) => sources.push(Source { name, url }),
            _ => ok = false,
        }
    }
    ok.then_some(sources)
}

fn parse_url(raw: String) -> Result<String, String> {
    let text = parse_text(raw, 0, MAX_URL, false)?;
    if text.is_empty() {
        return Ok(text);
    }
    match url::Url::parse(&text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(text),
        Ok(u) => Err(format!(
            "must be an http or https URL, has scheme {}",
            super::quote(u.scheme())
        )),
        Err(e) => Err(format!("is not an absolute URL ({e})")),
    }
}

impl Location {
    /// Empty when unknown.
    pub fn city(&self) -> &str {
        &self.city
    }
    pub fn country_code(&self) -> Option<CountryCode> {
        self.country_code
    }
}

impl Participant {
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Empty when unknown.
    pub fn title(&self) -> &str {
        &self.title
    }
    pub fn country_code(&self) -> CountryCode {
        self.country_code
    }
}

impl Anniversary {
    pub fn years(&self) -> u32 {
        self.years
    }
    pub fn occasion(&self) -> &str {
        &self.occasion
    }
}

impl Source {
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Empty when unknown.
    pub fn url(&self) -> &str {
        &self.url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
    }

    fn participant(name: &str, code: &str) -> RawParticipant {
        RawParticipant {
            name: name.into(),
            title: String::new(),
            country_code: code.into(),
        }
    }

    fn valid() -> RawMeeting {
        RawMeeting {
            date: "2022-05-05".into(),
            participants: vec![
                participant("Jeyhun Bayramov", "az"),
                participant("Honda Taro", "JP"),
            ],
            topics: vec![" energy ".into()],
            ..Default::default()
        }
    }

    fn fields(m: RawMeeting) -> Vec<String> {
        NewMeeting::parse(m, "meeting", today())
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn a_valid_meeting_is_normalised() {
        let m = NewMeeting::parse(valid(), "meeting", today()).unwrap();
        assert_eq!(m.topics(), ["energy"]);
        assert_eq!(m.participants()[0].country_code().as_str(), "AZ");
        assert_eq!(m.country_pairs().len(), 1);
        assert!(m.location().is_none() && m.anniversary().is_none());
    }

    #[test]
    fn topics_keep_their_case_and_their_keys_are_lower_cased_in_order() {
        let mut m = valid();
        m.topics = vec!["Ükraine".into(), " Energy ".into(), "trade".into()];
        let m = NewMeeting::parse(m, "meeting", today()).unwrap();
        assert_eq!(m.topics(), ["Ükraine", "Energy", "trade"]);
        assert_eq!(m.topic_keys(), ["ükraine", "energy", "trade"]);
    }

    #[test]
    fn violations_carry_the_prefix_and_index() {
        let mut m = valid();
        m.participants[1].country_code = "ZZ".into();
        m.topics.push("ENERGY".into());
        assert_eq!(
            fields(m),
            ["meeting.participants[1].country_code", "meeting.topics[1]"]
        );
    }

    #[test]
    fn counts_are_checked_before_items() {
        let mut m = valid();
        m.participants = (0..201)
            .map(|i| participant("", if i % 2 == 0 { "AZ" } else { "XX" }))
            .collect();
        // One violation for the count, not 201 for the items.
        assert_eq!(fields(m), ["meeting.participants"]);
    }

    #[test]
    fn an_empty_location_is_none_and_an_empty_anniversary_is_reported() {
        let mut m = valid();
        m.location = Some(RawLocation::default());
        m.anniversary = Some(RawAnniversary::default());
        assert_eq!(
            fields(m.clone()),
            ["meeting.anniversary.years", "meeting.anniversary.occasion"]
        );
        m.anniversary = None;
        assert!(
            NewMeeting::parse(m, "meeting", today())
                .unwrap()
                .location()
                .is_none()
        );
    }

    #[test]
    fn multilateral_pairs_are_every_combination_once() {
        let mut m = valid();
        m.participants.push(participant("Hakan Fidan", "TR"));
        m.participants.push(participant("Second Azerbaijani", "AZ"));
        let m = NewMeeting::parse(m, "meeting", today()).unwrap();
        let pairs: Vec<_> = m
            .country_pairs()
            .iter()
            .map(|p| format!("{}-{}", p.low(), p.high()))
            .collect();
        assert_eq!(pairs, ["AZ-JP", "AZ-TR", "JP-TR"]);
    }

    #[test]
    fn request_ids() {
        assert_eq!(RequestId::parse("").unwrap(), None);
        assert!(RequestId::parse("abc-123").unwrap().is_some());
        assert!(RequestId::parse(" abc").is_err());
        assert!(RequestId::parse(&"x".repeat(129)).is_err());
        assert!(RequestId::parse(&"x".repeat(128)).is_ok());
    }
}
