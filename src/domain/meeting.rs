use std::collections::{BTreeSet, HashMap};
use std::fmt::Display;

use chrono::{Days, NaiveDate};

use super::text::parse_text;
use super::{
    CountryCode, OrganizationCode, Party, PartyPair, Violations, parse_date, parse_meeting_date,
};

/// Limits of a meeting record; the proto documents the same numbers.
pub mod limits {
    pub const MIN_PARTICIPANTS: usize = 2;
    pub const MAX_PARTICIPANTS: usize = 200;
    pub const MIN_TOPICS: usize = 0;
    pub const MAX_TOPICS: usize = 100;
    pub const MAX_SOURCES: usize = 20;
    /// Other spellings of a participant's name.
    pub const MAX_ALIASES: usize = 20;
    pub const MAX_SHORT_TEXT: usize = 200;
    pub const MAX_SUMMARY: usize = 20_000;
    pub const MAX_URL: usize = 2_048;
    pub const MAX_ANNIVERSARY_YEARS: u32 = 1_000;
    pub const MAX_REQUEST_ID: usize = 128;
    /// The most days a meeting's end_date may be after its date. Date
    /// bounds find the meetings that overlap them by this: a meeting that
    /// ends on or after `from` starts at most this many days before it.
    pub const MAX_SPAN_DAYS: u64 = 90;
}
use limits::*;

/// A meeting that passed every validation rule, normalised (text trimmed,
/// country codes upper-case), ready to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMeeting {
    date: NaiveDate,
    /// The last day, when given (on or after `date`).
    end_date: Option<NaiveDate>,
    format: MeetingFormat,
    location: Option<Location>,
    participants: Vec<Participant>,
    anniversary: Option<Anniversary>,
    topics: Vec<String>,
    /// `topics`, each as `topic_key` makes it.
    topic_keys: Vec<String>,
    summary: String,
    sources: Vec<Source>,
    /// The distinct parties of the participants, in key order.
    parties: Vec<Party>,
}

/// How a meeting was held. The numbers are MeetingFormat's on the wire and
/// in storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum MeetingFormat {
    #[default]
    Unspecified = 0,
    InPerson = 1,
    PhoneCall = 2,
    VideoCall = 3,
}

impl MeetingFormat {
    pub const ALL: [Self; 4] = [
        Self::Unspecified,
        Self::InPerson,
        Self::PhoneCall,
        Self::VideoCall,
    ];

