//! Raw SQL statements that each connection prepares once and then only executes.
//!
//! Diesel's `sql_query` is never cached: every call costs a Parse/Describe round trip
//! before the Bind/Execute one. The hot statements of the use cases (one snapshot and
//! one write per transaction) are [`Statement`]s instead: their text is a constant of a
//! marker type, so diesel's statement cache keys them by type and a warm connection runs
//! each in one round trip.
//!
//! Parameters are written `$name` in the text (not `$1`): each is bound by name from the
//! statement's list, so a 50-parameter write stays readable. A name used twice is bound
//! twice.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Binary, Bool, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel::QueryResult;
use kernel::Timestamp;
use std::marker::PhantomData;

/// A statement's text, named by a marker type (one per statement).
pub(crate) trait Sql: 'static {
    /// The SQL, with `$name` parameters.
    const TEXT: &'static str;

    /// The text cut at its parameters, once per process (`sql!` keeps it in a static).
    fn parts() -> &'static Parts;
}

/// A statement's text cut at its parameters: each piece of SQL with the name of the
/// parameter after it, then the rest.
#[derive(Debug)]
pub(crate) struct Parts {
    pieces: Vec<(&'static str, &'static str)>,
    tail: &'static str,
}

impl Parts {
    /// Cuts `text` at each `$name` (a `$` followed by a lowercase letter or `_`).
    pub(crate) fn cut(text: &'static str) -> Parts {
        let bytes = text.as_bytes();
        let mut pieces = Vec::new();
        let (mut start, mut i) = (0, 0);
        while i < bytes.len() {
            let named = bytes[i] == b'$'
                && bytes
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_lowercase() || *c == b'_');
            if !named {
                i += 1;
                continue;
            }
            let mut end = i + 1;
            while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
                end += 1;
            }
            pieces.push((&text[start..i], &text[i + 1..end]));
            start = end;
            i = end;
        }
        Parts {
            pieces,
            tail: &text[start..],
        }
    }
}

/// Declares a marker type for a statement: `sql!(Name, "SELECT ... $param ...");`.
macro_rules! sql {
    ($(#[$doc:meta])* $name:ident, $text:expr) => {
        $(#[$doc])*
        pub(crate) struct $name;
        impl $crate::sql::Sql for $name {
            const TEXT: &'static str = $text;
            fn parts() -> &'static $crate::sql::Parts {
                static PARTS: std::sync::OnceLock<$crate::sql::Parts> = std::sync::OnceLock::new();
                PARTS.get_or_init(|| $crate::sql::Parts::cut(<Self as $crate::sql::Sql>::TEXT))
            }
        }
    };
}
pub(crate) use sql;

/// A value bound to a `$name` parameter.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    I64(i64),
    OptI64(Option<i64>),
    OptI32(Option<i32>),
    I64s(Vec<i64>),
    I32s(Vec<i32>),
    Text(String),
    OptText(Option<String>),
    Texts(Vec<String>),
    Bool(bool),
    Ts(Timestamp),
    OptTs(Option<Timestamp>),
    OptUuid(Option<uuid::Uuid>),
    OptJson(Option<serde_json::Value>),
    OptBytes(Option<Vec<u8>>),
    OptI16(Option<i16>),
}

/// One execution of the statement `S` with its parameters.
pub(crate) struct Statement<S> {
    binds: Vec<(&'static str, Bind)>,
    _sql: PhantomData<fn() -> S>,
}

impl<S: Sql> Statement<S> {
    pub(crate) fn new() -> Self {
        Self {
            binds: Vec::new(),
            _sql: PhantomData,
        }
    }

    /// Binds `$name`.
    pub(crate) fn bind(mut self, name: &'static str, value: Bind) -> Self {
        self.binds.push((name, value));
        self
    }

    fn value(&self, name: &str) -> QueryResult<&Bind> {
        self.binds
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                diesel::result::Error::QueryBuilderError(
                    format!("no value bound to ${name}").into(),
                )
            })
    }
}

impl<S: Sql> QueryId for Statement<S> {
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: Sql> Query for Statement<S> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<S: Sql> QueryFragment<Pg> for Statement<S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let parts = S::parts();
        for (sql, name) in &parts.pieces {
            out.push_sql(sql);
            match self.value(name)? {
                Bind::I64(v) => out.push_bind_param::<BigInt, _>(v)?,
                Bind::OptI64(v) => out.push_bind_param::<Nullable<BigInt>, _>(v)?,
                Bind::OptI32(v) => out.push_bind_param::<Nullable<Integer>, _>(v)?,
                Bind::I64s(v) => out.push_bind_param::<Array<BigInt>, _>(v)?,
                Bind::I32s(v) => out.push_bind_param::<Array<Integer>, _>(v)?,
                Bind::Text(v) => out.push_bind_param::<Text, _>(v)?,
                Bind::OptText(v) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                Bind::Texts(v) => out.push_bind_param::<Array<Text>, _>(v)?,
                Bind::Bool(v) => out.push_bind_param::<Bool, _>(v)?,
                Bind::Ts(v) => out.push_bind_param::<Timestamptz, _>(v)?,
                Bind::OptTs(v) => out.push_bind_param::<Nullable<Timestamptz>, _>(v)?,
                Bind::OptUuid(v) => {
                    out.push_bind_param::<Nullable<diesel::sql_types::Uuid>, _>(v)?
                }
                Bind::OptJson(v) => out.push_bind_param::<Nullable<Jsonb>, _>(v)?,
                Bind::OptBytes(v) => out.push_bind_param::<Nullable<Binary>, _>(v)?,
                Bind::OptI16(v) => {
                    out.push_bind_param::<Nullable<diesel::sql_types::SmallInt>, _>(v)?
                }
            }
        }
        out.push_sql(parts.tail);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    sql!(Probe, "SELECT $a::int8 + $b::int8, $a::int8 WHERE $flag");

    #[test]
    fn named_parameters_become_positional_binds_in_order() {
        let s = Statement::<Probe>::new()
            .bind("a", Bind::I64(1))
            .bind("b", Bind::I64(2))
            .bind("flag", Bind::Bool(true));
        let sql = diesel::debug_query::<Pg, _>(&s).to_string();
        assert!(
            sql.starts_with("SELECT $1::int8 + $2::int8, $3::int8 WHERE $4"),
            "{sql}"
        );
    }

    #[test]
    fn a_missing_parameter_is_an_error_not_a_panic() {
        let s = Statement::<Probe>::new().bind("a", Bind::I64(1));
        let built = diesel::query_builder::QueryFragment::<Pg>::to_sql(
            &s,
            &mut <Pg as diesel::backend::Backend>::QueryBuilder::default(),
            &Pg,
        );
        assert!(built.is_err());
    }
}
