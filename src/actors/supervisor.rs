//! DaemonSupervisor: start-up in order, shutdown in reverse.
