use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an id must be a positive integer, got {0}")]
/// An id that is not positive (the value given).
pub struct IdError(pub i64);

/// Why a text is not an id: ids are written in plain decimal, `1` to
/// `9223372036854775807`, with no sign, no leading zero, no space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a positive integer id in plain decimal (no sign, no leading zero)")]
pub struct ParseIdError;

/// The one id parser of the shop (paths, token subjects): plain decimal only, so `1` is
/// an id and `01`, `+1`, ` 1`, `1.0` and `0` are not.
pub fn parse_plain_id(raw: &str) -> Result<i64, ParseIdError> {
    let plain = !raw.is_empty()
        && raw.len() <= 19
        && raw.bytes().all(|b| b.is_ascii_digit())
        && !raw.starts_with('0');
    if !plain {
        return Err(ParseIdError);
    }
    raw.parse::<i64>().map_err(|_| ParseIdError)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "i64", into = "i64")]
        pub struct $name(i64);

        impl $name {
            /// The raw value; always positive.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl TryFrom<i64> for $name {
            type Error = IdError;
            fn try_from(value: i64) -> Result<Self, IdError> {
                if value > 0 {
                    Ok(Self(value))
                } else {
                    Err(IdError(value))
                }
            }
        }

        /// Plain decimal only ([`parse_plain_id`]): `"7"` is an id, `"07"` and `"+7"` are not.
        impl std::str::FromStr for $name {
            type Err = ParseIdError;
            fn from_str(raw: &str) -> Result<Self, ParseIdError> {
                parse_plain_id(raw).map(Self)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user (customer); users live in the identity provider, the JWT `sub` carries the id.
    UserId
);
id_type!(
    /// A product of the catalogue.
    ProductId
);
id_type!(
    /// An order.
    OrderId
);
id_type!(
    /// A coupon (the definition, not a user's copy).
    CouponId
);
id_type!(
    /// A notification in a user's inbox.
    NotificationId
);
id_type!(
    /// A balance charge (a top-up through the payment gateway).
    ChargeId
);
id_type!(
    /// A partial refund of a paid order.
    RefundId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_positive() {
        assert_eq!(UserId::try_from(0), Err(IdError(0)));
        assert_eq!(UserId::try_from(-5), Err(IdError(-5)));
        assert_eq!(UserId::try_from(7).map(UserId::get), Ok(7));
    }

    #[test]
    fn only_plain_decimal_text_is_an_id() {
        assert_eq!("1".parse::<UserId>().map(UserId::get), Ok(1));
        assert_eq!(
            "9223372036854775807".parse::<OrderId>().map(OrderId::get),
            Ok(i64::MAX)
        );
        for bad in [
            "",
            "0",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1.0",
            "1e3",
            "0x1",
            "١",
            "9223372036854775808",
            "99999999999999999999",
        ] {
            assert_eq!(bad.parse::<ProductId>(), Err(ParseIdError), "{bad:?}");
        }
    }

    #[test]
    fn ids_reject_non_positive_values_when_deserialised() {
        assert!(serde_json::from_str::<ProductId>("0").is_err());
        assert_eq!(serde_json::from_str::<ProductId>("3").unwrap().get(), 3);
    }
}
