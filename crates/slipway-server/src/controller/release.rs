//! Releases what no job asks for any more: an ImagePullJob's owner reference leaves the tags of
//! nodes it no longer covers (deleted, selector edited, past its deadline), and a tag whose last
//! owner left is removed, so the node's agent drops its pull. Tags nobody ever owned (written by
//! hand) stay, and so do the owners of jobs outside a controller's namespace.

use std::collections::HashSet;

use super::world::{World, in_scope, owner_uid};

/// Drops owner references of jobs in `scope` (every namespace when `None`) not in `claims`
/// (job uid, node) from every NodeImage.
pub fn release(world: &mut World, claims: &HashSet<(String, String)>, scope: Option<&str>) {
    for (node, doc) in &mut world.images {
        let mut changed = false;
        for image in doc.spec.images.values_mut() {
            image.tags.retain_mut(|tag| {
                let before = tag.owner_references.len();
                tag.owner_references
                    .retain(|r| match owner_uid(r, "ImagePullJob") {
                        Some(uid) if in_scope(r, scope) => {
                            claims.contains(&(uid.to_string(), node.clone()))
                        }
                        _ => true,
                    });
                let after = tag.owner_references.len();
                changed |= after != before;
                !(before > 0 && after == 0)
            });
        }
        let before = doc.spec.images.len();
        doc.spec.images.retain(|_, i| !i.tags.is_empty());
        changed |= doc.spec.images.len() != before;
        doc.dirty |= changed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::world::{NodeImageDoc, owner};
    use slipway_model::kinds::kruise::{ImageSpec, ImageTagSpec};

    #[test]
    fn a_tag_loses_its_dead_owners_and_goes_with_the_last() {
        let tag = |t: &str, owners: Vec<serde_json::Value>| ImageTagSpec {
            tag: t.into(),
            owner_references: owners,
            ..Default::default()
        };
        let mut doc = NodeImageDoc::new();
        doc.dirty = false;
        doc.spec.images.insert(
            "r/a".into(),
            ImageSpec {
                tags: vec![
                    tag("1", vec![owner("ImagePullJob", "j1", "u1")]),
                    tag(
                        "2",
                        vec![
                            owner("ImagePullJob", "j1", "u1"),
                            owner("ImagePullJob", "j2", "u2"),
                        ],
                    ),
                    tag("by-hand", vec![]),
                ],
                ..Default::default()
            },
        );
        doc.spec.images.insert(
            "r/b".into(),
            ImageSpec {
                tags: vec![tag("1", vec![owner("ImagePullJob", "j1", "u1")])],
                ..Default::default()
            },
        );
        let mut world = World {
            now: std::time::SystemTime::now(),
            nodes: vec![],
            images: [("n1".to_string(), doc)].into(),
        };
        let claims: HashSet<_> = [("u2".to_string(), "n1".to_string())].into();
        release(&mut world, &claims, None);
        let doc = &world.images["n1"];
        assert!(doc.dirty);
        let tags: Vec<&str> = doc.spec.images["r/a"]
            .tags
            .iter()
            .map(|t| t.tag.as_str())
            .collect();
        assert_eq!(tags, ["2", "by-hand"]);
        assert_eq!(doc.spec.images["r/a"].tags[0].owner_references.len(), 1);
        assert!(!doc.spec.images.contains_key("r/b"));
    }

    #[test]
    fn a_controller_of_one_namespace_leaves_other_namespaces_owners_alone() {
        use crate::controller::world::tag_owner;
        let mut doc = NodeImageDoc::new();
        doc.spec.images.insert(
            "r/a".into(),
            ImageSpec {
                tags: vec![ImageTagSpec {
                    tag: "1".into(),
                    owner_references: vec![
                        tag_owner("team-a", "j1", "u1"),
                        tag_owner("team-b", "j2", "u2"),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            },
        );
        let mut world = World {
            now: std::time::SystemTime::now(),
            nodes: vec![],
            images: [("n1".to_string(), doc)].into(),
        };
        // Neither job claims the node: only team-a's owner is this controller's to drop.
        release(&mut world, &HashSet::new(), Some("team-a"));
        let owners = &world.images["n1"].spec.images["r/a"].tags[0].owner_references;
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0]["namespace"], "team-b");
    }
}
