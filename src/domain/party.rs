//! Who can meet: countries (including former ones) and intergovernmental
//! organisations, and the unordered pairs of them that lookups take.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use chrono::NaiveDate;

use super::CountryCode;
use super::country::{day_number, day_text, span_end};

/// An organisation of docs/registry/organizations.md.
#[derive(Debug)]
pub(crate) struct Organization {
    /// Upper-case letters and digits, e.g. "NATO".
    pub code: &'static str,
    /// How the organisation is stored among a meeting's parties: its code
    /// after a prefix no country code has, so that the African Union (`AU`)
    /// is never Australia (`AU`).
    pub key: &'static str,
    pub name: &'static str,
    /// YYYYMMDD.
    pub founded: u32,
    /// YYYYMMDD.
    pub dissolved: Option<u32>,
    /// Other codes taken as this one on input.
    pub aliases: &'static [&'static str],
}

/// A former country of docs/registry/former-states.md: the days it existed.
#[derive(Debug)]
pub(crate) struct FormerState {
    /// The ISO 3166-3 code, e.g. "SUHH".
    pub code: &'static str,
    pub name: &'static str,
    /// First day, YYYYMMDD; None when before any date a meeting may have.
    pub from: Option<u32>,
    /// Last day, YYYYMMDD; None when it has not ceased.
    pub until: Option<u32>,
}

// ORGANIZATIONS and FORMER_STATES, made by build.rs from the tables in
// docs/registry/.
include!(concat!(env!("OUT_DIR"), "/registry.rs"));

/// The prefix of an organisation's key among a meeting's parties.
const ORGANIZATION_KEY_PREFIX: &str = "org:";

/// An organisation of the registry (docs/registry/organizations.md).
#[derive(Clone, Copy)]
pub struct OrganizationCode(&'static Organization);

impl OrganizationCode {
    /// Accepts any case and surrounding white space, and the codes listed
    /// as also accepted.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let code = raw.trim().to_ascii_uppercase();
        if code.is_empty() {
            return Err("is required: an organisation code such as \"EU\"".into());
        }
        ORGANIZATIONS
            .iter()
            .find(|o| o.code == code || o.aliases.contains(&code.as_str()))
            .map(Self)
            .ok_or_else(|| {
                format!(
                    "{} is not an organisation code of the service's registry \
                     (docs/registry/organizations.md)",
                    super::quote(raw.trim())
                )
            })
    }

    pub fn as_str(&self) -> &'static str {
        self.0.code
    }

    /// Whether the organisation existed on `date`; the error says when it
    /// was founded or dissolved.
    pub fn exists_on(&self, date: NaiveDate) -> Result<(), String> {
        self.exists_during(date, date)
    }

    /// Whether the organisation existed on every day from `first` to
    /// `last`.
    pub fn exists_during(&self, first: NaiveDate, last: NaiveDate) -> Result<(), String> {
        let o = self.0;
        let what = format!("{} ({})", super::quote(o.code), o.name);
        if day_number(first) < o.founded {
            return Err(format!(
                "{what} was founded on {}; the meeting is dated {first}",
                day_text(o.founded)
            ));
        }
        if let Some(gone) = o.dissolved.filter(|&gone| day_number(last) > gone) {
            return Err(format!(
                "{what} was dissolved on {}; {}",
                day_text(gone),
                span_end(first, last)
            ));
        }
        Ok(())
    }
}

impl PartialEq for OrganizationCode {
    fn eq(&self, other: &Self) -> bool {
        self.0.code == other.0.code
    }
}
impl Eq for OrganizationCode {}
impl Hash for OrganizationCode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.code.hash(state);
    }
}
impl PartialOrd for OrganizationCode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrganizationCode {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.code.cmp(other.0.code)
    }
}
impl fmt::Debug for OrganizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code)
    }
}
impl fmt::Display for OrganizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code)
    }
}

/// A side of a meeting: a country or an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    Country(CountryCode),
    Organization(OrganizationCode),
}

impl Party {
    /// How the party is stored (pair rows, a meeting's parties, events): a
    /// country as its code, an organisation as "org:" and its code.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Country(c) => c.as_str(),
            Self::Organization(o) => o.0.key,
        }
    }

    /// The party a stored key names; None for a key no party has (a
    /// registry entry removed since it was stored).
    pub fn from_key(key: &str) -> Option<Self> {
        match key.strip_prefix(ORGANIZATION_KEY_PREFIX) {
            Some(code) => ORGANIZATIONS
                .iter()
                .find(|o| o.code == code)
                .map(|o| Self::Organization(OrganizationCode(o))),
            None => CountryCode::parse(key).ok().map(Self::Country),
        }
    }

    /// Whether the party existed on `date`.
    pub fn exists_on(&self, date: NaiveDate) -> Result<(), String> {
        self.exists_during(date, date)
    }

    /// Whether the party existed on every day from `first` to `last`.
    pub fn exists_during(&self, first: NaiveDate, last: NaiveDate) -> Result<(), String> {
        match self {
            Self::Country(c) => c.exists_during(first, last),
            Self::Organization(o) => o.exists_during(first, last),
        }
    }

    /// The code a caller sees: "AZ", "EU".
    pub fn code(&self) -> &'static str {
        match self {
            Self::Country(c) => c.as_str(),
            Self::Organization(o) => o.as_str(),
        }
    }
}

