//! The write side of Portal: aggregates, their commands, events and rules.
//!
//! Nothing here performs IO or reads the clock: ids and times arrive inside the
//! commands, so every rule is a pure function that a given/when/then test can pin.
#![forbid(unsafe_code)]

/// `Aggregate::handle` for an aggregate whose rules are its pure `decide`:
/// the events it returns are written in order, or its error is returned.
#[macro_export]
macro_rules! handle_by_decide {
    () => {
        async fn handle(
            &mut self,
            command: Self::Command,
            _service: &Self::Services,
            sink: &cqrs_es::event_sink::EventSink<Self>,
        ) -> Result<(), Self::Error> {
            for event in self.decide(command)? {
                sink.write(event, self).await;
            }
            Ok(())
        }
    };
}

pub mod access;
pub mod agreement;
pub mod alignment;
pub mod care;
pub mod catalogue;
pub mod declarations;
pub mod erasure;
pub mod export;
pub mod forum;
pub mod messaging;
pub mod personal;
pub mod portal;
pub mod refusal;
pub mod smart;
pub mod study;
pub mod text;
pub mod trail;
