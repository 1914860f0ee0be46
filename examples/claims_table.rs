//! Prints the claims table for `docs/claims.md`: `cargo run --example claims_table`.

fn main() {
    print!("{}", lossnav::verify::markdown_table());
}
