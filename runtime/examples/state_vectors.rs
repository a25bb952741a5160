//! Prints the golden vectors of `docs/state.md`.

fn main() {
    for v in palisade_runtime::test_vectors::all() {
        println!("{}", palisade_types::test_vectors::render(&v));
    }
}
