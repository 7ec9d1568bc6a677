//! A window over an organisation's keys: the SQL of one tab, sort and
//! direction, read page by page from an index (keyset pagination both ways),
//! and of the counts per tab and of the summary line — the health rules of
//! `key::health` written as SQL with the policy's thresholds and `now`.
//!
//! An order is a list of *segments* read one after another, each from one
//! index in its own order: one for a plain sort; the statuses for the status
//! sort; the worst badges for the Attention order. A position is (segment,
//! sort value, id), so a page starts anywhere without reading what lies before.

use chrono::{DateTime, Utc};

use crate::key::policy::Policy;

/// Which keys a tab shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTab {
    All,
    Active,
    Expired,
    Revoked,
    /// Keys with at least one health badge under the policy.
    Attention,
}

/// How a window is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySort {
    Created,
    Name,
    LastUsed,
    Expires,
    /// Active, expired, revoked; newest first within each.
    Status,
    /// Worst badge first, then the worst of that kind (`health::sort_attention`).
    Attention,
}

impl KeySort {
    /// The letter that starts this sort's positions.
    fn code(self) -> char {
        match self {
            KeySort::Created => 'c',
            KeySort::Name => 'n',
            KeySort::LastUsed => 'l',
            KeySort::Expires => 'e',
            KeySort::Status => 's',
            KeySort::Attention => 'a',
        }
    }

    /// Whether this sort's values are text (the lower-cased name).
    fn is_text(self) -> bool {
        self == KeySort::Name
    }
}

/// A sort value as the SQL computed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortValue {
    Int(i64),
    Text(String),
}

/// Where a key stands in a window's order; pages continue from one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPosition {
    pub sort: KeySort,
    pub segment: u8,
    pub value: SortValue,
    pub id: String,
}

/// Longest position a client may send back: more than the longest one
/// [`KeyPosition::encode`] writes, a name sort's of a 100-character name of
/// 4-byte characters (800 hex digits, its tag and dots, an id of at most 64).
/// At 512 the service handed out positions it then refused.
pub const MAX_POSITION_LEN: usize = 1024;

impl KeyPosition {
    /// `ms.id` for the created order (as cursors always were), else
    /// `{sort}{segment}.{value}.{id}` with text values in hex.
    pub fn encode(&self) -> String {
        let value = match &self.value {
            SortValue::Int(v) => v.to_string(),
            SortValue::Text(t) => t.bytes().map(|b| format!("{b:02x}")).collect(),
        };
        match self.sort {
            KeySort::Created => format!("{value}.{}", self.id),
            sort => format!("{}{}.{value}.{}", sort.code(), self.segment, self.id),
        }
    }

    /// A position of `sort` as [`KeyPosition::encode`] wrote it; `None` for
    /// anything else (another sort's position included).
    pub fn decode(s: &str, sort: KeySort) -> Option<Self> {
        if s.len() > MAX_POSITION_LEN {
            return None;
        }
        let parts: Vec<&str> = s.split('.').collect();
        let (segment, value, id) = match (sort, parts.as_slice()) {
            (KeySort::Created, [value, id]) => (0, *value, *id),
            (_, [tag, value, id]) => {
                let rest = tag.strip_prefix(sort.code())?;
                let segment: u8 = rest.parse().ok()?;
                (segment < segments_of(sort)).then_some(())?;
                (segment, *value, *id)
            }
            _ => return None,
        };
        let value = if sort.is_text() {
            SortValue::Text(unhex(value)?)
        } else {
            SortValue::Int(value.parse().ok()?)
        };
        let valid_id = id.len() <= 64
            && id.starts_with("key_")
            && id[4..].bytes().all(|b| b.is_ascii_alphanumeric());
        valid_id.then(|| Self {
            sort,
            segment,
            value,
            id: id.to_owned(),
        })
    }
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// The first page.
    Start,
    /// The page after this position.
    After(KeyPosition),
    /// The page before this position (scrolling up).
    Before(KeyPosition),
    /// The last page, without reading what lies before it.
    End,
}

