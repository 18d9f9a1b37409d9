//! The `krea` command-line tool (being built).

fn main() {
    eprintln!(
        "krea {}: the command-line tool is not built yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
