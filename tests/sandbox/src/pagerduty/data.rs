//! The sandbox account: users, teams, services, incidents and their log entries, generated
//! deterministically, and the ground truth derived from the very same entries.
//!
//! A small SplitMix64 generator is used instead of `rand`'s `StdRng`, whose algorithm may
//! change between `rand` releases: the same seed must give the same account forever, or a
//! fixture recorded today breaks on the next dependency bump.
//!
//! Counted activity (the ground truth) is a log entry whose `agent` is a user and whose type
//! is one of the five below. Noise that a correct client must ignore is generated alongside:
//! triggers (mostly by a service, some by a user through the website), auto-assignments and
//! timeout escalations by the service, notifications (`notify_log_entry`, agent = service,
//! with a `user` field naming the notified user), and acknowledgements and resolutions sent
//! by monitoring integrations (agent = `service_reference`).
//!
//! Reassignment: PagerDuty has no `reassign_log_entry`. A user reassigning an incident
//! produces an `assign_log_entry` ("Assigned to X by Y") whose agent is that user; the
//! automatic assignment at trigger time is also an `assign_log_entry`, with a service agent.
//! So "reassign" = `assign_log_entry` with a user agent.

use std::collections::{BTreeMap, HashMap, HashSet};

use time::{Date, OffsetDateTime, Time, Weekday};

use super::{DayCount, GroundTruth, OnCallTruth, PagerDutyConfig, SeatTruth};
use crate::seeded::{apportion, format_date, Prng};

/// An independent stream for `(seed, a, b)`, apart from the other sandboxes' streams.
fn stream(seed: u64, a: u64, b: u64) -> Prng {
    Prng::salted(0x6A09_E667_F3BC_C908, seed, a, b)
}

/// Log entry types a correct client counts, with our feature names.
pub(crate) const COUNTED: [(EntryKind, &str); 5] = [
    (EntryKind::Acknowledge, "acknowledge"),
    (EntryKind::Resolve, "resolve"),
    (EntryKind::Annotate, "note"),
    (EntryKind::Assign, "reassign"),
    (EntryKind::Escalate, "escalate"),
];

pub(crate) struct Dataset {
    pub account_id: String,
    pub subdomain: String,
    pub teams: Vec<Team>,
    pub services: Vec<Service>,
    /// Generation order; `users[0]` is the account owner (who authorizes OAuth apps).
    pub users: Vec<User>,
    pub incidents: Vec<Incident>,
    /// Newest first, as `/log_entries` returns them.
    pub entries: Vec<LogEntry>,
    /// Escalation policies, and who is on call for them (`/oncalls`).
    pub policies: Vec<EscalationPolicy>,
    pub schedules: Vec<Schedule>,
    /// Users an escalation rule targets directly: permanently on call.
    pub direct: Vec<DirectTarget>,
    /// The account's licenses (`/licenses`): [`FULL_USER`], then [`STAKEHOLDER`].
    pub licenses: Vec<License>,
    /// Each user's license (`/license_allocations`), by user index.
    pub allocations: Vec<Allocation>,
}

/// A license of the account, in PagerDuty's shape (`LicenseWithCounts`).
pub(crate) struct License {
    pub id: String,
    pub name: &'static str,
    pub description: &'static str,
    /// `FullUser` or `Stakeholder`.
    pub role_group: &'static str,
    /// The roles a user with this license can have.
    pub valid_roles: &'static [&'static str],
    /// How many more may be allocated; None for no limit.
    pub allocations_available: Option<u64>,
}

/// Index of the full-user license in [`Dataset::licenses`].
pub(crate) const FULL_USER: usize = 0;
/// Index of the stakeholder license in [`Dataset::licenses`].
pub(crate) const STAKEHOLDER: usize = 1;

/// Roles a stakeholder license allows (the spec's `valid_roles`); every other role
/// takes a full-user license.
const STAKEHOLDER_ROLES: [&str; 2] = ["read_only_user", "read_only_limited_user"];

/// A user's license and when it was allocated.
pub(crate) struct Allocation {
    pub license: usize,
    pub at: OffsetDateTime,
}

pub(crate) struct EscalationPolicy {
    pub id: String,
    pub name: &'static str,
}

/// A weekly rotation: shift `k` (the `k`-th week since [`ROTATION_EPOCH`], Monday 00:00
/// UTC to the next Monday) goes to `members[k mod len]`; the schedule is the target of
/// `level` of escalation policy `policy`.
pub(crate) struct Schedule {
    pub id: String,
    pub name: &'static str,
    pub policy: usize,
    pub level: u8,
    pub members: Vec<usize>,
}

/// A user that level `level` of `policy` targets directly (no schedule): always on call.
pub(crate) struct DirectTarget {
    pub policy: usize,
    pub level: u8,
    pub user: usize,
}

/// Every rotation's shift 0 starts here (a Monday, 00:00 UTC).
pub(crate) const ROTATION_EPOCH: Date = time::macros::date!(2024 - 01 - 01);
/// A rotation hands over once a week.
pub(crate) const SHIFT: time::Duration = time::Duration::days(7);

/// One shift of one schedule, or a direct target's permanent on-call (no start or end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OnCallEntry {
    pub user: usize,
    pub policy: usize,
    pub level: u8,
    pub schedule: Option<usize>,
    pub start: Option<OffsetDateTime>,
    pub end: Option<OffsetDateTime>,
}

pub(crate) struct Team {
    pub id: String,
    pub name: &'static str,
}

pub(crate) struct Service {
    pub id: String,
    pub name: &'static str,
    pub team: usize,
    /// Copied into acknowledge entries, as PagerDuty does.
    pub ack_timeout: Option<u32>,
}

pub(crate) struct ContactMethod {
    pub id: String,
    pub kind: &'static str,
    pub summary: &'static str,
}

pub(crate) struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub time_zone: &'static str,
    pub color: &'static str,
    pub job_title: &'static str,
    pub description: Option<&'static str>,
    pub invitation_sent: bool,
    pub created_via_sso: bool,
    pub teams: Vec<usize>,
    pub contact_methods: Vec<ContactMethod>,
    pub notification_rules: Vec<String>,
    /// Whether the user has any counted activity at all.
    pub active: bool,
}

pub(crate) struct Incident {
    pub id: String,
    pub number: u32,
    pub title: &'static str,
    pub service: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Trigger,
    Acknowledge,
    Resolve,
    Annotate,
    Assign,
    Escalate,
    Notify,
}