    pub fn from_number(n: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.number() == n)
    }

    pub fn number(self) -> i32 {
        self as i32
    }
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
    party: Party,
    /// Other spellings of the name, from merged reports.
    aliases: Vec<String>,
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
    /// Empty when not given.
    pub end_date: String,
    /// MeetingFormat's number as sent (an unknown number is a violation).
    pub format: i32,
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
    pub organization_code: String,
    pub aliases: Vec<String>,
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
        let end_date = match raw.end_date.as_str() {
            "" => Some(None),
            end => c.check("end_date", parse_end_date(end, date)).map(Some),
        };
        let format = c.check(
            "format",
            MeetingFormat::from_number(raw.format)
                .ok_or_else(|| format!("{} is not a MeetingFormat value", raw.format)),
        );
        // The days parties must have existed on: the span when its end is
        // valid, else the first day.
        let days = date.map(|d| (d, end_date.flatten().unwrap_or(d)));
        let location = raw.location.and_then(|l| parse_location(&mut c, l, days));
        let participants = parse_participants(&mut c, raw.participants, days);
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
        match (
            date,
            end_date,
            format,
            participants,
            topics,
            summary,
            sources,
        ) {
            (
                Some(date),
                Some(end_date),
                Some(format),
                Some(participants),
                Some((topics, topic_keys)),
                Some(summary),
                Some(sources),
            ) if violations.is_empty() => {
                let parties: BTreeSet<_> = participants.iter().map(|p| p.party).collect();
                Ok(Self {
                    date,
                    end_date,
                    format,
                    location,
                    participants,
                    anniversary,
                    topics,
                    topic_keys,
                    summary,
                    sources,
                    parties: parties.into_iter().collect(),
                })
            }
            _ => Err(violations),
        }
    }

    pub fn date(&self) -> NaiveDate {
        self.date
    }
    /// The last day as given; None for a meeting given as one day.
    pub fn end_date(&self) -> Option<NaiveDate> {
        self.end_date
    }
    pub fn format(&self) -> MeetingFormat {
        self.format
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

    /// The distinct parties of the participants, in key order (countries,
    /// then organisations).
    pub fn parties(&self) -> &[Party] {
        &self.parties
    }

    /// The distinct participant countries, sorted.
    pub fn country_codes(&self) -> impl Iterator<Item = CountryCode> + '_ {
        self.parties.iter().filter_map(|p| match p {
            Party::Country(c) => Some(*c),
            Party::Organization(_) => None,
        })
    }

    /// The distinct participant organisations, sorted.
    pub fn organization_codes(&self) -> impl Iterator<Item = OrganizationCode> + '_ {
        self.parties.iter().filter_map(|p| match p {
            Party::Organization(o) => Some(*o),
            Party::Country(_) => None,
        })
    }

    /// The words of every participant's name and aliases as name matching
    /// compares them (`NameKey`), sorted, once each: what the participant
    /// filter looks up.
    pub fn name_tokens(&self) -> Vec<String> {
        super::Report::of(self).name_tokens()
    }

    /// How many pairs of parties the meeting belongs to: its rows in the
    /// pair index.
    pub fn pair_count(&self) -> usize {
        let n = self.parties.len();
        n * n.saturating_sub(1) / 2
    }

    /// Every unordered pair of distinct parties: the rows of the pair index
    /// (which the insert statement makes from the party keys).
    pub fn party_pairs(&self) -> Vec<PartyPair> {
        let parties = self.parties();
        let mut pairs = Vec::with_capacity(self.pair_count());
        for (i, &a) in parties.iter().enumerate() {
            pairs.extend(
                parties[i + 1..]
                    .iter()
                    .filter_map(|&b| PartyPair::new(a, b)),
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

/// The words of `names` as `NameKey` makes them, sorted, once each.
pub fn name_tokens<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut tokens: Vec<String> = names
        .into_iter()
        .flat_map(|n| super::NameKey::new(n).tokens().to_vec())
        .collect();
    tokens.sort_unstable();
    tokens.dedup();
    tokens
}

/// Version of the rule of `name_tokens` (`NameKey`), stored with the tokens
/// it made; change it with the rule.
/// 2: words with digits are kept whole, and one-digit words are kept (1
/// collapsed "5000" to "50" and dropped "1" as an initial).
pub const NAME_TOKEN_VERSION: i32 = 2;

/// The last day of a meeting: on or after its first (`date`, when that is
/// valid), and at most `MAX_SPAN_DAYS` after it.
fn parse_end_date(raw: &str, date: Option<NaiveDate>) -> Result<NaiveDate, String> {
    let end = parse_date(raw)?;
    let Some(date) = date else {
        return Ok(end);
    };
    if end < date {
        return Err(format!("{end} is before the meeting's date {date}"));
    }
    let latest = date
        .checked_add_days(Days::new(MAX_SPAN_DAYS))
        .unwrap_or(NaiveDate::MAX);
    if end > latest {
        return Err(format!(
            "{end} is more than {MAX_SPAN_DAYS} days after the meeting's date {date} \
             (at most {latest})"
        ));
    }
    Ok(end)
}

/// A country code that must name a country existing on every day of the
/// meeting (when its date is valid).
fn parse_country(raw: &str, days: Option<Span>) -> Result<CountryCode, String> {
    let code = CountryCode::parse(raw)?;
    if let Some((first, last)) = days {
        code.exists_during_as(raw.trim(), first, last)?;
    }
    Ok(code)
}

/// A meeting's first and last days.
type Span = (NaiveDate, NaiveDate);

fn parse_location(c: &mut Checker<'_>, raw: RawLocation, days: Option<Span>) -> Option<Location> {
    let city = c.text("location.city", raw.city, 0, MAX_SHORT_TEXT);
    let country_code = if raw.country_code.trim().is_empty() {
        Some(None)
    } else {
        c.check(
            "location.country_code",
            parse_country(&raw.country_code, days),
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

/// A participant's party: exactly one of its country and organisation
/// codes, existing on `date`.
fn parse_party(
    c: &mut Checker<'_>,
    i: usize,
    country: &str,
    organization: &str,
    days: Option<Span>,
) -> Option<Party> {
    let (country, organization) = (country.trim(), organization.trim());
    match (country.is_empty(), organization.is_empty()) {
        (true, true) => {
            c.violations.add(
                c.path(format_args!("participants[{i}].country_code")),
                "is required: an ISO 3166-1 alpha-2 country code such as \"AZ\", \
                 or else organization_code",
            );
            None
        }
        (false, false) => {
            c.violations.add(
                c.path(format_args!("participants[{i}].organization_code")),
                "must not be set together with country_code: a participant represents \
                 one country or one organisation",
            );
            None
        }
        (false, true) => c
            .check(
                format_args!("participants[{i}].country_code"),
                parse_country(country, days),
            )
            .map(Party::Country),
        (true, false) => c
            .check(
                format_args!("participants[{i}].organization_code"),
                OrganizationCode::parse(organization).and_then(|o| {
                    days.map_or(Ok(()), |(first, last)| o.exists_during(first, last))?;
                    Ok(o)
                }),
            )
            .map(Party::Organization),
    }
}

fn parse_participants(
    c: &mut Checker<'_>,
    raw: Vec<RawParticipant>,
    days: Option<Span>,
) -> Option<Vec<Participant>> {
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
    let mut seen: HashMap<(String, Party), usize> = HashMap::with_capacity(raw.len());
    let mut participants = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let RawParticipant {
            name,
            title,
            country_code,
            organization_code,
            aliases,
        } = p;
        let name = c.text(
            format_args!("participants[{i}].name"),
            name,
            1,
            MAX_SHORT_TEXT,
        );
        let title = c.text(
            format_args!("participants[{i}].title"),
            title,
            0,
            MAX_SHORT_TEXT,
        );
        let party = parse_party(c, i, &country_code, &organization_code, days);
        let aliases = parse_aliases(c, i, aliases, name.as_deref());
        if let (Some(name), Some(title), Some(party), Some(aliases)) = (name, title, party, aliases)
        {
            if let Some(first) = seen.insert((super::fold_case(&name), party), i) {
                c.violations.add(
                    c.path(format_args!("participants[{i}]")),
                    format!(
                        "repeats participants[{first}]: the same name and country or organisation"
                    ),
                );
            }
            participants.push(Participant {
                name,
                title,
                party,
                aliases,
            });
        }
    }
    if c.violations != before {
        return None;
    }
    let parties: BTreeSet<_> = participants.iter().map(|p| p.party).collect();
    if participants.len() >= MIN_PARTICIPANTS && parties.len() < 2 {
        c.violations.add(
            c.path("participants"),
            "must come from at least 2 distinct countries or organisations",
        );
        return None;
    }
    Some(participants)
}

/// A participant's other spellings: at most `MAX_ALIASES`, each a short
/// text, none the same as the name or an earlier alias ignoring case.
fn parse_aliases(
    c: &mut Checker<'_>,
    i: usize,
    raw: Vec<String>,
    name: Option<&str>,
) -> Option<Vec<String>> {
    let field = format!("participants[{i}].aliases");
    if c.too_many(&field, "aliases", raw.len(), 0, MAX_ALIASES) {
        return None;
    }
    let mut seen: Vec<String> = name.map(super::fold_case).into_iter().collect();
    let mut aliases = Vec::with_capacity(raw.len());
    let mut ok = true;
    for (j, alias) in raw.into_iter().enumerate() {
        match c.text(format_args!("{field}[{j}]"), alias, 1, MAX_SHORT_TEXT) {
            Some(alias) => {
                let key = super::fold_case(&alias);
                if seen.contains(&key) {
                    c.violations.add(
                        c.path(format_args!("{field}[{j}]")),
                        "repeats the name or an earlier alias (ignoring case)",
                    );
                    ok = false;
                }
                seen.push(key);
                aliases.push(alias);
            }
            None => ok = false,
        }
    }
    ok.then_some(aliases)
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
    if c.too_many("topics", "topics", raw.len(), MIN_TOPICS, MAX_TOPICS) {
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
    /// The country or organisation the participant represented.
    pub fn party(&self) -> Party {
        self.party
    }
    /// Other spellings of the name (from merged reports).
    pub fn aliases(&self) -> &[String] {
        &self.aliases
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
            country_code: code.into(),
            ..Default::default()
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
        assert_eq!(m.participants()[0].party().key(), "AZ");
        assert_eq!(m.party_pairs().len(), 1);
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
            .party_pairs()
            .iter()
            .map(|p| format!("{}-{}", p.low().key(), p.high().key()))
            .collect();
        assert_eq!(pairs, ["AZ-JP", "AZ-TR", "JP-TR"]);
    }

    #[test]
    fn organisations_and_former_countries_are_parties() {
        let mut m = valid();
        m.date = "1985-03-10".into();
        m.participants = vec![
            participant("Mikhail Gorbachev", "su"),
            RawParticipant {
                name: "Jacques Delors".into(),
                organization_code: "ec".into(),
                ..Default::default()
            },
            participant("Erich Honecker", "DDDE"),
        ];
        m.location = Some(RawLocation {
            city: "Moscow".into(),
            country_code: "SU".into(),
        });
        let m = NewMeeting::parse(m, "meeting", today()).unwrap();
        let keys: Vec<_> = m.parties().iter().map(|p| p.key()).collect();
        assert_eq!(keys, ["DDDE", "SUHH", "org:EC"]);
        let countries: Vec<_> = m.country_codes().map(|c| c.as_str()).collect();
        assert_eq!(countries, ["DDDE", "SUHH"]);
        let orgs: Vec<_> = m.organization_codes().map(|o| o.as_str()).collect();
        assert_eq!(orgs, ["EC"]);
        assert_eq!(
            m.location().unwrap().country_code().unwrap().as_str(),
            "SUHH"
        );
        assert_eq!(m.pair_count(), 3);
    }

    #[test]
    fn an_organisation_and_a_country_with_the_same_code_are_two_parties() {
        let mut m = valid();
        m.participants = vec![
            participant("Anthony Albanese", "AU"),
            RawParticipant {
                name: "Moussa Faki".into(),
                organization_code: "AU".into(),
                ..Default::default()
            },
        ];
        assert_eq!(
            NewMeeting::parse(m, "meeting", today())
                .unwrap()
                .pair_count(),
            1
        );
    }

    #[test]
    fn parties_must_have_existed_on_the_meeting_date() {
        let mut m = valid();
        m.date = "1992-01-15".into();
        m.participants = vec![
            participant("A", "SUHH"),
            RawParticipant {
                name: "B".into(),
                organization_code: "EU".into(),
                ..Default::default()
            },
            RawParticipant {
                name: "C".into(),
                country_code: "JP".into(),
                organization_code: "UN".into(),
                ..Default::default()
            },
            participant("D", ""),
            participant("E", "CS"),
            participant("F", "XK"),
        ];
        m.location = Some(RawLocation {
            city: String::new(),
            country_code: "DD".into(),
        });
        m.end_date = "1992-01-14".into();
        m.format = 9;
        let violations = NewMeeting::parse(m, "meeting", today()).unwrap_err();
        let found: Vec<_> = violations
            .into_iter()
            .map(|v| (v.field, v.description))
            .collect();
        let fields: Vec<_> = found.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "meeting.end_date",
                "meeting.format",
                "meeting.location.country_code",
                "meeting.participants[0].country_code",
                "meeting.participants[1].organization_code",
                "meeting.participants[2].organization_code",
                "meeting.participants[3].country_code",
                "meeting.participants[4].country_code",
            ]
        );
        assert!(
            found[0].1.contains("before the meeting's date"),
            "{found:?}"
        );
        assert!(
            found[2].1.contains("ceased to exist on 1990-10-03"),
            "{found:?}"
        );
        assert!(
            found[3].1.contains("ceased to exist on 1991-12-26"),
            "{found:?}"
        );
        assert!(found[4].1.contains("founded on 1993-11-01"), "{found:?}");
        assert!(
            found[7].1.contains("CSHH") && found[7].1.contains("CSXX"),
            "{found:?}"
        );
    }

    #[test]
    fn parties_must_exist_on_every_day_of_the_span() {
        let mut m = valid();
        m.date = "1991-12-20".into();
        m.end_date = "1992-01-10".into();
        m.participants[0].country_code = "SU".into();
        let v = NewMeeting::parse(m.clone(), "meeting", today()).unwrap_err();
        let only: Vec<_> = v
            .iter()
            .map(|v| (v.field.as_str(), v.description.as_str()))
            .collect();
        assert_eq!(only.len(), 1, "{only:?}");
        assert_eq!(only[0].0, "meeting.participants[0].country_code");
        assert!(
            only[0].1.contains("the meeting lasts until 1992-01-10"),
            "{only:?}"
        );
        m.end_date = "1991-12-26".into();
        assert!(NewMeeting::parse(m, "meeting", today()).is_ok());
    }

    #[test]
    fn a_meeting_spans_at_most_ninety_days_and_may_have_no_topics() {
        let mut m = valid();
        m.topics.clear();
        m.end_date = "2022-08-03".into();
        m.format = MeetingFormat::PhoneCall.number();
        let parsed = NewMeeting::parse(m.clone(), "meeting", today()).unwrap();
        assert_eq!(parsed.end_date(), Some("2022-08-03".parse().unwrap()));
        assert_eq!(parsed.format(), MeetingFormat::PhoneCall);
        assert!(parsed.topics().is_empty());
        m.end_date = "2022-08-04".into();
        let too_long = NewMeeting::parse(m.clone(), "meeting", today()).unwrap_err();
        assert!(
            too_long
                .iter()
                .any(|v| v.field == "meeting.end_date"
                    && v.description.contains("more than 90 days")),
            "{too_long:?}"
        );
        m.end_date = "2022-5-6".into();
        assert_eq!(fields(m), ["meeting.end_date"]);
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
