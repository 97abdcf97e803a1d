//! System checks, work dirs, pidfile, sd_notify.
