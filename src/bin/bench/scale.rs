//! `--scale N`: the reads of a realistic archive as it grows. The archive
//! is generated here, deterministic for a seed: about 190 countries whose
//! popularity falls as 1/rank, 15% of meetings multilateral (3 to 10
//! countries), dates from 1946 to 2025 with more meetings in later years,
//! 2 to 8 topics from a vocabulary of 300 whose use falls as 1/rank, and
//! summaries of 30 to 110 words. It is stored through ImportMeetings on a
//! database and service of its own, vacuumed at 10,000, 100,000 and N
//! meetings, and at each size every read is timed (p50 and p99 of a
//! series of calls) and the database's bytes a meeting are given per table
//! and index.

use std::collections::HashMap;

#[allow(unused_imports)]
use super::*;

/// SplitMix64: a few lines, fast, and the same sequence for a seed on
/// every machine, which is all a generator of test data needs.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

/// Picks ranks 0..n with weight 1/(rank + 1), by a cumulative table.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize) -> Self {
        let mut total = 0.0;
        Self(
            (0..n)
                .map(|r| {
                    total += 1.0 / (r as f64 + 1.0);
                    total
                })
                .collect(),
        )
    }

    fn pick(&self, rng: &mut Rng) -> usize {
        let total = self.0.last().copied().unwrap_or(1.0);
        let x = (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        self.0.partition_point(|&c| c < x).min(self.0.len() - 1)
    }
}

const THEMES: [&str; 30] = [
    "energy",
    "trade",
    "security",
    "investment",
    "education",
    "health",
    "climate",
    "agriculture",
    "transport",
    "tourism",
    "culture",
    "defence",
    "migration",
    "science",
    "technology",
    "water",
    "finance",
    "customs",
    "fisheries",
    "space",
    "cyber",
    "justice",
    "labour",
    "sport",
    "media",
    "humanitarian aid",
    "demining",
    "nuclear",
    "maritime",
    "digital economy",
];
const FACETS: [&str; 10] = [
    "cooperation",
    "agreements",
    "projects",
    "dialogue",
    "policy",
    "partnership",
    "standards",
    "forum",
    "programme",
    "commission",
];
const WORDS: [&str; 40] = [
    "the",
    "sides",
    "discussed",
    "cooperation",
    "bilateral",
    "relations",
    "prospects",
    "development",
    "regional",
    "issues",
    "noted",
    "importance",
    "agreed",
    "continue",
    "mutual",
    "interest",
    "exchanged",
    "views",
    "international",
    "organizations",
    "within",
    "framework",
    "meeting",
    "visit",
    "ministers",
    "strengthening",
    "economic",
    "ties",
    "expressed",
    "support",
    "signed",
    "memorandum",
    "understanding",
    "joint",
    "efforts",
    "peace",
    "stability",
    "region",
    "expanding",
    "partnership",
];
const TITLES: [&str; 5] = [
    "President",
    "Prime Minister",
    "Minister of Foreign Affairs",
    "Deputy Minister of Foreign Affairs",
    "Ambassador",
];
const FIRST_YEAR: i32 = 1946;
const LAST_YEAR: i32 = 2025;

/// The archive's generator: its vocabularies, and what it made so far.
pub(crate) struct Archive {
    rng: Rng,
    countries: Vec<&'static str>,
    country_pick: Zipf,
    topics: Vec<String>,
    topic_pick: Zipf,
    word_pick: Zipf,
    /// Meetings generated so far.
    made: usize,
    /// Meetings of each pair of countries (low, high).
    pair_counts: HashMap<(&'static str, &'static str), usize>,
    /// Meetings of each country.
    country_counts: HashMap<&'static str, usize>,
}