impl EntryKind {
    pub fn type_name(self) -> &'static str {
        match self {
            EntryKind::Trigger => "trigger_log_entry",
            EntryKind::Acknowledge => "acknowledge_log_entry",
            EntryKind::Resolve => "resolve_log_entry",
            EntryKind::Annotate => "annotate_log_entry",
            EntryKind::Assign => "assign_log_entry",
            EntryKind::Escalate => "escalate_log_entry",
            EntryKind::Notify => "notify_log_entry",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Agent {
    User(usize),
    Service(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Channel {
    /// A user in the web app.
    Website,
    /// A user in the mobile app.
    Mobile,
    /// A user through the REST API, or an integration through the Events API.
    Api,
    /// A user replying to an SMS.
    Sms,
    /// A user replying to an email.
    Email,
    /// A note added by a user.
    Note,
    /// A user triggering from the web app.
    WebTrigger,
    /// An alert arriving through the Events API (trigger).
    EventsApi,
    /// An alert arriving by email (trigger).
    EmailTrigger,
    /// PagerDuty acting by itself (assignment at trigger).
    Auto,
    /// Escalation after the escalation timeout.
    Timeout,
    /// A notification sent to `target`.
    Notification(NotificationKind),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotificationKind {
    Email,
    Sms,
    Push,
}

pub(crate) struct LogEntry {
    pub id: String,
    pub kind: EntryKind,
    pub at: OffsetDateTime,
    pub agent: Agent,
    pub channel: Channel,
    pub incident: usize,
    /// Assignee (assign/escalate) or notified user (notify).
    pub target: Option<usize>,
    /// Escalation level reached (escalate).
    pub level: u8,
}

impl LogEntry {
    /// Our feature name if a correct client counts this entry.
    pub fn feature(&self) -> Option<&'static str> {
        if !matches!(self.agent, Agent::User(_)) {
            return None;
        }
        COUNTED
            .iter()
            .find(|(kind, _)| *kind == self.kind)
            .map(|(_, feature)| *feature)
    }
}

const ID_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// PagerDuty-style ids, unique across the account.
struct Ids {
    used: HashSet<String>,
}

impl Ids {
    fn new() -> Ids {
        Ids {
            used: HashSet::new(),
        }
    }

    fn make(&mut self, rng: &mut Prng, prefix: char, len: usize) -> String {
        loop {
            let mut id = String::with_capacity(len + 1);
            id.push(prefix);
            for _ in 0..len {
                id.push(ID_ALPHABET[rng.index(ID_ALPHABET.len())] as char);
            }
            if self.used.insert(id.clone()) {
                return id;
            }
        }
    }

    /// Resource ids look like `PXPGF42`.
    fn resource(&mut self, rng: &mut Prng) -> String {
        self.make(rng, 'P', 6)
    }

    /// Log entry ids look like `R6XNGC35VF6U1TUSVIE2DWXD4Z`.
    fn log_entry(&mut self, rng: &mut Prng) -> String {
        self.make(rng, 'R', 25)
    }
}

const FIRST_NAMES: [&str; 40] = [
    "Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Farah", "Gustav", "Hana", "Ibrahim", "Jonas",
    "Keiko", "Lars", "Maya", "Nikolai", "Olga", "Pedro", "Quinn", "Rosa", "Samir", "Tara", "Umar",
    "Vera", "Wen", "Ximena", "Yusuf", "Zoe", "Amara", "Bjorn", "Carmen", "Diego", "Esther",
    "Felix", "Greta", "Hugo", "Ines", "Jamal", "Kira", "Leon", "Mila", "Noah",
];

const LAST_NAMES: [&str; 40] = [
    "Abara",
    "Berg",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quispe",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Umarov",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zielinski",
    "Andersen",
    "Bauer",
    "Costa",
    "Delgado",
    "Evans",
    "Ferreira",
    "Gomez",
    "Horvat",
    "Iqbal",
    "Jovanovic",
    "Kim",
    "Lopez",
    "Mendes",
    "Novak",
];

const TIME_ZONES: [&str; 8] = [
    "America/New_York",
    "America/Los_Angeles",
    "America/Lima",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Sydney",
];

const COLORS: [&str; 8] = [
    "green", "purple", "red", "teal", "orange", "blue", "brown", "crimson",
];

const TEAMS: [&str; 4] = ["Platform", "Payments", "Mobile", "Data"];

/// (name, team index, acknowledgement timeout)
const SERVICES: [(&str, usize, Option<u32>); 5] = [
    ("Checkout API", 1, Some(1800)),
    ("Edge Gateway", 0, None),
    ("Mobile Push", 2, Some(3600)),
    ("Data Pipeline", 3, None),
    ("Identity", 0, Some(1800)),
];

const INCIDENT_TITLES: [&str; 12] = [
    "The server is on fire.",
    "High error rate on /checkout",
    "Disk usage above 90% on db-2",
    "Latency p99 above 2s",
    "Certificate expires in 7 days",
    "Queue backlog growing",
    "Replica lag above 60s",
    "5xx spike at the edge",
    "Push notification delivery failing",
    "Nightly ETL did not finish",
    "Login failures above threshold",
    "Memory leak suspected in worker pool",
];

const JOB_TITLES: [&str; 6] = [
    "Site Reliability Engineer",
    "Software Engineer",
    "Engineering Manager",
    "Platform Engineer",
    "Support Engineer",
    "Data Engineer",
];

const DESCRIPTIONS: [&str; 3] = [
    "On call for the platform",
    "Ask me about payments",
    "I'm the boss",
];

impl Dataset {
    pub fn generate(config: &PagerDutyConfig) -> Dataset {
        let seed = config.seed;
        let mut rng = stream(seed, 0x5EA7_5C0E, 0);
        let mut ids = Ids::new();

        let account_id = ids.resource(&mut rng);
        let subdomain = config.subdomain.clone();
        let teams: Vec<Team> = TEAMS
            .iter()
            .map(|name| Team {
                id: ids.resource(&mut rng),
                name,
            })
            .collect();
        let services: Vec<Service> = SERVICES
            .iter()
            .map(|(name, team, ack_timeout)| Service {
                id: ids.resource(&mut rng),
                name,
                team: *team,
                ack_timeout: *ack_timeout,
            })
            .collect();
        let mut users = generate_users(config, &mut rng, &mut ids);

        let mut incidents = Vec::new();
        let mut entries = Vec::new();
        generate_activity(
            config,
            &users,
            &services,
            &mut ids,
            &mut incidents,
            &mut entries,
        );
        // Newest first; ids break ties so the order is total and stable.
        entries.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));

        // On-call data last, from its own stream: everything above is unchanged by it.
        let mut on_call_rng = stream(seed, 0x0C_A11, 0);
        let (policies, schedules, direct) = generate_on_call(&users, &mut on_call_rng, &mut ids);

        // Licenses after that, from their own stream: everything above is unchanged by
        // them, except one role where an account of 5 or more has no stakeholder.
        let on_call: HashSet<usize> = schedules
            .iter()
            .flat_map(|s| s.members.iter().copied())
            .chain(direct.iter().map(|d| d.user))
            .collect();
        let mut license_rng = stream(seed, 0x11CE_45E5, 0);
        let (licenses, allocations) =
            generate_licenses(config, &mut users, &on_call, &mut license_rng, &mut ids);
        notes_only(config, &allocations, &on_call, &mut entries);

        Dataset {
            account_id,
            subdomain,
            teams,
            services,
            users,
            incidents,
            entries,
            policies,
            schedules,
            direct,
            licenses,
            allocations,
        }
    }

    /// How many users hold license `license`.
    pub fn allocated(&self, license: usize) -> usize {
        self.allocations
            .iter()
            .filter(|a| a.license == license)
            .count()
    }

    /// The on-call entries overlapping `[since, until)` (the instant `since` when they
    /// are equal), as `/oncalls` lists them: by policy, level, start, user. Permanent
    /// on-calls (direct targets) overlap every range.
    pub fn on_calls(&self, since: OffsetDateTime, until: OffsetDateTime) -> Vec<OnCallEntry> {
        let epoch = ROTATION_EPOCH.with_time(Time::MIDNIGHT).assume_utc();
        let shift_secs = SHIFT.whole_seconds();
        let shift_of = |t: OffsetDateTime| (t - epoch).whole_seconds().div_euclid(shift_secs);
        let end = until.max(since + time::Duration::SECOND);
        let (first, last) = (shift_of(since), shift_of(end - time::Duration::SECOND));
        let mut out = Vec::new();
        for (i, s) in self.schedules.iter().enumerate() {
            if s.members.is_empty() {
                continue;
            }
            for k in first..=last {
                let start = epoch + SHIFT * k as i32;
                out.push(OnCallEntry {
                    user: s.members[k.rem_euclid(s.members.len() as i64) as usize],
                    policy: s.policy,
                    level: s.level,
                    schedule: Some(i),
                    start: Some(start),
                    end: Some(start + SHIFT),
                });
            }
        }
        for d in &self.direct {
            out.push(OnCallEntry {
                user: d.user,
                policy: d.policy,
                level: d.level,
                schedule: None,
                start: None,
                end: None,
            });
        }
        out.sort_by(|a, b| {
            (a.policy, a.level, a.start, &self.users[a.user].id).cmp(&(
                b.policy,
                b.level,
                b.start,
                &self.users[b.user].id,
            ))
        });
        out
    }

    /// Indices of `users` in `/users` order (by name, then id).
    pub fn users_in_list_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.users.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&self.users[a], &self.users[b]);
            a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id))
        });
        order
    }

    pub fn ground_truth(&self) -> GroundTruth {
        let seats = self
            .users_in_list_order()
            .into_iter()
            .map(|i| {
                let u = &self.users[i];
                SeatTruth {
                    id: u.id.clone(),
                    email: u.email.clone(),
                    name: u.name.clone(),
                    role: u.role.to_string(),
                    license: Some(self.licenses[self.allocations[i].license].name.to_string()),
                }
            })
            .collect();
        let mut counts: BTreeMap<(Date, &str, &str), u32> = BTreeMap::new();
        for entry in &self.entries {
            if let (Some(feature), Agent::User(u)) = (entry.feature(), entry.agent) {
                *counts
                    .entry((entry.at.date(), self.users[u].id.as_str(), feature))
                    .or_default() += 1;
            }
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
        let mut on_call: Vec<OnCallTruth> = self
            .schedules
            .iter()
            .flat_map(|s| {
                s.members.iter().map(|&u| OnCallTruth {
                    user_id: self.users[u].id.clone(),
                    schedule: Some(s.name.to_string()),
                    escalation_policy: self.policies[s.policy].name.to_string(),
                })
            })
            .chain(self.direct.iter().map(|d| OnCallTruth {
                user_id: self.users[d.user].id.clone(),
                schedule: None,
                escalation_policy: self.policies[d.policy].name.to_string(),
            }))
            .collect();
        on_call.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        GroundTruth {
            seats,
            daily,
            on_call,
        }
    }
}

