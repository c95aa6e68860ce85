//! The sandbox account: one organization with one workspace, its users, templates and
//! documents, generated deterministically, and the ground truth derived from the very same
//! records.
//!
//! A small SplitMix64 generator is used instead of `rand`'s `StdRng`, whose algorithm may
//! change between `rand` releases: the same seed must give the same account forever.
//!
//! What is generated, and why:
//!
//! - Users, in `/public/v1/users` order: the organization owner first (licence `Full`, role
//!   `Admin`), then the others with a spread of licences (`Full`, `Creator`, `eSignature`,
//!   `Read-only`, `Guest`) and workspace roles (`Admin`, `Manager`, `Member`, `Custom`).
//!   `Read-only` and `Guest` users never create or send anything, nor do users whose email
//!   is not verified, and some `Full` users are idle too: a correct client sees seats without
//!   activity. One extra user (whenever `users >= 2`) had their membership removed before the
//!   range: listed by `/users` only with `show_removed=true` (with `workspaces: []`), absent
//!   from `/members`, not a seat, and without any activity.
//! - Templates, created by active `Full`/`Creator` users at random times in the range.
//! - Documents, created by active users, `events_per_day * days` in total, 65 % of them from a
//!   template that existed at the time. A document may then be sent (by its creator, or in
//!   12 % of the cases by a colleague), viewed, completed, declined or voided; every such
//!   transition happens after the previous one and inside the range — a transition that
//!   would fall after the end of the range has not happened yet, so the document keeps its
//!   earlier status. The creator is the document's owner.

use std::collections::{BTreeMap, HashMap, HashSet};

use time::{Date, Duration, OffsetDateTime, Time, Weekday};

use super::{DayCount, PandaDocConfig, PandaDocGroundTruth, PandaDocSeatTruth};
use crate::seeded::{apportion, format_date, Prng};

/// An independent stream for `(seed, a, b)`, apart from the other sandboxes' streams.
fn stream(seed: u64, a: u64, b: u64) -> Prng {
    Prng::salted(0x510E_527F_ADE6_82D1, seed, a, b)
}

pub(crate) struct Dataset {
    pub workspace_id: String,
    pub workspace_name: &'static str,
    /// In `/public/v1/users` order; `users[OWNER]` is the organization owner, who authorizes
    /// OAuth apps and owns the API key.
    pub users: Vec<User>,
    /// By `(date_created, id)`.
    pub templates: Vec<Template>,
    /// By `(date_created, id)`.
    pub documents: Vec<Document>,
    /// Id → index, for the details endpoints.
    pub document_index: HashMap<String, usize>,
    pub template_index: HashMap<String, usize>,
}

/// Index of the organization owner in `Dataset::users`.
pub(crate) const OWNER: usize = 0;

pub(crate) struct User {
    pub user_id: String,
    pub membership_id: String,
    pub email: String,
    pub first_name: &'static str,
    pub last_name: &'static str,
    /// `""` when the user gave none.
    pub phone_number: String,
    pub license: &'static str,
    pub role: &'static str,
    pub is_owner: bool,
    /// The membership was removed: not a seat.
    pub removed: bool,
    pub email_verified: bool,
    pub avatar: Option<String>,
    /// When the membership was created (the member's `date_created`).
    pub joined: OffsetDateTime,
    pub modified: OffsetDateTime,
    /// Whether the user creates or sends anything at all.
    pub active: bool,
}

impl User {
    pub fn name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    /// An organization admin: the owner, or a workspace `Admin`.
    pub fn is_admin(&self) -> bool {
        self.is_owner || self.role == "Admin"
    }
}

pub(crate) struct Template {
    pub id: String,
    pub name: String,
    pub created_by: usize,
    pub created: OffsetDateTime,
    pub modified: OffsetDateTime,
    pub content_modified: OffsetDateTime,
    /// `(role id, role name)`.
    pub roles: Vec<(String, &'static str)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Draft,
    Sent,
    Viewed,
    Completed,
    Declined,
    Voided,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Draft => "document.draft",
            Status::Sent => "document.sent",
            Status::Viewed => "document.viewed",
            Status::Completed => "document.completed",
            Status::Declined => "document.declined",
            Status::Voided => "document.voided",
        }
    }

    /// The number of the `status` / `status__ne` filters.
    pub fn code(self) -> u8 {
        match self {
            Status::Draft => 0,
            Status::Sent => 1,
            Status::Completed => 2,
            Status::Viewed => 5,
            Status::Voided => 11,
            Status::Declined => 12,
        }
    }
}

