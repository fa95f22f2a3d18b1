//! Integration tests: each runs the real `resbak` binary in a fresh temp folder.
//! One test binary with modules keeps build times down.

mod util;

mod backup;
mod config;
mod filebackup;
mod list;
mod remote;
mod restore;
mod retention;
mod s3;
mod safety;
mod verify;
