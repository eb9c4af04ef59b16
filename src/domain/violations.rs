use std::fmt;

/// One problem with one field of a request, as reported to the caller in a
/// `google.rpc.BadRequest` detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field, e.g. `meeting.participants[1].country_code`.
    pub field: String,
    /// What is wrong with it, in words a caller can act on.
    pub description: String,
}

/// Every violation found in a request; validation collects them all before
/// answering instead of stopping at the first. The first `KEPT` are kept
/// and the rest only counted, so that a request with a million faults
/// costs no more memory than one with a hundred.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Violations {
    kept: Vec<FieldViolation>,
    omitted: usize,
}

/// Violations kept with their field and description.
const KEPT: usize = 100;

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        if self.kept.len() < KEPT {
            self.kept.push(FieldViolation {
                field: field.into(),
                description: description.into(),
            });
        } else {
            self.omitted += 1;
        }
    }

    /// Takes over every violation of `other`.
    pub fn extend(&mut self, other: Violations) {
        let room = KEPT - self.kept.len();
        let overflow = other.kept.len().saturating_sub(room);
        self.kept.extend(other.kept.into_iter().take(room));
        self.omitted += other.omitted + overflow;
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.omitted == 0
    }

    /// How many violations were found, kept or not.
    pub fn total(&self) -> usize {
        self.kept.len() + self.omitted
    }

    /// The kept violations, in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &FieldViolation> {
        self.kept.iter()
    }

    /// At most `max` violations to report: the first ones found, the last
    /// of them replaced by an entry saying how many more there are when
    /// there are more than `max`.
    pub fn reported(&self, max: usize) -> Vec<FieldViolation> {
        let max = max.max(1);
        let total = self.total();
        if total <= max {
            return self.kept.iter().take(max).cloned().collect();
        }
        let mut out: Vec<FieldViolation> = self.kept.iter().take(max - 1).cloned().collect();
        let field = self
            .kept
            .get(max - 1)
            .map_or_else(String::new, |v| v.field.clone());
        out.push(FieldViolation {
            field,
            description: format!("and {} more violations, not listed", total - (max - 1)),
        });
        out
    }

    /// Ok(value) when nothing was found, else every violation.
    pub fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, Violations> {
        if self.is_empty() {
            Ok(value())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.kept.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", v.field, v.description)?;
        }
        if self.omitted > 0 {
            write!(f, "; and {} more", self.omitted)?;
        }
        Ok(())
    }
}

impl IntoIterator for Violations {
    type Item = FieldViolation;
    type IntoIter = std::vec::IntoIter<FieldViolation>;
    fn into_iter(self) -> Self::IntoIter {
        self.kept.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn many(n: usize) -> Violations {
        let mut v = Violations::new();
        for i in 0..n {
            v.add(format!("f[{i}]"), "bad");
        }
        v
    }

    #[test]
    fn a_few_are_reported_as_they_are() {
        let v = many(3);
        assert_eq!(v.total(), 3);
        assert_eq!(v.reported(20).len(), 3);
    }

    #[test]
    fn many_are_counted_and_reported_with_how_many_more() {
        let v = many(100_000);
        assert_eq!(v.total(), 100_000);
        assert_eq!(v.iter().count(), KEPT);
        let reported = v.reported(20);
        assert_eq!(reported.len(), 20);
        assert_eq!(reported[18].field, "f[18]");
        assert_eq!(reported[19].field, "f[19]");
        assert_eq!(
            reported[19].description,
            "and 99981 more violations, not listed"
        );
    }

    #[test]
    fn extend_keeps_the_count() {
        let mut v = many(90);
        v.extend(many(30));
        assert_eq!(v.total(), 120);
        assert_eq!(v.iter().count(), KEPT);
        let mut empty = Violations::new();
        empty.extend(Violations::new());
        assert!(empty.is_empty());
    }
}