pub(crate) struct Recipient {
    pub id: String,
    pub contact_id: String,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub email: String,
    /// `signer` or `CC`.
    pub kind: &'static str,
    pub role: &'static str,
    pub has_completed: bool,
    pub signature_date: Option<OffsetDateTime>,
    pub shared_link: String,
}

pub(crate) struct Document {
    pub id: String,
    pub name: String,
    pub status: Status,
    pub created: OffsetDateTime,
    pub modified: OffsetDateTime,
    /// When the document reached its current status (`date_status_changed` ordering).
    pub status_changed: OffsetDateTime,
    pub sent: Option<OffsetDateTime>,
    pub completed: Option<OffsetDateTime>,
    pub expiration: Option<OffsetDateTime>,
    /// The creator, who is also the owner.
    pub created_by: usize,
    pub sent_by: Option<usize>,
    pub template: Option<usize>,
    pub recipients: Vec<Recipient>,
    pub ref_number: String,
    /// Grand total, e.g. `"1250.00"`.
    pub amount: String,
    pub currency: &'static str,
}

/// PandaDoc ids are 22 characters of a 57-letter alphabet (no `0 1 I O l`).
const ID_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

struct Ids {
    used: HashSet<String>,
}

impl Ids {
    fn new() -> Ids {
        Ids {
            used: HashSet::new(),
        }
    }

    fn make(&mut self, rng: &mut Prng) -> String {
        loop {
            let id: String = (0..22)
                .map(|_| ID_ALPHABET[rng.index(ID_ALPHABET.len())] as char)
                .collect();
            if self.used.insert(id.clone()) {
                return id;
            }
        }
    }
}

const FIRST_NAMES: [&str; 40] = [
    "Aisha", "Boris", "Camille", "Dario", "Emeka", "Freya", "Goran", "Helga", "Ines", "Joaquin",
    "Kenji", "Leila", "Marek", "Nadia", "Oscar", "Priya", "Quentin", "Rania", "Stefan", "Tomoko",
    "Ugo", "Valeria", "Wiktor", "Xiadani", "Yara", "Zeynep", "Anders", "Beatriz", "Cyrus", "Dalia",
    "Eamon", "Fatima", "Gideon", "Hiroshi", "Ilse", "Jasper", "Kalani", "Lucia", "Mateo", "Nora",
];

const LAST_NAMES: [&str; 40] = [
    "Adeyemi",
    "Bianchi",
    "Chen",
    "Dvorak",
    "Engel",
    "Fontaine",
    "Gallo",
    "Hoffmann",
    "Ivanova",
    "Jaramillo",
    "Kaur",
    "Laine",
    "Mbeki",
    "Nilsson",
    "Oliveira",
    "Popescu",
    "Qureshi",
    "Ramos",
    "Sato",
    "Toivonen",
    "Ulloa",
    "Vasquez",
    "Wright",
    "Xiong",
    "Yamada",
    "Zhou",
    "Almeida",
    "Brandt",
    "Carvalho",
    "Duarte",
    "Ekstrom",
    "Fujita",
    "Grant",
    "Hayes",
    "Ibarra",
    "Janssen",
    "Kovac",
    "Lindgren",
    "Moretti",
    "Nakagawa",
];

const COMPANIES: [(&str, &str); 12] = [
    ("Acme Robotics", "acme-robotics"),
    ("Blue Harbor Logistics", "blueharbor"),
    ("Cobalt Health", "cobalthealth"),
    ("Driftwood Studios", "driftwood"),
    ("Evergreen Foods", "evergreenfoods"),
    ("Fjord Analytics", "fjord"),
    ("Granite Legal", "granitelegal"),
    ("Helios Energy", "helios-energy"),
    ("Ironbark Construction", "ironbark"),
    ("Juniper Retail", "juniper"),
    ("Kestrel Aviation", "kestrel"),
    ("Lumen Education", "lumen-edu"),
];

const DOCUMENT_KINDS: [&str; 10] = [
    "Sales Proposal",
    "Master Services Agreement",
    "Mutual NDA",
    "Statement of Work",
    "Quote",
    "Order Form",
    "Offer Letter",
    "Renewal Agreement",
    "Consulting Agreement",
    "Services Invoice",
];

const TEMPLATE_ROLES: [&str; 4] = ["Client", "Sender", "Approver", "Signer"];

