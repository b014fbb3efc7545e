//! Twins of the final layers blocks.

pub(crate) mod bhi;
pub(crate) mod regression;
pub(crate) mod soft_class;
