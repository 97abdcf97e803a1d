fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).map(|a| a == "monitor").unwrap_or(false) {
        std::process::exit(berth::monitor::main(args[2..].to_vec()));
    }
}
