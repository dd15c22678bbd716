//! Text columns that hold a domain enum. `Text<T>` decodes the column's
//! string and parses it, so a value that names no variant fails the row
//! with the parse error as the column's cause (`unknown language
//! `python``), which the fields' `#[sqlx(try_from = "Text<T>")]` then
//! unwrap (through `From`, so the conversion itself cannot fail). (sqlx's own `try_from = "String"` loses the cause: its error
//! is reported as unprintable.)

use std::str::FromStr;

use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Type};

/// A domain enum read from a text column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text<T>(pub T);

impl<'r, DB, T> Decode<'r, DB> for Text<T>
where
    DB: Database,
    String: Decode<'r, DB>,
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <String as Decode<'r, DB>>::decode(value)?;
        Ok(Text(text.parse()?))
    }
}

impl<DB: Database, T> Type<DB> for Text<T>
where
    String: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as Type<DB>>::type_info()
    }

    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as Type<DB>>::compatible(ty)
    }
}

macro_rules! unwrap_text {
    ($($t:ty),+) => {
        $(impl From<Text<$t>> for $t {
            fn from(t: Text<$t>) -> $t {
                t.0
            }
        })+
    };
}

unwrap_text!(
    citadel_domain::DeliveryState,
    citadel_domain::JobState,
    citadel_domain::KillScope,
    citadel_domain::Language,
    citadel_domain::Missed,
    citadel_domain::NodeState,
    citadel_domain::RunStatus,
    citadel_domain::ScriptKind,
    citadel_domain::StepStatus,
    citadel_domain::Trigger,
    citadel_domain::VersionState
);
