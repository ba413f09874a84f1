// A tiny client over the generated types. `tsc --noEmit` compiling this file
// proves the generated operation types are usable; the @ts-expect-error lines
// prove they are strict (each must be an error, or tsc fails).
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import {
  ControlPanelDocument,
  ConversationsDocument,
  LiveUpdatesDocument,
  MessagesDocument,
  NodeDocument,
  SetGoalDocument,
  type ControlPanelQuery,
  type GoalState,
  type LiveUpdatesSubscription,
} from "./generated/operations";

async function request<R, V>(
  url: string,
  token: string,
  document: TypedDocumentNode<R, V>,
  variables: V,
): Promise<R> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const body = (await response.json()) as { data?: R; errors?: { message: string }[] };
  if (body.errors?.length || body.data === undefined) {
    throw new Error(body.errors?.map((e) => e.message).join("; ") ?? "no data");
  }
  return body.data;
}

/** Percent done per active goal title, for the home screen. */
export function goalProgress(panel: ControlPanelQuery): Map<string, number> {
  const out = new Map<string, number>();
  for (const domain of panel.controlPanel.domains) {
    for (const goal of domain.activeGoals) {
      const active: GoalState = goal.state;
      if (active === "ACTIVE") out.set(goal.title, goal.progress.percentDone);
    }
  }
  return out;
}

export async function example(url: string, token: string): Promise<void> {
  const panel = await request(url, token, ControlPanelDocument, {});
  const latest: number | undefined = panel.controlPanel.domains[0]?.latestStatus?.score;
  console.log(goalProgress(panel), latest);

  const outcome = await request(url, token, SetGoalDocument, {
    domain: "housing",
    title: "Find a flat",
    idempotencyKey: "goal-1",
  });
  // The payload carries the goal; versions are BigInt strings.
  const goalId: string | undefined = outcome.setGoal.goal?.id;
  const version: string = outcome.setGoal.version;
  console.log(goalId, version, outcome.setGoal.caughtUp);
  if (goalId !== undefined) {
    const again = await request(url, token, NodeDocument, { id: goalId });
    if (again.node.__typename === "Goal") console.log(again.node.title, again.node.state);
  }

  const list = await request(url, token, ConversationsDocument, {});
  const unread: number = list.conversations.unreadTotal;
  const page = list.conversations.conversations;
  console.log(unread, page.totalCount, page.edges.map((e) => e.node.subject));
  // On to the next page from the end cursor.
  if (page.pageInfo.hasNextPage && page.pageInfo.endCursor) {
    await request(url, token, ConversationsDocument, { first: 20, after: page.pageInfo.endCursor });
  }
  // A chat client: the newest 30 messages of the first thread.
  const first = page.edges[0]?.node.id;
  if (first !== undefined) {
    const thread = await request(url, token, MessagesDocument, { id: first, last: 30 });
    const bodies: string[] = thread.conversation.messages.nodes.map((m) => m.body);
    console.log(bodies, thread.conversation.messages.pageInfo.hasPreviousPage);
  }

  // @ts-expect-error `title` is a required variable of SetGoal.
  await request(url, token, SetGoalDocument, { domain: "housing" });
  // @ts-expect-error `percentDone` is a number, not a string.
  const wrong: string = panel.controlPanel.domains[0]!.activeGoals[0]!.progress.percentDone;
  console.log(wrong);
}

/** What a live update means for the UI; exhaustive over `UpdateKind`. */
export function describe(update: LiveUpdatesSubscription["liveUpdates"]): string {
  switch (update.kind) {
    case "SUBSCRIBED":
      return "live";
    case "MESSAGE":
      return `message in ${update.conversationId ?? "?"}: ${update.body ?? ""}`;
    case "READ_RECEIPT":
      return `read up to ${update.messageId ?? "?"}`;
    case "AGREEMENT":
      return `agreement ${update.change ?? "?"} v${update.version ?? "?"}`;
    case "BREAK_GLASS":
      return `break-glass in ${update.relationshipId ?? "?"} until ${update.until ?? "?"}`;
    case "FORUM_POST":
      return `${update.authorName ?? "?"} posted in ${update.topicId ?? "?"}`;
    case "CONCERN":
      return `concern ${update.concernId ?? "?"} (round ${update.round ?? 0}): ${update.guidance ?? ""}`;
    default: {
      const never: never = update.kind;
      return never;
    }
  }
}

export const subscription: TypedDocumentNode<LiveUpdatesSubscription, Record<string, never>> =
  LiveUpdatesDocument;
