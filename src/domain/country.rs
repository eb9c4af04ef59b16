use std::fmt;

/// An assigned ISO 3166-1 alpha-2 country code, upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Accepts any case and surrounding white space; checks the code against
    /// the ISO 3166-1 list of the `rust_iso3166` crate.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let code = raw.trim().to_ascii_uppercase();
        if code.is_empty() {
            return Err("is required: an ISO 3166-1 alpha-2 country code such as \"AZ\"".into());
        }
        match (code.as_bytes(), rust_iso3166::from_alpha2(&code)) {
            (&[a, b], Some(_)) => Ok(Self([a, b])),
            _ => Err(format!(
                "{} is not an assigned ISO 3166-1 alpha-2 country code",
                super::quote(raw.trim())
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters ever get in (checked in `parse`).
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
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

/// Two distinct countries, in sorted order, so that (AZ, JP) and (JP, AZ)
/// are the same pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryPair {
    low: CountryCode,
    high: CountryCode,
}

impl CountryPair {
    /// None when both are the same country.
    pub fn new(a: CountryCode, b: CountryCode) -> Option<Self> {
        match a.cmp(&b) {
            std::cmp::Ordering::Less => Some(Self { low: a, high: b }),
            std::cmp::Ordering::Greater => Some(Self { low: b, high: a }),
            std::cmp::Ordering::Equal => None,
        }
    }

    pub fn low(&self) -> CountryCode {
        self.low
    }

    pub fn high(&self) -> CountryCode {
        self.high
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_assigned_codes_in_any_case() {
        assert_eq!(CountryCode::parse("az").unwrap().as_str(), "AZ");
        assert_eq!(CountryCode::parse(" Jp ").unwrap().as_str(), "JP");
    }

    #[test]
    fn rejects_unassigned_and_malformed_codes() {
        for bad in [
            "", "  ", "ZZ", "XX", "XK", "EU", "AZE", "A", "UK", "1A", "ÄZ",
        ] {
            assert!(CountryCode::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn pair_is_unordered() {
        let az = CountryCode::parse("AZ").unwrap();
        let jp = CountryCode::parse("JP").unwrap();
        assert_eq!(CountryPair::new(az, jp), CountryPair::new(jp, az));
        assert_eq!(CountryPair::new(jp, az).unwrap().low(), az);
        assert!(CountryPair::new(az, az).is_none());
    }
}
