//! The sandbox account: teammates, pending invitations, daily global stats and the credit
//! balance, generated deterministically, and the ground truth derived from the same data.
//!
//! A small SplitMix64 generator is used instead of `rand`'s `StdRng`, whose algorithm may
//! change between `rand` releases: the same seed must give the same account forever.
//!
//! Stats are coherent the way SendGrid's are: `requests` = `processed` + the drops
//! (`invalid_emails`, `bounce_drops`, `spam_report_drops`, `unsubscribe_drops`);
//! `delivered` = `processed` − `bounces` − `blocks`; `deferred` counts deferral events of
//! processed mail (not exclusive); `unique_opens` ≤ `delivered`, `opens` ≥ `unique_opens`,
//! `unique_clicks` ≤ `unique_opens`, `clicks` ≥ `unique_clicks`; `spam_reports` and
//! `unsubscribes` ≤ `delivered`.

use std::collections::HashSet;

use time::{Date, Month, Time, Weekday};

use super::{
    SendGridConfig, SendGridCreditsTruth, SendGridDayTruth, SendGridGroundTruth, SendGridMetrics,
    SendGridSeatTruth,
};
use crate::seeded::{apportion_positive as apportion, format_date, Prng};

/// An independent stream for `(seed, a, b)`, apart from the other sandboxes' streams.
fn stream(seed: u64, a: u64, b: u64) -> Prng {
    Prng::salted(0x5E4D_6121_D0C5_0001, seed, a, b)
}

pub(crate) struct Teammate {
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// `owner`, `admin` or `teammate`.
    pub user_type: &'static str,
    pub phone: String,
    pub website: String,
    pub address: String,
    pub address2: String,
    pub city: String,
    pub state: String,
    pub zip: String,
    pub country: String,
}

impl Teammate {
    pub fn is_admin(&self) -> bool {
        self.user_type != "teammate"
    }
}

pub(crate) struct Invite {
    pub email: String,
    pub scopes: Vec<String>,
    pub is_admin: bool,
    pub token: String,
    /// Unix epoch seconds; invitations are valid for 7 days.
    pub expiration_date: i64,
}

pub(crate) struct Dataset {
    /// The owner's numeric user id (`GET /v3/user/username`).
    pub user_id: u64,
    /// In `/v3/teammates` order: the owner first, then by username.
    pub teammates: Vec<Teammate>,
    pub pending: Vec<Invite>,
    /// First day of the stats range; `daily[i]` is `first_day + i days`.
    pub first_day: Date,
    pub daily: Vec<SendGridMetrics>,
    pub credits: SendGridCreditsTruth,
}

const FIRST_NAMES: [&str; 36] = [
    "Alma", "Bastian", "Celeste", "Dario", "Edda", "Fabian", "Gilda", "Henrik", "Ilse", "Joaquin",
    "Kaia", "Lorenzo", "Malin", "Nils", "Oona", "Pablo", "Rhea", "Sven", "Thea", "Ulric",
    "Valeria", "Wim", "Yara", "Zeno", "Anouk", "Bodhi", "Clio", "Dag", "Esme", "Florin", "Gaia",
    "Hamid", "Isak", "Juno", "Kofi", "Lena",
];

const LAST_NAMES: [&str; 36] = [
    "Aalto", "Brandt", "Cordero", "Dahl", "Esposito", "Falk", "Gallo", "Holm", "Iversen", "Jaeger",
    "Kovac", "Laine", "Marino", "Nygaard", "Olsen", "Pajari", "Quaresma", "Ruiz", "Sandberg",
    "Toivonen", "Uribe", "Vidal", "Wolff", "Ystad", "Zanetti", "Arnesen", "Bianchi", "Carvalho",
    "Dufour", "Engel", "Fontaine", "Greco", "Hakala", "Ibsen", "Janssen", "Koch",
];