/// `config.notes_only_full_users` full users on no schedule or policy, with counted
/// actions, write notes instead of acknowledging, resolving, reassigning or escalating
/// (kind and channel change; time, incident and id stay, so nothing else moves).
fn notes_only(
    config: &PagerDutyConfig,
    allocations: &[Allocation],
    on_call: &HashSet<usize>,
    entries: &mut [LogEntry],
) {
    if config.notes_only_full_users == 0 {
        return;
    }
    let acting: HashSet<usize> = entries
        .iter()
        .filter(|e| e.feature().is_some())
        .filter_map(|e| match e.agent {
            Agent::User(u) => Some(u),
            Agent::Service(_) => None,
        })
        .collect();
    let chosen: HashSet<usize> = (1..allocations.len())
        .filter(|u| {
            allocations[*u].license == FULL_USER && !on_call.contains(u) && acting.contains(u)
        })
        .take(config.notes_only_full_users as usize)
        .collect();
    for e in entries.iter_mut() {
        let responder = matches!(
            e.kind,
            EntryKind::Acknowledge | EntryKind::Resolve | EntryKind::Assign | EntryKind::Escalate
        );
        if responder && matches!(e.agent, Agent::User(u) if chosen.contains(&u)) {
            e.kind = EntryKind::Annotate;
            e.channel = Channel::Note;
            e.target = None;
            e.level = 0;
        }
    }
}

