//! trybuild UI tests: every pass case compiles; every fail case is refused with
//! the exact error (code, message, underline, help) in its `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
