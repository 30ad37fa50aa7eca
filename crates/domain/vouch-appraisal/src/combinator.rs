//! Rule combinators that fail closed: they refuse to be built empty (STYLE 9, after
//! sigstore-rs `AllOf::new`), so "no rule" can never mean "everything passes".
//!
//! A check is any `Fn(&T) -> Result<(), Vec<F>>`: `Ok` passes, `Err` carries the failures
//! (an empty failure list still fails).

/// Building a combinator from no items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a rule combinator needs at least one rule: an empty one would accept everything")]
pub struct EmptyCombinator;

/// The one place that refuses an empty rule list.
fn non_empty<T>(items: Vec<T>) -> Result<Vec<T>, EmptyCombinator> {
    if items.is_empty() {
        Err(EmptyCombinator)
    } else {
        Ok(items)
    }
}

/// Passes when every item passes; reports the failures of all that fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllOf<T> {
    items: Vec<T>,
}

impl<T> AllOf<T> {
    /// Refuses an empty list.
    pub fn new(items: Vec<T>) -> Result<Self, EmptyCombinator> {
        non_empty(items).map(|items| Self { items })
    }

    /// The items (never empty).
    #[must_use]
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Evaluate every item (no short-circuit, so every failure is reported).
    pub fn evaluate<F>(
        &self,
        mut check: impl FnMut(&T) -> Result<(), Vec<F>>,
    ) -> Result<(), Vec<F>> {
        let mut failures = Vec::new();
        let mut failed = false;
        for item in &self.items {
            if let Err(f) = check(item) {
                failed = true;
                failures.extend(f);
            }
        }
        if failed { Err(failures) } else { Ok(()) }
    }
}

/// Passes when at least one item passes; otherwise reports every item's failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnyOf<T> {
    items: Vec<T>,
}

impl<T> AnyOf<T> {
    /// Refuses an empty list.
    pub fn new(items: Vec<T>) -> Result<Self, EmptyCombinator> {
        non_empty(items).map(|items| Self { items })
    }

    /// The items (never empty).
    #[must_use]
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Evaluate until one item passes.
    pub fn evaluate<F>(
        &self,
        mut check: impl FnMut(&T) -> Result<(), Vec<F>>,
    ) -> Result<(), Vec<F>> {
        let mut failures = Vec::new();
        for item in &self.items {
            match check(item) {
                Ok(()) => return Ok(()),
                Err(f) => failures.extend(f),
            }
        }
        Err(failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pass: &bool) -> Result<(), Vec<&'static str>> {
        if *pass { Ok(()) } else { Err(vec!["failed"]) }
    }

    #[test]
    fn all_of_truth_table_including_empty() {
        assert_eq!(AllOf::<bool>::new(vec![]), Err(EmptyCombinator));
        let cases: [(&[bool], bool, usize); 6] = [
            (&[true], true, 0),
            (&[false], false, 1),
            (&[true, true], true, 0),
            (&[true, false], false, 1),
            (&[false, true], false, 1),
            (&[false, false], false, 2),
        ];
        for (items, passes, failures) in cases {
            let r = AllOf::new(items.to_vec()).unwrap().evaluate(check);
            assert_eq!(r.is_ok(), passes, "{items:?}");
            assert_eq!(r.err().map_or(0, |f| f.len()), failures, "{items:?}");
        }
    }

    #[test]
    fn any_of_truth_table_including_empty() {
        assert_eq!(AnyOf::<bool>::new(vec![]), Err(EmptyCombinator));
        let cases: [(&[bool], bool); 6] = [
            (&[true], true),
            (&[false], false),
            (&[true, true], true),
            (&[true, false], true),
            (&[false, true], true),
            (&[false, false], false),
        ];
        for (items, passes) in cases {
            let r = AnyOf::new(items.to_vec()).unwrap().evaluate(check);
            assert_eq!(r.is_ok(), passes, "{items:?}");
        }
    }

    #[test]
    fn a_failure_without_detail_still_fails() {
        let all = AllOf::new(vec![()]).unwrap();
        assert!(all.evaluate(|()| Err::<(), Vec<()>>(vec![])).is_err());
        let any = AnyOf::new(vec![()]).unwrap();
        assert!(any.evaluate(|()| Err::<(), Vec<()>>(vec![])).is_err());
    }
}
