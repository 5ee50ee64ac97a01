//! Shared state: what named policies configure in place. [`Reconfigurable`] is anything an
//! install must reach (the caches of sites naming a policy, each [`SharedByName`]), in one
//! list the registry walks, so the registry names no kind of state itself.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use super::{NamedPolicy, Policies, lock, named_use, snapshot_for};

/// Something holding values that named policies set (the shared limiters, bulkheads and
/// breakers, the caches of sites naming a policy): told of every newly installed snapshot.
pub(crate) trait Reconfigurable: Send + Sync {
    /// Applies `policies` to everything in use, keeping its state.
    fn reconfigure(&self, policies: &Policies);
}

/// Everything an install reconfigures, in the order it registered.
pub(super) static RECONFIGURABLE: std::sync::Mutex<Vec<&'static dyn Reconfigurable>> =
    std::sync::Mutex::new(Vec::new());

/// Adds `thing` to what each install reconfigures; registering it again changes nothing.
/// Call it before reading the snapshot that configures what `thing` creates: then an install
/// running at the same time either reconfigures it or stored its snapshot before.
pub(crate) fn register(thing: &'static dyn Reconfigurable) {
    let mut things = lock(&RECONFIGURABLE);
    if !things.iter().any(|known| std::ptr::addr_eq(*known, thing)) {
        things.push(thing);
    }
}

/// Each shared object with the inline values it was created from, by policy name, and
/// whether those are a placeholder that the first site naming the policy replaces.
type ByName<T, S> = HashMap<String, (Arc<T>, S, bool)>;

/// One stateful object (a limiter, a bulkhead, a breaker) per policy name, shared by every
/// site naming it: created on first use, and reconfigured in place, state kept, when the
/// policies change.
pub(crate) struct SharedByName<T, S> {
    /// What it is, for messages (`"a shared rate limiter"`).
    kind: &'static str,
    /// A new object for the policy named first, with these values.
    create: fn(&str, S) -> T,
    /// Changes the values, keeping the state.
    configure: fn(&T, S),
    /// The policy's section for this kind of object applied over the inline values, or
    /// `None` when the policy has no such section.
    patch: fn(&NamedPolicy, S) -> Option<S>,
    /// Each object with the inline values of the first site that named its policy: what
    /// remains when the loaded policies stop setting some field.
    by_name: LazyLock<std::sync::Mutex<ByName<T, S>>>,
}

impl<T: Send + Sync + 'static, S: Copy + Send + Sync + 'static> SharedByName<T, S> {
    pub(crate) const fn new(
        kind: &'static str,
        create: fn(&str, S) -> T,
        configure: fn(&T, S),
        patch: fn(&NamedPolicy, S) -> Option<S>,
    ) -> Self {
        SharedByName {
            kind,
            create,
            configure,
            patch,
            by_name: LazyLock::new(Default::default),
        }
    }

    fn effective(&self, policy: Option<&NamedPolicy>, inline: S) -> S {
        policy
            .and_then(|policy| (self.patch)(policy, inline))
            .unwrap_or(inline)
    }

    /// The object shared by every site naming `policy`, created on first use with `inline`
    /// values overridden by the loaded policy. The first site to name a policy gives the
    /// inline values; the policy's own values are what make two sites agree.
    pub(crate) fn get_or_create(&'static self, policy: &str, inline: S) -> Arc<T> {
        self.get(policy, inline, false)
    }

    /// [`get_or_create`](Self::get_or_create) for a handle that is no site: created with the
    /// `placeholder` inline values, which the first site naming the policy replaces.
    pub(crate) fn get_or_reserve(&'static self, policy: &str, placeholder: S) -> Arc<T> {
        self.get(policy, placeholder, true)
    }

    fn get(&'static self, policy: &str, inline: S, placeholder: bool) -> Arc<T> {
        named_use();
        register(self);
        let mut by_name = lock(&self.by_name);
        if let Some((object, values, reserved)) = by_name.get_mut(policy) {
            if *reserved && !placeholder {
                (*values, *reserved) = (inline, false);
                let snapshot = super::current();
                (self.configure)(object, self.effective(snapshot.get(policy), inline));
            }
            return Arc::clone(object);
        }
        let snapshot = snapshot_for(self.kind, policy);
        let object = Arc::new((self.create)(
            policy,
            self.effective(snapshot.get(policy), inline),
        ));
        by_name.insert(
            policy.to_string(),
            (Arc::clone(&object), inline, placeholder),
        );
        object
    }
}

impl<T: Send + Sync + 'static, S: Copy + Send + Sync + 'static> Reconfigurable
    for SharedByName<T, S>
{
    fn reconfigure(&self, policies: &Policies) {
        let by_name = lock(&self.by_name);
        for (name, (object, inline, _)) in by_name.iter() {
            (self.configure)(object, self.effective(policies.get(name), *inline));
        }
    }
}
