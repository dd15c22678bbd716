//! Ids: thin wrappers over the strings the store and the API use, so one
//! kind of id cannot be passed where another is expected.

macro_rules! string_id {
    ($($(#[$meta:meta])* $name:ident;)+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    )+};
}

string_id! {
    /// A tenant, e.g. `acme`.
    TenantId;
    /// A script, by its store id.
    ScriptId;
    /// One saved version of a script.
    VersionId;
    /// A run.
    RunId;
    /// A queued job.
    JobId;
    /// An API token.
    TokenId;
    /// A user of the console and the API.
    UserId;
    /// A worker node.
    NodeId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_their_string_everywhere() {
        let id = RunId::new("run_01");
        assert_eq!(id.to_string(), "run_01");
        assert_eq!(id.as_ref(), "run_01");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"run_01\"");
        assert_eq!(serde_json::from_str::<RunId>("\"run_01\"").unwrap(), id);
        assert_eq!(String::from(id), "run_01");
    }
}
