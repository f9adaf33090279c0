//! What a launch acts on, each behind a small host-neutral API so the engine never sees a client
//! library's types: artifact stores (`store`: local, `s3`), flag providers (`flags`: file, HTTP admin
//! API, S3, flagd, Unleash), the CDN (`cloudfront`), the constant-rate `probe`, and the embedded
//! StatusBoardV2 `simulator`. Nothing here knows of runbooks, plugins or journals.

pub mod cloudfront;
pub mod flags;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod rooted;
pub mod s3;
pub mod simulator;
pub mod store;