impl Dataset {
    /// Who approves on the consent screen: the owner, or (`admin` false) the first
    /// member without admin rights (the owner where every member is an admin).
    pub(crate) fn consenting_user(&self, admin: bool) -> usize {
        if admin {
            return OWNER;
        }
        self.users
            .iter()
            .position(|u| !u.is_admin() && !u.removed)
            .unwrap_or(OWNER)
    }

    pub fn generate(config: &PandaDocConfig) -> Dataset {
        let seed = config.seed;
        let mut rng = stream(seed, 0x9A2D_A0C0, 0);
        let mut ids = Ids::new();
        let workspace_id = ids.make(&mut rng);
        let range = Range::of(config);
        let users = generate_users(config, &range, &mut rng, &mut ids);
        let mut templates = generate_templates(config, &range, &users, &mut ids);
        templates.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        let mut documents = generate_documents(config, &range, &users, &templates, &mut ids);
        documents.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        let document_index = documents
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        let template_index = templates
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        Dataset {
            workspace_id,
            workspace_name: "Seatscope Sandbox",
            users,
            templates,
            documents,
            document_index,
            template_index,
        }
    }

    /// Members of the workspace: every user but the removed one, in `/users` order.
    pub fn members(&self) -> impl Iterator<Item = (usize, &User)> {
        self.users.iter().enumerate().filter(|(_, u)| !u.removed)
    }

    pub fn ground_truth(&self) -> PandaDocGroundTruth {
        let seats = self
            .members()
            .map(|(_, u)| PandaDocSeatTruth {
                id: u.user_id.clone(),
                email: u.email.clone(),
                name: u.name(),
                license: u.license.to_string(),
                role: u.role.to_string(),
            })
            .collect();
        let mut counts: BTreeMap<(Date, &str, &str), u32> = BTreeMap::new();
        let mut add = |at: OffsetDateTime, user: usize, feature: &'static str| {
            *counts
                .entry((at.date(), self.users[user].user_id.as_str(), feature))
                .or_default() += 1;
        };
        for d in &self.documents {
            add(d.created, d.created_by, "document_created");
            if let (Some(at), Some(by)) = (d.sent, d.sent_by) {
                add(at, by, "document_sent");
            }
            if let Some(at) = d.completed {
                add(at, d.created_by, "document_completed");
            }
        }
        for t in &self.templates {
            add(t.created, t.created_by, "template_created");
        }
        let daily = counts
            .into_iter()
            .map(|((date, user_id, feature), count)| DayCount {
                user_id: user_id.to_string(),
                date: format_date(date),
                feature: feature.to_string(),
                count,
            })
            .collect();
        PandaDocGroundTruth { seats, daily }
    }
}

/// The generated range: `[start, stop)`, whole UTC days.
struct Range {
    first_day: Date,
    days: u32,
    start: OffsetDateTime,
    stop: OffsetDateTime,
}

impl Range {
    fn of(config: &PandaDocConfig) -> Range {
        let first_day = config.end_date - Duration::days(i64::from(config.days) - 1);
        let start = first_day.with_time(Time::MIDNIGHT).assume_utc();
        let stop = start + Duration::days(i64::from(config.days));
        Range {
            first_day,
            days: config.days,
            start,
            stop,
        }
    }

    /// A random instant (microsecond precision) of the range's `day`-th day.
    fn instant_in_day(&self, rng: &mut Prng, day: u32) -> OffsetDateTime {
        let micros = rng.below(86_400_000_000) as i64;
        self.start + Duration::days(i64::from(day)) + Duration::microseconds(micros)
    }
}

fn micros(lo_secs: u64, hi_secs: u64, rng: &mut Prng) -> Duration {
    Duration::microseconds(rng.between(lo_secs * 1_000_000, hi_secs * 1_000_000) as i64)
}

