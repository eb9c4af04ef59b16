//! A pair's summary figures, kept as meetings are written (migration 0020):
//! every write statement lists the meetings it changed in a change row; a
//! background fold adds change rows into each pair's stored figures and
//! deletes them; a summary reads its pair's figures and adds the changes
//! not yet folded, in one snapshot. A read costs one row, the parties of
//! the pending changes and those changes that name the pair, whatever the
//! size of the pair (and, rarely, a search for an earliest meeting).
//!
//! The earliest meeting of a topic or an anniversary is kept as meetings
//! come; when that meeting goes (or loses the topic), the next one is found
//! again from the pair's meetings, by the fold or by the summary that needs
//! it first.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures_util::TryStreamExt;
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use super::meetings::{derived_version_in, record_derived_version_in};
use super::{
    AnniversaryCount, FormatCount, PairCounts, PairSummary, Storage, TopicCount, YearCount, begin,
};
use crate::domain::{PartyPair, TOPIC_KEY_VERSION};
use crate::error::{Error, Result};

/// Advisory lock key of the fold and of a rebuild ("figures" in ASCII):
/// one folder at a time across instances.
const FIGURES_LOCK: i64 = 0x0066_6967_7572_6573;
/// The stored figures' rule; with `TOPIC_KEY_VERSION`, the derived value
/// version that says the stored figures count every meeting.
const FIGURES_VERSION: i32 = 1;
/// Most anniversaries a summary lists.
const MAX_ANNIVERSARIES: usize = 1000;
/// Every stored meeting as change rows list one, for a rebuild.
const MEETING_INPUTS: &str = "\
    SELECT id, array_to_string(country_codes, ','), date, format, create_time, \
           anniversary_years, anniversary_occasion, array_to_string(topics_lower, chr(31)), \
           CASE WHEN topics <> topics_lower THEN array_to_string(topics, chr(31)) END \
    FROM meetings";
/// The parties of each pending change's meetings, after and before, which
/// say whether it can touch a pair without reading the rest.
const PENDING_PARTIES: &str =
    "SELECT change_id, codes, removed_codes FROM pair_figure_changes ORDER BY change_id";
/// The pending changes among $1, oldest first.
const CHANGES_BY_ID: &str =
    "SELECT * FROM pair_figure_changes WHERE change_id = ANY($1) ORDER BY change_id";
/// The oldest $1 pending changes.
const PENDING_CHANGES_LIMITED: &str =
    "SELECT * FROM pair_figure_changes ORDER BY change_id LIMIT $1";
/// The earliest meeting of a pair with each of the topic keys $3: the key,
/// the meeting's creation time (microseconds), id and spelling of the
/// topic. One scan of the pair for all of them.
const FIRSTS_OF_TOPICS: &str = "\
    SELECT DISTINCT ON (t.key) t.key, \
           (extract(epoch FROM m.create_time) * 1000000)::int8, m.id, m.topics[t.position] \
    FROM meeting_country_pairs p JOIN meetings m ON m.id = p.meeting_id \
    CROSS JOIN LATERAL unnest(m.topics_lower) WITH ORDINALITY AS t (key, position) \
    WHERE p.country_low = $1 AND p.country_high = $2 AND m.topics_lower && $3::text[] \
      AND t.key = ANY($3::text[]) \
    ORDER BY t.key, m.create_time, m.id";
/// The earliest meeting (by date, then id) of a pair that marks an
/// anniversary implying year $3 for occasion $4: the meeting's year is
/// after $3, so the scan of the pair index starts there.
const FIRST_OF_ANNIVERSARY: &str = "\
    SELECT p.date, p.meeting_id \
    FROM meeting_country_pairs p JOIN meetings m ON m.id = p.meeting_id \
    WHERE p.country_low = $1 AND p.country_high = $2 AND p.date >= make_date($3 + 1, 1, 1) \
      AND m.anniversary_occasion = $4 \
      AND extract(year FROM m.date)::int4 - m.anniversary_years = $3 \
    ORDER BY p.date, p.meeting_id LIMIT 1";

/// A pair as its keys, low then high in byte order.
type PairKey = (String, String);

