//! Prints the vectors of `docs/p2p.md`.

fn main() {
    for v in palisade_network::vectors::all() {
        print!("{}", palisade_types::test_vectors::render(&v));
        println!();
    }
}
