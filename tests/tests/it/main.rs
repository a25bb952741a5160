//! End-to-end tests on real `palisade` processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli;
mod doc_examples;
mod eth_clients;
mod eth_conformance;
mod eth_web3py;
mod explorer;
mod faults;
mod files;
mod monitoring;
mod network;
mod operators_guide;
mod rpc;
mod snapshots;