/// One page of a window.
#[derive(Debug, Clone)]
pub struct KeyQuery {
    pub tab: KeyTab,
    pub sort: KeySort,
    /// Against the sort's ascending order (the whole order reversed).
    pub descending: bool,
    /// Text found in the name, prefix, description or a scope id.
    pub q: Option<String>,
    pub now: DateTime<Utc>,
    /// Whose thresholds the Attention tab and order follow.
    pub policy: Policy,
    pub limit: u32,
    pub anchor: Anchor,
    /// Only keys written at or after this change cursor (see `KeyFilter`).
    pub changed_since: Option<i64>,
}

/// A key of a window, with its position there.
#[derive(Debug, Clone)]
pub struct WindowKey {
    pub key: super::KeyRecord,
    pub position: KeyPosition,
}

/// The counts per tab and the summary line's numbers (`health::Summary`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyCounts {
    pub all: i64,
    pub active: i64,
    pub expired: i64,
    pub revoked: i64,
    /// Keys with at least one badge.
    pub attention: i64,
    pub expiring: i64,
    pub rotate: i64,
    pub unused: i64,
    pub rotating: i64,
    pub policy: i64,
    /// Active keys reported leaked.
    pub exposed: i64,
    /// Active keys whose checks are mostly refused (badge `refused`).
    pub refused: i64,
    /// Active keys whose secret was never issued (badge `no_secret`).
    pub no_secret: i64,
}

/// A value bound to a `$N` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Int(i64),
    Text(String),
}

/// SQL text and the values of its `$N` parameters, in order.
#[derive(Debug, Clone, Default)]
pub struct Statement {
    pub text: String,
    pub binds: Vec<Bind>,
}

impl Statement {
    /// `$N` for a new parameter holding `value`.
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    fn int(&mut self, v: i64) -> String {
        self.bind(Bind::Int(v))
    }
}

/// How the dialect finds `q`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextSearch {
    /// `LIKE` on the columns, which trigram GIN indexes serve (PostgreSQL `pg_trgm`).
    Like,
    /// The FTS5 trigram table `api_keys_fts` for 3 characters or more (SQLite).
    Fts5Trigram,
    /// As [`TextSearch::Fts5Trigram`], with fewer than [`FEW_MATCHES`]
    /// matches (the store counted them, [`fts_match_count`]): the rows are
    /// read from the matches by id and sorted, instead of found while an
    /// index is walked in the sort's order, which reads most of the
    /// organisation's keys when the matches lie far down that order.
    Fts5TrigramFew,
}

/// Below this many FTS5 matches, a filter's page and counts read the
/// matches by id (at most this many lookups) rather than walk the sort's
/// index (issue 19: at a million keys, 0.09 s of CPU instead of 0.40 s for
/// a page of 31 000 matches, 0.008 s instead of 0.21 s for 3 000).
pub const FEW_MATCHES: i64 = 50_000;

/// The FTS5 phrase of `q`: the text, quoted.
fn fts_phrase(q: &str) -> String {
    format!("\"{}\"", q.replace('"', "\"\""))
}

/// How many keys `q` matches in the FTS5 table, counted up to
/// [`FEW_MATCHES`] (reading at most that many entries); `None` when the
/// dialect or the text does not use FTS5.
pub fn fts_match_count(q: &str, search: TextSearch) -> Option<Statement> {
    if search == TextSearch::Like || q.chars().count() < 3 {
        return None;
    }
    let mut st = Statement::default();
    let phrase = st.bind(Bind::Text(fts_phrase(q)));
    let limit = st.int(FEW_MATCHES);
    st.text = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM api_keys_fts WHERE api_keys_fts MATCH {phrase} LIMIT {limit})"
    );
    Some(st)
}