/// What a meeting brings to the figures of each of its pairs.
#[derive(Debug, Clone, PartialEq)]
struct MeetingInput {
    id: Uuid,
    /// Party keys, sorted and distinct.
    parties: Vec<String>,
    date: NaiveDate,
    format: i16,
    /// Creation time, microseconds since 1970 (PostgreSQL's precision).
    created: i64,
    /// Implied year and occasion.
    anniversary: Option<(i32, String)>,
    /// Topic keys with their spelling, one per key.
    topics: Vec<(String, String)>,
}

impl MeetingInput {
    /// One meeting from the columns of a change row (migration 0020):
    /// party keys comma-joined, topic keys and spellings U+001F-joined.
    #[allow(clippy::too_many_arguments)]
    fn new(
        id: Uuid,
        codes: &str,
        date: NaiveDate,
        format: i16,
        created: DateTime<Utc>,
        years: Option<i32>,
        occasion: Option<&str>,
        keys: &str,
        spellings: Option<&str>,
    ) -> Self {
        let split = |s: &str| -> Vec<String> {
            s.split('\u{1f}')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let mut parties: Vec<String> = codes
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        parties.sort();
        parties.dedup();
        let keys = split(keys);
        let spellings = spellings.map_or_else(|| keys.clone(), split);
        let mut seen = HashSet::new();
        let topics = keys
            .into_iter()
            .zip(spellings)
            .filter(|(k, _)| seen.insert(k.clone()))
            .collect();
        Self {
            id,
            parties,
            date,
            format,
            created: created.timestamp_micros(),
            anniversary: years
                .zip(occasion)
                .map(|(years, occasion)| (date.year() - years, occasion.to_owned())),
            topics,
        }
    }

    fn pairs(&self) -> impl Iterator<Item = PairKey> + '_ {
        self.parties.iter().enumerate().flat_map(|(i, low)| {
            self.parties[i + 1..]
                .iter()
                .map(move |high| (low.clone(), high.clone()))
        })
    }

    fn has_pair(&self, low: &str, high: &str) -> bool {
        self.parties.iter().any(|p| p == low) && self.parties.iter().any(|p| p == high)
    }
}

/// The meetings one write statement changed: each as it was and as it is.
#[derive(Debug, Default)]
struct Change {
    meetings: Vec<(Option<MeetingInput>, Option<MeetingInput>)>,
}

impl Change {
    fn of(row: &ChangeRow) -> Result<Self> {
        let mut before: HashMap<Uuid, MeetingInput> =
            row.removed()?.into_iter().map(|m| (m.id, m)).collect();
        let mut meetings: Vec<_> = row
            .added()?
            .into_iter()
            .map(|m| (before.remove(&m.id), Some(m)))
            .collect();
        meetings.extend(before.into_values().map(|m| (Some(m), None)));
        Ok(Self { meetings })
    }

    /// Applies the change to the figures of `pair` only.
    fn apply_to(&self, pair: (&str, &str), figures: &mut Figures) {
        for (old, new) in &self.meetings {
            let old = old.as_ref().filter(|m| m.has_pair(pair.0, pair.1));
            let new = new.as_ref().filter(|m| m.has_pair(pair.0, pair.1));
            figures.change(old, new);
        }
    }

    /// Applies the change to every pair it touches, in `all`.
    fn apply_all(&self, all: &mut HashMap<PairKey, Figures>) {
        for (old, new) in &self.meetings {
            let old_pairs: HashSet<PairKey> = old.iter().flat_map(MeetingInput::pairs).collect();
            let new_pairs: HashSet<PairKey> = new.iter().flat_map(MeetingInput::pairs).collect();
            for pair in old_pairs.union(&new_pairs) {
                let figures = all.entry(pair.clone()).or_default();
                figures.change(
                    old.as_ref().filter(|_| old_pairs.contains(pair)),
                    new.as_ref().filter(|_| new_pairs.contains(pair)),
                );
            }
        }
    }

    fn pairs(&self) -> HashSet<PairKey> {
        self.meetings
            .iter()
            .flat_map(|(a, b)| a.iter().chain(b))
            .flat_map(MeetingInput::pairs)
            .collect()
    }
}

/// Whether a meeting among `codes` (each comma-joined) has both parties.
fn names_pair(codes: &[String], low: &str, high: &str) -> bool {
    codes.iter().any(|codes| {
        let mut parties = codes.split(',');
        parties.clone().any(|p| p == low) && parties.any(|p| p == high)
    })
}

