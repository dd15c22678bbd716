//! The host capabilities a run may be granted.

string_enum! {
    /// A host capability a run may be granted. Anything not granted is absent
    /// from the script's `api`.
    Capability, "capability" {
        /// `api.http.fetch`
        Http = "http",
        /// `api.secrets.get`
        Secrets = "secrets",
        /// `api.kv.get/set/delete`
        Kv = "kv",
        /// `api.db.query`
        Db = "db",
        /// `api.events.emit`
        Events = "events",
        /// `api.sleep`, served by the sandbox itself.
        Sleep = "sleep",
        /// `api.echo`: returns its argument through the host; for tests.
        Echo = "echo",
    }
}

impl Capability {
    /// The property name under `api`.
    pub fn name(self) -> &'static str {
        self.as_str()
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The set of capabilities a run is granted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Grants(u8);

impl Grants {
    pub const NONE: Grants = Grants(0);

    pub fn with(mut self, capability: Capability) -> Self {
        self.0 |= capability.bit();
        self
    }

    pub fn allows(self, capability: Capability) -> bool {
        self.0 & capability.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL.into_iter().filter(move |c| self.allows(*c))
    }
}

impl FromIterator<Capability> for Grants {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        iter.into_iter().fold(Grants::NONE, Grants::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_hold_exactly_what_was_granted() {
        let g: Grants = [Capability::Kv, Capability::Echo].into_iter().collect();
        assert_eq!(
            g.iter().collect::<Vec<_>>(),
            [Capability::Kv, Capability::Echo]
        );
        assert!(!g.allows(Capability::Http));
        assert_eq!(Grants::NONE.iter().count(), 0);
    }
}