/// What a query reads `q`'s keys from, and its predicate in the `WHERE`,
/// if any: few FTS5 matches are the outer loop of a join (CROSS JOIN keeps
/// that order in SQLite), the keys read by id from them.
fn source(st: &mut Statement, q: Option<&str>, search: TextSearch) -> (String, Option<String>) {
    match q {
        Some(q) if search == TextSearch::Fts5TrigramFew && q.chars().count() >= 3 => {
            let phrase = st.bind(Bind::Text(fts_phrase(q)));
            let from = format!(
                "(SELECT key_id FROM api_keys_fts WHERE api_keys_fts MATCH {phrase}) AS fts \
                 CROSS JOIN api_keys ON api_keys.id = fts.key_id"
            );
            (from, None)
        }
        Some(q) => ("api_keys".to_owned(), Some(text_filter(st, q, search))),
        None => ("api_keys".to_owned(), None),
    }
}

/// An expiry that sorts after every date: "no expiry" comes last.
macro_rules! never {
    () => {
        "9223372036854775807"
    };
}

/// The sort expressions; each is an index's expression (migrations `*_list_indexes.sql`).
const BY_CREATED: &str = "created_at";
const BY_NAME: &str = "LOWER(name)";
const BY_LAST_USED: &str = "COALESCE(last_used_at, -1)";
const BY_EXPIRES: &str = concat!("COALESCE(expires_at, ", never!(), ")");
const BY_UNUSED_SINCE: &str = "COALESCE(last_used_at, created_at)";
const BY_WINDING_DOWN: &str = "COALESCE(expires_at, created_at)";
/// The Attention order's "exposed" part: longest exposed first (index `api_keys_exposed`).
const BY_EXPOSED: &str = "exposed_at";
/// The Attention order's "refused" part: refused longest first (index `api_keys_refused`).
const BY_REFUSED: &str = "refused_since";

/// The policy's thresholds as instants (Unix ms), bound once per statement part.
#[derive(Debug, Clone, Copy)]
struct Instants {
    now: i64,
    expiring_until: i64,
    rotate_before: i64,
    unused_before: i64,
}

impl Instants {
    fn of(policy: &Policy, now: DateTime<Utc>) -> Self {
        let day = 86_400_000_i64;
        let now = super::ms(now);
        Self {
            now,
            expiring_until: now + i64::from(policy.expiring_within_days) * day,
            rotate_before: now - i64::from(policy.rotate_after_days) * day,
            unused_before: now - i64::from(policy.unused_after_days) * day,
        }
    }
}

/// The predicates of `key::health`, writing their parameters into one statement.
struct Rules<'a> {
    st: &'a mut Statement,
    at: Instants,
    policy: &'a Policy,
}

