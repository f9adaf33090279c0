//! Back-ends that touch the outside world. Each sits behind a small, host-neutral API so the
//! capability layer above never sees a client library's types.

pub mod cloudfront;
pub mod flags;
pub mod http;
pub mod s3;
pub mod s3_flags;
pub mod store;