impl PartialOrd for Party {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// By key: countries first, by code, then organisations, by code.
impl Ord for Party {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(other.key())
    }
}

/// The country codes and organisation codes among stored party keys, each
/// in key order (skipping keys no party has any more).
pub fn split_party_keys<S: AsRef<str>>(keys: &[S]) -> (Vec<String>, Vec<String>) {
    let mut countries = Vec::new();
    let mut organizations = Vec::new();
    for key in keys {
        match key.as_ref().strip_prefix(ORGANIZATION_KEY_PREFIX) {
            Some(code) => organizations.push(code.to_owned()),
            None => countries.push(key.as_ref().to_owned()),
        }
    }
    (countries, organizations)
}

/// Two distinct parties, in key order, so that (AZ, JP) and (JP, AZ) are
/// the same pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PartyPair {
    low: Party,
    high: Party,
}

impl PartyPair {
    /// None when both are the same party.
    pub fn new(a: Party, b: Party) -> Option<Self> {
        match a.cmp(&b) {
            Ordering::Less => Some(Self { low: a, high: b }),
            Ordering::Greater => Some(Self { low: b, high: a }),
            Ordering::Equal => None,
        }
    }

    pub fn low(&self) -> Party {
        self.low
    }

    pub fn high(&self) -> Party {
        self.high
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn country(code: &str) -> Party {
        Party::Country(CountryCode::parse(code).unwrap())
    }

    fn org(code: &str) -> Party {
        Party::Organization(OrganizationCode::parse(code).unwrap())
    }

    #[test]
    fn the_registry_has_the_organisations_news_mention() {
        assert!(ORGANIZATIONS.len() >= 40);
        for code in [
            "UN", "EU", "NATO", "OSCE", "COE", "AU", "ASEAN", "LAS", "OIC", "GCC", "CIS", "CSTO",
            "SCO", "OAS", "CARICOM", "ECOWAS", "SAARC", "OTS", "GUAM", "BSEC", "IAEA", "WHO",
            "WTO", "IMF", "WBG", "OPEC", "G7", "G20", "BRICS", "CWN",
        ] {
            assert_eq!(OrganizationCode::parse(code).unwrap().as_str(), code);
        }
        let mut codes: Vec<_> = ORGANIZATIONS
            .iter()
            .flat_map(|o| std::iter::once(o.code).chain(o.aliases.iter().copied()))
            .collect();
        let all = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all, "a code or alias appears twice");
    }

    #[test]
    fn organisation_codes_ignore_case_and_take_aliases() {
        assert_eq!(OrganizationCode::parse(" nato ").unwrap().as_str(), "NATO");
        assert_eq!(OrganizationCode::parse("arl").unwrap().as_str(), "LAS");
        for bad in ["", "XYZ", "AZ", "org:EU", "E U"] {
            assert!(OrganizationCode::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn organisations_exist_from_their_founding_to_their_dissolution() {
        let eu = OrganizationCode::parse("EU").unwrap();
        assert!(eu.exists_on("1993-11-01".parse().unwrap()).is_ok());
        let early = eu.exists_on("1993-10-31".parse().unwrap()).unwrap_err();
        assert!(early.contains("founded on 1993-11-01"), "{early}");
        let wp = OrganizationCode::parse("WP").unwrap();
        assert!(wp.exists_on("1991-07-02".parse().unwrap()).is_err());
    }

    #[test]
    fn keys_keep_organisations_apart_from_countries() {
        assert_eq!(country("AU").key(), "AU");
        assert_eq!(org("AU").key(), "org:AU");
        assert_ne!(country("AU"), org("AU"));
        for p in [country("AU"), org("AU"), country("SUHH"), org("G20")] {
            assert_eq!(Party::from_key(p.key()), Some(p));
        }
        assert_eq!(
            split_party_keys(&["AZ", "JP", "org:EU"]),
            (
                vec!["AZ".to_owned(), "JP".to_owned()],
                vec!["EU".to_owned()]
            )
        );
    }

    #[test]
    fn pairs_are_unordered() {
        let (az, eu) = (country("AZ"), org("EU"));
        assert_eq!(PartyPair::new(az, eu), PartyPair::new(eu, az));
        assert_eq!(PartyPair::new(eu, az).unwrap().low(), az);
        assert!(PartyPair::new(az, az).is_none());
        assert!(PartyPair::new(country("AU"), org("AU")).is_some());
    }
}
