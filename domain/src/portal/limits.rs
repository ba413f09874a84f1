//! Limits on portal input, stated once so the schema descriptions can quote
//! them, and the life domains every portal starts with.

/// Longest goal or activity title, in characters.
pub const TITLE_MAX: usize = 200;
/// Longest goal description, status note or reason, in characters.
pub const NOTE_MAX: usize = 2000;
/// Longest life-domain display name, in characters.
pub const DOMAIN_NAME_MAX: usize = 60;
/// Longest life-domain key, in characters (`a-z`, `0-9`, `_`).
pub const DOMAIN_KEY_MAX: usize = 40;
/// Most custom life domains per portal.
pub const CUSTOM_DOMAINS_MAX: usize = 30;
/// Most goals (of any state) per portal.
pub const GOALS_MAX: usize = 1000;
/// Most activities per goal.
pub const ACTIVITIES_PER_GOAL_MAX: usize = 200;
/// Lowest and highest status score.
pub const SCORE_MIN: i32 = 1;
/// Highest status score.
pub const SCORE_MAX: i32 = 10;
/// Longest medication name, in characters.
pub const MED_NAME_MAX: usize = 100;
/// Longest dose, in characters.
pub const MED_DOSE_MAX: usize = 100;
/// Longest schedule, in characters.
pub const MED_SCHEDULE_MAX: usize = 200;
/// Longest purpose of a medication, in characters.
pub const MED_PURPOSE_MAX: usize = 500;
/// Most medications (of any state) per portal.
pub const MEDICATIONS_MAX: usize = 300;
/// Longest name of a person (network map, prescriber, crisis contact), in characters.
pub const PERSON_NAME_MAX: usize = 100;
/// Most people (removed ones included) on a network map.
pub const PEOPLE_MAX: usize = 300;
/// Lowest closeness of a person.
pub const CLOSENESS_MIN: i32 = 1;
/// Highest closeness of a person.
pub const CLOSENESS_MAX: i32 = 5;
/// Most items in each list of the crisis plan.
pub const PLAN_LIST_MAX: usize = 30;
/// Longest item of a crisis-plan list, or a contact's "when to call", in characters.
pub const PLAN_ITEM_MAX: usize = 500;
/// Most contacts in the crisis plan.
pub const PLAN_CONTACTS_MAX: usize = 20;
/// Longest phone number, in characters.
pub const PHONE_MAX: usize = 30;
/// Longest "own words" of the crisis plan, in characters.
pub const OWN_WORDS_MAX: usize = 4000;
/// Lowest exercise self-rating.
pub const RATING_MIN: i32 = 1;
/// Highest exercise self-rating.
pub const RATING_MAX: i32 = 5;
/// Longest exercise title, in characters.
pub const EXERCISE_TITLE_MAX: usize = 100;
/// Most exercises an organisation adds to the default catalogue.
pub const EXERCISES_MAX: usize = 200;
/// The default life domains every portal starts with: (key, display name).
pub const DEFAULT_DOMAINS: &[(&str, &str)] = &[
    ("employment", "Employment"),
    ("education", "Education"),
    ("housing", "Housing"),
    ("economy", "Economy"),
    ("physical_health", "Physical health"),
    ("mental_health", "Mental health"),
    ("social_network", "Social network"),
    ("leisure", "Leisure"),
];

#[cfg(test)]
mod tests {
    use super::DEFAULT_DOMAINS;

    /// The README lists the default life domains by key; it must say what
    /// the code does.
    #[test]
    fn the_readme_lists_the_default_domains() {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("Every portal starts with")
            .expect("the README lists the default domains");
        let list = &readme[start..start + 400];
        for (key, _) in DEFAULT_DOMAINS {
            assert!(
                list.contains(&format!("`{key}`")),
                "{key} missing from the README"
            );
        }
        assert!(list.contains(&format!("{} life domains", "eight")));
        assert_eq!(DEFAULT_DOMAINS.len(), 8);
    }
}
