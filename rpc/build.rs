// The explorer's built assets are embedded by `include_dir!`, which cargo
// does not track: rebuild when they change.
fn main() {
    println!("cargo:rerun-if-changed=../explorer/dist");
}
