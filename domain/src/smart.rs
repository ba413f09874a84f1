//! SMART on FHIR v2 scopes: what a token's `scope` lets its holder do
//! through the FHIR facade, on top of (never instead of) the consent rules
//! of [`crate::access`].
//!
//! A scope is `context/Resource.permissions`: `patient/Goal.rs`,
//! `user/*.rs`, `system/AuditEvent.s`. The facade only reads, so only the
//! `r` (read) and `s` (search) permissions mean anything; SMART v1's
//! `.read` is taken as `.rs`. A scope with a query (`patient/Goal.rs?...`,
//! SMART v2's finer scopes) narrows what it grants in a way the facade does
//! not check, so it grants nothing here (fail closed). `patient/` scopes
//! reach the token's patient context only: for a service user, themselves;
//! for anyone else, the patient the token names (SMART's launch context),
//! and nobody when it names none. `user/` and `system/` scopes reach every
//! patient the caller's role and consent let them read.

/// The FHIR resource types the facade serves. Which reader sees which is
/// not decided here: the facade answers through the GraphQL API's own rules
/// (`crate::access`), and scopes only narrow them.
pub const RESOURCES: [&str; 7] = [
    "Patient",
    "Goal",
    "CarePlan",
    "MedicationStatement",
    "Consent",
    "Communication",
    "AuditEvent",
];

/// Whose data a request is about, as the scopes' contexts see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// The token's patient context: the caller themselves (a service user),
    /// or the patient the token names.
    LaunchPatient,
    /// Any other patient.
    AnyPatient,
}