/// The account's two licenses and every user's allocation: a stakeholder license for
/// the read-only roles, a full-user one for every other role, as the licenses'
/// `valid_roles` say. An account of 5 users or more has a stakeholder: where none has a
/// read-only role, a user who never acts and is not on call (never the owner) becomes a
/// `read_only_user` (who never acts anyway): the last plain or limited user if there is
/// one, else preferably one whose role another user also has. Allocation times are
/// within two years before `end_date`.
fn generate_licenses(
    config: &PagerDutyConfig,
    users: &mut [User],
    on_call: &HashSet<usize>,
    rng: &mut Prng,
    ids: &mut Ids,
) -> (Vec<License>, Vec<Allocation>) {
    let stakeholder = |u: &User| STAKEHOLDER_ROLES.contains(&u.role);
    if users.len() >= 5 && !users.iter().any(stakeholder) {
        // A plain or limited user first, else one whose role another user also holds
        // (no role disappears); the last such user.
        let shared = |role: &str| users.iter().filter(|u| u.role == role).count() > 1;
        let candidate = (1..users.len())
            .filter(|&i| !users[i].active && !on_call.contains(&i))
            .max_by_key(|&i| {
                let u = &users[i];
                (matches!(u.role, "user" | "limited_user"), shared(u.role), i)
            });
        if let Some(i) = candidate {
            users[i].role = "read_only_user";
        }
    }
    let end = config.end_date.with_time(Time::MIDNIGHT).assume_utc();
    let allocations: Vec<Allocation> = users
        .iter()
        .map(|u| Allocation {
            license: if stakeholder(u) {
                STAKEHOLDER
            } else {
                FULL_USER
            },
            at: end
                - time::Duration::days(rng.between(1, 730) as i64)
                - time::Duration::seconds(rng.below(86_400) as i64),
        })
        .collect();
    let full = allocations
        .iter()
        .filter(|a| a.license == FULL_USER)
        .count() as u64;
    let licenses = vec![
        License {
            id: ids.resource(rng),
            name: "Business (Full User)",
            description: "",
            role_group: "FullUser",
            valid_roles: &[
                "owner",
                "admin",
                "user",
                "limited_user",
                "observer",
                "restricted_access",
            ],
            // Bought in tens: what is left of the next ten up.
            allocations_available: Some(10 - full % 10),
        },
        License {
            id: ids.resource(rng),
            name: "Business (Stakeholder)",
            description: "",
            role_group: "Stakeholder",
            valid_roles: &STAKEHOLDER_ROLES,
            // Stakeholder licenses without a limit.
            allocations_available: None,
        },
    ];
    (licenses, allocations)
}

/// Whether a role can take part in incident response (be on call, act on incidents).
fn responder_role(role: &str) -> bool {
    !matches!(
        role,
        "observer" | "read_only_user" | "read_only_limited_user"
    )
}

/// The account's escalation policies, schedules and direct targets. Who is on call is
/// chosen from the generated users so the premises tests need hold for every seed:
///
/// - "Payments Primary" (level 1 of "Checkout Escalation") rotates weekly over a user
///   who never acts (on call, quiet, at any date and threshold) and two who act;
/// - "Platform Primary" (level 1 of "Platform Escalation") over two who act and, if
///   the account has a second one, another who never acts;
/// - level 2 of "Platform Escalation" targets the owner directly (always on call).
///
/// A rotation of at most three weekly shifts puts each member on call in any 21 days.
/// Members are responders (no observers or read-only users), never pending invitations,
/// and each is on one schedule at most; the users who act are the lowest-indexed ones
/// (the users who went quiet are the highest-indexed, so they stay off call).
fn generate_on_call(
    users: &[User],
    rng: &mut Prng,
    ids: &mut Ids,
) -> (Vec<EscalationPolicy>, Vec<Schedule>, Vec<DirectTarget>) {
    let policies: Vec<EscalationPolicy> = ["Checkout Escalation", "Platform Escalation"]
        .into_iter()
        .map(|name| EscalationPolicy {
            id: ids.resource(rng),
            name,
        })
        .collect();
    let eligible =
        |i: &usize| *i != 0 && responder_role(users[*i].role) && !users[*i].invitation_sent;
    let quiet: Vec<usize> = (0..users.len())
        .filter(eligible)
        .filter(|&i| !users[i].active)
        .collect();
    let acting: Vec<usize> = (0..users.len())
        .filter(eligible)
        .filter(|&i| users[i].active)
        .collect();
    let pick = |list: &[usize], at: usize| list.get(at).copied();
    let payments: Vec<usize> = [pick(&quiet, 0), pick(&acting, 0), pick(&acting, 1)]
        .into_iter()
        .flatten()
        .collect();
    let platform: Vec<usize> = [pick(&acting, 2), pick(&quiet, 1), pick(&acting, 3)]
        .into_iter()
        .flatten()
        .collect();
    let schedules = vec![
        Schedule {
            id: ids.resource(rng),
            name: "Payments Primary",
            policy: 0,
            level: 1,
            members: payments,
        },
        Schedule {
            id: ids.resource(rng),
            name: "Platform Primary",
            policy: 1,
            level: 1,
            members: platform,
        },
    ];
    let direct = if users.is_empty() {
        Vec::new()
    } else {
        vec![DirectTarget {
            policy: 1,
            level: 2,
            user: 0,
        }]
    };
    (policies, schedules, direct)
}

