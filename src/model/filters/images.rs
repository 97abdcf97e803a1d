//! The filters of `GET /images/json`, as dockerd 20.10's `daemon/images/images.go`.

use chrono::{DateTime, Utc};

use super::{FilterError, Filters, path_match};

/// The keys dockerd 20.10 accepts (`acceptedImageFilterTags`).
pub const IMAGE_FILTERS: &[&str] = &["before", "dangling", "label", "reference", "since"];

/// What the filters read of one image; built by the graph from its store.
#[derive(Debug, Clone)]
pub struct ImageFilterView<'a> {
    /// `None`: no `created` in the config (Go's zero time, the earliest).
    pub created: Option<DateTime<Utc>>,
    /// `None` when the image has no config (such an image never passes `label`).
    pub labels: Option<Vec<(&'a str, &'a str)>>,
    /// Each tag in its familiar form (`busybox:latest`) with its name (`busybox`).
    pub refs: Vec<(&'a str, &'a str)>,
    /// Whether another image has it as its parent (berth's images have no parents).
    pub has_children: bool,
}

/// An image list filter, checked once per request. The graph resolves `before` and
/// `since` ([`ImageFilter::resolve`]) and asks [`ImageFilter::select`] of each image.
#[derive(Debug, Clone, Default)]
pub struct ImageFilter {
    filters: Filters,
    dangling_only: bool,
    before: Vec<Option<DateTime<Utc>>>,
    since: Vec<Option<DateTime<Utc>>>,
}

impl ImageFilter {
    /// Checks the keys, `dangling` and the `reference` patterns.
    pub fn compile(filters: Filters) -> Result<ImageFilter, FilterError> {
        filters.validate(IMAGE_FILTERS)?;
        let mut dangling_only = false;
        if filters.contains("dangling") {
            if filters.exact_match("dangling", "true") {
                dangling_only = true;
            } else if !filters.exact_match("dangling", "false") {
                return Err(FilterError::InvalidValue {
                    key: "dangling",
                    value: filters.go_list("dangling"),
                });
            }
        }
        for pattern in filters.get("reference") {
            path_match(pattern, "")?;
        }
        Ok(ImageFilter {
            filters,
            dangling_only,
            before: Vec::new(),
            since: Vec::new(),
        })
    }

    /// Resolves the `before` and `since` images to their created times with `lookup`
    /// (by name, id or id prefix); its error (no such image) is the caller's.
    pub fn resolve<E>(
        &mut self,
        mut lookup: impl FnMut(&str) -> Result<Option<DateTime<Utc>>, E>,
    ) -> Result<(), E> {
        self.before = self
            .filters
            .get("before")
            .map(&mut lookup)
            .collect::<Result<_, _>>()?;
        self.since = self
            .filters
            .get("since")
            .map(&mut lookup)
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// The tags to list for the image, `Some(vec![])` for an untagged (`<none>`) row, or
    /// `None` when the image is filtered out. With `reference`, only the matching tags
    /// are listed, as dockerd does.
    pub fn select(&self, img: &ImageFilterView<'_>, all: bool) -> Option<Vec<String>> {
        // Several `before` (or `since`) images are alternatives: created before the
        // newest of them (after the oldest).
        if let Some(newest) = self.before.iter().max() {
            if img.created >= *newest {
                return None;
            }
        }
        if let Some(oldest) = self.since.iter().min() {
            if img.created <= *oldest {
                return None;
            }
        }
        if self.filters.contains("label") {
            let labels = img.labels.as_ref()?;
            if !self.filters.match_kv_list("label", labels) {
                return None;
            }
        }
        let by_reference = self.filters.contains("reference");
        let tags: Vec<String> = img
            .refs
            .iter()
            .filter(|(full, name)| {
                !by_reference
                    || self.filters.get("reference").any(|p| {
                        path_match(p, full).unwrap_or(false) || path_match(p, name).unwrap_or(false)
                    })
            })
            .map(|(full, _)| (*full).to_owned())
            .collect();
        if tags.is_empty() {
            if !all && img.has_children {
                return None;
            }
            if (self.filters.contains("dangling") && !self.dangling_only) || by_reference {
                return None;
            }
        } else if self.dangling_only {
            return None;
        }
        Some(tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(pairs: &[(&str, &str)]) -> Result<ImageFilter, FilterError> {
        ImageFilter::compile(Filters::from_pairs(pairs.iter().copied()))
    }

    fn img<'a>(created: i64, refs: Vec<(&'a str, &'a str)>) -> ImageFilterView<'a> {
        ImageFilterView {
            created: DateTime::from_timestamp(created, 0),
            labels: Some(vec![("k", "v")]),
            refs,
            has_children: false,
        }
    }

    #[test]
    fn keys_and_dangling_values_are_checked() {
        assert_eq!(
            compile(&[("bogus", "1")]).unwrap_err().to_string(),
            "Invalid filter 'bogus'"
        );
        assert_eq!(
            compile(&[("dangling", "maybe")]).unwrap_err().to_string(),
            "Invalid filter 'dangling=[maybe]'"
        );
        assert!(compile(&[("reference", "[")]).is_err());
        assert!(compile(&[("dangling", "true"), ("dangling", "false")]).is_ok());
    }

    #[test]
    fn dangling_and_references() {
        let tagged = img(1, vec![("busybox:latest", "busybox"), ("mine:1", "mine")]);
        let untagged = img(2, Vec::new());
        let no = ImageFilter::default();
        assert_eq!(no.select(&tagged, false).unwrap().len(), 2);
        assert_eq!(no.select(&untagged, false).unwrap(), Vec::<String>::new());

        let f = compile(&[("dangling", "true")]).unwrap();
        assert!(f.select(&tagged, false).is_none());
        assert!(f.select(&untagged, false).is_some());
        let f = compile(&[("dangling", "false")]).unwrap();
        assert!(f.select(&tagged, false).is_some());
        assert!(f.select(&untagged, false).is_none());

        let f = compile(&[("reference", "busybox")]).unwrap();
        assert_eq!(f.select(&tagged, false).unwrap(), vec!["busybox:latest"]);
        assert!(f.select(&untagged, false).is_none());
        let f = compile(&[("reference", "*:1")]).unwrap();
        assert_eq!(f.select(&tagged, false).unwrap(), vec!["mine:1"]);
        let f = compile(&[("reference", "nothing*")]).unwrap();
        assert!(f.select(&tagged, false).is_none());
    }

    #[test]
    fn labels_and_times() {
        let a = img(1, vec![("a:1", "a")]);
        let b = img(2, vec![("b:1", "b")]);
        let f = compile(&[("label", "k=v")]).unwrap();
        assert!(f.select(&a, false).is_some());
        let f = compile(&[("label", "k"), ("label", "x")]).unwrap();
        assert!(f.select(&a, false).is_none());

        let mut f = compile(&[("before", "b:1")]).unwrap();
        f.resolve(|r| -> Result<_, ()> {
            assert_eq!(r, "b:1");
            Ok(DateTime::from_timestamp(2, 0))
        })
        .unwrap();
        assert!(f.select(&a, false).is_some());
        assert!(f.select(&b, false).is_none());
        let mut f = compile(&[("since", "a:1")]).unwrap();
        f.resolve(|_| -> Result<_, ()> { Ok(DateTime::from_timestamp(1, 0)) })
            .unwrap();
        assert!(f.select(&a, false).is_none());
        assert!(f.select(&b, false).is_some());
        let mut f = compile(&[("since", "gone")]).unwrap();
        assert_eq!(f.resolve(|_| Err("no such image")), Err("no such image"));
    }
}
