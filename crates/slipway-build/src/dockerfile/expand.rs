//! Docker's word expansion: `$a`, `${a}`, `${a:-b}`, `${a:+b}`, `${a-b}`, `${a+b}`, quotes and
//! the escape character, as Docker's shell lexer treats them.
