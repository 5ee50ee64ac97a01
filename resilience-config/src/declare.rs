//! [`patch!`]: a spec's `const fn` setters and its patch (the fields a named policy sets),
//! from one list of fields.

/// Declares `$patch`, a partial `$spec`: each field `f: T` becomes `pub f: Option<T>`, and
/// `$patch::set` writes each field it sets over a spec (`f: T => wrap` stores `wrap(value)`).
/// The fields listed under `with setters` also get a `const fn` setter on `$spec`
/// (`spec.f(value)`), so a spec can be built in a `static`. Each patch's `apply` calls `set`,
/// plus what is its own (a section that turns its policy on).
macro_rules! patch {
    (
        $(#[$meta:meta])*
        $patch:ident for $spec:ident {
            $($(#[$field_meta:meta])* $field:ident: $ty:ty $(=> $wrap:path)?,)*
        }
        with setters {
            $($(#[$set_meta:meta])* $set:ident: $set_ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Default)]
        pub struct $patch {
            $($(#[$field_meta])* pub $field: Option<$ty>,)*
            $($(#[$set_meta])* pub $set: Option<$set_ty>,)*
        }

        impl $patch {
            /// Writes each field this patch sets over `spec`.
            fn set(&self, spec: &mut $spec) {
                $(if let Some(value) = self.$field {
                    spec.$field = $($wrap)?(value);
                })*
                $(if let Some(value) = self.$set {
                    spec.$set = value;
                })*
            }
        }

        /// The fields it sets, under their YAML keys, as a policy file writes them.
        #[cfg(feature = "yaml")]
        impl serde::Serialize for $patch {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap as _;
                let mut entries = $crate::serialize::Entries(serializer.serialize_map(None)?);
                $(entries.entry(stringify!($field), self.$field.as_ref())?;)*
                $(entries.entry(stringify!($set), self.$set.as_ref())?;)*
                entries.0.end()
            }
        }

        impl $spec {
            $(
                #[doc = concat!("Sets `", stringify!($set), "`.")]
                pub const fn $set(mut self, $set: $set_ty) -> Self {
                    self.$set = $set;
                    self
                }
            )*
        }
    };
}

pub(crate) use patch;
