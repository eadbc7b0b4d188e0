//! The vocabulary as PostgreSQL sees it: each enum is stored in a `text` column under its name
//! (derived by `strum`, the same the API shows), and read back by the same derive, so a row
//! holding anything else fails to decode instead of travelling on as a string.

use crate::{ErrorCode, NotificationKind, OrderStatus, PaymentStatus, Step};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

macro_rules! text_column {
    ($($name:ident),+) => {$(
        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<Postgres>>::decode(value)?;
                Self::parse(text)
                    .ok_or_else(|| format!("{text:?} is not a {}", stringify!($name)).into())
            }
        }

        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }
    )+};
}

text_column!(OrderStatus, Step, ErrorCode, NotificationKind, PaymentStatus);
