//! Integration tests of slipway-build against real registries and a real Docker daemon
//! (`scripts/docker-env.sh` starts them).

mod registry;
