//! Who is acting: a user on their own behalf, or an admin on anyone's.

use crate::UserId;

/// The authenticated caller of a use case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A user, who may act on their own resources only.
    User(UserId),
    /// An operator, who may act on any user's resources.
    Admin,
}

impl Actor {
    /// May this actor act on what `owner` owns?
    pub fn may_act_for(self, owner: UserId) -> bool {
        match self {
            Actor::User(user) => user == owner,
            Actor::Admin => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_act_for_themselves_and_admins_for_everyone() {
        let one = UserId::try_from(1).unwrap();
        let two = UserId::try_from(2).unwrap();
        assert!(Actor::User(one).may_act_for(one));
        assert!(!Actor::User(one).may_act_for(two));
        assert!(Actor::Admin.may_act_for(two));
    }
}
