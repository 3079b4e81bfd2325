//! Leader election over a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does:
//! the holder renews `renewTime`; another replica takes the Lease once it has gone unrenewed
//! for `leaseDurationSeconds`. Every write goes over the `resourceVersion` read, so two
//! candidates never both win. Slipway's Tekton controller and its pre-warming controller both
//! lead through here.

mod acquire;
mod error;
mod lead;
mod settings;

pub use acquire::{Attempt, release, try_acquire};
pub use error::LeaseError;
pub use lead::lead;
pub use settings::LeaseSettings;