/// (account username, domain, website, address, city, state, zip, country); all fictional.
type Company = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const COMPANIES: [Company; 4] = [
    (
        "northwind-mail",
        "northwind.example",
        "https://northwind.example",
        "1200 Larkspur Ave",
        "Denver",
        "CO",
        "80202",
        "US",
    ),
    (
        "lumen-outreach",
        "lumen.example",
        "https://lumen.example",
        "88 Harbor Road",
        "Portland",
        "OR",
        "97201",
        "US",
    ),
    (
        "kestrel-notify",
        "kestrel.example",
        "https://kestrel.example",
        "7 Mill Lane",
        "Austin",
        "TX",
        "73301",
        "US",
    ),
    (
        "tidewater-send",
        "tidewater.example",
        "https://tidewater.example",
        "401 Quay Street",
        "Boston",
        "MA",
        "02110",
        "US",
    ),
];

/// Scopes offered to a non-admin invitee (SendGrid permission names).
const INVITE_SCOPES: [&str; 4] = [
    "mail.send",
    "stats.read",
    "templates.read",
    "user.profile.read",
];

const INVITE_DAYS: i64 = 7;

impl Dataset {
    pub fn generate(config: &SendGridConfig) -> Dataset {
        let seed = config.seed;
        let mut rng = stream(seed, 0x5E4D_0001, 0);
        let company = rng.pick(&COMPANIES);
        let user_id = 1_000_000 + rng.below(9_000_000);
        let teammates = generate_teammates(config, &mut rng, company);
        let pending = generate_invites(config, &mut rng, company, &teammates);
        let (first_day, daily) = generate_daily(config);
        let credits = credits(config, first_day, &daily);
        Dataset {
            user_id,
            teammates,
            pending,
            first_day,
            daily,
            credits,
        }
    }

    pub fn owner(&self) -> &Teammate {
        &self.teammates[0]
    }

    /// The metrics of `date`: zeros outside the generated range.
    pub fn metrics_on(&self, date: Date) -> SendGridMetrics {
        let index = (date - self.first_day).whole_days();
        if index < 0 {
            return SendGridMetrics::default();
        }
        self.daily.get(index as usize).copied().unwrap_or_default()
    }

    pub fn ground_truth(&self) -> SendGridGroundTruth {
        let mut seats: Vec<SendGridSeatTruth> = self
            .teammates
            .iter()
            .map(|t| SendGridSeatTruth {
                id: t.username.clone(),
                email: t.email.clone(),
                name: format!("{} {}", t.first_name, t.last_name),
                role: t.user_type.to_string(),
                invited: false,
            })
            .collect();
        seats.extend(self.pending.iter().map(|i| SendGridSeatTruth {
            id: i.email.clone(),
            email: i.email.clone(),
            name: i.email.clone(),
            role: "invited".to_string(),
            invited: true,
        }));
        let daily = self
            .daily
            .iter()
            .enumerate()
            .map(|(i, metrics)| SendGridDayTruth {
                date: format_date(self.first_day + time::Duration::days(i as i64)),
                metrics: *metrics,
            })
            .collect();
        SendGridGroundTruth {
            seats,
            daily,
            credits: self.credits.clone(),
        }
    }
}

fn generate_teammates(config: &SendGridConfig, rng: &mut Prng, company: Company) -> Vec<Teammate> {
    let (account, domain, website, address, city, state, zip, country) = company;
    let n = config.teammates as usize;
    // A few admins: about one in six teammates, at least one once there are two people.
    let admins = if n < 2 { 0 } else { (n / 6).clamp(1, 25) };
    let mut usernames = HashSet::new();
    let mut people = Vec::with_capacity(n);
    for i in 0..n {
        let first = rng.pick(&FIRST_NAMES);
        let last = rng.pick(&LAST_NAMES);
        let base = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
        let username = if i == 0 {
            // The owner's username is the account's (what `/v3/user/username` returns).
            account.to_string()
        } else if usernames.contains(&base) {
            format!("{base}{}", i + 1)
        } else {
            base
        };
        usernames.insert(username.clone());
        let local = if i == 0 {
            format!("{}.{}", first.to_lowercase(), last.to_lowercase())
        } else {
            username.clone()
        };
        let user_type = match i {
            0 => "owner",
            _ if i <= admins => "admin",
            _ => "teammate",
        };
        // Optional profile fields: SendGrid returns "" for the ones a teammate never set.
        let has_phone = i == 0 || rng.chance(0.6);
        let phone = if has_phone {
            format!("555-01{:02}", rng.below(100))
        } else {
            String::new()
        };
        let full_profile = i == 0 || rng.chance(0.5);
        let field = |value: &str| {
            if full_profile {
                value.to_string()
            } else {
                String::new()
            }
        };
        people.push(Teammate {
            email: format!("{local}@{domain}"),
            username,
            first_name: first.to_string(),
            last_name: last.to_string(),
            user_type,
            phone,
            website: field(website),
            address: field(address),
            address2: if full_profile && rng.chance(0.3) {
                format!("Suite {}", 100 + rng.below(800))
            } else {
                String::new()
            },
            city: field(city),
            state: field(state),
            zip: field(zip),
            country: field(country),
        });
    }
    // The owner first, then by username.
    people[1..].sort_by(|a, b| a.username.cmp(&b.username));
    for (i, email) in &config.shared_emails {
        if let Some(teammate) = people.get_mut(*i as usize) {
            teammate.email = email.clone();
        }
    }
    people
}