/// A row of pair_figure_changes: the meetings after the statement, and
/// before it (`removed_`), as parallel arrays.
#[derive(Debug, sqlx::FromRow)]
struct ChangeRow {
    change_id: i64,
    ids: Vec<Uuid>,
    codes: Vec<String>,
    dates: Vec<NaiveDate>,
    formats: Vec<i16>,
    created: Vec<DateTime<Utc>>,
    anniversary_years: Vec<Option<i32>>,
    anniversary_occasions: Vec<Option<String>>,
    topic_keys: Vec<String>,
    topics: Vec<Option<String>>,
    removed_ids: Vec<Uuid>,
    removed_codes: Vec<String>,
    removed_dates: Vec<NaiveDate>,
    removed_formats: Vec<i16>,
    removed_created: Vec<DateTime<Utc>>,
    removed_anniversary_years: Vec<Option<i32>>,
    removed_anniversary_occasions: Vec<Option<String>>,
    removed_topic_keys: Vec<String>,
    removed_topics: Vec<Option<String>>,
}

/// One side of a change row: its parallel arrays.
struct Side<'a> {
    ids: &'a [Uuid],
    codes: &'a [String],
    dates: &'a [NaiveDate],
    formats: &'a [i16],
    created: &'a [DateTime<Utc>],
    anniversary_years: &'a [Option<i32>],
    anniversary_occasions: &'a [Option<String>],
    topic_keys: &'a [String],
    topics: &'a [Option<String>],
}

impl Side<'_> {
    /// The side's meetings; the arrays are parallel, written so by one
    /// statement, and anything else is an internal error.
    fn meetings(&self, change_id: i64) -> Result<Vec<MeetingInput>> {
        let n = self.ids.len();
        let lengths = [
            self.codes.len(),
            self.dates.len(),
            self.formats.len(),
            self.created.len(),
            self.anniversary_years.len(),
            self.anniversary_occasions.len(),
            self.topic_keys.len(),
            self.topics.len(),
        ];
        if lengths.iter().any(|l| *l != n) {
            return Err(Error::internal(anyhow::anyhow!(
                "pair figure change {change_id} has arrays of different lengths"
            )));
        }
        Ok((0..n)
            .map(|i| {
                MeetingInput::new(
                    self.ids[i],
                    &self.codes[i],
                    self.dates[i],
                    self.formats[i],
                    self.created[i],
                    self.anniversary_years[i],
                    self.anniversary_occasions[i].as_deref(),
                    &self.topic_keys[i],
                    self.topics[i].as_deref(),
                )
            })
            .collect())
    }
}

impl ChangeRow {
    fn added(&self) -> Result<Vec<MeetingInput>> {
        Side {
            ids: &self.ids,
            codes: &self.codes,
            dates: &self.dates,
            formats: &self.formats,
            created: &self.created,
            anniversary_years: &self.anniversary_years,
            anniversary_occasions: &self.anniversary_occasions,
            topic_keys: &self.topic_keys,
            topics: &self.topics,
        }
        .meetings(self.change_id)
    }

    fn removed(&self) -> Result<Vec<MeetingInput>> {
        Side {
            ids: &self.removed_ids,
            codes: &self.removed_codes,
            dates: &self.removed_dates,
            formats: &self.removed_formats,
            created: &self.removed_created,
            anniversary_years: &self.removed_anniversary_years,
            anniversary_occasions: &self.removed_anniversary_occasions,
            topic_keys: &self.removed_topic_keys,
            topics: &self.removed_topics,
        }
        .meetings(self.change_id)
    }
}

/// The earliest meeting of a topic or an anniversary: its order (creation
/// time, or date as days), id and (for a topic) spelling.
#[derive(Debug, Clone, PartialEq)]
struct First {
    order: i64,
    id: Uuid,
    spelling: String,
}

/// A counted topic or anniversary. `first` is None when the earliest
/// meeting went and the next one is not known yet.
#[derive(Debug, Clone, PartialEq, Default)]
struct Counted {
    count: i64,
    first: Option<First>,
}

