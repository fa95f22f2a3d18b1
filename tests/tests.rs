//! Integration tests: each runs the real `resbak` binary in a fresh temp folder.
//! One test binary with modules keeps build times down.

mod datagen;
mod util;

mod backup;
mod browse;
mod catalogue;
mod cli;
mod config;
mod diff;
mod filebackup;
mod hostile;
mod legacy;
mod list;
mod mutation;
mod remote;
mod remote_catalogue;
mod remote_crypto;
mod remote_leftovers;
mod remote_repair;
mod restore;
mod retention;
mod s3;
mod safety;
mod segments;
mod untracked;
mod verify;
