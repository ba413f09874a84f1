//! GraphQL for studies and research consent: admins register studies,
//! service users and providers enrol and withdraw themselves, researchers
//! see the studies they belong to.

use std::collections::HashMap;

use async_graphql::{Context, Object, SimpleObject};
use chrono::NaiveDate;
use domain::study::{
    enrolment_id, spans, EnrolmentCommand, EnrolmentEvent, ParticipantRole, StudyCommand, StudyInfo,
};
use uuid::Uuid;

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::schema::{caller, now, request, service};
use crate::service::{CommandOutcome, Service};

/// A study as the caller may see it.
#[derive(SimpleObject, Clone)]
pub struct StudyView {
    /// The study's id.
    pub study_id: Uuid,
    /// Its title.
    pub title: String,
    /// The protocol id of its ethics approval.
    pub protocol_id: String,
    /// First day of the study period.
    pub starts_on: NaiveDate,
    /// Last day of the study period (enrolment closes after it).
    pub ends_on: NaiveDate,
    /// The researchers' account ids; only for admins and the study's researchers.
    pub researchers: Option<Vec<Uuid>>,
    /// How many people are enrolled now; only for admins and the study's researchers.
    pub enrolled_now: Option<i32>,
    /// Whether the caller is enrolled now; null for those who cannot enrol.
    pub me_enrolled: Option<bool>,
}

/// Enrolment spans per (study, participant), from the events in order.
pub(crate) fn enrolments(events: &[EnrolmentEvent]) -> HashMap<(Uuid, Uuid), Vec<&EnrolmentEvent>> {
    let mut by: HashMap<(Uuid, Uuid), Vec<&EnrolmentEvent>> = HashMap::new();
    for e in events {
        by.entry(e.parties()).or_default().push(e);
    }
    by
}

fn participant_role(caller: &Caller) -> Option<ParticipantRole> {
    match caller.role {
        Role::ServiceUser => Some(ParticipantRole::ServiceUser),
        Role::Provider => Some(ParticipantRole::Provider),
        _ => None,
    }
}

/// The study `study_id` of the caller's organisation, or NOT_FOUND.
async fn study_of(svc: &Service, caller: &Caller, study_id: Uuid) -> Result<StudyInfo, ApiError> {
    svc.studies()
        .await?
        .into_iter()
        .find(|s| s.study_id == study_id && s.organisation == caller.organisation)
        .ok_or_else(|| ApiError::NotFound("no such study".into()))
}

/// Reads of studies.
#[derive(Default)]
pub struct ResearchQuery;

#[Object]
impl ResearchQuery {
    /// Studies of the caller's organisation: an admin sees every one, a
    /// researcher those they belong to, a service user or provider every one
    /// still open for enrolment or that they are enrolled in. Others get FORBIDDEN.
    async fn studies(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<StudyView>> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        if matches!(caller.role, Role::Auditor | Role::Moderator) {
            return Err(ApiError::Forbidden(
                "studies are for admins, researchers and participants".into(),
            )
            .into());
        }
        let events = svc.enrolment_events().await?;
        let by = enrolments(&events);
        let today = now().date_naive();
        let mut out = Vec::new();
        for study in svc.studies().await? {
            if study.organisation != caller.organisation {
                continue;
            }
            let member = caller.role == Role::Admin
                || (caller.role == Role::Researcher && study.researchers.contains(&caller.subject));
            let me = participant_role(&caller).map(|_| {
                by.get(&(study.study_id, caller.subject)).is_some_and(|es| {
                    spans(es.iter().copied())
                        .last()
                        .is_some_and(|s| s.1.is_none())
                })
            });
            let visible = member || me.is_some_and(|enrolled| enrolled || today <= study.ends_on);
            if !visible {
                continue;
            }
            let enrolled_now = member.then(|| {
                by.iter()
                    .filter(|((s, _), es)| {
                        *s == study.study_id
                            && spans(es.iter().copied())
                                .last()
                                .is_some_and(|s| s.1.is_none())
                    })
                    .count() as i32
            });
            out.push(StudyView {
                study_id: study.study_id,
                title: study.title,
                protocol_id: study.protocol_id,
                starts_on: study.starts_on,
                ends_on: study.ends_on,
                researchers: member.then_some(study.researchers),
                enrolled_now,
                me_enrolled: me,
            });
        }
        Ok(out)
    }
}