impl Counted {
    fn add(&mut self, first: First) {
        let fresh = self.count == 0;
        self.count += 1;
        match &self.first {
            None if fresh => self.first = Some(first),
            Some(f) if (first.order, first.id) < (f.order, f.id) => self.first = Some(first),
            _ => {}
        }
    }

    fn remove(&mut self, id: Uuid) {
        self.count -= 1;
        if self.first.as_ref().is_some_and(|f| f.id == id) {
            self.first = None;
        }
    }

    /// The same meeting, still counted, now with `first` (same id).
    fn keep(&mut self, first: First) {
        match &self.first {
            Some(f) if f.id == first.id => {
                // Still the earliest if its order did not grow.
                self.first = (first.order <= f.order).then_some(first);
            }
            Some(f) if (first.order, first.id) < (f.order, f.id) => self.first = Some(first),
            _ => {}
        }
    }
}

/// The figures of one pair.
#[derive(Debug, Clone, PartialEq, Default)]
struct Figures {
    meetings: i64,
    years: BTreeMap<i32, i64>,
    formats: BTreeMap<i16, i64>,
    topics: BTreeMap<String, Counted>,
    anniversaries: BTreeMap<(i32, String), Counted>,
}

fn bump<K: Ord + Copy>(map: &mut BTreeMap<K, i64>, key: K, by: i64) {
    let n = map.entry(key).or_default();
    *n += by;
    if *n == 0 {
        // Keys of no meetings are left out.
        map.remove(&key);
    }
}

fn counted_remove<K: Ord + Clone>(map: &mut BTreeMap<K, Counted>, key: &K, id: Uuid) {
    let e = map.entry(key.clone()).or_default();
    e.remove(id);
    if e.count == 0 {
        map.remove(key);
    }
}

fn counted_add<K: Ord + Clone>(map: &mut BTreeMap<K, Counted>, key: &K, first: First) {
    let e = map.entry(key.clone()).or_default();
    e.add(first);
    if e.count == 0 {
        map.remove(key);
    }
}

impl Figures {
    /// One meeting of the pair changed: `old` is what it was in the pair
    /// (None if it was not), `new` what it is (None if it is not any more).
    fn change(&mut self, old: Option<&MeetingInput>, new: Option<&MeetingInput>) {
        if let Some(o) = old {
            self.meetings -= 1;
            bump(&mut self.years, o.date.year(), -1);
            bump(&mut self.formats, o.format, -1);
        }
        if let Some(n) = new {
            self.meetings += 1;
            bump(&mut self.years, n.date.year(), 1);
            bump(&mut self.formats, n.format, 1);
        }
        self.change_topics(old, new);
        self.change_anniversary(old, new);
    }

    fn change_topics(&mut self, old: Option<&MeetingInput>, new: Option<&MeetingInput>) {
        let topic_first = |m: &MeetingInput, spelling: &str| First {
            order: m.created,
            id: m.id,
            spelling: spelling.to_owned(),
        };
        let kept = |k: &str| {
            matches!((old, new), (Some(o), Some(n)) if o.created == n.created
                && n.topics.iter().any(|(nk, _)| nk == k))
        };
        if let Some(o) = old {
            for (key, _) in &o.topics {
                if !kept(key) {
                    counted_remove(&mut self.topics, key, o.id);
                }
            }
        }
        if let Some(n) = new {
            for (key, spelling) in &n.topics {
                let first = topic_first(n, spelling);
                if old.is_some_and(|o| o.topics.iter().any(|(ok, _)| ok == key))
                    && kept(key)
                    && let Some(e) = self.topics.get_mut(key)
                {
                    e.keep(first);
                    continue;
                }
                counted_add(&mut self.topics, key, first);
            }
        }
    }

    fn change_anniversary(&mut self, old: Option<&MeetingInput>, new: Option<&MeetingInput>) {
        let first = |m: &MeetingInput| First {
            order: i64::from(m.date.num_days_from_ce()),
            id: m.id,
            spelling: String::new(),
        };
        let old_key = old.and_then(|m| m.anniversary.clone());
        let new_key = new.and_then(|m| m.anniversary.clone());
        // The same meeting, still marking the same anniversary.
        if let (Some(_), Some(n), Some(key)) = (old, new, &old_key)
            && old_key == new_key
            && let Some(e) = self.anniversaries.get_mut(key)
        {
            e.keep(first(n));
            return;
        }
        if let (Some(o), Some(key)) = (old, &old_key) {
            counted_remove(&mut self.anniversaries, key, o.id);
        }
        if let (Some(n), Some(key)) = (new, &new_key) {
            counted_add(&mut self.anniversaries, key, first(n));
        }
    }

