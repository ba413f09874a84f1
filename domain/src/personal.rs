//! Which fields of each stored event are personal data and whose they are
//! (issue 18).
//!
//! Every field of every event type is declared, next to the event type, as
//! either personal (sealed with the key of the person it belongs to, and
//! blanked to its `erased` value once that key is destroyed) or clear (kept
//! as stored: ids, times, kinds, the numbers rules and research work with).
//! A field is named by its path in the event's payload: `title`, or
//! `terms.notes` for a field inside an object. `crate::declarations`
//! gathers every event type's declarations; its test traces every variant of
//! every event type and fails when a field is neither.
//!
//! The rule of ownership: a text belongs to the person who wrote it (the
//! event's actor, or the author the event names), except where the event is
//! about someone else by name (a silence names the silenced member, an
//! access record its subject).

/// Whose key seals an event's personal fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The aggregate's id is the person's id (a portal, a provider profile).
    Aggregate,
    /// The person the event's metadata names as its actor: they wrote it.
    Actor,
    /// The person whose id this field of the event holds; the actor when the
    /// field is absent or null.
    Field(&'static str),
    /// The person whose id this field holds; when it is null the service
    /// wrote the text itself (a post hidden by its flags' score), and it
    /// stays clear.
    Writer(&'static str),
}

/// A personal field and the value it reads as once erased (JSON text, of
/// the field's type: an empty text, an empty list, `null` for an option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Personal {
    pub path: &'static str,
    pub erased: &'static str,
}

/// A personal text, read as `""` once erased.
pub const fn text(path: &'static str) -> Personal {
    Personal {
        path,
        erased: "\"\"",
    }
}

/// A personal optional value, read as `null` once erased.
pub const fn optional(path: &'static str) -> Personal {
    Personal {
        path,
        erased: "null",
    }
}

/// A personal value of another type, read as `erased` (JSON) once erased.
pub const fn other(path: &'static str, erased: &'static str) -> Personal {
    Personal { path, erased }
}

/// One event type's declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    pub event_type: &'static str,
    pub owner: Owner,
    pub personal: &'static [Personal],
    pub clear: &'static [&'static str],
}

impl Declared {
    /// An event type with no personal field.
    pub const fn clear(event_type: &'static str, clear: &'static [&'static str]) -> Self {
        Declared {
            event_type,
            owner: Owner::Actor,
            personal: &[],
            clear,
        }
    }
}

/// The declarations of one aggregate type's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declarations {
    pub aggregate_type: &'static str,
    pub events: &'static [Declared],
}

/// The object holding an event's fields within its payload: the variant's
/// object for an enum's event (`{"GoalSet": {...}}`), else the payload.
pub fn fields_of<'a>(
    payload: &'a mut serde_json::Value,
    event_type: &str,
) -> Option<&'a mut serde_json::Map<String, serde_json::Value>> {
    let root = payload.as_object_mut()?;
    let wrapped = root.len() == 1 && root.get(event_type).is_some_and(|v| v.is_object());
    if wrapped {
        root.get_mut(event_type)?.as_object_mut()
    } else {
        Some(root)
    }
}

/// Takes the value at `path` (`a` or `a.b`) out of `fields`.
pub fn take(
    fields: &mut serde_json::Map<String, serde_json::Value>,
    path: &str,
) -> Option<serde_json::Value> {
    match path.split_once('.') {
        None => fields.remove(path),
        Some((head, rest)) => take(fields.get_mut(head)?.as_object_mut()?, rest),
    }
}

/// Puts `value` at `path` in `fields` (the objects on the way must exist).
pub fn put(
    fields: &mut serde_json::Map<String, serde_json::Value>,
    path: &str,
    value: serde_json::Value,
) {
    match path.split_once('.') {
        None => {
            fields.insert(path.to_string(), value);
        }
        Some((head, rest)) => {
            if let Some(inner) = fields.get_mut(head).and_then(|v| v.as_object_mut()) {
                put(inner, rest, value);
            }
        }
    }
}

/// The fields of an event's object that its declaration names neither
/// personal nor clear (paths, as declared). Empty for a well-declared event.
pub fn undeclared(
    declared: &Declared,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Vec<String> {
    fn walk(
        declared: &Declared,
        prefix: &str,
        fields: &serde_json::Map<String, serde_json::Value>,
        out: &mut Vec<String>,
    ) {
        for (key, value) in fields {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            let named = declared.clear.contains(&path.as_str())
                || declared.personal.iter().any(|p| p.path == path);
            if named {
                continue;
            }
            let inner = format!("{path}.");
            let below = declared.clear.iter().any(|c| c.starts_with(&inner))
                || declared.personal.iter().any(|p| p.path.starts_with(&inner));
            match value.as_object() {
                Some(object) if below => walk(declared, &path, object, out),
                _ => out.push(path),
            }
        }
    }
    let mut out = Vec::new();
    walk(declared, "", fields, &mut out);
    out
}
