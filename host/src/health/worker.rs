//! The background health worker: persists state changes (with a transition history),
//! applies the crash-loop policy through the management service, re-evaluates
//! time-driven conditions and runs the periodic `test-connection` probe.
