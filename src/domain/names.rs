//! People found across spellings: the same minister is "Jeyhun Bayramov"
//! in one report and "Ceyhun Bayramov" in another, "Honda Taro" here and
//! "Taro Honda" there, "Antony J. Blinken" or "Antony Blinken".

use unicode_normalization::UnicodeNormalization;

/// Words that are not a name of their own: particles, and honorifics that
/// reports put in front of names. They do not have to match.
const PARTICLES: [&str; 24] = [
    "al", "ben", "bin", "binti", "bint", "da", "de", "del", "della", "der", "di", "dos", "du",
    "el", "ibn", "la", "le", "ul", "van", "von", "dr", "mr", "mrs", "ms",
];

/// A name as matching compares it: its words in ASCII (transliterated,
/// without diacritics), lower-case, hyphens and spaces alike, without
/// initials and particles, each reduced to a transliteration skeleton
/// (`skeleton`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameKey {
    tokens: Vec<String>,
}

impl NameKey {
    pub fn new(name: &str) -> Self {
        let ascii = transliterate(name).to_ascii_lowercase();
        // Apostrophes join (O'Brien, and the soft sign that Cyrillic
        // transliteration writes as one: Il'kham); every other mark
        // separates words.
        let joined: String = ascii.chars().filter(|c| !matches!(c, '\'' | '`')).collect();
        let words: Vec<&str> = joined
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let mut kept: Vec<&str> = words
            .iter()
            .copied()
            // A one-letter word is an initial; a one-digit word is a
            // number ("Delegate 1" is not "Delegate 11").
            .filter(|w| {
                (w.len() > 1 || w.bytes().all(|c| c.is_ascii_digit())) && !PARTICLES.contains(w)
            })
            .collect();
        if kept.is_empty() {
            // A name of only initials or particles ("U Thant" keeps "thant";
            // "U" alone keeps "u").
            kept = words;
        }
        Self {
            tokens: kept.into_iter().map(skeleton).collect(),
        }
    }

    /// A key from its words as `tokens` gave them (stored keys).
    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            tokens: tokens.into_iter().map(str::to_owned).collect(),
        }
    }

    /// The words, e.g. for an index of names.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// Whether two names can be the same person: every word of the shorter
    /// name matches a different word of the longer one, in any order.
    pub fn matches(&self, other: &NameKey) -> bool {
        let (short, long) = if self.tokens.len() <= other.tokens.len() {
            (&self.tokens, &other.tokens)
        } else {
            (&other.tokens, &self.tokens)
        };
        if short.is_empty() {
            return false;
        }
        let mut used = vec![false; long.len()];
        assign(short, long, &mut used)
    }
}

/// The name in ASCII (`any_ascii`), after NFC. A run of Chinese characters
/// becomes two words, the surname (its first character) and the given name
/// (the rest), as Latin reports write them ("王毅" is "Wang Yi", "习近平" is
/// "Xi Jinping"); `any_ascii` alone would run them together.
fn transliterate(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = 0usize;
    for c in name.nfc() {
        if is_han(c) {
            // A space before the surname and before the given name.
            if in_run <= 1 {
                out.push(' ');
            }
            out.push_str(any_ascii::any_ascii_char(c));
            in_run += 1;
        } else {
            if in_run > 0 {
                out.push(' ');
            }
            in_run = 0;
            out.push_str(any_ascii::any_ascii_char(c));
        }
    }
    out
}

fn is_han(c: char) -> bool {
    matches!(c as u32, 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F)
}