impl Rules<'_> {
    // The tabs' and badges' predicates name the columns themselves, not the
    // sort expressions: they filter rows and leave the choice of index to
    // the order. Only the Attention segments range over a sort expression.

    fn active(&mut self) -> String {
        let now = self.st.int(self.at.now);
        format!("(revoked_at IS NULL AND (expires_at IS NULL OR expires_at > {now}))")
    }

    fn expired(&mut self) -> String {
        let now = self.st.int(self.at.now);
        format!("(revoked_at IS NULL AND expires_at <= {now})")
    }

    /// Active, not replaced, not exposed and with its secret: the keys the
    /// advice badges apply to.
    fn live(&mut self) -> String {
        format!(
            "({} AND replaced_by IS NULL AND exposed_at IS NULL AND NOT secret_pending)",
            self.active()
        )
    }

    /// Active, not replaced nor exposed, and its secret never issued: badge
    /// `no_secret`, which replaces the advice badges (index `api_keys_no_secret`).
    fn no_secret(&mut self) -> String {
        format!(
            "({} AND replaced_by IS NULL AND exposed_at IS NULL AND secret_pending)",
            self.active()
        )
    }

    /// Active and reported leaked: badge `exposed`, which replaces every other.
    fn exposed(&mut self) -> String {
        format!("({} AND exposed_at IS NOT NULL)", self.active())
    }

    /// Active, replaced by a rotation and not exposed: badge `rotating`.
    fn rotating(&mut self) -> String {
        format!(
            "({} AND replaced_by IS NOT NULL AND exposed_at IS NULL)",
            self.active()
        )
    }

    fn expiring(&mut self) -> String {
        let until = self.st.int(self.at.expiring_until);
        format!("expires_at <= {until}")
    }

    fn not_expiring(&mut self) -> String {
        let until = self.st.int(self.at.expiring_until);
        format!("(expires_at IS NULL OR expires_at > {until})")
    }

    fn rotate(&mut self) -> String {
        let before = self.st.int(self.at.rotate_before);
        format!("created_at < {before}")
    }

    fn not_rotate(&mut self) -> String {
        let before = self.st.int(self.at.rotate_before);
        format!("created_at >= {before}")
    }

    fn unused(&mut self) -> String {
        let a = self.st.int(self.at.unused_before);
        let b = self.st.int(self.at.unused_before);
        format!("({BY_UNUSED_SINCE} < {a} AND created_at < {b})")
    }

    /// Most of its checks refused (badge `refused`): the usage flusher's mark.
    fn refused(&self) -> String {
        format!("{BY_REFUSED} IS NOT NULL")
    }

    fn not_refused(&self) -> String {
        format!("{BY_REFUSED} IS NULL")
    }

    fn not_unused(&mut self) -> String {
        format!("NOT {}", self.unused())
    }

    /// Breaks the policy's rules (`Policy::violations`).
    fn breaks_policy(&mut self) -> String {
        let mut rules = Vec::new();
        match self.policy.max_lifetime_days {
            Some(days) => {
                let span = self.st.int(i64::from(days) * 86_400_000);
                rules.push(format!(
                    "(expires_at IS NULL OR expires_at > created_at + {span})"
                ));
            }
            None if self.policy.require_expiry => rules.push("expires_at IS NULL".to_owned()),
            None => {}
        }
        if self.policy.require_description {
            rules.push("TRIM(description) = ''".to_owned());
        }
        if rules.is_empty() {
            "1 = 0".to_owned()
        } else {
            format!("({})", rules.join(" OR "))
        }
    }

    /// At least one badge (`health::badges` is not empty).
    fn attention(&mut self) -> String {
        let expired = self.expired();
        let active = self.active();
        let expiring = self.expiring();
        let rotate = self.rotate();
        let unused = self.unused();
        let policy = self.breaks_policy();
        let refused = self.refused();
        format!(
            "({expired} OR ({active} AND (replaced_by IS NOT NULL OR exposed_at IS NOT NULL \
             OR secret_pending OR expires_at IS NULL OR {expiring} OR {refused} OR {rotate} OR {unused} \
             OR {policy})))"
        )
    }

    fn tab(&mut self, tab: KeyTab) -> Option<String> {
        match tab {
            KeyTab::All => None,
            KeyTab::Active => Some(self.active()),
            KeyTab::Expired => Some(self.expired()),
            KeyTab::Revoked => Some("revoked_at IS NOT NULL".to_owned()),
            KeyTab::Attention => Some(self.attention()),
        }
    }

    /// The keys of Attention segment `worst`: 0-6 the badges from
    /// `expired` to `rotating` but `refused`, 7 `exposed`, read first, 8
    /// `refused`, read after `expiring`, 9 `no_secret`, read after `exposed`
    /// ([`segment_order`]; numbered last so that positions written before
    /// they existed keep their meaning).
    fn worst(&mut self, worst: u8) -> String {
        match worst {
            0 => {
                let now = self.st.int(self.at.now);
                format!("(revoked_at IS NULL AND {BY_EXPIRES} <= {now})")
            }
            1 => {
                let until = self.st.int(self.at.expiring_until);
                format!("({} AND {BY_EXPIRES} <= {until})", self.live())
            }
            2 => format!(
                "({} AND {} AND {} AND {})",
                self.live(),
                self.not_expiring(),
                self.not_refused(),
                self.rotate()
            ),
            3 => format!(
                "({} AND {} AND {} AND {} AND {})",
                self.live(),
                self.not_expiring(),
                self.not_refused(),
                self.not_rotate(),
                self.unused()
            ),
            4 => format!(
                "({} AND expires_at IS NULL AND {} AND {} AND {})",
                self.live(),
                self.not_refused(),
                self.not_rotate(),
                self.not_unused()
            ),
            5 => format!(
                "({} AND expires_at IS NOT NULL AND {} AND {} AND {} AND {} AND {})",
                self.live(),
                self.not_expiring(),
                self.not_refused(),
                self.not_rotate(),
                self.not_unused(),
                self.breaks_policy()
            ),
            6 => self.rotating(),
            8 => format!(
                "({} AND {} AND {})",
                self.live(),
                self.not_expiring(),
                self.refused()
            ),
            9 => self.no_secret(),
            _ => self.exposed(),
        }
    }

    /// Segment `segment` of `sort`: its predicate (if any), its sort
    /// expression, and whether it runs descending in the sort's ascending order.
    fn segment(&mut self, sort: KeySort, segment: u8) -> (Option<String>, &'static str, bool) {
        match sort {
            KeySort::Created => (None, BY_CREATED, false),
            KeySort::Name => (None, BY_NAME, false),
            KeySort::LastUsed => (None, BY_LAST_USED, false),
            KeySort::Expires => (None, BY_EXPIRES, false),
            KeySort::Status => {
                let tab = [KeyTab::Active, KeyTab::Expired, KeyTab::Revoked][usize::from(segment)];
                (self.tab(tab), BY_CREATED, true)
            }
            KeySort::Attention => {
                let by = match segment {
                    0 | 1 => BY_EXPIRES,
                    3 => BY_UNUSED_SINCE,
                    6 => BY_WINDING_DOWN,
                    7 => BY_EXPOSED,
                    8 => BY_REFUSED,
                    _ => BY_CREATED,
                };
                (Some(self.worst(segment)), by, false)
            }
        }
    }
}