    fn is_empty(&self) -> bool {
        self.meetings == 0 && self.topics.is_empty() && self.anniversaries.is_empty()
    }

    /// The topics to report, most frequent first (then by key).
    fn top_topics(&self, n: usize) -> Vec<(&String, &Counted)> {
        let mut all: Vec<_> = self.topics.iter().collect();
        all.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(b.0)));
        all.truncate(n);
        all
    }

    /// Finds again, in `conn`'s view, the earliest meetings of the listed
    /// topics and anniversaries whose earliest meeting went.
    async fn find_firsts(
        &mut self,
        conn: &mut PgConnection,
        pair: (&str, &str),
        topics: &[String],
        anniversaries: &[(i32, String)],
    ) -> Result<()> {
        let missing: Vec<&String> = topics
            .iter()
            .filter(|k| self.topics.get(*k).is_some_and(|e| e.first.is_none()))
            .collect();
        if !missing.is_empty() {
            let found: Vec<(String, i64, Uuid, Option<String>)> = sqlx::query_as(FIRSTS_OF_TOPICS)
                .bind(pair.0)
                .bind(pair.1)
                .bind(&missing)
                .fetch_all(&mut *conn)
                .await?;
            if found.len() < missing.len() {
                tracing::error!(
                    pair = ?pair,
                    "a counted topic has no meeting; figures drifted"
                );
            }
            for (key, order, id, spelling) in found {
                if let Some(e) = self.topics.get_mut(&key) {
                    e.first = Some(First {
                        order,
                        id,
                        spelling: spelling.unwrap_or_else(|| key.clone()),
                    });
                }
            }
        }
        for key in anniversaries {
            let Some(e) = self.anniversaries.get_mut(key) else {
                continue;
            };
            if e.first.is_some() {
                continue;
            }
            let found: Option<(NaiveDate, Uuid)> = sqlx::query_as(FIRST_OF_ANNIVERSARY)
                .bind(pair.0)
                .bind(pair.1)
                .bind(key.0)
                .bind(&key.1)
                .fetch_optional(&mut *conn)
                .await?;
            if found.is_none() {
                tracing::error!(occasion = %key.1, "a counted anniversary has no meeting; figures drifted");
            }
            e.first = found.map(|(date, id)| First {
                order: i64::from(date.num_days_from_ce()),
                id,
                spelling: String::new(),
            });
        }
        Ok(())
    }

    /// Finds again every earliest meeting that went.
    async fn find_all_firsts(&mut self, conn: &mut PgConnection, pair: (&str, &str)) -> Result<()> {
        let topics: Vec<String> = self
            .topics
            .iter()
            .filter(|(_, e)| e.first.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        let anniversaries: Vec<(i32, String)> = self
            .anniversaries
            .iter()
            .filter(|(_, e)| e.first.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if topics.is_empty() && anniversaries.is_empty() {
            return Ok(());
        }
        self.find_firsts(conn, pair, &topics, &anniversaries).await
    }

    fn encode(&self) -> Vec<u8> {
        let first = |c: &Counted| match &c.first {
            Some(f) => (f.order, f.id.as_bytes().to_vec(), f.spelling.clone()),
            None => (0, Vec::new(), String::new()),
        };
        StoredFigures {
            meetings: self.meetings,
            years: self.years.keys().copied().collect(),
            year_counts: self.years.values().copied().collect(),
            formats: self.formats.keys().map(|f| i32::from(*f)).collect(),
            format_counts: self.formats.values().copied().collect(),
            topics: self
                .topics
                .iter()
                .map(|(key, c)| {
                    let (order, id, spelling) = first(c);
                    StoredCounted {
                        key: key.clone(),
                        year: 0,
                        count: c.count,
                        // The spelling only when it differs from the key.
                        spelling: if spelling == *key {
                            String::new()
                        } else {
                            spelling
                        },
                        first_order: order,
                        first_id: id,
                    }
                })
                .collect(),
            anniversaries: self
                .anniversaries
                .iter()
                .map(|((year, occasion), c)| {
                    let (order, id, _) = first(c);
                    StoredCounted {
                        key: occasion.clone(),
                        year: *year,
                        count: c.count,
                        spelling: String::new(),
                        first_order: order,
                        first_id: id,
                    }
                })
                .collect(),
        }
        .encode_to_vec()
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let s = StoredFigures::decode(bytes).map_err(Error::internal)?;
        let first = |c: &StoredCounted, spelling: String| {
            Uuid::from_slice(&c.first_id).ok().map(|id| First {
                order: c.first_order,
                id,
                spelling,
            })
        };
        Ok(Self {
            meetings: s.meetings,
            years: s
                .years
                .iter()
                .copied()
                .zip(s.year_counts.iter().copied())
                .collect(),
            formats: s
                .formats
                .iter()
                .map(|f| i16::try_from(*f).unwrap_or_default())
                .zip(s.format_counts.iter().copied())
                .collect(),
            topics: s
                .topics
                .iter()
                .map(|c| {
                    let spelling = if c.spelling.is_empty() {
                        c.key.clone()
                    } else {
                        c.spelling.clone()
                    };
                    (
                        c.key.clone(),
                        Counted {
                            count: c.count,
                            first: first(c, spelling),
                        },
                    )
                })
                .collect(),
            anniversaries: s
                .anniversaries
                .iter()
                .map(|c| {
                    (
                        (c.year, c.key.clone()),
                        Counted {
                            count: c.count,
                            first: first(c, String::new()),
                        },
                    )
                })
                .collect(),
        })
    }
}

/// The stored form of a pair's figures (pair_figures.figures).
#[derive(Clone, PartialEq, prost::Message)]
struct StoredFigures {
    #[prost(int64, tag = "1")]
    meetings: i64,
    #[prost(int32, repeated, tag = "2")]
    years: Vec<i32>,
    #[prost(int64, repeated, tag = "3")]
    year_counts: Vec<i64>,
    #[prost(int32, repeated, tag = "4")]
    formats: Vec<i32>,
    #[prost(int64, repeated, tag = "5")]
    format_counts: Vec<i64>,
    #[prost(message, repeated, tag = "6")]
    topics: Vec<StoredCounted>,
    #[prost(message, repeated, tag = "7")]
    anniversaries: Vec<StoredCounted>,
}

/// A stored topic (key, spelling if different) or anniversary (occasion,
/// implied year), with its earliest meeting (no id: not known).
#[derive(Clone, PartialEq, prost::Message)]
struct StoredCounted {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(int32, tag = "2")]
    year: i32,
    #[prost(int64, tag = "3")]
    count: i64,
    #[prost(string, tag = "4")]
    spelling: String,
    #[prost(int64, tag = "5")]
    first_order: i64,
    #[prost(bytes = "vec", tag = "6")]
    first_id: Vec<u8>,
}

