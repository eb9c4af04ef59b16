//! Rules shared by every free-text field.

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Normalises `raw` to NFC (so that "é" composed and decomposed are one
/// text), trims it, and checks it has `min..=max` characters (Unicode scalar
/// values), no control characters (line breaks and tabs are allowed only
/// with `multiline`), no bidirectional embedding, override or isolate
/// controls in single-line text (they can make a name display as another),
/// and not only invisible characters. Returns the text (in `raw`'s own
/// buffer when there was nothing to change) or a description of the fault.
pub fn parse_text(
    raw: impl Into<String>,
    min: usize,
    max: usize,
    multiline: bool,
) -> Result<String, String> {
    let raw = raw.into();
    let raw = if is_nfc_quick(raw.chars()) == IsNormalized::Yes {
        raw
    } else {
        raw.nfc().collect()
    };
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
    if !multiline && let Some(c) = text.chars().find(|&c| is_bidi_control(c)) {
        return Err(format!(
            "must not contain bidirectional control characters (found U+{:04X})",
            u32::from(c)
        ));
    }
    // Unicode's line and paragraph separators are line breaks too.
    if !multiline && let Some(c) = text.chars().find(|&c| matches!(c, '\u{2028}' | '\u{2029}')) {
        return Err(format!(
            "must be a single line (found U+{:04X})",
            u32::from(c)
        ));
    }
    if !text.is_empty() && text.chars().all(|c| c.is_whitespace() || is_invisible(c)) {
        return Err("must not be blank: it has only invisible characters".to_owned());
    }
    Ok(if text.len() == raw.len() {
        raw
    } else {
        text.to_owned()
    })
}

/// Bidirectional embeddings, overrides and isolates (U+202A-U+202E,
/// U+2066-U+2069).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that render as nothing: Unicode's Default_Ignorable_Code_Point
/// property (DerivedCoreProperties.txt, Unicode 15.1), which covers zero-width
/// spaces and joiners, the byte order mark, soft hyphens, variation
/// selectors, tags and the Hangul fillers.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// What makes two texts the same regardless of case, with Unicode's full
/// case folding ("Straße" and "STRASSE" fold alike), through the `unicase`
/// crate. Texts are compared after NFC normalisation (see `parse_text`).
pub fn fold_case(text: &str) -> String {
    unicase::UniCase::new(text).to_folded_case()
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
    use super::{fold_case, parse_text, quote};

    #[test]
    fn text_is_nfc() {
        let decomposed = "Caf\u{65}\u{301}";
        assert_eq!(parse_text(decomposed, 1, 10, false).unwrap(), "Caf\u{e9}");
    }

    #[test]
    fn invisible_only_text_is_blank() {
        for raw in ["\u{200B}\u{200B}", "\u{FEFF}", " \u{2060} ", "\u{00AD}"] {
            assert!(
                parse_text(raw, 1, 10, false)
                    .unwrap_err()
                    .contains("invisible"),
                "{raw:?}"
            );
            assert!(parse_text(raw, 0, 10, true).is_err(), "{raw:?}");
        }
        assert!(parse_text("a\u{200B}b", 1, 10, false).is_ok());
    }

    #[test]
    fn unicode_line_separators_only_in_multiline_text() {
        for c in ['\u{2028}', '\u{2029}'] {
            let raw = format!("energy{c}policy");
            assert!(
                parse_text(raw.as_str(), 1, 20, false)
                    .unwrap_err()
                    .contains("single line")
            );
            assert!(parse_text(raw.as_str(), 1, 20, true).is_ok());
        }
    }

    #[test]
    fn bidi_controls_only_in_multiline_text() {
        for c in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}'] {
            let raw = format!("abc{c}def");
            assert!(
                parse_text(raw.as_str(), 1, 10, false)
                    .unwrap_err()
                    .contains("bidirectional")
            );
            assert!(parse_text(raw.as_str(), 1, 10, true).is_ok());
        }
    }

    #[test]
    fn case_folding_is_full() {
        assert_eq!(fold_case("Straße"), fold_case("STRASSE"));
        assert_eq!(fold_case("ÜKRAINE"), fold_case("ükraine"));
        assert_eq!(fold_case("Energy"), "energy");
    }

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
