//! Git helpers of the tests (git2), shared by the rlcr tests and the root tests
//! (`tests/common` includes this file).

use git2::{Repository, Signature};
use std::path::Path;

/// `git init` at `dir` with the initial branch `main`.
pub fn init_main(dir: &Path) -> Repository {
    let mut opts = git2::RepositoryInitOptions::new();
    opts.initial_head("main");
    Repository::init_opts(dir, &opts).unwrap()
}

/// Commit every file in the working tree (like `git add -A && git commit`); the commit id.
pub fn commit_all(repo: &Repository, message: &str) -> String {
    let sig = Signature::now("Test", "test@example.com").unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"].iter(), git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
        .to_string()
}