impl Archive {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        // About 190 of today's countries, in an order the seed fixes: the
        // first are the most popular.
        let mut countries: Vec<&'static str> = rust_iso3166::ALL
            .iter()
            .map(|c| c.alpha2)
            .filter(|c| *c != "AQ" && *c != "UM")
            .collect();
        countries.sort_unstable();
        for i in (1..countries.len()).rev() {
            countries.swap(i, rng.below(i + 1));
        }
        countries.truncate(190);
        let topics: Vec<String> = THEMES
            .iter()
            .flat_map(|t| FACETS.iter().map(move |f| format!("{t} {f}")))
            .collect();
        Self {
            country_pick: Zipf::new(countries.len()),
            topic_pick: Zipf::new(topics.len()),
            word_pick: Zipf::new(WORDS.len()),
            countries,
            topics,
            rng,
            made: 0,
            pair_counts: HashMap::new(),
            country_counts: HashMap::new(),
        }
    }

    /// The next `n` meetings.
    pub(crate) fn take(&mut self, n: usize) -> Vec<pb::Meeting> {
        (0..n).map(|_| self.meeting()).collect()
    }

    fn meeting(&mut self) -> pb::Meeting {
        let i = self.made;
        self.made += 1;
        let party_count = if self.rng.below(100) < 15 {
            self.rng.between(3, 10)
        } else {
            2
        };
        let mut parties: Vec<&'static str> = Vec::with_capacity(party_count);
        while parties.len() < party_count {
            let c = self.countries[self.country_pick.pick(&mut self.rng)];
            if !parties.contains(&c) {
                parties.push(c);
            }
        }
        for (k, a) in parties.iter().enumerate() {
            *self.country_counts.entry(a).or_default() += 1;
            for b in &parties[k + 1..] {
                let key = if a < b { (*a, *b) } else { (*b, *a) };
                *self.pair_counts.entry(key).or_default() += 1;
            }
        }
        // Later years hold more meetings: weight (year - 1940).
        let years = (FIRST_YEAR..=LAST_YEAR).map(|y| (y - 1940) as usize);
        let total: usize = years.clone().sum();
        let mut x = self.rng.below(total);
        let mut year = FIRST_YEAR;
        for (y, w) in (FIRST_YEAR..).zip(years) {
            if x < w {
                year = y;
                break;
            }
            x -= w;
        }
        let date = NaiveDate::from_ymd_opt(year, 1, 1).expect("a valid year")
            + chrono::Days::new(self.rng.below(365) as u64);
        let mut topics: Vec<String> = Vec::new();
        for _ in 0..self.rng.between(2, 8) {
            let t = &self.topics[self.topic_pick.pick(&mut self.rng)];
            if !topics.contains(t) {
                topics.push(t.clone());
            }
        }
        let words = self.rng.between(30, 110);
        let summary = (0..words)
            .map(|_| WORDS[self.word_pick.pick(&mut self.rng)])
            .collect::<Vec<_>>()
            .join(" ");
        let participants = parties
            .iter()
            .map(|c| pb::Participant {
                // Office holders recur: a pool of 40 names a country.
                name: format!("Person {} of {c}", self.rng.below(40)),
                title: TITLES[self.rng.below(TITLES.len())].into(),
                country_code: (*c).into(),
                ..Default::default()
            })
            .collect();
        pb::Meeting {
            date: date.to_string(),
            location: Some(pb::Location {
                city: format!("Capital of {}", parties[0]),
                country_code: parties[0].into(),
            }),
            participants,
            anniversary: (self.rng.below(100) < 3).then(|| pb::Anniversary {
                years: 5 * self.rng.between(1, 10) as u32,
                occasion: "establishment of diplomatic relations".into(),
            }),
            topics,
            summary,
            sources: vec![pb::Source {
                name: format!("Outlet {}", self.rng.below(20)),
                url: format!("https://outlet-{}.example/{i}", self.rng.below(20)),
            }],
            ..Default::default()
        }
    }

    /// The pair with the most meetings so far.
    fn biggest_pair(&self) -> (&'static str, &'static str) {
        self.pair_counts
            .iter()
            .max_by_key(|(pair, n)| (**n, std::cmp::Reverse(**pair)))
            .map(|(pair, _)| *pair)
            .unwrap_or(("AZ", "JP"))
    }

    /// The country with the most meetings, and one with the fewest (at
    /// least one).
    fn countries_by_use(&self) -> (&'static str, &'static str) {
        let most = self
            .country_counts
            .iter()
            .max_by_key(|(c, n)| (**n, std::cmp::Reverse(**c)))
            .map_or("US", |(c, _)| *c);
        let fewest = self
            .country_counts
            .iter()
            .min_by_key(|(c, n)| (**n, **c))
            .map_or("TV", |(c, _)| *c);
        (most, fewest)
    }
}