fn generate_invites(
    config: &SendGridConfig,
    rng: &mut Prng,
    company: Company,
    teammates: &[Teammate],
) -> Vec<Invite> {
    let domain = company.1;
    let taken: HashSet<&str> = teammates.iter().map(|t| t.email.as_str()).collect();
    let end = config
        .end_date
        .with_time(Time::from_hms(12, 0, 0).unwrap_or(Time::MIDNIGHT))
        .assume_utc();
    let mut emails = HashSet::new();
    (0..config.pending_invites as usize)
        .map(|i| {
            let first = rng.pick(&FIRST_NAMES).to_lowercase();
            let last = rng.pick(&LAST_NAMES).to_lowercase();
            // Half of the invitees are outside the company (contractors, agencies).
            let host = if i % 2 == 0 { domain } else { "agency.example" };
            let mut email = format!("{first}.{last}@{host}");
            if taken.contains(email.as_str()) || emails.contains(&email) {
                email = format!("{first}.{last}{}@{host}", i + 1);
            }
            emails.insert(email.clone());
            let is_admin = i % 2 == 1;
            let scopes = if is_admin {
                // An admin invitation gets every scope on acceptance; SendGrid lists none.
                Vec::new()
            } else {
                INVITE_SCOPES.iter().map(|s| s.to_string()).collect()
            };
            // Sent within the last week before end_date's noon, so still valid then.
            let sent = end - time::Duration::seconds(rng.below(6 * 86_400) as i64);
            Invite {
                email,
                scopes,
                is_admin,
                token: rng.hex(32),
                expiration_date: (sent + time::Duration::days(INVITE_DAYS)).unix_timestamp(),
            }
        })
        .collect()
}

fn generate_daily(config: &SendGridConfig) -> (Date, Vec<SendGridMetrics>) {
    let days = config.days as usize;
    let first_day = config.end_date - time::Duration::days(config.days as i64 - 1);
    let dates: Vec<Date> = (0..days)
        .map(|i| first_day + time::Duration::days(i as i64))
        .collect();
    let seed = config.seed;
    let mut factors: Vec<f64> = dates
        .iter()
        .map(|date| {
            let mut r = stream(seed, date.to_julian_day() as u64, 1);
            // A few days send nothing at all (a paused campaign, a holiday).
            if r.chance(0.07) {
                return 0.0;
            }
            let weekend = matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday);
            (if weekend { 0.45 } else { 1.0 }) * (0.7 + 0.6 * r.unit())
        })
        .collect();
    if factors.iter().all(|f| *f == 0.0) {
        factors.iter_mut().for_each(|f| *f = 1.0);
    }
    let total = u64::from(config.emails_per_day) * days as u64;
    let requests = apportion(total, &factors);
    let daily = dates
        .iter()
        .zip(requests)
        .map(|(date, r)| {
            let mut rng = stream(seed, date.to_julian_day() as u64, 2);
            day_metrics(&mut rng, r)
        })
        .collect();
    (first_day, daily)
}

