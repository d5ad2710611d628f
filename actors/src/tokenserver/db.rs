//! `TokenserverDb`: the SyncArbiter actor that owns every statement sequence on the
//! tokenserver database — get-or-create of user records with the consistency rules and
//! updates (tokenserver-api.md §6), node assignment (§7), the startup node registration, the
//! node-management commands (§10), the account events (§10.8) and the purge's reads and
//! deletions of replaced users (§10.6, §7.3). Each message runs in one write transaction, again as a
//! whole when the database reports a deadlock.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};
use weft_schema::models::tokenserver::{NewUser, NodeFields, NodeRow, ReplacedUser, UserRecord};
use weft_schema::pool::Tx;
use weft_schema::queries::tokenserver as q;
use weft_schema::retry::with_retries;
use weft_schema::{DbError, DbPool};

use super::rules::{self, Reported, Stored};
use super::TokenserverError;

/// The generation of a retired (deleted) account (§6.1).
pub const MAX_GENERATION: i64 = i64::MAX;

/// Node choice attempts, each possibly after releasing capacity (§7.1).
const ALLOCATION_ATTEMPTS: usize = 5;

#[derive(Debug, Clone)]
pub struct TokenserverDbConfig {
    pub threads: usize,
    pub allow_new_users: bool,
    /// Share of a node's capacity released when every node is out of slots (§7.1), in (0, 1].
    pub capacity_release_rate: f64,
}

/// Get-or-create the account's record, check the request against it and apply the updates
/// (§2.5 steps 5, 7, 8).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<AssignedUser, TokenserverError>")]
pub struct AssignUser {
    /// `<fxa_uid>@<fxa_email_domain>`.
    pub email: String,
    /// Request values; `None` when missing or 0.
    pub generation: Option<i64>,
    pub keys_changed_at: Option<i64>,
    /// Lower-case hex.
    pub client_state: String,
}

/// The user's record after the request: what the token is issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedUser {
    pub uid: i64,
    pub node: String,
    pub generation: i64,
    pub keys_changed_at: Option<i64>,
    pub client_state: String,
    /// `created_at` of the oldest record loaded (for retention metrics, §6.2 step 4).
    pub first_seen_at: i64,
}

/// Registers `url` with all of `capacity` available when the service has no node at all: the
/// embedded default's first start. Answers whether it registered it.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<bool, TokenserverError>")]
pub struct RegisterInitialNode {
    pub url: String,
    pub capacity: i32,
}

/// `node add` (§10.1): every field of `fields` set by the caller except, optionally,
/// `available` (default: the slots a release opens).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<NodeRow, TokenserverError>")]
pub struct AddNode {
    pub url: String,
    pub fields: NodeFields,
}

/// `node update` (§10.2): only the given columns.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<NodeRow, TokenserverError>")]
pub struct UpdateNode {
    pub url: String,
    pub fields: NodeFields,
}

/// `node remove` (§10.3): deletes the row, then unassigns its users. Answers the users unassigned.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, TokenserverError>")]
pub struct RemoveNode {
    pub url: String,
}

/// `node unassign` (§10.4). Answers the user rows marked replaced.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, TokenserverError>")]
pub struct UnassignNode {
    pub url: String,
}

#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<NodeRow>, TokenserverError>")]
pub struct ListNodes;

/// `user allocate` (§10.5): answers the user's record afterwards.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<AssignedUser, TokenserverError>")]
pub struct AllocateUser {
    pub email: String,
    pub node: Option<String>,
}

/// Replaced users waiting for the purge (§10.6): up to `limit` rows replaced before `before`
/// (ms) with a uid above `after_uid`, in uid order; with `node`, only rows on that node.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Vec<ReplacedUser>, TokenserverError>")]
pub struct ReplacedUsers {
    pub before: i64,
    pub after_uid: i64,
    pub node: Option<String>,
    pub limit: i64,
}

/// How many rows `ReplacedUsers` would go through from the start: the purge's backlog.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<i64, TokenserverError>")]
pub struct CountReplacedUsers {
    pub before: i64,
    pub node: Option<String>,
}

/// Deletes a replaced user row whose data is gone and gives its slot back to its node (§7.3),
/// in one transaction. Answers whether the row was still there (a re-run finds it gone).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<bool, TokenserverError>")]
pub struct ForgetUser {
    pub uid: i64,
    pub nodeid: i64,
}

/// FxA's account-deleted event (§10.8): retires the account's live rows (§8.2). Answers the
/// rows retired.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, TokenserverError>")]
pub struct RetireUser {
    pub email: String,
}

