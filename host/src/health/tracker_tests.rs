//! Unit tests of the health state machine.
