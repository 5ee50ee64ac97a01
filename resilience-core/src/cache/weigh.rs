//! [`Weigh`]: how many bytes a cached value holds, for `max_bytes`.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::mem::size_of;
use std::sync::Arc;

/// The bytes a value holds: its own size and what it owns on the heap, as `max_bytes` counts
/// them (an estimate: a `Vec`'s and a `String`'s spare capacity is counted, a hash table's
/// is not). Implemented for the standard library's common types; implement it for your own
/// value type (the sum of its fields' weights is usually right) to give a `#[cached]`
/// function a `max_bytes` bound.
///
/// The weight is read once, when a value is stored, so it may walk the value.
///
/// ```
/// # use resilience_core as resilience;
/// use resilience::cache::Weigh;
///
/// #[derive(Clone)]
/// struct City { name: String, population: u64 }
///
/// impl Weigh for City {
///     fn weigh(&self) -> u64 {
///         self.name.weigh() + self.population.weigh()
///     }
/// }
///
/// let paris = City { name: "Paris".to_string(), population: 2_100_000 };
/// assert_eq!(paris.weigh(), 24 + 5 + 8);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be weighed for `max_bytes`",
    label = "the cached value, which `max_bytes` weighs",
    note = "implement `resilience::cache::Weigh` for `{Self}` (the sum of its fields' weights), or drop `max_bytes`"
)]
pub trait Weigh {
    /// The bytes this value holds.
    fn weigh(&self) -> u64;
}

/// `size_of::<T>()` as a weight.
fn inline<T>() -> u64 {
    u64::try_from(size_of::<T>()).unwrap_or(u64::MAX)
}

/// The weight of the items a container holds (each item's own size and heap).
fn owned<'a, T: Weigh + 'a>(items: impl Iterator<Item = &'a T>) -> u64 {
    items.fold(0, |sum: u64, item| sum.saturating_add(item.weigh()))
}

/// The weight of the entries a map holds, keys and values.
fn entries<'a, K: Weigh + 'a, V: Weigh + 'a>(items: impl Iterator<Item = (&'a K, &'a V)>) -> u64 {
    items.fold(0, |sum: u64, (key, value)| {
        sum.saturating_add(key.weigh())
            .saturating_add(value.weigh())
    })
}

macro_rules! weigh_inline {
    ($($ty:ty),*) => {$(
        impl Weigh for $ty {
            fn weigh(&self) -> u64 {
                inline::<$ty>()
            }
        }
    )*};
}

weigh_inline!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64
);

impl Weigh for String {
    fn weigh(&self) -> u64 {
        inline::<String>().saturating_add(u64::try_from(self.capacity()).unwrap_or(u64::MAX))
    }
}

impl Weigh for Box<str> {
    fn weigh(&self) -> u64 {
        inline::<Box<str>>().saturating_add(u64::try_from(self.len()).unwrap_or(u64::MAX))
    }
}

impl Weigh for Arc<str> {
    fn weigh(&self) -> u64 {
        inline::<Arc<str>>().saturating_add(u64::try_from(self.len()).unwrap_or(u64::MAX))
    }
}

impl<T: Weigh> Weigh for Vec<T> {
    fn weigh(&self) -> u64 {
        let spare = self
            .capacity()
            .saturating_sub(self.len())
            .saturating_mul(size_of::<T>());
        inline::<Vec<T>>()
            .saturating_add(owned(self.iter()))
            .saturating_add(u64::try_from(spare).unwrap_or(u64::MAX))
    }
}

impl<T: Weigh> Weigh for VecDeque<T> {
    fn weigh(&self) -> u64 {
        inline::<VecDeque<T>>().saturating_add(owned(self.iter()))
    }
}

impl<T: Weigh> Weigh for Box<T> {
    fn weigh(&self) -> u64 {
        inline::<Box<T>>().saturating_add(T::weigh(self))
    }
}

/// The whole value: a cache that holds an `Arc` keeps what it points to alive.
impl<T: Weigh> Weigh for Arc<T> {
    fn weigh(&self) -> u64 {
        inline::<Arc<T>>().saturating_add(T::weigh(self))
    }
}

impl<T: Weigh> Weigh for Option<T> {
    fn weigh(&self) -> u64 {
        match self {
            // The payload's own weight includes its inline size; the tag is the difference.
            Some(value) => value
                .weigh()
                .saturating_add(inline::<Option<T>>().saturating_sub(inline::<T>())),
            None => inline::<Option<T>>(),
        }
    }
}

impl<T: Weigh, E: Weigh> Weigh for Result<T, E> {
    fn weigh(&self) -> u64 {
        let held = match self {
            Ok(value) => value.weigh().saturating_sub(inline::<T>()),
            Err(error) => error.weigh().saturating_sub(inline::<E>()),
        };
        inline::<Result<T, E>>().saturating_add(held)
    }
}

impl<K: Weigh, V: Weigh, S> Weigh for HashMap<K, V, S> {
    fn weigh(&self) -> u64 {
        inline::<Self>().saturating_add(entries(self.iter()))
    }
}

impl<T: Weigh, S> Weigh for HashSet<T, S> {
    fn weigh(&self) -> u64 {
        inline::<Self>().saturating_add(owned(self.iter()))
    }
}

impl<K: Weigh, V: Weigh> Weigh for BTreeMap<K, V> {
    fn weigh(&self) -> u64 {
        inline::<Self>().saturating_add(entries(self.iter()))
    }
}

macro_rules! weigh_tuple {
    ($($name:ident),+) => {
        impl<$($name: Weigh),+> Weigh for ($($name,)+) {
            #[allow(non_snake_case)]
            fn weigh(&self) -> u64 {
                let ($($name,)+) = self;
                let fields = 0u64 $(.saturating_add($name.weigh()))+;
                // Padding: what the tuple takes beyond its fields' inline sizes.
                let padding = inline::<Self>().saturating_sub(0u64 $(.saturating_add(inline::<$name>()))+);
                fields.saturating_add(padding)
            }
        }
    };
}

weigh_tuple!(A);
weigh_tuple!(A, B);
weigh_tuple!(A, B, C);
weigh_tuple!(A, B, C, D);

/// A type-erased weigher, as a `static` site holds it (`#[cached(max_bytes = ..)]` names
/// `weigh_any::<Stored>`).
pub(crate) type AnyWeigher = fn(&dyn Any) -> u64;

/// [`Weigh::weigh`] of a value known to be a `V` (1 if it is not: never, for a site's own
/// cache).
pub fn weigh_any<V: Weigh + 'static>(value: &dyn Any) -> u64 {
    value.downcast_ref::<V>().map_or(1, Weigh::weigh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_count_the_heap() {
        assert_eq!(7u64.weigh(), 8);
        let text = String::with_capacity(100);
        assert_eq!(text.weigh(), 24 + 100);
        assert_eq!(vec![1u32, 2, 3].weigh(), 24 + 12);
        assert_eq!(vec!["ab".to_string()].weigh(), 24 + 24 + 2);
        assert_eq!(Some(5u64).weigh(), 16);
        assert_eq!(None::<u64>.weigh(), 16);
        assert_eq!(Ok::<String, u8>("abc".into()).weigh(), 24 + 3);
        assert_eq!((1u8, 2u64).weigh(), 16);
        assert_eq!(weigh_any::<u32>(&7u32), 4);
        assert_eq!(weigh_any::<u32>(&"not a u32"), 1);
    }
}
