//! `appliance check-host`: a read-only report on how well the host is tuned for the appliance.