fn day_metrics(rng: &mut Prng, requests: u64) -> SendGridMetrics {
    let invalid_emails = rng.part(requests, 0.001, 0.006);
    let bounce_drops = rng.part(requests, 0.002, 0.008);
    let spam_report_drops = rng.part(requests, 0.0, 0.002);
    let unsubscribe_drops = rng.part(requests, 0.0, 0.004);
    let processed =
        requests - invalid_emails - bounce_drops - spam_report_drops - unsubscribe_drops;
    let bounces = rng.part(processed, 0.005, 0.02);
    let blocks = rng.part(processed, 0.002, 0.01);
    let delivered = processed - bounces - blocks;
    let deferred = rng.part(processed, 0.01, 0.05);
    let unique_opens = rng.part(delivered, 0.15, 0.35);
    let opens = unique_opens + rng.part(unique_opens, 0.2, 0.8);
    let unique_clicks = rng.part(unique_opens, 0.1, 0.3);
    let clicks = unique_clicks + rng.part(unique_clicks, 0.1, 0.6);
    let spam_reports = rng.part(delivered, 0.0, 0.001);
    let unsubscribes = rng.part(delivered, 0.001, 0.004);
    SendGridMetrics {
        blocks,
        bounce_drops,
        bounces,
        clicks,
        deferred,
        delivered,
        invalid_emails,
        opens,
        processed,
        requests,
        spam_report_drops,
        spam_reports,
        unique_clicks,
        unique_opens,
        unsubscribe_drops,
        unsubscribes,
    }
}

/// The first day of `date`'s month and of the next month.
pub(crate) fn month_bounds(date: Date) -> (Date, Date) {
    let start = date.replace_day(1).unwrap_or(date);
    let (year, month) = match date.month() {
        Month::December => (date.year() + 1, Month::January),
        m => (date.year(), m.next()),
    };
    let next = Date::from_calendar_date(year, month, 1).unwrap_or(start);
    (start, next)
}

