//! The page shell every panel page shares: head (stylesheet and script served as files:
//! the CSP allows no inline script or style), skip link, navigation with the signed-in
//! token, organisation and sign-out, and the main landmark.

use maud::{DOCTYPE, Markup, html};

use super::session::UiSession;
use crate::management::model::Role;

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Catalogue of connectors.
    Catalogue,
    /// Plugins.
    Plugins,
    /// Organisation picker.
    Orgs,
    /// No navigation (sign-in).
    None,
}

/// A role for people.
pub fn role_label(r: Role) -> &'static str {
    match r {
        Role::Viewer => "viewer",
        Role::Operator => "operator",
        Role::Admin => "admin",
    }
}

/// The hidden CSRF field of every state-changing form.
pub fn csrf_field(s: &UiSession) -> Markup {
    html! { input type="hidden" name="_csrf" value=(s.csrf); }
}

/// A whole page.
pub fn page(title: &str, session: Option<&UiSession>, section: Section, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Portcullis" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "Portcullis" }
                    @if let Some(s) = session {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/" aria-current=[(section == Section::Catalogue).then_some("page")] { "Catalogue" } }
                                li { a href="/plugins" aria-current=[(section == Section::Plugins).then_some("page")] { "Plugins" } }
                                @if s.principal.is_platform_admin() {
                                    li { a href="/orgs" aria-current=[(section == Section::Orgs).then_some("page")] { "Organisations" } }
                                }
                            }
                        }
                        div.who {
                            span {
                                (s.principal.name) " · " (role_label(s.principal.role))
                                @if let Some(o) = &s.org { " · org " strong { (o) } }
                            }
                            form method="post" action="/logout" {
                                (csrf_field(s))
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A notice above the content (`role="status"` so screen readers announce it).
pub fn notice(kind: &str, text: &str) -> Markup {
    html! { p class={"notice " (kind)} role="status" { (text) } }
}

/// An RFC 3339 instant for people ("2026-11-23 19:06:53 UTC") in a `<time>` element that
/// keeps the exact value; text that is not RFC 3339 is shown as it is.
pub fn when(t: &str) -> Markup {
    let shown = chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| {
            d.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_else(|_| t.to_string());
    html! { time datetime=(t) { (shown) } }
}