fn generate_users(config: &PagerDutyConfig, rng: &mut Prng, ids: &mut Ids) -> Vec<User> {
    let n = config.users as usize;
    let mut names = HashSet::new();
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        let first = rng.pick(&FIRST_NAMES);
        let last = rng.pick(&LAST_NAMES);
        let mut name = format!("{first} {last}");
        let mut local = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
        if !names.insert(name.clone()) {
            // Past 1 600 users the name pairs repeat; a suffix keeps names and emails unique.
            name = format!("{first} {last} {}", i + 1);
            local = format!("{local}{}", i + 1);
            names.insert(name.clone());
        }
        let role = match i {
            0 => "owner",
            1 => "admin",
            _ => {
                let r = rng.unit();
                if r < 0.05 {
                    "admin"
                } else if r < 0.12 {
                    "observer"
                } else if r < 0.20 {
                    "limited_user"
                } else if r < 0.24 {
                    "read_only_user"
                } else {
                    "user"
                }
            }
        };
        let invitation_sent = i > 0 && rng.chance(0.08);
        let mut teams = Vec::new();
        for t in 0..TEAMS.len() {
            if rng.chance(0.3) {
                teams.push(t);
            }
        }
        let mut contact_methods = vec![ContactMethod {
            id: ids.resource(rng),
            kind: "email_contact_method_reference",
            summary: "Default",
        }];
        if !invitation_sent && rng.chance(0.7) {
            contact_methods.push(ContactMethod {
                id: ids.resource(rng),
                kind: "phone_contact_method_reference",
                summary: "Mobile",
            });
        }
        if !invitation_sent && rng.chance(0.5) {
            contact_methods.push(ContactMethod {
                id: ids.resource(rng),
                kind: "push_notification_contact_method_reference",
                summary: "Pixel 8",
            });
        }
        let notification_rules = (0..contact_methods.len().min(2))
            .map(|_| ids.resource(rng))
            .collect();
        users.push(User {
            id: ids.resource(rng),
            name,
            email: format!("{local}@seatscope-sandbox.example"),
            role,
            time_zone: rng.pick(&TIME_ZONES),
            color: rng.pick(&COLORS),
            job_title: rng.pick(&JOB_TITLES),
            description: if rng.chance(0.4) {
                Some(rng.pick(&DESCRIPTIONS))
            } else {
                None
            },
            invitation_sent,
            created_via_sso: rng.chance(0.3),
            teams,
            contact_methods,
            notification_rules,
            active: false,
        });
    }
    // A few special roles on every account big enough to have them, so clients meet them.
    for role in ["observer", "limited_user"] {
        if n >= 5 && !users.iter().any(|u| u.role == role) {
            let plain: Vec<usize> = (2..n).filter(|&i| users[i].role == "user").collect();
            if !plain.is_empty() {
                let i = plain[rng.index(plain.len())];
                users[i].role = role;
            }
        }
    }
    // Stakeholder-like roles and pending invitations never act; some full users don't either.
    for (i, user) in users.iter_mut().enumerate() {
        let passive_role = matches!(
            user.role,
            "observer" | "read_only_user" | "read_only_limited_user"
        );
        user.active = i == 0 || (!passive_role && !user.invitation_sent && !rng.chance(0.15));
    }
    // Every account with more than one seat has at least one inactive seat.
    if n >= 2 && users.iter().all(|u| u.active) {
        users[n - 1].active = false;
    }
    // Every account with 5 seats or more has a responder (not the owner, no pending
    // invitation) who never acts: the on-call rotation puts one on call, quiet.
    let never_acts =
        |i: usize, u: &User| i != 0 && responder_role(u.role) && !u.invitation_sent && !u.active;
    if n >= 5 && !users.iter().enumerate().any(|(i, u)| never_acts(i, u)) {
        if let Some(i) = (1..n)
            .rev()
            .find(|&i| responder_role(users[i].role) && !users[i].invitation_sent)
        {
            users[i].active = false;
        }
    }
    // Renames last, drawing nothing from the generator: the rest of the data is unchanged.
    for (i, name) in &config.renamed_users {
        if let Some(user) = users.get_mut(*i as usize) {
            user.name = name.clone();
        }
    }
    for (i, email) in &config.shared_emails {
        if let Some(user) = users.get_mut(*i as usize) {
            user.email = email.clone();
        }
    }
    users
}

