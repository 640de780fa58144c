//! Gift catalogue and leaderboard entries.

use serde::{Deserialize, Serialize};

/// A gift that can be sent in any room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gift {
    /// Id used in `gift` messages.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Value of one unit, in coins.
    pub price: u64,
}

/// The built-in catalogue.
pub const CATALOGUE: &[Gift] = &[
    Gift {
        id: "heart",
        name: "Heart",
        price: 1,
    },
    Gift {
        id: "rose",
        name: "Rose",
        price: 5,
    },
    Gift {
        id: "cake",
        name: "Cake",
        price: 20,
    },
    Gift {
        id: "rocket",
        name: "Rocket",
        price: 100,
    },
    Gift {
        id: "castle",
        name: "Castle",
        price: 1000,
    },
];

/// Most units of one gift in a message.
pub const MAX_COUNT: u32 = 99;

/// Entries shown on a room leaderboard.
pub const LEADERBOARD_SIZE: usize = 10;

/// Looks a gift up by id.
pub fn find(id: &str) -> Option<&'static Gift> {
    CATALOGUE.iter().find(|g| g.id == id)
}

/// One leaderboard row: a user and the value of gifts they sent in the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rank {
    /// User id.
    pub user: String,
    /// Total value sent.
    pub value: u64,
}

/// Sorts by value (highest first, ties by user) and keeps the first `n`.
pub fn top(mut ranks: Vec<Rank>, n: usize) -> Vec<Rank> {
    ranks.sort_by(|a, b| b.value.cmp(&a.value).then_with(|| a.user.cmp(&b.user)));
    ranks.truncate(n);
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_lookup_and_ranking() {
        assert_eq!(find("rose").map(|g| g.price), Some(5));
        assert!(find("yacht").is_none());
        let r = |u: &str, v| Rank {
            user: u.into(),
            value: v,
        };
        assert_eq!(
            top(vec![r("a", 1), r("b", 5), r("c", 5)], 2),
            vec![r("b", 5), r("c", 5)]
        );
    }
}