/// How many segments a sort reads.
fn segments_of(sort: KeySort) -> u8 {
    match sort {
        KeySort::Status => 3,
        KeySort::Attention => 10,
        _ => 1,
    }
}

/// The segments of a sort in their ascending order: Attention reads
/// `exposed` (segment 7) first, then `no_secret` (9), and `refused` (8)
/// after `expiring` (1).
fn segment_order(sort: KeySort) -> Vec<u8> {
    match sort {
        KeySort::Attention => vec![7, 9, 0, 1, 8, 2, 3, 4, 5, 6],
        _ => (0..segments_of(sort)).collect(),
    }
}

/// Segments a tab can hold nothing of (the status sort's other statuses).
fn tab_excludes(tab: KeyTab, sort: KeySort, segment: u8) -> bool {
    match (sort, tab) {
        (KeySort::Status, KeyTab::Active) => segment != 0,
        (KeySort::Status, KeyTab::Expired) => segment != 1,
        (KeySort::Status, KeyTab::Revoked) => segment != 2,
        // Revoked keys have no badge.
        (KeySort::Status, KeyTab::Attention) => segment == 2,
        // An expired key's one badge is `expired` (segment 0); reading the
        // others' (contradictory) predicates would let a planner pick an
        // index that sorts (SQLite did for `refused`).
        (KeySort::Attention, KeyTab::Expired) => segment != 0,
        _ => false,
    }
}

/// `q`'s predicate, or none.
fn text_filter(st: &mut Statement, q: &str, search: TextSearch) -> String {
    if search != TextSearch::Like && q.chars().count() >= 3 {
        let phrase = st.bind(Bind::Text(fts_phrase(q)));
        return format!(
            "id IN (SELECT key_id FROM api_keys_fts WHERE api_keys_fts MATCH {phrase})"
        );
    }
    let p = st.bind(Bind::Text(super::like_pattern(q)));
    format!(
        "(LOWER(name) LIKE {p} ESCAPE '\\' OR LOWER(prefix) LIKE {p} ESCAPE '\\' \
         OR LOWER(description) LIKE {p} ESCAPE '\\' OR scopes LIKE {p} ESCAPE '\\')"
    )
}