/// What the request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    /// `GET [type]/[id]`.
    Read,
    /// `GET [type]?...`.
    Search,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Context {
    Patient,
    User,
    System,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Scope {
    context: Context,
    /// `None` for `*`.
    resource: Option<String>,
    read: bool,
    search: bool,
}

/// The SMART scopes of a token that the facade understands (others, such
/// as `openid` or `launch/patient`, are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

/// Longest scope string read; a longer one grants nothing.
pub const SCOPE_MAX_BYTES: usize = 4096;

impl Scopes {
    /// The scopes of a token's space-separated `scope` claim.
    pub fn parse(claim: &str) -> Scopes {
        if claim.len() > SCOPE_MAX_BYTES {
            return Scopes::default();
        }
        Scopes(claim.split_ascii_whitespace().filter_map(scope).collect())
    }

    /// True when the claim holds no resource scope the facade understands
    /// (`openid` alone, say): such a token is not a SMART app's.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the scopes let the holder do `interaction` on `resource`
    /// about `whose` data.
    pub fn allow(&self, resource: &str, interaction: Interaction, whose: Whose) -> bool {
        self.0.iter().any(|s| {
            let reaches = match s.context {
                Context::Patient => whose == Whose::LaunchPatient,
                Context::User | Context::System => true,
            };
            let permits = match interaction {
                Interaction::Read => s.read,
                Interaction::Search => s.search,
            };
            reaches && permits && s.resource.as_deref().is_none_or(|r| r == resource)
        })
    }
}

/// Whether a `scope` claim names any SMART resource scope at all (`patient/`,
/// `user/` or `system/` words, understood here or not), or is too long to
/// read: such a token was made for a FHIR app, and only the FHIR facade
/// takes it.
pub fn names_resources(claim: &str) -> bool {
    claim.len() > SCOPE_MAX_BYTES
        || claim.split_ascii_whitespace().any(|word| {
            ["patient/", "user/", "system/"]
                .iter()
                .any(|context| word.starts_with(context))
        })
}

/// One scope, if it is a resource scope the facade understands.
fn scope(text: &str) -> Option<Scope> {
    let (context, rest) = text.split_once('/')?;
    let context = match context {
        "patient" => Context::Patient,
        "user" => Context::User,
        "system" => Context::System,
        _ => return None,
    };
    // A v2 scope with a query narrows in a way not checked here.
    if rest.contains('?') {
        return None;
    }
    let (resource, permissions) = rest.rsplit_once('.')?;
    let resource = match resource {
        "*" => None,
        name if RESOURCES.contains(&name) => Some(name.to_string()),
        _ => return None,
    };
    let (read, search) = match permissions {
        // SMART v1.
        "read" | "*" => (true, true),
        "write" => (false, false),
        // SMART v2: a subset of `cruds`, in that order.
        v2 => {
            let order = "cruds";
            let mut last = None;
            for c in v2.chars() {
                let at = order.find(c)?;
                if last.is_some_and(|l| at <= l) {
                    return None;
                }
                last = Some(at);
            }
            if v2.is_empty() {
                return None;
            }
            (v2.contains('r'), v2.contains('s'))
        }
    };
    Some(Scope {
        context,
        resource,
        read,
        search,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Interaction::{Read, Search};
    use Whose::{AnyPatient, LaunchPatient};

    #[test]
    fn each_scope_grants_what_it_says_and_no_more() {
        // (scope claim, resource, interaction, whose, allowed)
        let table: &[(&str, &str, Interaction, Whose, bool)] = &[
            ("patient/Goal.rs", "Goal", Read, LaunchPatient, true),
            ("patient/Goal.rs", "Goal", Search, LaunchPatient, true),
            ("patient/Goal.rs", "Goal", Read, AnyPatient, false),
            ("patient/Goal.rs", "CarePlan", Read, LaunchPatient, false),
            ("patient/Goal.r", "Goal", Search, LaunchPatient, false),
            ("patient/Goal.s", "Goal", Read, LaunchPatient, false),
            ("patient/Goal.s", "Goal", Search, LaunchPatient, true),
            ("user/Goal.rs", "Goal", Read, AnyPatient, true),
            ("system/Goal.rs", "Goal", Search, AnyPatient, true),
            ("user/*.rs", "AuditEvent", Search, AnyPatient, true),
            ("user/*.cruds", "Consent", Read, AnyPatient, true),
            ("user/*.cud", "Consent", Read, AnyPatient, false),
            // SMART v1.
            ("user/Goal.read", "Goal", Search, AnyPatient, true),
            ("patient/*.read", "Patient", Read, LaunchPatient, true),
            ("user/Goal.write", "Goal", Read, AnyPatient, false),
            ("user/Goal.*", "Goal", Read, AnyPatient, true),
            // Not scopes of resources this facade serves, or malformed.
            ("user/Observation.rs", "Goal", Read, AnyPatient, false),
            ("user/Goal.sr", "Goal", Read, AnyPatient, false),
            ("user/Goal.rrs", "Goal", Read, AnyPatient, false),
            ("user/Goal.", "Goal", Read, AnyPatient, false),
            ("user/Goal.x", "Goal", Read, AnyPatient, false),
            ("admin/Goal.rs", "Goal", Read, AnyPatient, false),
            (
                "user/Goal.rs?lifecycle-status=active",
                "Goal",
                Read,
                AnyPatient,
                false,
            ),
            (
                "openid fhirUser launch/patient",
                "Goal",
                Read,
                LaunchPatient,
                false,
            ),
            ("", "Goal", Read, LaunchPatient, false),
            // Several: any one suffices.
            (
                "openid patient/Goal.rs user/Consent.rs",
                "Consent",
                Search,
                AnyPatient,
                true,
            ),
            (
                "openid patient/Goal.rs user/Consent.rs",
                "Goal",
                Search,
                AnyPatient,
                false,
            ),
        ];
        for (claim, resource, interaction, whose, allowed) in table {
            assert_eq!(
                Scopes::parse(claim).allow(resource, *interaction, *whose),
                *allowed,
                "{claim} {resource} {interaction:?} {whose:?}"
            );
        }
    }

    #[test]
    fn any_resource_scope_marks_a_fhir_apps_token() {
        for claim in [
            "user/*.rs",
            "openid patient/Observation.rs",
            "user/Goal.rs?category=x",
            "system/Goal.sr",
            &"x".repeat(SCOPE_MAX_BYTES + 1),
        ] {
            assert!(names_resources(claim), "{claim}");
            // Some of them grant nothing here, yet the token is an app's.
        }
        for claim in ["", "openid profile email", "offline_access launch/patient"] {
            assert!(!names_resources(claim), "{claim}");
        }
    }

    #[test]
    fn an_oversized_claim_grants_nothing() {
        let claim = "user/*.rs ".repeat(SCOPE_MAX_BYTES / 10 + 1);
        assert!(Scopes::parse(&claim).is_empty());
        assert!(!Scopes::parse("user/*.rs").is_empty());
    }
}