/// FxA's password-change event (§10.8): the live rows' generation becomes at least
/// `generation`. Answers the rows raised.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<usize, TokenserverError>")]
pub struct RaiseGeneration {
    pub email: String,
    pub generation: i64,
}

/// State shared by the threads of the actor.
struct Context {
    config: TokenserverDbConfig,
    /// The id of `sync-1.5`, looked up by name once (the only value that may be cached, §6.2).
    service_id: Mutex<Option<i32>>,
}

pub struct TokenserverDb {
    pool: DbPool,
    context: Arc<Context>,
}

impl TokenserverDb {
    /// Starts `config.threads` threads over `pool`.
    pub fn start(pool: DbPool, config: TokenserverDbConfig) -> Addr<TokenserverDb> {
        let threads = config.threads.max(1);
        let context = Arc::new(Context { config, service_id: Mutex::new(None) });
        SyncArbiter::start(threads, move || TokenserverDb { pool: pool.clone(), context: context.clone() })
    }

    /// Runs `op` in a write transaction, again (the one retry policy) on a deadlock or a lost
    /// connection.
    fn write<T>(
        &self,
        op: impl Fn(&Context, &mut Tx<'_>) -> Result<T, TokenserverError>,
    ) -> Result<T, TokenserverError> {
        with_retries(log_retry, || self.pool.get()?.write_transaction(|tx| op(&self.context, tx)))
    }

    /// Runs `op` in a read transaction, again on a deadlock or a lost connection.
    fn read<T>(
        &self,
        op: impl Fn(&Context, &mut Tx<'_>) -> Result<T, TokenserverError>,
    ) -> Result<T, TokenserverError> {
        with_retries(log_retry, || self.pool.get()?.read_transaction(|tx| op(&self.context, tx)))
    }
}

fn log_retry(attempt: u32, err: &DbError) {
    tracing::warn!(attempt, error = %err, "tokenserver transaction failed; retrying");
}

impl Context {
    fn service(&self, tx: &mut Tx<'_>) -> Result<i32, TokenserverError> {
        let mut cached = self.service_id.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = *cached {
            return Ok(id);
        }
        let id =
            q::service_id(tx, q::SYNC_SERVICE)?.ok_or(TokenserverError::NoSyncService(q::SYNC_SERVICE))?;
        *cached = Some(id);
        Ok(id)
    }

    /// Picks a node for a new user and takes one of its slots (§7.1, §7.2), releasing capacity
    /// when no node has a free slot. Returns (node id, node URL).
    fn allocate(&self, tx: &mut Tx<'_>, service: i32) -> Result<(i64, String), TokenserverError> {
        for _ in 0..ALLOCATION_ATTEMPTS {
            match rules::best_node(q::list_nodes(tx, service)?) {
                // Locked, the node is checked again: a concurrent request may have taken the
                // last slot meanwhile, and then the choice is made again.
                Some(node) => {
                    if q::lock_node(tx, node.id)?.is_some_and(|locked| rules::is_assignable(&locked)) {
                        q::count_assignment(tx, node.id)?;
                        return Ok((node.id, node.node));
                    }
                }
                None => {
                    if self.release_capacity(tx, service)? == 0 {
                        break;
                    }
                }
            }
        }
        Err(TokenserverError::NoNodeAvailable)
    }

    /// Releases more slots on every node that has none left but still has room (§7.1).
    /// Returns how many nodes got slots.
    fn release_capacity(&self, tx: &mut Tx<'_>, service: i32) -> Result<usize, TokenserverError> {
        let mut released = 0;
        for node in q::list_nodes(tx, service)? {
            if let Some(slots) = rules::slots_to_release(&node, self.config.capacity_release_rate) {
                released += usize::from(q::release_slots(tx, node.id, slots)?);
            }
        }
        Ok(released)
    }

    /// §6.2, then §6.3 and §6.4.
    fn assign_user(
        &self,
        tx: &mut Tx<'_>,
        msg: &AssignUser,
        now: i64,
    ) -> Result<AssignedUser, TokenserverError> {
        let service = self.service(tx)?;
        let reported = Reported {
            generation: msg.generation,
            keys_changed_at: msg.keys_changed_at,
            client_state: &msg.client_state,
        };
        let (user, old_client_states) = match self.current_record(tx, service, &msg.email)? {
            None => {
                if !self.config.allow_new_users {
                    return Err(TokenserverError::NewUsersDisabled);
                }
                let (nodeid, node) = self.allocate(tx, service)?;
                let mut user = Record {
                    uid: 0,
                    nodeid,
                    node,
                    generation: msg.generation.unwrap_or(0),
                    keys_changed_at: msg.keys_changed_at,
                    client_state: msg.client_state.clone(),
                    first_seen_at: now,
                };
                user.uid = self.insert(tx, service, &msg.email, &user, now)?;
                (user, Vec::new())
            }
            Some(found) => (
                self.live_record(tx, service, &msg.email, found.current, found.first_seen_at, now)?,
                found.old_client_states,
            ),
        };
        let stored = Stored {
            generation: user.generation,
            keys_changed_at: user.keys_changed_at,
            client_state: &user.client_state,
        };
        rules::check(&reported, &stored, &old_client_states)?;
        let (generation, keys_changed_at) = rules::updated_values(&reported, &stored);
        let mut uid = user.uid;
        if msg.client_state != user.client_state {
            // New keys: a new uid on the same node, so storage starts empty; older rows replaced.
            let next = Record {
                generation,
                keys_changed_at,
                client_state: msg.client_state.clone(),
                ..user.clone()
            };
            uid = self.insert(tx, service, &msg.email, &next, now)?;
            q::replace_older_records(tx, service, &msg.email, now)?;
        } else if generation != user.generation || keys_changed_at != user.keys_changed_at {
            q::update_generation(tx, service, &msg.email, generation, keys_changed_at)?;
        }
        Ok(AssignedUser {
            uid,
            node: user.node,
            generation,
            keys_changed_at,
            client_state: msg.client_state.clone(),
            first_seen_at: user.first_seen_at,
        })
    }

    /// Steps 1–4 of §6.2: the current record, the other client states, and the repair of rows
    /// left unreplaced by concurrent creation. `None` when the account has no rows.
    fn current_record(
        &self,
        tx: &mut Tx<'_>,
        service: i32,
        email: &str,
    ) -> Result<Option<Found>, TokenserverError> {
        let mut rows = q::user_records(tx, service, email)?;
        // Loaded newest first by (created_at, uid); the stable sort keeps that order among rows
        // equal in (generation, created_at), so the current row is the max of all three.
        let first_seen_at = match rows.last() {
            Some(oldest) => oldest.created_at,
            None => return Ok(None),
        };
        rows.sort_by_key(|r| std::cmp::Reverse((r.generation, r.created_at)));
        let mut rows = rows.into_iter();
        let Some(current) = rows.next() else { return Ok(None) };
        let mut old_client_states = Vec::new();
        for row in rows {
            if row.client_state != current.client_state && !old_client_states.contains(&row.client_state) {
                old_client_states.push(row.client_state.clone());
            }
            if row.replaced_at.is_none() {
                q::mark_replaced(tx, service, row.uid, current.created_at)?;
            }
        }
        Ok(Some(Found { current, old_client_states, first_seen_at }))
    }

    /// Steps 6–7 of §6.2: the current record if it is live on an existing node, otherwise a copy
    /// of it on a newly allocated node.
    fn live_record(
        &self,
        tx: &mut Tx<'_>,
        service: i32,
        email: &str,
        current: UserRecord,
        first_seen_at: i64,
        now: i64,
    ) -> Result<Record, TokenserverError> {
        let record = |nodeid, node| Record {
            uid: current.uid,
            nodeid,
            node,
            generation: current.generation,
            keys_changed_at: current.keys_changed_at,
            client_state: current.client_state.clone(),
            first_seen_at,
        };
        match (&current.node, current.replaced_at) {
            (Some(node), None) => Ok(record(current.nodeid, node.clone())),
            // Retired (§8.2 marks the rows replaced too) on a node that still exists: served as
            // it is, so that the generation check refuses it (§6.2 step 7, §6.5) rather than a
            // 500; only a retired user without a node is an internal error.
            (Some(node), Some(_)) if current.generation == MAX_GENERATION => {
                Ok(record(current.nodeid, node.clone()))
            }
            _ if current.generation < MAX_GENERATION => {
                let (nodeid, node) = self.allocate(tx, service)?;
                let mut copy = record(nodeid, node);
                copy.uid = self.insert(tx, service, email, &copy, now)?;
                Ok(copy)
            }
            _ => Err(TokenserverError::RetiredWithoutNode),
        }
    }

    fn insert(
        &self,
        tx: &mut Tx<'_>,
        service: i32,
        email: &str,
        r: &Record,
        now: i64,
    ) -> Result<i64, TokenserverError> {
        Ok(q::insert_user(
            tx,
            &NewUser {
                service,
                email,
                generation: r.generation,
                client_state: &r.client_state,
                created_at: now,
                nodeid: r.nodeid,
                keys_changed_at: r.keys_changed_at,
            },
        )?)
    }

    fn node(&self, tx: &mut Tx<'_>, service: i32, url: &str) -> Result<NodeRow, TokenserverError> {
        q::node_by_url(tx, service, url)?.ok_or_else(|| TokenserverError::NoSuchNode(url.to_string()))
    }

    /// §10.5: without a node, get-or-create without validation; with one, a new row there
    /// (same generation, client state, keys_changed_at) and older rows replaced.
    fn allocate_user(
        &self,
        tx: &mut Tx<'_>,
        msg: &AllocateUser,
        now: i64,
    ) -> Result<AssignedUser, TokenserverError> {
        let service = self.service(tx)?;
        let target = match &msg.node {
            Some(url) => Some(self.node(tx, service, url)?),
            None => None,
        };
        let found = self.current_record(tx, service, &msg.email)?;
        let record = match (found, target) {
            (None, target) => {
                let (nodeid, node) = match target {
                    Some(n) => {
                        q::count_assignment(tx, n.id)?;
                        (n.id, n.node)
                    }
                    None => self.allocate(tx, service)?,
                };
                let mut r = Record {
                    uid: 0,
                    nodeid,
                    node,
                    generation: 0,
                    keys_changed_at: None,
                    client_state: String::new(),
                    first_seen_at: now,
                };
                r.uid = self.insert(tx, service, &msg.email, &r, now)?;
                r
            }
            (Some(found), None) => {
                self.live_record(tx, service, &msg.email, found.current, found.first_seen_at, now)?
            }
            (Some(found), Some(n)) => {
                q::count_assignment(tx, n.id)?;
                let c = found.current;
                let mut r = Record {
                    uid: 0,
                    nodeid: n.id,
                    node: n.node,
                    generation: c.generation,
                    keys_changed_at: c.keys_changed_at,
                    client_state: c.client_state,
                    first_seen_at: found.first_seen_at,
                };
                r.uid = self.insert(tx, service, &msg.email, &r, now)?;
                q::replace_older_records(tx, service, &msg.email, now)?;
                r
            }
        };
        Ok(AssignedUser {
            uid: record.uid,
            node: record.node,
            generation: record.generation,
            keys_changed_at: record.keys_changed_at,
            client_state: record.client_state,
            first_seen_at: record.first_seen_at,
        })
    }
}

/// A user record being served: the row's values and its node.
#[derive(Debug, Clone)]
struct Record {
    uid: i64,
    nodeid: i64,
    node: String,
    generation: i64,
    keys_changed_at: Option<i64>,
    client_state: String,
    first_seen_at: i64,
}

struct Found {
    current: UserRecord,
    old_client_states: Vec<String>,
    first_seen_at: i64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Actor for TokenserverDb {
    type Context = SyncContext<Self>;
}

impl Handler<AssignUser> for TokenserverDb {
    type Result = Result<AssignedUser, TokenserverError>;

    fn handle(&mut self, msg: AssignUser, _: &mut Self::Context) -> Self::Result {
        self.write(|ctx, tx| ctx.assign_user(tx, &msg, now_ms()))
    }
}

impl Handler<RegisterInitialNode> for TokenserverDb {
    type Result = Result<bool, TokenserverError>;

    fn handle(&mut self, msg: RegisterInitialNode, _: &mut Self::Context) -> Self::Result {
        self.write(|ctx, tx| {
            let service = ctx.service(tx)?;
            if !q::list_nodes(tx, service)?.is_empty() {
                return Ok(false);
            }
            Ok(q::insert_initial_node(tx, service, &msg.url, msg.capacity)?)
        })
    }
}

impl Handler<AddNode> for TokenserverDb {
    type Result = Result<NodeRow, TokenserverError>;

    fn handle(&mut self, msg: AddNode, _: &mut Self::Context) -> Self::Result {
        self.write(|ctx, tx| {
            let service = ctx.service(tx)?;
            if q::node_by_url(tx, service, &msg.url)?.is_some() {
                return Err(TokenserverError::NodeExists(msg.url.clone()));
            }
            // §10.1: without `--available`, a new node opens the slots a release would.
            let capacity = msg.fields.capacity.unwrap_or(0);
            let available = msg
                .fields
                .available
                .unwrap_or_else(|| rules::released_slots(capacity, ctx.config.capacity_release_rate));
            let fields = NodeFields { available: Some(available), ..msg.fields.clone() };
            q::insert_node(tx, service, &msg.url, &fields)?;
            ctx.node(tx, service, &msg.url)
        })
    }
}

impl Handler<UpdateNode> for TokenserverDb {
    type Result = Result<NodeRow, TokenserverError>;

    fn handle(&mut self, msg: UpdateNode, _: &mut Self::Context) -> Self::Result {
        self.write(|ctx, tx| {
            let service = ctx.service(tx)?;
            let node = ctx.node(tx, service, &msg.url)?;
            q::update_node(tx, node.id, &msg.fields)?;
            ctx.node(tx, service, &msg.url)
        })
    }
}

impl Handler<RemoveNode> for TokenserverDb {
    type Result = Result<usize, TokenserverError>;

    fn handle(&mut self, msg: RemoveNode, _: &mut Self::Context) -> Self::Result {
        self.write(|ctx, tx| {
            let service = ctx.service(tx)?;
            let node = ctx.node(tx, service, &msg.url)?;
            q::delete_node(tx, node.id)?;
            Ok(q::unassign_node(tx, node.id, now_ms())?)
        })
    }
}

impl Handler<UnassignNode> for TokenserverDb {
    type Result = Result<usize, TokenserverError>;

    fn handle(&mut self, msg: UnassignNode, _: &mut Self::Context) -> Self::Result {
        self.write(|ctx, tx| {
            let service = ctx.service(tx)?;
            let node = ctx.node(tx, service, &msg.url)?;
            Ok(q::unassign_node(tx, node.id, now_ms())?)
        })
    }
}

impl Handler<ListNodes> for TokenserverDb {
    type Result = Result<Vec<NodeRow>, TokenserverError>;

    fn handle(&mut self, _: ListNodes, _: &mut Self::Context) -> Self::Result {
        self.read(|ctx, tx| {
            let service = ctx.service(tx)?;
            Ok(q::list_nodes(tx, service)?)
        })
    }
}

impl Handler<AllocateUser> for TokenserverDb {
    type Result = Result<AssignedUser, TokenserverError>;

    fn handle(&mut self, msg: AllocateUser, _: &mut Self::Context) -> Self::Result {
        self.write(|ctx, tx| ctx.allocate_user(tx, &msg, now_ms()))
    }
}

impl Handler<ReplacedUsers> for TokenserverDb {
    type Result = Result<Vec<ReplacedUser>, TokenserverError>;

    fn handle(&mut self, msg: ReplacedUsers, _: &mut Self::Context) -> Self::Result {
        self.read(|ctx, tx| {
            let service = ctx.service(tx)?;
            Ok(q::replaced_users(tx, service, msg.before, msg.after_uid, msg.node.as_deref(), msg.limit)?)
        })
    }
}

impl Handler<CountReplacedUsers> for TokenserverDb {
    type Result = Result<i64, TokenserverError>;

    fn handle(&mut self, msg: CountReplacedUsers, _: &mut Self::Context) -> Self::Result {
        self.read(|ctx, tx| {
            let service = ctx.service(tx)?;
            Ok(q::count_replaced_users(tx, service, msg.before, msg.node.as_deref())?)
        })
    }
}

impl Handler<ForgetUser> for TokenserverDb {
    type Result = Result<bool, TokenserverError>;

    fn handle(&mut self, msg: ForgetUser, _: &mut Self::Context) -> Self::Result {
        self.write(|ctx, tx| {
            let service = ctx.service(tx)?;
            // The slot is released only with the row, so a second pass over the same user (two
            // purges at once, or one re-run after a kill) releases nothing twice.
            if q::delete_replaced_user(tx, service, msg.uid)? == 0 {
                return Ok(false);
            }
            q::release_slot(tx, msg.nodeid)?;
            Ok(true)
        })
    }
}

impl Handler<RetireUser> for TokenserverDb {
    type Result = Result<usize, TokenserverError>;

    fn handle(&mut self, msg: RetireUser, _: &mut Self::Context) -> Self::Result {
        self.write(|ctx, tx| {
            let service = ctx.service(tx)?;
            Ok(q::retire_user(tx, service, &msg.email, now_ms())?)
        })
    }
}

impl Handler<RaiseGeneration> for TokenserverDb {
    type Result = Result<usize, TokenserverError>;

    fn handle(&mut self, msg: RaiseGeneration, _: &mut Self::Context) -> Self::Result {
        self.write(|ctx, tx| {
            let service = ctx.service(tx)?;
            Ok(q::raise_generation(tx, service, &msg.email, msg.generation)?)
        })
    }
}
