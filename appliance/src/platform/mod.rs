//! What the appliance asks of the host at start-up: hugepage-backed memory, memory locking, pinning, scheduling class, readiness notification.
