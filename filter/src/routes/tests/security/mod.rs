//! Regression tests of the security review (issue 14): one module per finding, each test
//! failing on the code before its fix.

mod consent_remember;
mod redirect_patterns;
