//! Integration tests of the image builder, against the real Docker daemon and registries of
//! the test environment (`scripts/docker-env.sh` starts them).

mod flatten;
mod harness;
mod parity;
mod registry;
