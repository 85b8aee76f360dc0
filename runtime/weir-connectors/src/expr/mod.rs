//! Expressions inside pipeline files that are evaluated per record or per object: Firehose's
//! `!{...}` prefixes and jq queries. Below `config` and `sink` in the layering: both use them.

pub mod jq;
pub mod prefix;