/// One read of a window: a segment, in a direction, from an optional position.
#[derive(Debug, Clone)]
pub struct SegmentRead {
    pub segment: u8,
    pub statement: Statement,
}

/// What a page reads, in order (rows of a later read come after an
/// earlier one's), and whether the rows come backwards (to be reversed).
pub fn page_reads(
    org_id: &str,
    q: &KeyQuery,
    search: TextSearch,
    changed_since: Option<i64>,
    limit: u32,
) -> (Vec<SegmentRead>, bool) {
    let backwards = matches!(q.anchor, Anchor::Before(_) | Anchor::End);
    // The direction of the read against the sort's ascending order.
    let reversed = q.descending != backwards;
    let mut order: Vec<u8> = segment_order(q.sort)
        .into_iter()
        .filter(|&s| !tab_excludes(q.tab, q.sort, s))
        .collect();
    if reversed {
        order.reverse();
    }
    let from = match &q.anchor {
        Anchor::After(p) | Anchor::Before(p) => Some(p),
        _ => None,
    };
    if let Some(p) = from {
        if let Some(i) = order.iter().position(|&s| s == p.segment) {
            order.drain(..i);
        }
    }
    let reads = order
        .into_iter()
        .map(|segment| {
            let position = from.filter(|p| p.segment == segment);
            let statement = segment_select(
                org_id,
                q,
                search,
                changed_since,
                limit,
                segment,
                reversed,
                position,
            );
            SegmentRead { segment, statement }
        })
        .collect();
    (reads, backwards)
}

/// The `SELECT` of one segment's rows.
#[allow(clippy::too_many_arguments)]
fn segment_select(
    org_id: &str,
    q: &KeyQuery,
    search: TextSearch,
    changed_since: Option<i64>,
    limit: u32,
    segment: u8,
    reversed: bool,
    position: Option<&KeyPosition>,
) -> Statement {
    let mut st = Statement::default();
    let org = st.bind(Bind::Text(org_id.to_owned()));
    let mut wheres = vec![format!("org_id = {org}")];
    let at = Instants::of(&q.policy, q.now);
    let mut rules = Rules {
        st: &mut st,
        at,
        policy: &q.policy,
    };
    wheres.extend(rules.tab(q.tab));
    let (pred, by, segment_desc) = rules.segment(q.sort, segment);
    wheres.extend(pred);
    let (from, text) = source(&mut st, q.q.as_deref(), search);
    wheres.extend(text);
    if let Some(seq) = changed_since {
        let seq = st.int(seq);
        wheres.push(format!("change_seq >= {seq}"));
    }
    let desc = segment_desc != reversed;
    if let Some(p) = position {
        let value = st.bind(match &p.value {
            SortValue::Int(v) => Bind::Int(*v),
            SortValue::Text(t) => Bind::Text(t.clone()),
        });
        let id = st.bind(Bind::Text(p.id.clone()));
        let cmp = if desc { "<" } else { ">" };
        wheres.push(format!("({by}, id) {cmp} ({value}, {id})"));
    }
    let dir = if desc { "DESC" } else { "ASC" };
    let limit = st.int(i64::from(limit));
    let (int_col, text_col) = if q.sort.is_text() {
        ("CAST(NULL AS BIGINT)", by)
    } else {
        (by, "CAST(NULL AS TEXT)")
    };
    st.text = format!(
        "SELECT {}, {} AS sort_int, {} AS sort_text FROM {} WHERE {} \
         ORDER BY {} {}, id {} LIMIT {}",
        super::sql::KEY_COLUMNS,
        int_col,
        text_col,
        from,
        wheres.join(" AND "),
        by,
        dir,
        dir,
        limit
    );
    st
}

