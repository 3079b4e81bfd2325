//! `slipway images`: the images a set of runs needs, without running them.

use std::collections::BTreeMap;

use slipway_model::Library;
use slipway_model::images::images as needed;
use slipway_model::validate::{Limits, validate as check};

use crate::cli::ImagesArgs;
use crate::error::CliError;

/// Prints each image once (with `--wide`, what uses it); images known only at run time are
/// said on stderr.
pub fn images(args: &ImagesArgs) -> Result<i32, CliError> {
    let lib = Library::load_paths(&args.files).map_err(CliError::Invalid)?;
    let diags = check(&lib, &Limits::default());
    if !diags.is_empty() {
        return Err(CliError::Invalid(diags));
    }
    let mut by_image: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for u in needed(&lib) {
        if !u.is_resolved() {
            eprintln!(
                "note: {} uses `{}`, known only when it runs",
                u.used_by, u.image
            );
            continue;
        }
        by_image.entry(u.image).or_default().push(u.used_by);
    }
    if let Some(format) = args.output {
        let items: Vec<serde_json::Value> = by_image
            .iter()
            .map(|(image, used_by)| serde_json::json!({ "image": image, "usedBy": used_by }))
            .collect();
        crate::output::print(&serde_json::Value::Array(items), format)?;
        return Ok(0);
    }
    for (image, used_by) in &by_image {
        if args.wide {
            println!("{image}\t{}", used_by.join("; "));
        } else {
            println!("{image}");
        }
    }
    Ok(0)
}
