use chrono::{Months, NaiveDate};

/// Parses a calendar date written exactly as `YYYY-MM-DD`.
pub fn parse_date(raw: &str) -> Result<NaiveDate, String> {
    let bytes = raw.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape_ok {
        return Err(format!(
            "{} is not a date in the form YYYY-MM-DD",
            super::quote(raw)
        ));
    }
    let field = |range: std::ops::Range<usize>| raw[range].parse::<u32>().unwrap_or(0);
    let year = i32::try_from(field(0..4)).unwrap_or(0);
    NaiveDate::from_ymd_opt(year, field(5..7), field(8..10))
        .ok_or_else(|| format!("{} is not a real calendar date", super::quote(raw)))
}

/// Parses the date of a meeting: `YYYY-MM-DD`, from 1800-01-01 to one year
/// after `today`.
pub fn parse_meeting_date(raw: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    if raw.is_empty() {
        return Err("is required: the day of the meeting as YYYY-MM-DD".into());
    }
    let date = parse_date(raw)?;
    let earliest = NaiveDate::from_ymd_opt(1800, 1, 1).expect("valid constant date");
    let latest = today
        .checked_add_months(Months::new(12))
        .unwrap_or(NaiveDate::MAX);
    if date < earliest || date > latest {
        return Err(format!(
            "{raw} is outside the accepted range {earliest} to {latest}"
        ));
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn strict_format() {
        assert_eq!(parse_date("2022-05-05").unwrap(), day("2022-05-05"));
        for bad in [
            "2022-5-5",
            "2022/05/05",
            "22-05-05",
            "2022-05-05T00:00",
            " 2022-05-05",
            "２０２２-05-05",
            "+022-05-05",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn real_calendar_dates_only() {
        assert!(parse_date("2024-02-29").is_ok());
        for bad in [
            "2023-02-29",
            "2022-13-01",
            "2022-00-10",
            "2022-04-31",
            "2022-01-00",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn meeting_date_range() {
        let today = day("2026-11-28");
        assert!(parse_meeting_date("1800-01-01", today).is_ok());
        assert!(parse_meeting_date("1799-12-31", today).is_err());
        assert!(parse_meeting_date("2027-11-28", today).is_ok());
        assert!(parse_meeting_date("2027-11-29", today).is_err());
        assert!(
            parse_meeting_date("", today)
                .unwrap_err()
                .contains("required")
        );
    }
}
