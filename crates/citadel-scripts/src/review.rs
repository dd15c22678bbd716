//! The approval workflow of a version: draft → submitted → approved or
//! rejected. Only an approved version can go live; nobody approves or
//! rejects their own version.

pub use citadel_domain::VersionState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewAction {
    Submit,
    Approve,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    #[error("a version cannot be {action} by its own author")]
    OwnVersion { action: &'static str },
    #[error("a {state} version cannot be {action}")]
    WrongState {
        state: &'static str,
        action: &'static str,
    },
}

impl ReviewAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewAction::Submit => "submit",
            ReviewAction::Approve => "approve",
            ReviewAction::Reject => "reject",
        }
    }

    /// The action done, for messages: the name of the state it leads to.
    fn past(self) -> &'static str {
        self.to().as_str()
    }

    /// The state a version must be in for this action.
    pub fn from(self) -> VersionState {
        match self {
            ReviewAction::Submit => VersionState::Draft,
            ReviewAction::Approve | ReviewAction::Reject => VersionState::Submitted,
        }
    }

    pub fn to(self) -> VersionState {
        match self {
            ReviewAction::Submit => VersionState::Submitted,
            ReviewAction::Approve => VersionState::Approved,
            ReviewAction::Reject => VersionState::Rejected,
        }
    }

    /// The state after `actor` takes this action on a version by `author`.
    /// Both are persons (a user, or the root of a chain of minted tokens),
    /// never tokens: a second token of the author is still the author.
    pub fn apply(
        self,
        state: VersionState,
        author: &str,
        actor: &str,
    ) -> Result<VersionState, ReviewError> {
        if self != ReviewAction::Submit && author == actor {
            return Err(ReviewError::OwnVersion {
                action: self.past(),
            });
        }
        if state != self.from() {
            return Err(ReviewError::WrongState {
                state: state.as_str(),
                action: self.past(),
            });
        }
        Ok(self.to())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReviewAction::*;
    use VersionState::*;

    #[test]
    fn the_workflow() {
        assert_eq!(Submit.apply(Draft, "ann", "ann"), Ok(Submitted));
        assert_eq!(Approve.apply(Submitted, "ann", "bob"), Ok(Approved));
        assert_eq!(Reject.apply(Submitted, "ann", "bob"), Ok(Rejected));
        assert_eq!(
            Approve
                .apply(Submitted, "ann", "ann")
                .unwrap_err()
                .to_string(),
            "a version cannot be approved by its own author"
        );
        assert_eq!(
            Approve.apply(Draft, "ann", "bob").unwrap_err().to_string(),
            "a draft version cannot be approved"
        );
        assert_eq!(
            Submit
                .apply(Rejected, "ann", "ann")
                .unwrap_err()
                .to_string(),
            "a rejected version cannot be submitted"
        );
        for s in [Draft, Submitted, Approved, Rejected] {
            assert_eq!(s.as_str().parse::<VersionState>(), Ok(s));
        }
    }
}
