use super::{Mock, MockCtx, Send};
use crate::Message;

/// Sends nothing at all (a crashed or censoring validator).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Mock for Silent {
    fn outgoing(&mut self, _ctx: &MockCtx<'_>, _msg: Message) -> Vec<Send> {
        Vec::new()
    }
}