/// A word reduced to what transliteration systems agree on: the spellings
/// of one sound written alike (dzh, dj, zh → j; kh → h; gh → g; sh → s;
/// ch → c; ph → f; ou → u; w → v; q → k; y → i) and doubled letters once.
/// Джейхун is "Dzheykhun" in one system and "Jeyhun" in another; both
/// become "jeihun". Applied to both sides, it only makes spellings of one
/// sound equal; the edit distance then allows what remains. A word with
/// digits is kept as it is: numbers do not vary between transliterations,
/// and 5000 is not 50000.
fn skeleton(word: &str) -> String {
    if word.bytes().any(|c| c.is_ascii_digit()) {
        return word.to_owned();
    }
    const SAME_SOUND: [(&str, &str); 9] = [
        ("dzh", "j"),
        ("dj", "j"),
        ("zh", "j"),
        ("kh", "h"),
        ("gh", "g"),
        ("sh", "s"),
        ("ch", "c"),
        ("ph", "f"),
        ("ou", "u"),
    ];
    let mut w = word.to_owned();
    for (from, to) in SAME_SOUND {
        if w.contains(from) {
            w = w.replace(from, to);
        }
    }
    let mut out = String::with_capacity(w.len());
    for c in w.chars() {
        let c = match c {
            'w' => 'v',
            'q' => 'k',
            'y' => 'i',
            c => c,
        };
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

/// Whether each of `short` can be given a different unused word of `long`
/// that it matches (backtracking; names have a handful of words).
fn assign(short: &[String], long: &[String], used: &mut [bool]) -> bool {
    let Some((first, rest)) = short.split_first() else {
        return true;
    };
    for i in 0..long.len() {
        if !used[i] && words_match(first, &long[i]) {
            used[i] = true;
            if assign(rest, long, used) {
                return true;
            }
            used[i] = false;
        }
    }
    false
}

/// Two words of names are the same when equal, or, for words of 5 letters
/// or more, when they differ in at most one edit per 5 letters of the
/// longer: transliteration systems differ by a letter or two (Jeyhun and
/// Ceyhun, Sergey and Sergei, Mammadyarov and Mamedyarov), while short
/// words that differ by one letter are often different names (Li and Lu).
pub fn words_match(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    // Numbers (a regnal "II", written "2", or a delegate's number) do not
    // vary between transliterations: only equal ones match.
    if a.bytes().chain(b.bytes()).any(|c| c.is_ascii_digit()) {
        return false;
    }
    let longer = a.len().max(b.len());
    longer >= 5 && strsim::damerau_levenshtein(a, b) <= longer / 5
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        NameKey::new(a).matches(&NameKey::new(b))
    }

    #[test]
    fn numbers_in_names_must_be_equal() {
        assert!(!same("Delegate 5000", "Delegate 50000"));
        assert!(!same("Delegate 11", "Delegate 1"));
        assert!(same("Delegate 5000", "delegate 5000"));
    }

    #[test]
    fn spellings_of_one_person_match() {
        for (a, b) in [
            ("Jeyhun Bayramov", "Ceyhun Bayramov"),
            ("Honda Taro", "Taro Honda"),
            ("Bilawal Bhutto-Zardari", "Bilawal Bhutto Zardari"),
            ("Antony J. Blinken", "Antony Blinken"),
            ("Elmar Mammadyarov", "Elmar Mamedyarov"),
            ("Sergey Lavrov", "Sergei Lavrov"),
            ("Сергей Лавров", "Sergey Lavrov"),
            ("Mevlüt Çavuşoğlu", "Mevlut Cavusoglu"),
            ("JOSÉ MANUEL BARROSO", "José Manuel Barroso"),
            ("Ursula von der Leyen", "Ursula Leyen"),
            ("Bayramov", "Jeyhun Bayramov"),
            ("Dr. Subrahmanyam Jaishankar", "S. Jaishankar"),
            ("Джейхун Байрамов", "Jeyhun Bayramov"),
            ("Ильхам Алиев", "Ilham Aliyev"),
            ("Қасым-Жомарт Тоқаев", "Kassym-Jomart Tokayev"),
            ("王毅", "Wang Yi"),
            ("习近平", "Xi Jinping"),
            ("Sameh Shukri", "Sameh Shoukry"),
            ("Irakli Gharibashvili", "Irakli Garibashvili"),
            ("Dmitry Kuleba", "Dmytro Kuleba"),
        ] {
            assert!(same(a, b), "{a} = {b}");
        }
    }

    #[test]
    fn different_people_do_not_match() {
        for (a, b) in [
            ("Jeyhun Bayramov", "Ilham Aliyev"),
            ("Honda Taro", "Hayashi Yoshimasa"),
            ("Li Qiang", "Lu Kang"),
            ("Joe Biden", "Jill Biden"),
            ("Sergey Lavrov", "Sergey Shoigu"),
            ("Antony Blinken", "Anthony Albanese"),
            ("", "Antony Blinken"),
            ("Delegate 12345", "Delegate 12346"),
        ] {
            assert!(!same(a, b), "{a} != {b}");
        }
    }
}