impl Storage {
    /// Folds up to `limit` pending change rows into the pairs' figures, in
    /// one transaction (one instance at a time). How many rows it folded
    /// and how many pairs' figures it rewrote; 0 also when another
    /// instance is folding.
    pub async fn fold_pair_figures(&self, limit: i64) -> Result<(usize, usize)> {
        let mut tx = begin(&self.pool, None).await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(FIGURES_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok((0, 0));
        }
        let rows: Vec<ChangeRow> = sqlx::query_as(PENDING_CHANGES_LIMITED)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            return Ok((0, 0));
        }
        let changes = rows.iter().map(Change::of).collect::<Result<Vec<_>>>()?;
        let touched: HashSet<PairKey> = changes.iter().flat_map(Change::pairs).collect();
        let (lows, highs): (Vec<&str>, Vec<&str>) = touched
            .iter()
            .map(|(l, h)| (l.as_str(), h.as_str()))
            .unzip();
        let stored: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT f.country_low, f.country_high, f.figures \
             FROM UNNEST($1::text[], $2::text[]) AS k (low, high) \
             JOIN pair_figures f ON f.country_low = k.low AND f.country_high = k.high",
        )
        .bind(&lows)
        .bind(&highs)
        .fetch_all(&mut *tx)
        .await?;
        let mut all: HashMap<PairKey, Figures> = HashMap::with_capacity(touched.len());
        for (low, high, bytes) in stored {
            all.insert((low, high), Figures::decode(&bytes)?);
        }
        for change in &changes {
            change.apply_all(&mut all);
        }
        let mut write = (Vec::new(), Vec::new(), Vec::new());
        let mut empty = (Vec::new(), Vec::new());
        for ((low, high), mut figures) in all {
            if figures.is_empty() {
                empty.0.push(low);
                empty.1.push(high);
                continue;
            }
            figures.find_all_firsts(&mut tx, (&low, &high)).await?;
            write.2.push(figures.encode());
            write.0.push(low);
            write.1.push(high);
        }
        sqlx::query(
            "INSERT INTO pair_figures (country_low, country_high, figures) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[]) \
             ON CONFLICT (country_low, country_high) DO UPDATE SET figures = EXCLUDED.figures",
        )
        .bind(&write.0)
        .bind(&write.1)
        .bind(&write.2)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM pair_figures f USING UNNEST($1::text[], $2::text[]) AS k (low, high) \
             WHERE f.country_low = k.low AND f.country_high = k.high",
        )
        .bind(&empty.0)
        .bind(&empty.1)
        .execute(&mut *tx)
        .await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.change_id).collect();
        sqlx::query("DELETE FROM pair_figure_changes WHERE change_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((rows.len(), write.0.len() + empty.0.len()))
    }

    /// Marks the space of rewritten figures reusable (a plain VACUUM, which
    /// blocks no reader or writer), so that the next folds write into it
    /// instead of growing the table.
    pub async fn vacuum_pair_figures(&self) -> Result<()> {
        sqlx::query("VACUUM pair_figures")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Counts every stored meeting into the pair figures again, unless they
    /// were counted by this rule and these topic keys. Writers wait
    /// meanwhile (a SHARE lock on meetings), so that nothing is counted
    /// twice or missed: pending change rows are dropped, as the meetings
    /// read include them. Runs at start, before serving.
    pub async fn build_pair_figures(&self) -> Result<(), anyhow::Error> {
        const NAME: &str = "pair_figures";
        let version = FIGURES_VERSION * 100 + TOPIC_KEY_VERSION;
        if self.derived_version(NAME).await? == Some(version) {
            return Ok(());
        }
        tracing::info!("counting the pair figures of every stored meeting");
        let mut tx = begin(&self.pool, None).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(FIGURES_LOCK)
            .execute(&mut *tx)
            .await?;
        // Another instance may have counted them while this one waited.
        if derived_version_in(&mut *tx, NAME).await? == Some(version) {
            return Ok(());
        }
        sqlx::query("LOCK TABLE meetings IN SHARE MODE")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM pair_figure_changes")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM pair_figures")
            .execute(&mut *tx)
            .await?;
        let mut all: HashMap<PairKey, Figures> = HashMap::new();
        let mut meetings = 0u64;
        {
            type Columns = (
                Uuid,
                String,
                NaiveDate,
                i16,
                DateTime<Utc>,
                Option<i32>,
                Option<String>,
                String,
                Option<String>,
            );
            let mut rows = sqlx::query_as::<_, Columns>(MEETING_INPUTS).fetch(&mut *tx);
            while let Some(c) = rows.try_next().await? {
                let m = MeetingInput::new(
                    c.0,
                    &c.1,
                    c.2,
                    c.3,
                    c.4,
                    c.5,
                    c.6.as_deref(),
                    &c.7,
                    c.8.as_deref(),
                );
                for pair in m.pairs() {
                    all.entry(pair).or_default().change(None, Some(&m));
                }
                meetings += 1;
            }
        }
        let all: Vec<(PairKey, Figures)> = all.into_iter().collect();
        for chunk in all.chunks(1000) {
            let lows: Vec<&str> = chunk.iter().map(|((l, _), _)| l.as_str()).collect();
            let highs: Vec<&str> = chunk.iter().map(|((_, h), _)| h.as_str()).collect();
            let figures: Vec<Vec<u8>> = chunk.iter().map(|(_, f)| f.encode()).collect();
            sqlx::query(
                "INSERT INTO pair_figures (country_low, country_high, figures) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::bytea[])",
            )
            .bind(&lows)
            .bind(&highs)
            .bind(&figures)
            .execute(&mut *tx)
            .await?;
        }
        record_derived_version_in(&mut *tx, NAME, version).await?;
        tx.commit().await?;
        tracing::info!(meetings, pairs = all.len(), "pair figures counted");
        Ok(())
    }

    /// Counts, dates, top topics and anniversaries of a pair's meetings:
    /// the pair's stored figures plus the changes not folded yet, in one
    /// snapshot, so that they are exact and agree under writes.
    #[tracing::instrument(name = "storage.pair_summary", skip(self))]
    pub async fn pair_summary(&self, pair: PartyPair, top_topics: u32) -> Result<PairSummary> {
        let (low, high) = (pair.low().key(), pair.high().key());
        let mut tx = begin(&self.pool, Some(super::pairs::SNAPSHOT)).await?;
        let stored: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT figures FROM pair_figures WHERE country_low = $1 AND country_high = $2",
        )
        .bind(low)
        .bind(high)
        .fetch_optional(&mut *tx)
        .await?;
        let mut figures = match stored {
            Some(bytes) => Figures::decode(&bytes)?,
            None => Figures::default(),
        };
        // Only pending changes that name both parties are taken apart.
        let mut parties =
            sqlx::query_as::<_, (i64, Vec<String>, Vec<String>)>(PENDING_PARTIES).fetch(&mut *tx);
        let mut naming = Vec::new();
        while let Some((id, codes, removed_codes)) = parties.try_next().await? {
            if names_pair(&codes, low, high) || names_pair(&removed_codes, low, high) {
                naming.push(id);
            }
        }
        drop(parties);
        if !naming.is_empty() {
            let rows: Vec<ChangeRow> = sqlx::query_as(CHANGES_BY_ID)
                .bind(&naming)
                .fetch_all(&mut *tx)
                .await?;
            for row in &rows {
                Change::of(row)?.apply_to((low, high), &mut figures);
            }
        }
        // The two ends of the pair index.
        let (first, last): (Option<NaiveDate>, Option<NaiveDate>) = sqlx::query_as(
            "SELECT min(date), max(date) FROM meeting_country_pairs \
             WHERE country_low = $1 AND country_high = $2",
        )
        .bind(low)
        .bind(high)
        .fetch_one(&mut *tx)
        .await?;
        let counts = PairCounts {
            count: figures.meetings,
            first,
            last,
        };
        let top: Vec<String> = figures
            .top_topics(top_topics as usize)
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect();
        let anniversaries: Vec<(i32, String)> = figures
            .anniversaries
            .keys()
            .take(MAX_ANNIVERSARIES)
            .cloned()
            .collect();
        figures
            .find_firsts(&mut tx, (low, high), &top, &anniversaries)
            .await?;
        tx.commit().await?;
        Ok(summary_of(&figures, counts, &top, &anniversaries))
    }
}

