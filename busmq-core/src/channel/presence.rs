//! Who is on the other side of a channel, as a pure state machine (SPEC C2, C3): one
//! `RemoteConnect` per remote session, never caused by a data message, and the rule that makes
//! the order of connecting irrelevant.

/// What the peer must do after a control frame.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Reaction {
    /// A remote session ended (explicitly, or because a newer one replaced it).
    pub(crate) remote_disconnect: bool,
    /// A new remote session is there.
    pub(crate) remote_connect: bool,
    /// Send our own `Connect` frame again: the new remote may have missed the first one (it was
    /// consumed by a previous peer that is gone).
    pub(crate) greet: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Presence {
    remote: Option<String>,
}

impl Presence {
    pub(crate) fn on_connect(&mut self, session: &str) -> Reaction {
        if self.remote.as_deref() == Some(session) {
            return Reaction::default();
        }
        let replaced = self.remote.replace(session.to_string()).is_some();
        Reaction { remote_disconnect: replaced, remote_connect: true, greet: true }
    }

    pub(crate) fn on_disconnect(&mut self, session: &str) -> Reaction {
        if self.remote.as_deref() != Some(session) {
            return Reaction::default();
        }
        self.remote = None;
        Reaction { remote_disconnect: true, ..Reaction::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_remote_connect_per_session_and_a_greeting_back() {
        let mut p = Presence::default();
        let r = p.on_connect("a1");
        assert!(r.remote_connect && r.greet && !r.remote_disconnect);
        assert_eq!(
            p.on_connect("a1"),
            Reaction::default(),
            "a repeated hello is not a new session"
        );
    }

    #[test]
    fn disconnect_of_the_current_session_only() {
        let mut p = Presence::default();
        p.on_connect("a1");
        assert_eq!(p.on_disconnect("zz"), Reaction::default());
        assert!(p.on_disconnect("a1").remote_disconnect);
        assert_eq!(p.on_disconnect("a1"), Reaction::default());
    }

    #[test]
    fn a_new_session_replaces_a_vanished_one() {
        let mut p = Presence::default();
        p.on_connect("a1");
        let r = p.on_connect("a2");
        assert!(r.remote_disconnect && r.remote_connect && r.greet);
    }
}
