//! Rules shared by every free-text field.

/// Trims `raw` and checks it has `min..=max` characters (Unicode scalar
/// values) and no control characters; line breaks and tabs are allowed only
/// with `multiline`. Returns the trimmed text (in `raw`'s own buffer when
/// there was nothing to trim) or a description of the fault.
pub fn parse_text(
    raw: impl Into<String>,
    min: usize,
    max: usize,
    multiline: bool,
) -> Result<String, String> {
    let raw = raw.into();
    let text = raw.trim();
    let len = text.chars().count();
    if len < min {
        return Err(if min == 1 {
            "is required and must not be blank".to_owned()
        } else {
            format!("must have at least {min} characters")
        });
    }
    if len > max {
        return Err(format!("must have at most {max} characters, has {len}"));
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if let Some(c) = text.chars().find(|&c| c.is_control() && !allowed(c)) {
        return Err(format!(
            "must not contain control characters (found U+{:04X})",
            u32::from(c)
        ));
    }
    Ok(if text.len() == raw.len() {
        raw
    } else {
        text.to_owned()
    })
}

/// Characters of a caller's input quoted in an error description, at most:
/// enough to recognise the value, and errors stay small whatever was sent.
const QUOTED_CHARS: usize = 32;

/// `raw` quoted for an error description (as `{:?}` would), cut after
/// `QUOTED_CHARS` characters with an ellipsis.
pub fn quote(raw: &str) -> String {
    match raw.char_indices().nth(QUOTED_CHARS) {
        Some((end, _)) => format!("{:?}…", &raw[..end]),
        None => format!("{raw:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_text, quote};

    #[test]
    fn quotes_are_short() {
        assert_eq!(quote("YU"), "\"YU\"");
        let long = "é".repeat(100_000);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), 32 + 3);
        assert!(quoted.ends_with('…'));
    }

    #[test]
    fn trims_and_counts_characters_not_bytes() {
        assert_eq!(parse_text("  Bakı  ", 1, 4, false).unwrap(), "Bakı");
        assert!(parse_text("Bakıx", 1, 4, false).is_err());
    }

    #[test]
    fn blank_is_missing() {
        assert!(
            parse_text("   ", 1, 10, false)
                .unwrap_err()
                .contains("required")
        );
        assert_eq!(parse_text("", 0, 10, false).unwrap(), "");
    }

    #[test]
    fn control_characters_only_line_breaks_in_multiline() {
        assert!(parse_text("a\u{0}b", 0, 10, true).is_err());
        assert!(parse_text("a\nb", 0, 10, false).is_err());
        assert_eq!(parse_text("a\r\n\tb", 0, 10, true).unwrap(), "a\r\n\tb");
        assert!(parse_text("a\u{7f}b", 0, 10, true).is_err());
    }
}
