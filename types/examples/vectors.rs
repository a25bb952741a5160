//! Prints the test-vector blocks of `docs/spec.md`.

fn main() {
    for v in palisade_types::test_vectors::all() {
        println!("{}", palisade_types::test_vectors::render(&v));
    }
}