/// Calls a read timed at each size.
const SAMPLES: usize = 21;

impl Bench {
    /// Builds the archive of `n` meetings on a database and service of its
    /// own, and times the reads at each size.
    pub(crate) async fn scale(&mut self, n: usize) -> anyhow::Result<()> {
        let db = Database::fresh().await?;
        let storage = Storage::connect(
            db.options.clone(),
            &PoolSettings {
                max_connections: 4,
                acquire_timeout: Duration::from_secs(60),
            },
            None,
        )
        .await?;
        let server = Server::spawn(&db.options).await?;
        let channel = server.channel().await?;
        let mut client = pb::meeting_service_client::MeetingServiceClient::new(channel)
            .max_decoding_message_size(64 << 20);
        let mut archive = Archive::new(20_260_101);
        let mut sizes: Vec<usize> = [10_000, 100_000, n]
            .into_iter()
            .filter(|s| *s <= n)
            .collect();
        sizes.dedup();
        let started = Instant::now();
        for size in sizes {
            while archive.made < size {
                let chunk = archive.take((size - archive.made).min(50_000));
                run_import_with(server.addr(), chunk, pb::DuplicatePolicy::Keep).await?;
            }
            // The pair figures take in the import's last changes in the
            // background; the reads below measure the settled archive.
            let imported = Instant::now();
            while sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT FROM pair_figure_changes)")
                .fetch_one(storage.pool())
                .await?
            {
                // A fold that never catches up is a failure, not a hang.
                anyhow::ensure!(
                    imported.elapsed() < Duration::from_secs(600),
                    "the pair figures' fold did not catch up within 10 minutes"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            println!(
                "scale: pair figures folded {:.1} s after the import ended",
                imported.elapsed().as_secs_f64()
            );
            sqlx::query("VACUUM ANALYZE")
                .execute(storage.pool())
                .await?;
            println!(
                "scale: {size} meetings stored and vacuumed after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            self.scale_reads(size, &archive, &mut client, &storage)
                .await?;
            self.scale_bytes(size, &storage).await?;
        }
        server.stop();
        storage.pool().close().await;
        db.drop().await;
        Ok(())
    }

    async fn scale_reads(
        &mut self,
        size: usize,
        archive: &Archive,
        client: &mut pb::meeting_service_client::MeetingServiceClient<Channel>,
        storage: &Storage,
    ) -> anyhow::Result<()> {
        let (a, b) = archive.biggest_pair();
        let (busiest, rarest) = archive.countries_by_use();
        let topic = archive.topics[0].clone();
        let ids: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM meetings ORDER BY md5(id::text) LIMIT $1")
                .bind(SAMPLES as i64)
                .fetch_all(storage.pool())
                .await?;
        let list = |country: &str, topic: &str, query: &str, token: &str| pb::ListMeetingsRequest {
            page_size: 50,
            page_token: token.into(),
            country_code: country.into(),
            topic: topic.into(),
            query: query.into(),
            ..Default::default()
        };
        // Page 100 of the busiest country: its token, reached page by page.
        let mut token = String::new();
        for _ in 1..100 {
            let page = client
                .list_meetings(list(busiest, "", "", &token))
                .await?
                .into_inner();
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        let mut row = |what: String, times: Vec<f64>| {
            let (p50, p99) = percentiles(times);
            self.report
                .add_latency(&format!("{what}, {size} meetings"), p50, p99);
        };

        let mut times = Vec::new();
        for _ in 0..SAMPLES {
            let t = Instant::now();
            client
                .get_country_pair_summary(pb::GetCountryPairSummaryRequest {
                    country_a: a.into(),
                    country_b: b.into(),
                    ..Default::default()
                })
                .await?;
            times.push(ms(t));
        }
        row(
            format!("GetCountryPairSummary, biggest pair {a}-{b}"),
            times,
        );

        for (what, request) in [
            (
                format!("ListMeetings {busiest}, page 1"),
                list(busiest, "", "", ""),
            ),
            (
                format!("ListMeetings {busiest}, page 100"),
                list(busiest, "", "", &token),
            ),
            (
                format!("ListMeetings {rarest} (fewest meetings)"),
                list(rarest, "", "", ""),
            ),
            (
                format!("ListMeetings {busiest} and a topic"),
                list(busiest, &topic, "", ""),
            ),
            (
                "ListMeetings, search \"memorandum\"".to_owned(),
                list("", "", "memorandum", ""),
            ),
        ] {
            let mut times = Vec::new();
            for _ in 0..SAMPLES {
                let t = Instant::now();
                client.list_meetings(request.clone()).await?;
                times.push(ms(t));
            }
            row(what, times);
        }

        let mut times = Vec::new();
        for id in &ids {
            let t = Instant::now();
            client
                .get_meeting(pb::GetMeetingRequest { id: id.to_string() })
                .await?;
            times.push(ms(t));
        }
        row("GetMeeting".to_owned(), times);

        let mut times = Vec::new();
        for _ in 0..SAMPLES {
            let t = Instant::now();
            let mut stream = client
                .stream_meetings_by_country_pair(pb::StreamMeetingsByCountryPairRequest {
                    country_a: a.into(),
                    country_b: b.into(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            stream.message().await?;
            times.push(ms(t));
        }
        row(
            format!("StreamMeetingsByCountryPair {a}-{b}, first record"),
            times,
        );
        Ok(())
    }

    /// Bytes a meeting in each table (with its TOAST) and index.
    async fn scale_bytes(&mut self, size: usize, storage: &Storage) -> anyhow::Result<()> {
        let relations: Vec<(String, i64)> = sqlx::query_as(
            "SELECT c.relname::text, \
                    CASE c.relkind WHEN 'i' THEN pg_relation_size(c.oid) \
                         ELSE pg_relation_size(c.oid) + coalesce(pg_total_relation_size(c.reltoastrelid), 0) END \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 'p') \
             ORDER BY 2 DESC",
        )
        .fetch_all(storage.pool())
        .await?;
        let total: i64 = relations.iter().map(|(_, b)| b).sum();
        let (pairs, live): (i64, Option<i64>) =
            sqlx::query_as("SELECT count(*), sum(pg_column_size(figures))::int8 FROM pair_figures")
                .fetch_one(storage.pool())
                .await?;
        println!(
            "scale: {pairs} pairs with figures, {} bytes of live figures",
            live.unwrap_or(0)
        );
        self.report.add_figure(
            &format!("database bytes a meeting, {size} meetings"),
            total as f64 / size as f64,
            "B",
        );
        // Tables and indexes of at least 0.5% of the whole; the rest are
        // small tables of a few pages.
        for (name, bytes) in relations.iter().filter(|(_, b)| *b * 200 >= total) {
            self.report.add_figure(
                &format!("  {name}, {size} meetings"),
                *bytes as f64 / size as f64,
                "B",
            );
        }
        Ok(())
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// p50 and p99 of a series of times.
fn percentiles(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}
