//! The error type of a transaction body: a business refusal (rolls back, becomes the
//! domain's error) or a database failure (rolls back, becomes `Unexpected`).

pub(crate) enum TxError<B> {
    Rule(B),
    Db(diesel::result::Error),
}

impl<B> TxError<B> {
    /// Turns one business refusal into another (a use case composing another's SQL).
    pub(crate) fn map_rule<C>(self, f: impl FnOnce(B) -> C) -> TxError<C> {
        match self {
            TxError::Rule(b) => TxError::Rule(f(b)),
            TxError::Db(e) => TxError::Db(e),
        }
    }
}

impl<B> From<diesel::result::Error> for TxError<B> {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

/// The result of a transaction as the use case's error: a refusal as itself, a database
/// failure as its `Unexpected` variant (through `From<anyhow::Error>`).
pub(crate) fn finish<T, E: From<anyhow::Error>>(
    result: Result<T, TxError<E>>,
    context: &'static str,
) -> Result<T, E> {
    match result {
        Ok(v) => Ok(v),
        Err(TxError::Rule(e)) => Err(e),
        Err(TxError::Db(e)) => Err(E::from(anyhow::Error::new(e).context(context))),
    }
}

/// Reads a value the schema guarantees to be valid (positive id, non-negative money);
/// a failure means the database holds something it must not.
pub(crate) fn valid<T, E: std::fmt::Display>(value: Result<T, E>, what: &str) -> anyhow::Result<T> {
    value.map_err(|e| anyhow::anyhow!("invalid {what} in the database: {e}"))
}
