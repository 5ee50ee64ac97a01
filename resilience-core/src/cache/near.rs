//! A cache's local tier listening for invalidation messages (see
//! [`crate::redis::invalidation`]): a message names an entry by its Redis key, whose end is
//! the cached key as JSON, read back here to drop the copy.

use std::hash::Hash;

use super::Cache;
use crate::redis::invalidation::Listener;

/// The local tier of `cache`, for the entries under `prefix` announced on `channel`.
pub(crate) struct Listening<K: 'static, V: 'static> {
    pub(crate) cache: &'static Cache<K, V>,
    pub(crate) channel: String,
    pub(crate) prefix: String,
    pub(crate) key_back: fn(&str) -> Option<K>,
}

impl<K, V> Listener for Listening<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn channel(&self) -> &str {
        &self.channel
    }

    fn prefix(&self) -> &str {
        &self.prefix
    }

    fn drop_one(&self, rest: &str) {
        match (self.key_back)(rest) {
            Some(key) => self.cache.drop_near(Some(&key)),
            // A key this version cannot read: every copy goes, rather than a stale one stay.
            None => self.cache.drop_near(None),
        }
    }

    fn drop_all(&self) {
        self.cache.drop_near(None);
    }

    fn identity(&self) -> (usize, &str) {
        (std::ptr::from_ref(self.cache) as usize, &self.prefix)
    }
}