fn generate_users(
    config: &PandaDocConfig,
    range: &Range,
    rng: &mut Prng,
    ids: &mut Ids,
) -> Vec<User> {
    let seats = config.users as usize;
    let mut names = HashSet::new();
    let mut users: Vec<User> = Vec::with_capacity(seats + 1);
    let total = seats + usize::from(seats >= 2);
    // The removed user sits in the middle of the list, so a client meets it mid-page.
    let removed_at = if seats >= 2 { Some(total / 2) } else { None };
    for i in 0..total {
        let mut first;
        let mut last;
        let mut tries = 0;
        loop {
            first = rng.pick(&FIRST_NAMES);
            last = rng.pick(&LAST_NAMES);
            tries += 1;
            if names.insert((first, last)) || tries > 20 {
                break;
            }
        }
        let local = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
        // Past 1 600 users the name pairs repeat: a number keeps emails unique.
        let email = if tries > 20 {
            format!("{local}{}@seatscope-sandbox.example", i + 1)
        } else {
            format!("{local}@seatscope-sandbox.example")
        };
        let is_owner = i == OWNER;
        let removed = removed_at == Some(i);
        let license = if is_owner {
            "Full"
        } else {
            let r = rng.unit();
            if r < 0.52 {
                "Full"
            } else if r < 0.66 {
                "Creator"
            } else if r < 0.80 {
                "eSignature"
            } else if r < 0.91 {
                "Read-only"
            } else {
                "Guest"
            }
        };
        let role = if is_owner || i == 1 {
            "Admin"
        } else {
            let r = rng.unit();
            if r < 0.07 {
                "Admin"
            } else if r < 0.17 {
                "Manager"
            } else if r < 0.22 {
                "Custom"
            } else {
                "Member"
            }
        };
        let user_id = ids.make(rng);
        let membership_id = ids.make(rng);
        let phone_number = if rng.chance(0.6) {
            format!("+1555{:07}", rng.below(10_000_000))
        } else {
            String::new()
        };
        let avatar = rng
            .chance(0.35)
            .then(|| format!("https://avatars.seatscope-sandbox.example/{user_id}.jpg"));
        let email_verified = is_owner || !rng.chance(0.06);
        // Members joined between one month and two years before the range.
        let joined =
            range.start - Duration::days(rng.between(30, 730) as i64) - micros(0, 86_399, rng);
        let modified = if removed {
            range.start - Duration::days(rng.between(1, 25) as i64) - micros(0, 86_399, rng)
        } else {
            let span = (range.stop - joined).whole_seconds().max(1) as u64;
            joined + micros(1, span - 1, rng)
        };
        users.push(User {
            user_id,
            membership_id,
            email,
            first_name: first,
            last_name: last,
            phone_number,
            license,
            role,
            is_owner,
            removed,
            email_verified,
            avatar,
            joined,
            modified,
            active: false,
        });
    }
    // Every licence on every account big enough to have them, so clients meet them all.
    if seats >= 6 {
        for license in ["Creator", "eSignature", "Read-only", "Guest"] {
            if !users.iter().any(|u| !u.removed && u.license == license) {
                let plain: Vec<usize> = (1..total)
                    .filter(|&i| !users[i].removed && users[i].license == "Full")
                    .collect();
                if plain.len() > 1 {
                    let i = plain[rng.index(plain.len())];
                    users[i].license = license;
                }
            }
        }
    }
    for user in users.iter_mut() {
        let can_act = matches!(user.license, "Full" | "Creator" | "eSignature");
        user.active =
            user.is_owner || (can_act && !user.removed && user.email_verified && !rng.chance(0.15));
    }
    // Every account with more than one seat has at least one idle seat.
    let idle_seat = users.iter().any(|u| !u.removed && !u.active);
    if seats >= 2 && !idle_seat {
        if let Some(last) = users.iter_mut().rev().find(|u| !u.removed && !u.is_owner) {
            last.active = false;
        }
    }
    for (i, email) in &config.shared_emails {
        if let Some(user) = users.get_mut(*i as usize) {
            user.email = email.clone();
        }
    }
    users
}

/// Activity weights: a few busy users, many occasional ones.
fn weights(seed: u64, people: &[usize]) -> Vec<f64> {
    let mut rng = stream(seed, 0x0057_E1A7, people.len() as u64);
    people
        .iter()
        .map(|_| {
            let u = rng.unit();
            0.25 + 2.75 * u * u
        })
        .collect()
}

/// A person drawn in proportion to their weight.
fn weighted(rng: &mut Prng, people: &[usize], weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.unit() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return people[i];
        }
        x -= w;
    }
    people[people.len() - 1]
}

fn total_documents(config: &PandaDocConfig, users: &[User]) -> u64 {
    if users.iter().any(|u| u.active) {
        u64::from(config.events_per_day) * u64::from(config.days)
    } else {
        0
    }
}