fn generate_activity(
    config: &PagerDutyConfig,
    users: &[User],
    services: &[Service],
    ids: &mut Ids,
    incidents: &mut Vec<Incident>,
    entries: &mut Vec<LogEntry>,
) {
    let days = config.days as usize;
    if days == 0 || users.is_empty() {
        return;
    }
    let seed = config.seed;
    let first_day = config.end_date - time::Duration::days(i64::from(config.days) - 1);
    let active: Vec<usize> = (0..users.len()).filter(|&i| users[i].active).collect();
    let mut weight_rng = stream(seed, 0x003E_1647, users.len() as u64);
    let weights: Vec<f64> = active
        .iter()
        .map(|_| {
            let u = weight_rng.unit();
            0.25 + 2.75 * u * u
        })
        .collect();
    let total_weight: f64 = weights.iter().sum();

    // Per-day targets: weekends are quieter; the sum over the range is exact.
    let dates: Vec<Date> = (0..days)
        .map(|d| first_day + time::Duration::days(d as i64))
        .collect();
    let factors: Vec<f64> = dates
        .iter()
        .map(|date| {
            let mut r = stream(seed, date.to_julian_day() as u64, 1);
            let weekend = matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday);
            (if weekend { 0.45 } else { 1.0 }) * (0.7 + 0.6 * r.unit())
        })
        .collect();
    let total = if active.is_empty() {
        0
    } else {
        u64::from(config.events_per_day) * days as u64
    };
    let targets = apportion(total, &factors);
    // The users who went quiet, each with the last day (index) they act on.
    let quiet_last_day: HashMap<usize, usize> = active
        .iter()
        .rev()
        .filter(|&&u| u != 0)
        .zip(&config.went_quiet_days_ago)
        .filter_map(|(&user, &n)| {
            let latest = days.checked_sub(1 + n as usize)?;
            let day = (0..=latest).rev().find(|&d| targets[d] > 0)?;
            Some((user, day))
        })
        .collect();
    let quiet_on = |user: usize, d: usize| quiet_last_day.get(&user).is_some_and(|&last| d > last);

    let mut number = 1000u32;
    for (d, date) in dates.iter().enumerate() {
        let mut rng = stream(seed, date.to_julian_day() as u64, 2);
        let day_start = date.with_time(Time::MIDNIGHT).assume_utc();
        let at = |secs: u64| day_start + time::Duration::seconds(secs.min(86_399) as i64);
        let target = targets[d];
        let with_users = if target == 0 { 0 } else { target.div_ceil(3) };
        let noise_only = with_users / 5 + rng.below(2);
        let count = (with_users + noise_only) as usize;
        let mut starts: Vec<u64> = (0..count).map(|_| rng.below(86_400 - 900)).collect();
        starts.sort_unstable();
        // Incidents with user activity are a random subset of the day's incidents.
        let mut order: Vec<usize> = (0..count).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.index(i + 1));
        }
        let user_incidents: Vec<usize> = order[..with_users as usize].to_vec();

        let first_incident = incidents.len();
        let mut primary = Vec::with_capacity(count);
        for &t0 in &starts {
            number += 1;
            let service = rng.index(services.len());
            let incident = incidents.len();
            incidents.push(Incident {
                id: ids.resource(&mut rng),
                number,
                title: rng.pick(&INCIDENT_TITLES),
                service,
            });
            let responder = if active.is_empty() {
                rng.index(users.len())
            } else {
                weighted(&mut rng, &active, &weights, total_weight)
            };
            primary.push(responder);
            let svc = Agent::Service(service);
            let mut push = |rng: &mut Prng,
                            kind: EntryKind,
                            secs: u64,
                            agent: Agent,
                            channel: Channel,
                            target: Option<usize>,
                            level: u8| {
                entries.push(LogEntry {
                    id: ids.log_entry(rng),
                    kind,
                    at: at(secs),
                    agent,
                    channel,
                    incident,
                    target,
                    level,
                });
            };
            // Trigger: mostly an integration, sometimes a user from the web app (not counted).
            if rng.chance(0.12) && !active.is_empty() {
                let by = weighted(&mut rng, &active, &weights, total_weight);
                push(
                    &mut rng,
                    EntryKind::Trigger,
                    t0,
                    Agent::User(by),
                    Channel::WebTrigger,
                    None,
                    0,
                );
            } else {
                let channel = if rng.chance(0.25) {
                    Channel::EmailTrigger
                } else {
                    Channel::EventsApi
                };
                push(&mut rng, EntryKind::Trigger, t0, svc, channel, None, 0);
            }
            push(
                &mut rng,
                EntryKind::Assign,
                t0,
                svc,
                Channel::Auto,
                Some(responder),
                0,
            );
            let notify_secs = t0 + 1 + rng.below(60);
            let kind = rng.pick(&[
                NotificationKind::Push,
                NotificationKind::Sms,
                NotificationKind::Email,
            ]);
            push(
                &mut rng,
                EntryKind::Notify,
                notify_secs,
                svc,
                Channel::Notification(kind),
                Some(responder),
                0,
            );
            if rng.chance(0.4) {
                let kind = rng.pick(&[
                    NotificationKind::Push,
                    NotificationKind::Sms,
                    NotificationKind::Email,
                ]);
                push(
                    &mut rng,
                    EntryKind::Notify,
                    notify_secs + 60,
                    svc,
                    Channel::Notification(kind),
                    Some(responder),
                    0,
                );
            }
            // Integrations acknowledge and resolve too; those are not a person's activity.
            if rng.chance(0.15) {
                let secs = within_day(&mut rng, t0, 60, 1_800);
                push(
                    &mut rng,
                    EntryKind::Acknowledge,
                    secs,
                    svc,
                    Channel::Api,
                    None,
                    0,
                );
            }
            if rng.chance(0.10) {
                let to = rng.index(users.len());
                let secs = within_day(&mut rng, t0, 900, 900);
                push(
                    &mut rng,
                    EntryKind::Escalate,
                    secs,
                    svc,
                    Channel::Timeout,
                    Some(to),
                    2,
                );
                push(
                    &mut rng,
                    EntryKind::Notify,
                    secs + 5,
                    svc,
                    Channel::Notification(NotificationKind::Push),
                    Some(to),
                    0,
                );
            }
            if rng.chance(0.30) {
                let secs = within_day(&mut rng, t0, 1_800, 7_200);
                push(
                    &mut rng,
                    EntryKind::Resolve,
                    secs,
                    svc,
                    Channel::Api,
                    None,
                    0,
                );
            }
        }

        // The day's counted user actions, spread over the incidents that have them.
        for slot in 0..target as usize {
            let k = if slot < user_incidents.len() {
                user_incidents[slot]
            } else {
                user_incidents[rng.index(user_incidents.len())]
            };
            let incident = first_incident + k;
            let mut actor = if rng.chance(0.65) {
                primary[k]
            } else {
                weighted(&mut rng, &active, &weights, total_weight)
            };
            // A quiet user's last day starts with their own action; after it, never theirs.
            let mut last_day_of: Vec<usize> = quiet_last_day
                .iter()
                .filter(|&(_, &last)| last == d)
                .map(|(&user, _)| user)
                .collect();
            last_day_of.sort_unstable();
            if let Some(&user) = last_day_of.get(slot) {
                actor = user;
            }
            let mut redraws = 0;
            while quiet_on(actor, d) {
                redraws += 1;
                actor = if redraws > 8 {
                    0
                } else {
                    weighted(&mut rng, &active, &weights, total_weight)
                };
            }
            let r = rng.below(100);
            let kind = match r {
                0..=33 => EntryKind::Acknowledge,
                34..=57 => EntryKind::Resolve,
                58..=77 => EntryKind::Annotate,
                78..=88 => EntryKind::Assign,
                _ => EntryKind::Escalate,
            };
            let channel = match (kind, rng.below(100)) {
                (EntryKind::Annotate, _) => Channel::Note,
                (_, 0..=54) => Channel::Website,
                (_, 55..=79) => Channel::Mobile,
                (_, 80..=89) => Channel::Api,
                (EntryKind::Acknowledge | EntryKind::Resolve, 90..=94) => Channel::Sms,
                (EntryKind::Acknowledge | EntryKind::Resolve, _) => Channel::Email,
                _ => Channel::Website,
            };
            let (target, level) = match kind {
                EntryKind::Assign | EntryKind::Escalate => {
                    let mut to = rng.index(users.len());
                    if to == actor && users.len() > 1 {
                        to = (to + 1) % users.len();
                    }
                    (Some(to), if kind == EntryKind::Escalate { 2 } else { 0 })
                }
                _ => (None, 0),
            };
            let secs = within_day(&mut rng, starts[k], 30, 4 * 3_600);
            entries.push(LogEntry {
                id: ids.log_entry(&mut rng),
                kind,
                at: at(secs),
                agent: Agent::User(actor),
                channel,
                incident,
                target,
                level,
            });
        }
    }
}

/// A second of the day `delay..delay + span` after `t0`, or between `t0` and midnight when
/// that would cross into the next day (activity on an incident stays on its day, spread out
/// rather than piled up on 23:59:59).
fn within_day(rng: &mut Prng, t0: u64, delay: u64, span: u64) -> u64 {
    const LAST: u64 = 86_399;
    let (lo, hi) = if t0 + delay > LAST {
        (t0.min(LAST), LAST)
    } else {
        (t0 + delay, (t0 + delay + span).min(LAST))
    };
    lo + rng.below(hi - lo + 1)
}