/// The summary of `figures`: the listed topics and anniversaries, in order.
fn summary_of(
    figures: &Figures,
    counts: PairCounts,
    topics: &[String],
    anniversaries: &[(i32, String)],
) -> PairSummary {
    PairSummary {
        counts,
        topics: topics
            .iter()
            .filter_map(|k| {
                let c = figures.topics.get(k)?;
                Some(TopicCount {
                    topic: c
                        .first
                        .as_ref()
                        .map_or_else(|| k.clone(), |f| f.spelling.clone()),
                    meetings: c.count,
                })
            })
            .collect(),
        anniversaries: anniversaries
            .iter()
            .filter_map(|k| {
                let c = figures.anniversaries.get(k)?;
                Some(AnniversaryCount {
                    occasion: k.1.clone(),
                    since_year: k.0,
                    meetings: c.count,
                    meeting_id: c.first.as_ref().map_or(Uuid::nil(), |f| f.id),
                })
            })
            .collect(),
        years: figures
            .years
            .iter()
            .map(|(year, n)| YearCount {
                year: *year,
                meetings: *n,
            })
            .collect(),
        formats: figures
            .formats
            .iter()
            .map(|(format, n)| FormatCount {
                format: *format,
                meetings: *n,
            })
            .collect(),
    }
}
