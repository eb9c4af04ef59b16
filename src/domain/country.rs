use std::fmt;

use chrono::{Datelike, NaiveDate};

use super::party::{FORMER_STATES, FormerState};

/// A country a participant or a place belongs to, upper-case: an assigned
/// ISO 3166-1 alpha-2 code (from the `rust_iso3166` crate), `XK` (Kosovo),
/// or the ISO 3166-3 code of a former country (`SUHH`, from the crate's
/// `iso3166_3` module), which is valid only on the days that country
/// existed (`exists_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode(&'static str);

/// Kosovo: a user-assigned code, not in ISO 3166-1, used by the EU, the
/// UN's agencies and most datasets.
const KOSOVO: &str = "XK";

impl CountryCode {
    /// Accepts any case and surrounding white space. A former alpha-2 code
    /// (`SU`) becomes its four-letter ISO 3166-3 code (`SUHH`) when it is
    /// not assigned today and belonged to one former country only.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let code = raw.trim().to_ascii_uppercase();
        if code.is_empty() {
            return Err("is required: an ISO 3166-1 alpha-2 country code such as \"AZ\"".into());
        }
        let not_assigned = || {
            format!(
                "{} is not an assigned ISO 3166-1 alpha-2 or ISO 3166-3 country code",
                super::quote(raw.trim())
            )
        };
        match code.len() {
            2 if code == KOSOVO => Ok(Self(KOSOVO)),
            2 => match rust_iso3166::from_alpha2(&code) {
                Some(c) => Ok(Self(c.alpha2)),
                None => former_alpha2(&code).ok_or_else(not_assigned)?,
            },
            4 => rust_iso3166::iso3166_3::ALPHA4_MAP
                .get(code.as_str())
                .map(|c| Self(c.code))
                .ok_or_else(not_assigned),
            _ => Err(not_assigned()),
        }
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }

    /// The former country's entry, for an ISO 3166-3 code.
    fn former(&self) -> Option<&'static FormerState> {
        FORMER_STATES.iter().find(|f| f.code == self.0)
    }

    /// Whether the country existed on `date`: always, except for a former
    /// country outside the days docs/registry/former-states.md gives it.
    /// The error says when it began or ceased.
    pub fn exists_on(&self, date: NaiveDate) -> Result<(), String> {
        self.exists_during(date, date)
    }

    /// Whether the country existed on every day from `first` to `last`.
    pub fn exists_during(&self, first: NaiveDate, last: NaiveDate) -> Result<(), String> {
        self.exists_during_as(self.0, first, last)
    }

    /// As `exists_during`, the message quoting the code as the caller sent
    /// it (a former alpha-2 code such as "SU" is read as "SUHH"), so that
    /// it names what the caller wrote.
    pub fn exists_during_as(
        &self,
        sent: &str,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<(), String> {
        let Some(state) = self.former() else {
            return Ok(());
        };
        let what = if sent.eq_ignore_ascii_case(self.0) {
            format!("{} ({})", super::quote(self.0), state.name)
        } else {
            format!("{} ({}, {})", super::quote(sent), self.0, state.name)
        };
        if let Some(from) = state.from.filter(|&from| day_number(first) < from) {
            return Err(format!(
                "{what} came into existence on {}; the meeting is dated {first}",
                day_text(from)
            ));
        }
        if let Some(until) = state.until.filter(|&until| day_number(last) > until) {
            return Err(format!(
                "{what} ceased to exist on {}; {}",
                day_text(until),
                span_end(first, last)
            ));
        }
        Ok(())
    }
}

/// The ISO 3166-3 code whose country had the former alpha-2 `code`, if
/// exactly one did (and `code` is not assigned today; the caller checks).
fn former_alpha2(code: &str) -> Option<Result<CountryCode, String>> {
    let formers: Vec<_> = rust_iso3166::iso3166_3::ALL
        .iter()
        .filter(|f| f.former.alpha2 == code)
        .collect();
    match formers[..] {
        [] => None,
        [one] => Some(Ok(CountryCode(one.code))),
        ref many => Some(Err(format!(
            "{} is ambiguous: it was the code of {}; send the four-letter ISO 3166-3 code",
            super::quote(code),
            many.iter()
                .map(|f| format!("{} ({})", f.code, f.name))
                .collect::<Vec<_>>()
                .join(" and ")
        ))),
    }
}

/// How a violation names the last day of a meeting's span.
pub(super) fn span_end(first: NaiveDate, last: NaiveDate) -> String {
    if first == last {
        format!("the meeting is dated {first}")
    } else {
        format!("the meeting lasts until {last}")
    }
}

/// A date as the number YYYYMMDD, as the registry tables store days.
pub(super) fn day_number(date: NaiveDate) -> u32 {
    u32::try_from(date.year()).unwrap_or(0) * 10_000 + date.month() * 100 + date.day()
}

/// YYYYMMDD as `YYYY-MM-DD`.
pub(super) fn day_text(day: u32) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day / 10_000,
        day / 100 % 100,
        day % 100
    )
}