fn generate_templates(
    config: &PandaDocConfig,
    range: &Range,
    users: &[User],
    ids: &mut Ids,
) -> Vec<Template> {
    let authors: Vec<usize> = (0..users.len())
        .filter(|&i| users[i].active && matches!(users[i].license, "Full" | "Creator"))
        .collect();
    let documents = total_documents(config, users);
    if authors.is_empty() || documents == 0 || range.days == 0 {
        return Vec::new();
    }
    let count = (documents / 12).max(1);
    let author_weights = weights(config.seed, &authors);
    let mut rng = stream(config.seed, 0x7E3B_1A7E, count);
    (0..count)
        .map(|_| {
            let day = rng.below(u64::from(range.days)) as u32;
            let created = range.instant_in_day(&mut rng, day);
            let created_by = weighted(&mut rng, &authors, &author_weights);
            let kind = rng.pick(&DOCUMENT_KINDS);
            let name = if rng.chance(0.5) {
                format!("{kind} Template")
            } else {
                format!("Standard {kind}")
            };
            let clamp = |t: OffsetDateTime| t.min(range.stop - Duration::microseconds(1));
            let content_modified = clamp(created + micros(1, 1_800, &mut rng));
            let modified = clamp(content_modified + micros(0, 5, &mut rng));
            let mut roles = vec![(ids.make(&mut rng), "Client")];
            if rng.chance(0.5) {
                roles.push((ids.make(&mut rng), rng.pick(&TEMPLATE_ROLES[1..])));
            }
            Template {
                id: ids.make(&mut rng),
                name,
                created_by,
                created,
                modified,
                content_modified,
                roles,
            }
        })
        .collect()
}

