//! Integration tests of the pull engine against real containerd instances started by
//! `scripts/containerd-env.sh` and the loopback registries of `scripts/docker-env.sh`.

mod faults;
mod harness;
mod pulls;