/// Changes to studies and consent.
#[derive(Default)]
pub struct ResearchMutation;

#[Object]
impl ResearchMutation {
    /// Registers a study in the caller's organisation (admins only): `title`
    /// 1-200 characters, `protocolId` 1-64, a period of at most ten years, and
    /// 1-50 researchers by account id. Its id comes back as `createdId`.
    #[allow(clippy::too_many_arguments)]
    async fn register_study(
        &self,
        ctx: &Context<'_>,
        title: String,
        protocol_id: String,
        starts_on: NaiveDate,
        ends_on: NaiveDate,
        researchers: Vec<Uuid>,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CommandOutcome> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        if caller.role != Role::Admin {
            return Err(ApiError::Forbidden("only an admin registers studies".into()).into());
        }
        let study_id = Uuid::new_v4();
        let command = StudyCommand::Register {
            info: StudyInfo {
                study_id,
                organisation: caller.organisation.clone(),
                title,
                protocol_id,
                starts_on,
                ends_on,
                researchers,
            },
            at: now(),
        };
        Ok(svc
            .run_command::<domain::study::Study>(
                &caller,
                &request(ctx).request_id,
                idempotency_key,
                &study_id.to_string(),
                command,
            )
            .await?)
    }

    /// Enrols the caller (a service user or provider) in a study of their
    /// organisation that has not ended: from now on their use of the portal
    /// counts in its outputs, for as long as they stay enrolled.
    async fn enrol_in_study(
        &self,
        ctx: &Context<'_>,
        study_id: Uuid,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CommandOutcome> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        let Some(role) = participant_role(&caller) else {
            return Err(ApiError::Forbidden(
                "only service users and providers take part in studies".into(),
            )
            .into());
        };
        let study = study_of(svc, &caller, study_id).await?;
        if now().date_naive() > study.ends_on {
            return Err(ApiError::BadInput("the study has ended".into()).into());
        }
        let command = EnrolmentCommand::Enrol {
            study_id,
            participant_id: caller.subject,
            role,
            at: now(),
        };
        let outcome = svc
            .run_command::<domain::study::Enrolment>(
                &caller,
                &request(ctx).request_id,
                idempotency_key,
                &enrolment_id(study_id, caller.subject).to_string(),
                command,
            )
            .await?;
        svc.usage.refresh().await?;
        Ok(outcome)
    }

    /// Withdraws the caller from a study: they leave every export made from
    /// now on, including exports of earlier dates.
    async fn withdraw_from_study(
        &self,
        ctx: &Context<'_>,
        study_id: Uuid,
        idempotency_key: Option<String>,
    ) -> async_graphql::Result<CommandOutcome> {
        let (svc, caller) = (service(ctx), caller(ctx)?);
        if participant_role(&caller).is_none() {
            return Err(ApiError::Forbidden(
                "only service users and providers take part in studies".into(),
            )
            .into());
        }
        study_of(svc, &caller, study_id).await?;
        let command = EnrolmentCommand::Withdraw {
            study_id,
            participant_id: caller.subject,
            at: now(),
        };
        let outcome = svc
            .run_command::<domain::study::Enrolment>(
                &caller,
                &request(ctx).request_id,
                idempotency_key,
                &enrolment_id(study_id, caller.subject).to_string(),
                command,
            )
            .await?;
        svc.usage.refresh().await?;
        Ok(outcome)
    }
}
