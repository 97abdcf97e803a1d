//! Listeners and hijacked streams.