/// A user drawn in proportion to their activity weight.
fn weighted(rng: &mut Prng, active: &[usize], weights: &[f64], total: f64) -> usize {
    let mut x = rng.unit() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return active[i];
        }
        x -= w;
    }
    active[active.len() - 1]
}

#[cfg(test)]
mod tests {
    use super::super::{GroundTruth, SeatTruth};
    use super::*;
    use std::collections::BTreeSet;
    use time::macros::date;

    fn config(seed: u64) -> PagerDutyConfig {
        PagerDutyConfig {
            seed,
            end_date: date!(2026 - 03 - 31),
            ..PagerDutyConfig::default()
        }
    }

    #[test]
    fn same_config_gives_identical_ground_truth_and_entries() {
        let a = Dataset::generate(&config(7));
        let b = Dataset::generate(&config(7));
        assert_eq!(a.ground_truth(), b.ground_truth());
        let ids = |d: &Dataset| d.entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
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
    fn counted_entries_total_exactly_events_per_day_times_days() {
        let cfg = config(42);
        let truth = Dataset::generate(&cfg).ground_truth();
        let sum: u64 = truth.daily.iter().map(|d| u64::from(d.count)).sum();
        assert_eq!(sum, u64::from(cfg.events_per_day) * u64::from(cfg.days));
        let days: HashSet<&str> = truth.daily.iter().map(|d| d.date.as_str()).collect();
        assert_eq!(days.len(), cfg.days as usize, "every day has activity");
    }

    #[test]
    fn entries_stay_inside_their_range_and_are_newest_first() {
        let cfg = config(3);
        let data = Dataset::generate(&cfg);
        let first = cfg.end_date - time::Duration::days(i64::from(cfg.days) - 1);
        assert!(data.entries.windows(2).all(|w| w[0].at >= w[1].at));
        assert!(data
            .entries
            .iter()
            .all(|e| e.at.date() >= first && e.at.date() <= cfg.end_date));
        assert!(data.entries.iter().all(|e| e.at.nanosecond() == 0));
        // Spread over the day, not piled up at its last second.
        let last_second = data
            .entries
            .iter()
            .filter(|e| (e.at.hour(), e.at.minute(), e.at.second()) == (23, 59, 59))
            .count();
        assert!(
            last_second * 200 < data.entries.len(),
            "{last_second} at 23:59:59"
        );
    }

    #[test]
    fn noise_inactive_seats_and_special_roles_are_present() {
        let data = Dataset::generate(&config(42));
        let has = |pred: &dyn Fn(&LogEntry) -> bool| data.entries.iter().any(pred);
        assert!(has(
            &|e| e.kind == EntryKind::Trigger && matches!(e.agent, Agent::Service(_))
        ));
        assert!(has(
            &|e| e.kind == EntryKind::Trigger && matches!(e.agent, Agent::User(_))
        ));
        assert!(has(&|e| e.kind == EntryKind::Notify && e.target.is_some()));
        assert!(has(
            &|e| e.kind == EntryKind::Acknowledge && matches!(e.agent, Agent::Service(_))
        ));
        assert!(has(
            &|e| e.kind == EntryKind::Assign && matches!(e.agent, Agent::Service(_))
        ));
        let truth = data.ground_truth();
        let acting: HashSet<&str> = truth.daily.iter().map(|d| d.user_id.as_str()).collect();
        assert!(data.users.iter().any(|u| !acting.contains(u.id.as_str())));
        for role in ["owner", "admin", "observer", "limited_user"] {
            assert!(data.users.iter().any(|u| u.role == role), "no {role}");
        }
        assert_eq!(data.users[0].role, "owner");
        let features: HashSet<&str> = truth.daily.iter().map(|d| d.feature.as_str()).collect();
        assert_eq!(features.len(), 5, "{features:?}");
    }

    #[test]
    fn ids_look_like_pagerduty_ids_and_are_unique() {
        let data = Dataset::generate(&config(11));
        let mut seen = HashSet::new();
        for u in &data.users {
            assert_eq!(u.id.len(), 7);
            assert!(u.id.starts_with('P'));
            assert!(u.id.bytes().all(|b| ID_ALPHABET.contains(&b) || b == b'P'));
            assert!(seen.insert(u.id.clone()));
        }
        let emails: HashSet<&str> = data.users.iter().map(|u| u.email.as_str()).collect();
        assert_eq!(emails.len(), data.users.len());
    }

    #[test]
    fn apportion_is_exact_and_proportional() {
        let parts = apportion(10, &[1.0, 1.0, 2.0]);
        assert_eq!(parts.iter().sum::<u64>(), 10);
        assert!(parts[2] >= parts[0]);
        assert_eq!(apportion(0, &[1.0]), vec![0]);
    }

    #[test]
    fn a_renamed_user_changes_only_that_name() {
        let plain = Dataset::generate(&config(7)).ground_truth();
        let hostile = "=HYPERLINK(\"http://evil.example\",\"x\")".to_string();
        let renamed = Dataset::generate(&PagerDutyConfig {
            renamed_users: vec![(3, hostile.clone())],
            ..config(7)
        })
        .ground_truth();
        assert_eq!(plain.daily, renamed.daily);
        let names = |t: &GroundTruth| {
            let mut v: Vec<(String, String)> = t
                .seats
                .iter()
                .map(|s| (s.id.clone(), s.name.clone()))
                .collect();
            v.sort();
            v
        };
        let changed: Vec<_> = names(&plain)
            .into_iter()
            .zip(names(&renamed))
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].1 .1, hostile);
    }

    #[test]
    fn users_who_went_quiet_act_last_on_their_day_and_the_total_is_unchanged() {
        let cfg = PagerDutyConfig {
            users: 30,
            days: 90,
            events_per_day: 6,
            went_quiet_days_ago: vec![40, 50],
            ..config(3)
        };
        let truth = Dataset::generate(&cfg).ground_truth();
        let total: u32 = truth.daily.iter().map(|d| d.count).sum();
        assert_eq!(total, 6 * 90);
        let mut last: BTreeMap<&str, &str> = BTreeMap::new();
        for d in &truth.daily {
            let e = last.entry(d.user_id.as_str()).or_insert(d.date.as_str());
            *e = (*e).max(d.date.as_str());
        }
        // With 6 events a day every day has counted actions, so each lands exactly.
        for n in [40, 50] {
            let day = (cfg.end_date - time::Duration::days(n)).to_string();
            assert!(
                last.values().any(|&d| d == day),
                "a user acted last {n} days ago: {last:?}"
            );
        }
        let recent = (cfg.end_date - time::Duration::days(30)).to_string();
        assert!(
            last.values().filter(|&&d| d > recent.as_str()).count() >= 2,
            "others stay active"
        );
    }

    #[test]
    fn notes_only_full_users_write_only_notes_and_are_on_call_nowhere() {
        let cfg = PagerDutyConfig {
            users: 30,
            days: 40,
            events_per_day: 20,
            notes_only_full_users: 2,
            ..config(3)
        };
        let plain = Dataset::generate(&PagerDutyConfig {
            notes_only_full_users: 0,
            ..cfg.clone()
        })
        .ground_truth();
        let truth = Dataset::generate(&cfg).ground_truth();
        let total = |t: &GroundTruth| t.daily.iter().map(|d| d.count).sum::<u32>();
        assert_eq!(
            total(&truth),
            total(&plain),
            "entries change kind, not number"
        );
        let mut features: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for d in truth.daily.iter().filter(|d| d.count > 0) {
            features.entry(&d.user_id).or_default().insert(&d.feature);
        }
        let on_call: BTreeSet<&str> = truth.on_call.iter().map(|o| o.user_id.as_str()).collect();
        let notes_only: Vec<&SeatTruth> = truth
            .seats
            .iter()
            .filter(|s| {
                features
                    .get(s.id.as_str())
                    .is_some_and(|f| f.iter().all(|f| *f == "note"))
            })
            .collect();
        assert_eq!(notes_only.len(), 2, "{features:?}");
        for s in notes_only {
            assert_eq!(s.license.as_deref(), Some("Business (Full User)"));
            assert!(!on_call.contains(s.id.as_str()));
        }
    }

    #[test]
    fn zero_events_leave_every_seat_inactive() {
        let cfg = PagerDutyConfig {
            events_per_day: 0,
            ..config(1)
        };
        assert!(Dataset::generate(&cfg).ground_truth().daily.is_empty());
    }
    #[test]
    fn on_call_premises_hold_for_every_size_at_any_date() {
        for users in [5, 8, 11, 12, 13, 18, 24, 25, 30, 130] {
            let cfg = PagerDutyConfig {
                users,
                ..config(42)
            };
            let data = Dataset::generate(&cfg);
            let truth = data.ground_truth();
            let acting: HashSet<&str> = truth.daily.iter().map(|d| d.user_id.as_str()).collect();
            let on_call: HashSet<&str> = truth.on_call.iter().map(|o| o.user_id.as_str()).collect();
            assert_eq!(on_call.len(), truth.on_call.len(), "one entry per user");
            assert!(
                truth
                    .on_call
                    .iter()
                    .any(|o| !acting.contains(o.user_id.as_str())),
                "{users} users: someone on call never acts"
            );
            assert!(
                truth
                    .on_call
                    .iter()
                    .any(|o| acting.contains(o.user_id.as_str())),
                "{users} users: someone on call acts"
            );
            assert!(
                truth
                    .seats
                    .iter()
                    .any(|s| !acting.contains(s.id.as_str()) && !on_call.contains(s.id.as_str())),
                "{users} users: an inactive seat stays reclaimable"
            );
            assert!(truth.on_call.iter().any(|o| o.schedule.is_none()));
            // Who is on call over any 21 days is exactly the truth, at any date.
            for start in [date!(2026 - 03 - 31), date!(2031 - 07 - 17)] {
                let t = start
                    .with_time(Time::from_hms(13, 5, 0).unwrap())
                    .assume_utc();
                let seen: HashSet<&str> = data
                    .on_calls(t, t + time::Duration::days(21))
                    .iter()
                    .map(|e| data.users[e.user].id.as_str())
                    .collect();
                assert_eq!(seen, on_call);
                // Right now: one user per schedule, and the direct target.
                let now = data.on_calls(t, t);
                let staffed = data
                    .schedules
                    .iter()
                    .filter(|s| !s.members.is_empty())
                    .count();
                assert_eq!(now.len(), staffed + data.direct.len());
                assert!(now
                    .iter()
                    .all(|e| e.start.is_none_or(|s| s <= t) && e.end.is_none_or(|e| e > t)));
            }
        }
    }

    #[test]
    fn every_user_holds_the_license_its_role_allows_and_both_kinds_are_held() {
        let sizes = (5..=40)
            .map(|n| (42, n))
            .chain((0..40).map(|seed| (seed, 25)));
        for (seed, users) in sizes.chain([(42, 130), (42, 1000)]) {
            let cfg = PagerDutyConfig {
                users,
                ..config(seed)
            };
            let data = Dataset::generate(&cfg);
            let truth = data.ground_truth();
            assert_eq!(data.allocations.len(), data.users.len());
            for seat in &truth.seats {
                let license = data
                    .licenses
                    .iter()
                    .find(|l| Some(l.name) == seat.license.as_deref())
                    .unwrap_or_else(|| panic!("{seed}/{users}: {} has a license", seat.id));
                assert!(
                    license.valid_roles.contains(&seat.role.as_str()),
                    "{seed}/{users}: {} is a {} on {}",
                    seat.id,
                    seat.role,
                    license.name
                );
            }
            assert!(data.allocated(FULL_USER) > data.allocated(STAKEHOLDER));
            assert!(
                data.allocated(STAKEHOLDER) > 0,
                "{seed}/{users}: a stakeholder"
            );
            // Stakeholders never act and are never on call.
            let acting: HashSet<&str> = truth.daily.iter().map(|d| d.user_id.as_str()).collect();
            let on_call: HashSet<&str> = truth.on_call.iter().map(|o| o.user_id.as_str()).collect();
            for seat in truth
                .seats
                .iter()
                .filter(|s| s.license.as_deref() == Some(data.licenses[STAKEHOLDER].name))
            {
                assert!(!acting.contains(seat.id.as_str()) && !on_call.contains(seat.id.as_str()));
            }
        }
        let a = Dataset::generate(&config(42));
        let b = Dataset::generate(&config(42));
        let at = |d: &Dataset| d.allocations.iter().map(|a| a.at).collect::<Vec<_>>();
        assert_eq!(at(&a), at(&b));
    }
}
