//! The macros that declare a spec's setters ([`setters!`]) and its patch ([`patch!`]), each
//! from one list of fields.

/// `const fn` setters for `$spec`, one per field (`spec.field(value)`), so a spec can be built
/// in a `static`.
macro_rules! setters {
    ($spec:ident { $($field:ident: $ty:ty,)* }) => {
        impl $spec {
            $(
                #[doc = concat!("Sets `", stringify!($field), "`.")]
                pub const fn $field(mut self, $field: $ty) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}

pub(crate) use setters;

/// Declares `$patch`, a partial `$spec`: each field `f: T` becomes `pub f: Option<T>`, and
/// `$patch::set` writes each field it sets over a spec (`f: T => wrap` stores `wrap(value)`).
/// Each patch's `apply` calls `set`, plus what is its own (a section that turns its policy on).
macro_rules! patch {
    (
        $(#[$meta:meta])*
        $patch:ident for $spec:ident {
            $($(#[$field_meta:meta])* $field:ident: $ty:ty $(=> $wrap:path)?,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Default)]
        pub struct $patch {
            $($(#[$field_meta])* pub $field: Option<$ty>,)*
        }

        impl $patch {
            /// Writes each field this patch sets over `spec`.
            fn set(&self, spec: &mut $spec) {
                $(if let Some(value) = self.$field {
                    spec.$field = $($wrap)?(value);
                })*
            }
        }
    };
}

pub(crate) use patch;
