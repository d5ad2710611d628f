//! `ActorUnavailable`: the one outcome of a message that never reached its actor, or whose actor
//! stopped before answering (a mailbox error). Whatever the actor, the caller answers it as a
//! dependency that is down: 503 + Retry-After in each protocol.

#[derive(Debug, thiserror::Error)]
#[error("the {actor} actor is unavailable: {source}")]
pub struct ActorUnavailable {
    /// Which actor: `shard`, `token verifier`, `tokenserver`, `tokenserver database`.
    pub actor: &'static str,
    #[source]
    pub source: actix::MailboxError,
}

impl ActorUnavailable {
    /// For `map_err` on an actor's `send(…).await`.
    pub fn of(actor: &'static str) -> impl FnOnce(actix::MailboxError) -> ActorUnavailable {
        move |source| ActorUnavailable { actor, source }
    }
}
