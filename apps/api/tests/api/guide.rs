//! The project's own docs stay true: `docs/api-guide.md` lists every route the server
//! serves and every problem code it can answer with (and nothing the contract does not
//! promise), and the README and `docs/` link only files a clone has.

use commerce_api::error::ProblemCode;
use commerce_api::routes;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn guide() -> String {
    read(&repo().join("docs/api-guide.md"))
}

/// Path parameters unnamed: `/orders/{order_id}` and `/orders/{id}` are one route.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// The routes of a markdown table's first column: ``| `METHOD /path?query` | ...``.
fn table_routes(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter_map(|route| route.split_once(' '))
        .filter(|(method, _)| ["GET", "POST", "PUT", "DELETE", "PATCH"].contains(method))
        .map(|(method, path)| {
            let path = path.split('?').next().unwrap_or(path);
            (method.to_string(), shape(path))
        })
        .collect()
}

fn served() -> BTreeSet<(String, String)> {
    let v1 = routes::v1_routes()
        .into_iter()
        .map(|(m, p, _)| (m.as_str().to_string(), shape(&format!("/api/v1{p}"))));
    let health = routes::health::routes()
        .into_iter()
        .map(|(m, p, _)| (m.as_str().to_string(), shape(p)));
    v1.chain(health).collect()
}

// Invariant: a front-end developer reading the guide finds every route the server serves.
#[test]
fn the_guide_lists_every_served_route() {
    let listed = table_routes(&guide());
    let missing: Vec<_> = served().difference(&listed).cloned().collect();
    assert!(
        missing.is_empty(),
        "docs/api-guide.md does not list {missing:?} (add it to \"Every route\")"
    );
}

// Invariant: the guide promises no route the contract does not have (checked when the
// contract, API.md, is next to the workspace).
#[test]
fn the_guide_lists_no_route_the_contract_lacks() {
    let Ok(contract) = std::fs::read_to_string(repo().join("../shared/spec/API.md")) else {
        eprintln!("API.md not found; the guide is checked against the served routes only");
        return;
    };
    let promised = table_routes(&contract);
    let extra: Vec<_> = table_routes(&guide())
        .difference(&promised)
        .cloned()
        .collect();
    assert!(
        extra.is_empty(),
        "the guide lists {extra:?}, API.md does not"
    );
}

// Invariant: every code the server can answer with is explained in the guide.
#[test]
fn the_guide_explains_every_problem_code() {
    let text = guide();
    for code in ProblemCode::ALL {
        assert!(
            text.contains(&format!("| `{}` |", code.as_str())),
            "docs/api-guide.md has no row for {} in its codes table",
            code.as_str()
        );
    }
    for reason in coupon::Unusable::ALL {
        assert!(
            text.contains(&format!("| `{}` |", reason.code())),
            "docs/api-guide.md does not explain the reason {}",
            reason.code()
        );
    }
}

/// Markdown link targets `](target)` of a text.
fn links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|t| t.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

// Invariant: the README and docs link only files inside the repository that exist, so
// a clone has everything they point to (no ../shared).
#[test]
fn readme_and_docs_link_only_files_of_the_repository() {
    let root = repo();
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("docs/").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    let mut checked = 0;
    for file in &files {
        let text = read(file);
        assert!(
            !text.contains("../shared/") || file.ends_with("docs/architecture.md"),
            "{} points outside the repository (../shared)",
            file.display()
        );
        for target in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let local = target.split('#').next().unwrap_or_default();
            if local.is_empty() {
                continue;
            }
            let resolved = file
                .parent()
                .expect("a file's directory")
                .join(local)
                .canonicalize()
                .unwrap_or_else(|_| panic!("{}: {target} does not exist", file.display()));
            assert!(
                resolved.starts_with(&root),
                "{}: {target} is outside the repository",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} links found");
}

#[test]
fn table_parsing_finds_routes() {
    let text = "| `GET /api/v1/products/popular?days=3` | none |\n\
                | `POST /api/v1/orders/{order_id}/cancel` | user |\n\
                | `METHOD_NOT_ALLOWED` | x |\n| 404 | `NOT_FOUND` |";
    let expected: BTreeSet<(String, String)> = [
        ("GET".to_string(), "/api/v1/products/popular".to_string()),
        ("POST".to_string(), "/api/v1/orders/{}/cancel".to_string()),
    ]
    .into();
    assert_eq!(table_routes(text), expected);
    assert_eq!(
        links("see [a](docs/a.md#x) and [b](https://x)"),
        ["docs/a.md#x", "https://x"]
    );
}
