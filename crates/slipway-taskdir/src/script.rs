//! Step scripts: Tekton's shebang rules.

/// The preamble Tekton gives a script without a shebang.
const DEFAULT_PREAMBLE: &str = "#!/bin/sh\nset -e\n";

/// The file content for a step script: as written when it has a shebang, else with `sh -e`.
pub fn with_shebang(script: &str) -> String {
    if script.starts_with("#!") {
        script.to_string()
    } else {
        format!("{DEFAULT_PREAMBLE}{script}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_rules() {
        assert_eq!(
            with_shebang("#!/usr/bin/env bash\necho"),
            "#!/usr/bin/env bash\necho"
        );
        assert_eq!(with_shebang("echo hi"), "#!/bin/sh\nset -e\necho hi");
    }
}
