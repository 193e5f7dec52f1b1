//! Ownership as a type (as lldap's access-control handles): an [`Owned`] object is one the
//! service has checked is the caller's, and only that check makes one. Operations on an object
//! take its owned form, so they cannot be handed someone else's — nor a stack found by a
//! hook's id, which stays a plain [`Stack`].

use std::ops::Deref;

use super::{Caller, Entity, ServiceError, ServiceResult};
use crate::domain::monitor::Monitor;
use crate::domain::{Job, Run, Schedule, Stack, UserId, Webhook};
use crate::store::Page;

/// An object of the caller's. Reads go through `Deref`; [`Owned::into_inner`] gives the plain
/// object back (for views and the engine), never the other way round outside this module.
#[derive(Debug, Clone)]
pub struct Owned<T>(T);

impl<T> Owned<T> {
    pub fn into_inner(self) -> T {
        self.0
    }

    /// The plain object (a copy), where an owned one is not needed.
    pub fn to_inner(&self) -> T
    where
        T: Clone,
    {
        self.0.clone()
    }
}

impl<T> Deref for Owned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// What has an owner, and which entity "not found" names.
pub trait HasOwner {
    const ENTITY: Entity;
    fn owner(&self) -> UserId;
}

macro_rules! has_owner {
    ($($ty:ty => $entity:ident),* $(,)?) => {$(
        impl HasOwner for $ty {
            const ENTITY: Entity = Entity::$entity;
            fn owner(&self) -> UserId {
                self.owner
            }
        }
    )*};
}

has_owner!(Stack => Stack, Job => Job, Schedule => Schedule, Run => Run, Webhook => Webhook, Monitor => Monitor);

/// The one ownership check: `found` when it is the caller's; else "not found" (someone else's
/// object is never told apart from none).
pub(super) fn owned<T: HasOwner>(caller: &Caller, found: Option<T>) -> ServiceResult<Owned<T>> {
    match found {
        Some(x) if x.owner() == caller.user_id => Ok(Owned(x)),
        _ => Err(ServiceError::NotFound(T::ENTITY)),
    }
}

/// Every item of a page the store read for the caller (its query filtered by owner), owned —
/// checked all the same: one rule, whatever the query.
pub(super) fn owned_page<T: HasOwner>(caller: &Caller, page: Page<T>) -> ServiceResult<Page<Owned<T>>> {
    let items = page.items.into_iter().map(|x| owned(caller, Some(x))).collect::<ServiceResult<_>>()?;
    Ok(Page { items, total: page.total })
}

/// An object a viewer may read: their own, or someone else's that is public (read-only).
#[derive(Debug, Clone)]
pub enum Visible<T> {
    Own(Owned<T>),
    Public(T),
}

/// `found` as `viewer` may see it: theirs, else public when `public` says so, else "not found".
pub(super) fn visible<T: HasOwner>(
    viewer: Option<&Caller>,
    found: Option<T>,
    public: impl Fn(&T) -> bool,
) -> ServiceResult<Visible<T>> {
    match found {
        Some(x) if viewer.is_some_and(|c| c.user_id == x.owner()) => Ok(Visible::Own(Owned(x))),
        Some(x) if public(&x) => Ok(Visible::Public(x)),
        _ => Err(ServiceError::NotFound(T::ENTITY)),
    }
}

/// An object found through another the caller owns (a stack's job, by uid).
pub(super) fn owned_through<P, T>(_parent: &Owned<P>, child: T) -> Owned<T> {
    Owned(child)
}
