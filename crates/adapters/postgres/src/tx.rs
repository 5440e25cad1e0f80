//! The error type of a transaction body: a business refusal (rolls back, becomes the
//! domain's error) or a database failure (rolls back, becomes `Unexpected`).

pub(crate) enum TxError<B> {
    Rule(B),
    Db(diesel::result::Error),
}

impl<B> From<diesel::result::Error> for TxError<B> {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

/// Reads a value the schema guarantees to be valid (positive id, non-negative money);
/// a failure means the database holds something it must not.
pub(crate) fn valid<T, E: std::fmt::Display>(value: Result<T, E>, what: &str) -> anyhow::Result<T> {
    value.map_err(|e| anyhow::anyhow!("invalid {what} in the database: {e}"))
}