fn generate_documents(
    config: &PandaDocConfig,
    range: &Range,
    users: &[User],
    templates: &[Template],
    ids: &mut Ids,
) -> Vec<Document> {
    let total = total_documents(config, users);
    if total == 0 || range.days == 0 {
        return Vec::new();
    }
    let seed = config.seed;
    let active: Vec<usize> = (0..users.len()).filter(|&i| users[i].active).collect();
    let active_weights = weights(seed, &active);
    let factors: Vec<f64> = (0..range.days)
        .map(|d| {
            let date = range.first_day + Duration::days(i64::from(d));
            let mut r = stream(seed, date.to_julian_day() as u64, 1);
            let weekend = matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday);
            (if weekend { 0.35 } else { 1.0 }) * (0.7 + 0.6 * r.unit())
        })
        .collect();
    let targets = apportion(total, &factors);
    let last_instant = range.stop - Duration::microseconds(1);
    let mut documents = Vec::with_capacity(total as usize);
    for (d, &target) in targets.iter().enumerate() {
        let date = range.first_day + Duration::days(d as i64);
        let mut rng = stream(seed, date.to_julian_day() as u64, 2);
        for _ in 0..target {
            let created = range.instant_in_day(&mut rng, d as u32);
            let created_by = weighted(&mut rng, &active, &active_weights);
            // A template that existed when the document was created, most of the time.
            let existing = templates.partition_point(|t| t.created < created);
            let template = (existing > 0 && rng.chance(0.65)).then(|| rng.index(existing));
            let (company, domain) = rng.pick(&COMPANIES);
            let kind = rng.pick(&DOCUMENT_KINDS);
            let name = format!("{company} - {kind}");

            let within = |t: OffsetDateTime| (t < range.stop).then_some(t);
            let mut status = Status::Draft;
            let mut status_changed = created;
            let mut sent = None;
            let mut completed = None;
            let mut sent_by = None;
            if !rng.chance(0.25) {
                let delay = match rng.below(10) {
                    0..=5 => micros(60, 7_200, &mut rng),
                    6..=8 => micros(7_200, 86_400, &mut rng),
                    _ => micros(86_400, 4 * 86_400, &mut rng),
                };
                if let Some(at) = within(created + delay) {
                    status = Status::Sent;
                    status_changed = at;
                    sent = Some(at);
                    sent_by = Some(if rng.chance(0.88) {
                        created_by
                    } else {
                        weighted(&mut rng, &active, &active_weights)
                    });
                    let viewed = within(at + micros(60, 86_400, &mut rng));
                    let r = rng.unit();
                    if r < 0.55 {
                        let delay = match rng.below(20) {
                            0..=9 => micros(300, 21_600, &mut rng),
                            10..=16 => micros(21_600, 3 * 86_400, &mut rng),
                            _ => micros(3 * 86_400, 10 * 86_400, &mut rng),
                        };
                        if let Some(done) = within(at + delay) {
                            status = Status::Completed;
                            status_changed = done;
                            completed = Some(done);
                        } else if let Some(v) = viewed {
                            status = Status::Viewed;
                            status_changed = v;
                        }
                    } else if r < 0.75 {
                        if let Some(v) = viewed {
                            status = Status::Viewed;
                            status_changed = v;
                        }
                    } else if r >= 0.87 {
                        let end = if r < 0.93 {
                            Status::Declined
                        } else {
                            Status::Voided
                        };
                        if let Some(x) = within(at + micros(3_600, 5 * 86_400, &mut rng)) {
                            status = end;
                            status_changed = x;
                        }
                    }
                }
            }
            let modified = (status_changed + micros(0, 3, &mut rng) + Duration::milliseconds(40))
                .min(last_instant);
            let expiration = match (sent, rng.below(4)) {
                (Some(at), 0) => Some(at + Duration::days(30)),
                (Some(at), 1) => Some(at + Duration::days(60)),
                (Some(at), 2) => Some(at + Duration::days(90)),
                _ => None,
            };
            let signers = 1 + rng.below(2) as usize;
            let with_cc = rng.chance(0.3);
            let mut recipients = Vec::with_capacity(signers + usize::from(with_cc));
            for k in 0..signers + usize::from(with_cc) {
                let first = rng.pick(&FIRST_NAMES);
                let last = rng.pick(&LAST_NAMES);
                let signer = k < signers;
                let signature_date = match (signer, completed) {
                    (true, Some(done)) => Some(done - micros(0, 30, &mut rng)),
                    _ => None,
                };
                recipients.push(Recipient {
                    id: ids.make(&mut rng),
                    contact_id: ids.make(&mut rng),
                    first_name: first,
                    last_name: last,
                    email: format!(
                        "{}.{}@{domain}.example",
                        first.to_lowercase(),
                        last.to_lowercase()
                    ),
                    kind: if signer { "signer" } else { "CC" },
                    role: if signer { "Client" } else { "" },
                    has_completed: completed.is_some(),
                    signature_date,
                    shared_link: format!("https://app.pandadoc.com/document/{}", rng.hex(40)),
                });
            }
            let ref_number = (0..4)
                .map(|_| {
                    (0..5)
                        .map(|_| char::from(b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789"[rng.index(32)]))
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
                .join("-");
            let amount = format!("{}.{:02}", rng.below(50_000), rng.below(100));
            documents.push(Document {
                id: ids.make(&mut rng),
                name,
                status,
                created,
                modified,
                status_changed,
                sent,
                completed,
                expiration,
                created_by,
                sent_by,
                template,
                recipients,
                ref_number,
                amount,
                currency: rng.pick(&["USD", "USD", "USD", "EUR", "GBP"]),
            });
        }
    }
    documents
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn config(seed: u64) -> PandaDocConfig {
        PandaDocConfig {
            seed,
            end_date: date!(2026 - 03 - 31),
            ..PandaDocConfig::default()
        }
    }

    #[test]
    fn same_config_gives_identical_data() {
        let a = Dataset::generate(&config(7));
        let b = Dataset::generate(&config(7));
        assert_eq!(a.ground_truth(), b.ground_truth());
        let ids = |d: &Dataset| d.documents.iter().map(|x| x.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
    }

    #[test]
    fn a_different_seed_gives_different_data() {
        let a = Dataset::generate(&config(7)).ground_truth();
        let b = Dataset::generate(&config(8)).ground_truth();
        assert_ne!(a.seats, b.seats);
        assert_ne!(a.daily, b.daily);
    }

    #[test]
    fn documents_total_exactly_events_per_day_times_days() {
        let cfg = config(42);
        let data = Dataset::generate(&cfg);
        assert_eq!(
            data.documents.len() as u64,
            u64::from(cfg.events_per_day) * u64::from(cfg.days)
        );
        let truth = data.ground_truth();
        let created: u32 = truth
            .daily
            .iter()
            .filter(|d| d.feature == "document_created")
            .map(|d| d.count)
            .sum();
        assert_eq!(created as usize, data.documents.len());
        assert_eq!(truth.seats.len(), cfg.users as usize);
        assert_eq!(data.users.len(), cfg.users as usize + 1);
    }

    #[test]
    fn lifecycles_are_ordered_and_inside_the_range() {
        let cfg = config(3);
        let data = Dataset::generate(&cfg);
        let range = Range::of(&cfg);
        for d in &data.documents {
            assert!(d.created >= range.start && d.created < range.stop);
            assert!(d.modified >= d.status_changed && d.modified < range.stop);
            assert!(d.status_changed >= d.created);
            if let Some(sent) = d.sent {
                assert!(sent >= d.created && sent < range.stop);
                assert!(d.sent_by.is_some());
            } else {
                assert_eq!(d.status, Status::Draft);
                assert!(d.sent_by.is_none() && d.completed.is_none());
            }
            if let Some(done) = d.completed {
                assert!(Some(done) >= d.sent && done < range.stop);
                assert_eq!(d.status, Status::Completed);
            }
            if let Some(t) = d.template {
                assert!(data.templates[t].created < d.created);
            }
        }
        for t in &data.templates {
            assert!(t.created >= range.start && t.modified < range.stop);
        }
        assert!(data
            .documents
            .windows(2)
            .all(|w| (w[0].created, &w[0].id) <= (w[1].created, &w[1].id)));
    }

    #[test]
    fn every_kind_of_record_a_client_must_handle_is_present() {
        let data = Dataset::generate(&config(42));
        for status in [
            Status::Draft,
            Status::Sent,
            Status::Viewed,
            Status::Completed,
            Status::Declined,
            Status::Voided,
        ] {
            assert!(
                data.documents.iter().any(|d| d.status == status),
                "no {status:?}"
            );
        }
        assert!(data
            .documents
            .iter()
            .any(|d| d.sent_by.is_some_and(|s| s != d.created_by)));
        assert!(data.documents.iter().any(|d| d.template.is_none()));
        assert!(data.documents.iter().any(|d| d.template.is_some()));
        for license in ["Full", "Creator", "eSignature", "Read-only", "Guest"] {
            assert!(data.users.iter().any(|u| u.license == license), "{license}");
        }
        assert_eq!(data.users.iter().filter(|u| u.removed).count(), 1);
        assert_eq!(data.users.iter().filter(|u| u.is_owner).count(), 1);
        assert!(data.users[OWNER].is_owner && data.users[OWNER].role == "Admin");
        let truth = data.ground_truth();
        let acting: HashSet<&str> = truth.daily.iter().map(|d| d.user_id.as_str()).collect();
        assert!(truth.seats.iter().any(|s| !acting.contains(s.id.as_str())));
        let removed = data
            .users
            .iter()
            .find(|u| u.removed)
            .map(|u| u.user_id.as_str());
        assert!(removed.is_some_and(|r| !acting.contains(r)));
        let features: HashSet<&str> = truth.daily.iter().map(|d| d.feature.as_str()).collect();
        assert_eq!(features.len(), 4, "{features:?}");
    }

    #[test]
    fn ids_look_like_pandadoc_ids_and_are_unique() {
        let data = Dataset::generate(&config(11));
        let mut seen = HashSet::new();
        for id in data
            .users
            .iter()
            .flat_map(|u| [&u.user_id, &u.membership_id])
            .chain(data.documents.iter().map(|d| &d.id))
            .chain(data.templates.iter().map(|t| &t.id))
        {
            assert_eq!(id.len(), 22);
            assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)));
            assert!(seen.insert(id.clone()));
        }
        let emails: HashSet<&str> = data.users.iter().map(|u| u.email.as_str()).collect();
        assert_eq!(emails.len(), data.users.len());
    }

    #[test]
    fn no_events_and_tiny_accounts_are_fine() {
        let cfg = PandaDocConfig {
            events_per_day: 0,
            ..config(1)
        };
        let data = Dataset::generate(&cfg);
        assert!(data.ground_truth().daily.is_empty());
        assert!(data.templates.is_empty());
        for users in [0, 1, 2] {
            let cfg = PandaDocConfig { users, ..config(1) };
            let data = Dataset::generate(&cfg);
            assert_eq!(data.ground_truth().seats.len(), users as usize);
        }
        let cfg = PandaDocConfig {
            days: 0,
            ..config(1)
        };
        assert!(Dataset::generate(&cfg).documents.is_empty());
    }

    #[test]
    fn apportion_is_exact() {
        let parts = apportion(10, &[1.0, 1.0, 2.0]);
        assert_eq!(parts.iter().sum::<u64>(), 10);
        assert_eq!(apportion(0, &[1.0]), vec![0]);
    }
}
