//! A valid component of another world (`wasi:cli/command`): the host must say it implements no role.
fn main() {
    println!("hello from a command component");
}
