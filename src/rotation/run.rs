//! One user's run, as the adapters call it: read and decide ([`prepare`]), then carry it out
//! ([`execute`]). The parts live in their own rooms; this is their front door.

pub use super::context::Ctx;
pub use super::context::LeaseSettings;
pub use super::execute::{execute, run_user};
pub use super::lease::give_back_lease;
pub use super::outcome::{
    Command, ConsumerReport, ConsumerResult, Fault, KeyReport, Outcome, UserReport,
};
pub use super::prepare::{
    Prepared, Reading, defer, is_due, plan_user, prepare, read_for_writes, writes_needed,
};
pub use super::writes::secret_name;