fn credits(
    config: &SendGridConfig,
    first_day: Date,
    daily: &[SendGridMetrics],
) -> SendGridCreditsTruth {
    let (last_reset, next_reset) = month_bounds(config.end_date);
    let used: u64 = daily
        .iter()
        .enumerate()
        .filter(|(i, _)| first_day + time::Duration::days(*i as i64) >= last_reset)
        .map(|(_, m)| m.requests)
        .sum();
    let total = config.monthly_credits;
    SendGridCreditsTruth {
        total,
        used,
        remain: total.saturating_sub(used),
        overage: used.saturating_sub(total),
        last_reset: format_date(last_reset),
        next_reset: format_date(next_reset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn config(seed: u64) -> SendGridConfig {
        SendGridConfig {
            seed,
            end_date: date!(2026 - 03 - 31),
            ..SendGridConfig::default()
        }
    }

    #[test]
    fn same_config_gives_identical_data() {
        let a = Dataset::generate(&config(7));
        let b = Dataset::generate(&config(7));
        assert_eq!(a.ground_truth(), b.ground_truth());
        assert_eq!(a.user_id, b.user_id);
        let tokens = |d: &Dataset| {
            d.pending
                .iter()
                .map(|i| i.token.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(tokens(&a), tokens(&b));
    }

    #[test]
    fn a_different_seed_gives_different_data() {
        let a = Dataset::generate(&config(7)).ground_truth();
        let b = Dataset::generate(&config(8)).ground_truth();
        assert_ne!(a.seats, b.seats);
        assert_ne!(a.daily, b.daily);
    }

    #[test]
    fn requests_total_exactly_emails_per_day_times_days_and_metrics_are_coherent() {
        let cfg = config(42);
        let truth = Dataset::generate(&cfg).ground_truth();
        assert_eq!(truth.daily.len(), cfg.days as usize);
        assert_eq!(truth.daily[0].date, "2026-03-02");
        assert_eq!(truth.daily[29].date, "2026-03-31");
        let sum: u64 = truth.daily.iter().map(|d| d.metrics.requests).sum();
        assert_eq!(sum, u64::from(cfg.emails_per_day) * u64::from(cfg.days));
        for d in &truth.daily {
            let m = d.metrics;
            assert_eq!(
                m.requests,
                m.processed
                    + m.invalid_emails
                    + m.bounce_drops
                    + m.spam_report_drops
                    + m.unsubscribe_drops,
                "{d:?}"
            );
            assert_eq!(m.delivered, m.processed - m.bounces - m.blocks, "{d:?}");
            assert!(m.deferred <= m.processed);
            assert!(m.unique_opens <= m.delivered && m.opens >= m.unique_opens);
            assert!(m.unique_clicks <= m.unique_opens && m.clicks >= m.unique_clicks);
            assert!(m.spam_reports <= m.delivered && m.unsubscribes <= m.delivered);
        }
        assert!(
            truth.daily.iter().any(|d| d.metrics.requests == 0),
            "some days send nothing"
        );
        assert!(truth.daily.iter().any(|d| d.metrics.clicks > 0));
    }

    #[test]
    fn seats_have_one_owner_a_few_admins_teammates_and_the_invites() {
        let cfg = config(3);
        let data = Dataset::generate(&cfg);
        let truth = data.ground_truth();
        let count = |role: &str| truth.seats.iter().filter(|s| s.role == role).count();
        assert_eq!(count("owner"), 1);
        assert_eq!(truth.seats[0].role, "owner");
        assert!((1..=5).contains(&count("admin")));
        assert!(count("teammate") >= 5);
        assert_eq!(count("invited"), 2);
        assert_eq!(
            truth.seats.len(),
            (cfg.teammates + cfg.pending_invites) as usize
        );
        let ids: HashSet<&str> = truth.seats.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), truth.seats.len());
        let emails: HashSet<&str> = truth.seats.iter().map(|s| s.email.as_str()).collect();
        assert_eq!(emails.len(), truth.seats.len());
        assert!(data.teammates[1..]
            .windows(2)
            .all(|w| w[0].username < w[1].username));
        assert!(data.pending.iter().all(|i| i.token.len() == 32));
        let noon = date!(2026 - 03 - 31)
            .with_time(Time::from_hms(12, 0, 0).unwrap())
            .assume_utc()
            .unix_timestamp();
        assert!(data
            .pending
            .iter()
            .all(|i| i.expiration_date > noon && i.expiration_date <= noon + 7 * 86_400));
    }

    #[test]
    fn usernames_stay_unique_with_many_teammates() {
        let cfg = SendGridConfig {
            teammates: 3_000,
            ..config(5)
        };
        let truth = Dataset::generate(&cfg).ground_truth();
        let ids: HashSet<&str> = truth.seats.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), truth.seats.len());
    }

    #[test]
    fn credits_count_this_months_requests() {
        let cfg = SendGridConfig {
            days: 45,
            ..config(9)
        };
        let data = Dataset::generate(&cfg);
        let truth = data.ground_truth();
        let march: u64 = truth
            .daily
            .iter()
            .filter(|d| d.date.starts_with("2026-03-"))
            .map(|d| d.metrics.requests)
            .sum();
        assert!(truth.daily.iter().any(|d| d.date.starts_with("2026-02-")));
        assert_eq!(truth.credits.used, march);
        assert_eq!(truth.credits.total, 100_000);
        assert_eq!(truth.credits.remain, 100_000u64.saturating_sub(march));
        assert_eq!(truth.credits.overage, march.saturating_sub(100_000));
        assert_eq!(truth.credits.last_reset, "2026-03-01");
        assert_eq!(truth.credits.next_reset, "2026-04-01");
        let heavy = Dataset::generate(&SendGridConfig {
            emails_per_day: 10_000,
            ..cfg
        })
        .ground_truth();
        assert!(heavy.credits.overage > 0 && heavy.credits.remain == 0);
    }

    #[test]
    fn month_bounds_cross_the_year() {
        assert_eq!(
            month_bounds(date!(2025 - 12 - 15)),
            (date!(2025 - 12 - 01), date!(2026 - 01 - 01))
        );
        assert_eq!(
            month_bounds(date!(2026 - 02 - 28)),
            (date!(2026 - 02 - 01), date!(2026 - 03 - 01))
        );
    }

    #[test]
    fn metrics_outside_the_range_are_zero_and_zero_days_work() {
        let data = Dataset::generate(&config(1));
        assert_eq!(
            data.metrics_on(date!(2026 - 01 - 01)),
            SendGridMetrics::default()
        );
        assert_eq!(
            data.metrics_on(date!(2026 - 04 - 01)),
            SendGridMetrics::default()
        );
        let empty = Dataset::generate(&SendGridConfig {
            days: 0,
            ..config(1)
        })
        .ground_truth();
        assert!(empty.daily.is_empty());
        assert_eq!(empty.credits.used, 0);
    }
}
