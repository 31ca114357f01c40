#![doc = include_str!("../README.md")]
#![forbid(unsafe_code, unused_must_use)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod otp;
mod secret;

pub use secret::{Secret, SecretError};
