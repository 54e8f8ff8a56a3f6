//! The scenarios through this workspace's `amqp-client`.

use super::{fail, BoxError, Outcome, WorkSpec};

pub(super) async fn run(spec: &WorkSpec) -> Result<Outcome, BoxError> {
    Err(fail(format!("{}: not implemented yet", spec.scenario.name())))
}