/// The counts of the tabs and the summary line, of the keys matching `q`.
pub fn counts(
    org_id: &str,
    q: Option<&str>,
    policy: &Policy,
    now: DateTime<Utc>,
    search: TextSearch,
) -> Statement {
    let mut st = Statement::default();
    let org = st.bind(Bind::Text(org_id.to_owned()));
    let mut rules = Rules {
        st: &mut st,
        at: Instants::of(policy, now),
        policy,
    };
    let mut sums = Vec::new();
    let mut sum = |name: &str, pred: String| {
        sums.push(format!(
            "COALESCE(SUM(CASE WHEN {pred} THEN 1 ELSE 0 END), 0) AS {name}"
        ))
    };
    sum("active", rules.active());
    sum("expired", rules.expired());
    sum("revoked", "revoked_at IS NOT NULL".to_owned());
    sum("attention", rules.attention());
    let (live, exp) = (rules.live(), rules.expiring());
    sum("expiring", format!("{live} AND {exp}"));
    let (live, rot) = (rules.live(), rules.rotate());
    sum("rotate", format!("{live} AND {rot}"));
    let (live, unused) = (rules.live(), rules.unused());
    sum("unused", format!("{live} AND {unused}"));
    sum("rotating", rules.rotating());
    sum("exposed", rules.exposed());
    sum("no_secret", rules.no_secret());
    let (live, refused) = (rules.live(), rules.refused());
    sum("refused", format!("{live} AND {refused}"));
    let (live, policy) = (rules.live(), rules.breaks_policy());
    sum("policy", format!("{live} AND {policy}"));
    let mut wheres = vec![format!("org_id = {org}")];
    let (from, text) = source(&mut st, q, search);
    wheres.extend(text);
    st.text = format!(
        "SELECT COUNT(*) AS all_keys, {} FROM {} WHERE {}",
        sums.join(", "),
        from,
        wheres.join(" AND ")
    );
    st
}

#[cfg_attr(not(feature = "test-support"), allow(dead_code))]
/// The hot queries of key listing, named, as a test reads their plans: every
/// tab × sort in both directions from a position, the last page, the counts,
/// the Attention order, the filter (long and short).
pub fn hot_queries(
    org_id: &str,
    search: TextSearch,
    now: DateTime<Utc>,
) -> Vec<(String, Statement)> {
    let policy = Policy {
        max_lifetime_days: Some(90),
        require_description: true,
        ..Policy::default()
    };
    let mut out = list_queries(org_id, search, now, &policy, None);
    for needle in ["snow", "sn"] {
        let query = KeyQuery {
            tab: KeyTab::All,
            sort: KeySort::Created,
            descending: true,
            q: Some(needle.into()),
            now,
            policy,
            limit: 101,
            anchor: Anchor::Start,
            changed_since: None,
        };
        for read in page_reads(org_id, &query, search, None, 101).0 {
            out.push((format!("filter q={needle}"), read.statement));
        }
        out.push((
            format!("counts q={needle}"),
            counts(org_id, Some(needle), &policy, now, search),
        ));
    }
    if search == TextSearch::Fts5Trigram {
        // Few matches: read from them by id, every tab and sort.
        let few = TextSearch::Fts5TrigramFew;
        for (name, st) in list_queries(org_id, few, now, &policy, Some("snow")) {
            out.push((format!("filter q=snow, few matches: {name}"), st));
        }
        let st = counts(org_id, Some("snow"), &policy, now, few);
        out.push(("counts q=snow, few matches".into(), st));
    }
    out.push(("counts".into(), counts(org_id, None, &policy, now, search)));
    out.push((
        "refused sweep".into(),
        Statement {
            text: super::usage::sql::REFUSED_SWEEP.into(),
            binds: vec![Bind::Int(super::ms(now))],
        },
    ));
    out
}

