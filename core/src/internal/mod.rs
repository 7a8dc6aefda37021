//! Private machinery behind the public modules.

pub(crate) mod pack;
pub(crate) mod search;