impl AsRef<str> for CountryCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn accepts_assigned_codes_in_any_case() {
        assert_eq!(CountryCode::parse("az").unwrap().as_str(), "AZ");
        assert_eq!(CountryCode::parse(" Jp ").unwrap().as_str(), "JP");
        assert_eq!(CountryCode::parse("xk").unwrap().as_str(), "XK");
    }

    #[test]
    fn rejects_unassigned_and_malformed_codes() {
        for bad in [
            "", "  ", "ZZ", "XX", "EU", "AZE", "A", "UK", "1A", "ÄZ", "SUH", "SUHHH", "ABCD",
        ] {
            assert!(CountryCode::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn former_countries_by_their_four_letter_and_former_two_letter_codes() {
        for (raw, code) in [
            ("SUHH", "SUHH"),
            ("su", "SUHH"),
            ("DD", "DDDE"),
            ("YU", "YUCS"),
            ("an", "ANHH"),
            ("csxx", "CSXX"),
            ("ZR", "ZRCD"),
        ] {
            assert_eq!(CountryCode::parse(raw).unwrap().as_str(), code, "{raw}");
        }
        // Reassigned former codes are today's countries.
        assert_eq!(CountryCode::parse("GE").unwrap().as_str(), "GE");
        let cs = CountryCode::parse("CS").unwrap_err();
        assert!(cs.contains("CSHH") && cs.contains("CSXX"), "{cs}");
    }

    #[test]
    fn a_former_two_letter_code_is_quoted_as_sent() {
        let su = CountryCode::parse("SU").unwrap();
        let day = NaiveDate::from_ymd_opt(1995, 1, 1).unwrap();
        let message = su.exists_during_as("su", day, day).unwrap_err();
        assert!(message.starts_with("\"su\" (SUHH, "), "{message}");
    }

    #[test]
    fn former_countries_exist_only_on_their_days() {
        let su = CountryCode::parse("SU").unwrap();
        assert!(su.exists_on(day("1991-12-26")).is_ok());
        assert!(su.exists_on(day("1922-12-30")).is_ok());
        let after = su.exists_on(day("1991-12-27")).unwrap_err();
        assert!(after.contains("ceased to exist on 1991-12-26"), "{after}");
        let before = su.exists_on(day("1922-12-29")).unwrap_err();
        assert!(
            before.contains("came into existence on 1922-12-30"),
            "{before}"
        );
        let dd = CountryCode::parse("DDDE").unwrap();
        assert!(dd.exists_on(day("1990-10-03")).is_ok());
        assert!(dd.exists_on(day("1990-10-04")).is_err());
        let yu = CountryCode::parse("YUCS").unwrap();
        let cs = CountryCode::parse("CSXX").unwrap();
        assert!(yu.exists_on(day("2003-02-04")).is_ok() && cs.exists_on(day("2003-02-04")).is_ok());
        assert!(
            yu.exists_on(day("2003-02-05")).is_err() && cs.exists_on(day("2003-02-03")).is_err()
        );
        assert!(cs.exists_on(day("2006-06-06")).is_err());
        let an = CountryCode::parse("ANHH").unwrap();
        assert!(
            an.exists_on(day("2010-10-10")).is_ok() && an.exists_on(day("2010-10-11")).is_err()
        );
        let cz = CountryCode::parse("CSHH").unwrap();
        assert!(
            cz.exists_on(day("1992-12-31")).is_ok() && cz.exists_on(day("1993-01-01")).is_err()
        );
        for any in ["XK", "AZ", "JP"] {
            let c = CountryCode::parse(any).unwrap();
            assert!(
                c.exists_on(day("1800-01-01")).is_ok() && c.exists_on(day("2030-01-01")).is_ok()
            );
        }
    }

    #[test]
    fn the_existence_table_names_every_iso_3166_3_code_and_nothing_else() {
        let mut crate_codes: Vec<_> = rust_iso3166::iso3166_3::ALL
            .iter()
            .map(|c| c.code)
            .collect();
        let mut table: Vec<_> = FORMER_STATES.iter().map(|f| f.code).collect();
        crate_codes.sort_unstable();
        table.sort_unstable();
        assert_eq!(crate_codes, table);
        for f in FORMER_STATES {
            if let (Some(from), Some(until)) = (f.from, f.until) {
                assert!(from < until, "{}", f.code);
            }
        }
    }

    #[test]
    fn the_documented_former_alpha_2_codes_are_the_accepted_ones() {
        let doc = include_str!("../../docs/registry/former-states.md");
        for f in rust_iso3166::iso3166_3::ALL {
            let alpha2 = f.former.alpha2;
            let accepted = CountryCode::parse(alpha2)
                .map(|c| c.as_str() == f.code)
                .unwrap_or(false);
            assert_eq!(
                accepted,
                doc.contains(&format!("`{alpha2}`")) && alpha2 != "CS",
                "{alpha2} ({})",
                f.code
            );
        }
    }
}
