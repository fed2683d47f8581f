//! `bench`: the command-line entry point.

fn main() {
    println!("bench {}", env!("CARGO_PKG_VERSION"));
}
