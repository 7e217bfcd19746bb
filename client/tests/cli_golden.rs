//! Golden tests of the `breakglass` CLI: each `tests/cmd/*.toml` runs the
//! binary with no daemon and compares its exact output and exit code with the
//! `.stdout`/`.stderr` files beside it (fixtures in `tests/cmd/data/`, see its
//! README). After an intended change: `TRYCMD=overwrite cargo test -p
//! breakglass-client --test cli_golden`, then read the diff.

#[test]
fn cli_golden() {
    trycmd::TestCases::new().case("tests/cmd/*.toml");
}
