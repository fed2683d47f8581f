//! `appliance`: the command-line entry point.

fn main() {
    println!("appliance {}", env!("CARGO_PKG_VERSION"));
}
