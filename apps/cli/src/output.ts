/** What the CLI prints: text for people (progress on a terminal), one JSON document per command for scripts. */
import type { Report, SuspectListing } from "@gldt/core/Lifecycle"
import type { StateRecord } from "@gldt/core/State"
import { meansNoExpiry } from "@gldt/core/Fingerprint"
import { formatGoDuration } from "@gldt/core/GoDuration"

export type OutputMode = "text" | "json"

const isTty = () => process.stderr.isTTY === true

/** A progress line on stderr, only for a person at a terminal in text mode. */
export const progress = (mode: OutputMode, line: string) => {
  if (mode === "text" && isTty()) process.stderr.write(`… ${line}\n`)
}

export const printJson = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`)
export const printText = (line: string) => process.stdout.write(`${line}\n`)

const ago = (now: number, t: number) => `${formatGoDuration(Math.max(0, Math.round((now - t) / 1000) * 1000))} ago`
const until = (now: number, t: number) => (t <= now ? "now" : `in ${formatGoDuration(Math.round((t - now) / 1000) * 1000)}`)

export const describeReport = (command: string, report: Report, now: number): string[] => {
  const lines: string[] = []
  for (const a of report.actions) {
    lines.push(`${a.action} token ${a.tokenId}${a.detail ? ` (${a.detail})` : ""}`)
  }
  for (const e of report.revokeErrors) lines.push(`could not revoke token ${e.tokenId}: ${e.error} (still tracked; will retry)`)
  if (report.openIntent) {
    lines.push("an earlier create's outcome is still unknown (GitLab may still apply it); nothing new is minted until it settles — `gldt recover` waits for it")
  } else if (report.actions.length === 0 && report.revokeErrors.length === 0) {
    lines.push(`${command}: nothing to do${report.currentTokenId !== undefined ? ` (current token ${report.currentTokenId})` : ""}`)
  }
  const suspects = report.suspects ?? []
  if (suspects.length > 0) {
    lines.push(
      `suspects left for a person to decide: ${suspects.join(", ")} — see \`gldt suspects\`, then \`gldt suspects revoke ID\` or \`gldt suspects forget ID\``,
    )
  }
  if (report.nextAt !== undefined) lines.push(`next action due ${until(now, report.nextAt)} (${new Date(report.nextAt).toISOString()})`)
  return lines
}

export const reportJson = (command: string, report: Report) => ({
  command,
  key: report.key,
  ok: report.revokeErrors.length === 0 && !report.openIntent,
  openIntent: report.openIntent,
  reason: report.reason ?? null,
  actions: report.actions,
  revokeErrors: report.revokeErrors,
  currentTokenId: report.currentTokenId ?? null,
  suspects: report.suspects ?? [],
  nextAt: report.nextAt === undefined ? null : new Date(report.nextAt).toISOString(),
})

/** `gldt status` for one record: ids, usernames, ages, expiries, pending revocations, suspects. Never values. */
export const describeRecord = (r: StateRecord, now: number): string[] => {
  const lines = [`${r.key}: generation ${r.generation}`]
  const t = r.current
  if (t) {
    lines.push(
      `  current   token ${t.id} username ${t.username} minted ${ago(now, t.createdAt)}${t.deliveredAt ? `, delivered ${ago(now, t.deliveredAt)}` : ""}, expires ${t.expiresAt === null ? "never" : meansNoExpiry(t.expiresAt) ? `never (fingerprint date ${t.expiresAt})` : t.expiresAt} (${t.location.target.kind} ${t.location.target.id} at ${t.location.url})`,
    )
  } else lines.push("  current   none")
  if (r.pending) lines.push(`  pending   token ${r.pending.id}: minted, delivery not confirmed (run recover)`)
  for (const x of r.retiring) {
    lines.push(
      `  retiring  token ${x.id} username ${x.username}: revoke ${until(now, Math.max(x.revokeAfter ?? 0, x.retryAt ?? 0))}${x.lastError ? `; attempt ${x.revokeAttempts ?? 1} failed: ${x.lastError}` : ""}`,
    )
  }
  if (r.intent) lines.push(`  intent    generation ${r.intent.generation}: a create may be in flight or was interrupted (run recover)`)
  for (const s of r.suspects) {
    lines.push(
      `  suspect   token ${s.id} (${s.name}/${s.username}) at ${s.location.target.kind} ${s.location.target.id}: may be an orphan of an interrupted create; gldt will not touch it on its own — check it in GitLab, then \`gldt suspects revoke ${s.id}\` or \`gldt suspects forget ${s.id}\``,
    )
  }
  if (r.lastError) lines.push(`  last error: ${r.lastError}`)
  return lines
}

/** `gldt suspects`: one line per suspect, with what to run. */
export const describeSuspects = (listing: ReadonlyArray<SuspectListing>, now: number): string[] =>
  listing.length === 0
    ? ["no suspects: every token gldt may have made is accounted for"]
    : listing.map(
        ({ key, suspect: s }) =>
          `${key}: suspect token ${s.id} (${s.name}/${s.username}) at ${s.location.target.kind} ${s.location.target.id} on ${s.location.url}, found ${ago(now, s.foundAt)} — \`gldt suspects revoke ${s.id} -f …\` if it is ours, \`gldt suspects forget ${s.id} --key ${key}\` if not`,
      )