/// Every segment read of every tab × sort × order, from the start, after
/// and before a position, and of the last page (of the keys matching `q`).
#[cfg_attr(not(feature = "test-support"), allow(dead_code))]
fn list_queries(
    org_id: &str,
    search: TextSearch,
    now: DateTime<Utc>,
    policy: &Policy,
    q: Option<&str>,
) -> Vec<(String, Statement)> {
    let tabs = [
        ("all", KeyTab::All),
        ("active", KeyTab::Active),
        ("expired", KeyTab::Expired),
        ("revoked", KeyTab::Revoked),
        ("attention", KeyTab::Attention),
    ];
    let sorts = [
        ("created", KeySort::Created),
        ("name", KeySort::Name),
        ("last_used", KeySort::LastUsed),
        ("expires", KeySort::Expires),
        ("status", KeySort::Status),
        ("attention", KeySort::Attention),
    ];
    let mut out = Vec::new();
    for (tab_name, tab) in tabs {
        for (sort_name, sort) in sorts {
            let value = if sort.is_text() {
                SortValue::Text("m".into())
            } else {
                SortValue::Int(super::ms(now))
            };
            let at = |segment| KeyPosition {
                sort,
                segment,
                value: value.clone(),
                id: "key_m".into(),
            };
            let anchors = [
                ("first", Anchor::Start),
                ("after", Anchor::After(at(0))),
                (
                    "before",
                    Anchor::Before(at(*segment_order(sort).last().unwrap_or(&0))),
                ),
                ("last", Anchor::End),
            ];
            for ((anchor_name, anchor), descending) in
                anchors.iter().flat_map(|a| [(a, false), (a, true)])
            {
                let query = KeyQuery {
                    tab,
                    sort,
                    descending,
                    q: q.map(str::to_owned),
                    now,
                    policy: *policy,
                    limit: 101,
                    anchor: anchor.clone(),
                    changed_since: None,
                };
                let dir = if descending { "desc" } else { "asc" };
                for read in page_reads(org_id, &query, search, None, 101).0 {
                    let name = format!(
                        "list tab={tab_name} sort={sort_name} order={dir} page={anchor_name} segment={}",
                        read.segment
                    );
                    out.push((name, read.statement));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_reject_garbage() {
        for (sort, segment, value) in [
            (KeySort::Created, 0, SortValue::Int(1_700_000_000_000)),
            (KeySort::Name, 0, SortValue::Text("snow é.leopard".into())),
            (KeySort::LastUsed, 0, SortValue::Int(-1)),
            (KeySort::Attention, 6, SortValue::Int(5)),
        ] {
            let p = KeyPosition {
                sort,
                segment,
                value,
                id: "key_abc123".into(),
            };
            assert_eq!(KeyPosition::decode(&p.encode(), sort), Some(p.clone()));
        }
        for (bad, sort) in [
            ("", KeySort::Created),
            ("1.key_a", KeySort::Name),
            ("n0.6.key_a", KeySort::Name),
            ("n0.zz.key_a", KeySort::Name),
            ("a10.1.key_a", KeySort::Attention),
            ("s0.1.key_a", KeySort::Attention),
            ("a0.x.key_a", KeySort::Attention),
            ("a0.1.key_a'--", KeySort::Attention),
        ] {
            assert_eq!(KeyPosition::decode(bad, sort), None, "{bad}");
        }
    }

    #[test]
    fn a_page_before_a_position_reads_backwards_from_its_segment() {
        let query = KeyQuery {
            tab: KeyTab::All,
            sort: KeySort::Status,
            descending: false,
            q: None,
            now: Utc::now(),
            policy: Policy::default(),
            limit: 10,
            anchor: Anchor::Before(KeyPosition {
                sort: KeySort::Status,
                segment: 1,
                value: SortValue::Int(5),
                id: "key_a".into(),
            }),
            changed_since: None,
        };
        let (reads, backwards) = page_reads("org", &query, TextSearch::Like, None, 10);
        assert!(backwards);
        let segments: Vec<u8> = reads.iter().map(|r| r.segment).collect();
        assert_eq!(segments, [1, 0]);
        assert!(reads[0].statement.text.contains("(created_at, id) > ("));
        assert!(reads[0]
            .statement
            .text
            .contains("ORDER BY created_at ASC, id ASC"));
    }
}
