import type { Command } from 'commander'
import { ExitCode, RookeryError } from '../errors.ts'
import type { AppStatus, FleetStatus } from '../status/aggregate.ts'
import { callApi, serverUrl } from './api-client.ts'

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('where each rollout stands: hosts activated, in progress, failed and stale')
    .option('--app <name>', 'only this app')
    .option('--json', 'print the status document as JSON')
    .option('--watch', 'follow the rollout until no host is in progress')
    .option('--server <url>', 'rookery server (default $ROOKERY_SERVER or http://127.0.0.1:8998)')
    .addHelpText('after', '\nExit code: 0 when every reporting host runs the release meant for it, 3 otherwise.')
    .action(async (flags: { app?: string; json?: boolean; watch?: boolean; server?: string }) => {
      const server = serverUrl(flags.server)
      const path = `/api/v1/status${flags.app ? `?app=${encodeURIComponent(flags.app)}` : ''}`
      const tty = process.stdout.isTTY === true && !flags.json
      let status = (await callApi(server, 'GET', path)) as unknown as FleetStatus
      // Bounded: a watch gives up after an hour; a rollout still going then is reported as such.
      const deadline = Date.now() + 3_600_000
      for (;;) {
        const text = flags.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status, tty)
        if (tty && flags.watch) process.stdout.write('\x1b[H\x1b[2J')
        process.stdout.write(text)
        const inProgress = Object.values(status.apps).some((a) => a.counts.in_progress > 0)
        if (!flags.watch || !inProgress || Date.now() > deadline) break
        await new Promise((r) => setTimeout(r, 1000))
        status = (await callApi(server, 'GET', path)) as unknown as FleetStatus
      }
      const incomplete = Object.entries(status.apps).filter(([, a]) => !a.complete)
      if (incomplete.length > 0) {
        throw new RookeryError('ROOKERY_ROLLOUT_INCOMPLETE', `rollout not complete: ${incomplete.map(([app, a]) => `${app} (${a.counts.in_progress} in progress, ${a.counts.failed} failed)`).join(', ')}`, { exitCode: ExitCode.notConverged })
      }
    })
}

/** The human form: one block per app, hosts not yet on their release listed with why. */
export function formatStatus(status: FleetStatus, tty: boolean): string {
  const lines: string[] = []
  for (const [app, a] of Object.entries(status.apps)) {
    lines.push(`${app}: current ${a.current ?? '-'}${rolloutText(a)}${a.pins.length ? `, pinned: ${a.pins.map((p) => `${p.host ?? `group ${p.group}`}->${p.tag}`).join(', ')}` : ''}`)
    const c = a.counts
    lines.push(`  ${c.activated} activated, ${c.in_progress} in progress, ${c.failed} failed, ${c.stale} stale${a.complete ? ' - complete' : ''}`)
    for (const [tag, counts] of Object.entries(a.tags)) {
      lines.push(`  ${tag}: ${counts.activated} activated, ${counts.in_progress} in progress, ${counts.failed} failed, ${counts.stale} stale`)
    }
    for (const h of a.hosts) {
      if (h.state === 'activated') continue
      const detail =
        h.state === 'failed' ? h.error ?? 'failed'
        : h.state === 'stale' ? `last seen ${h.last_seen}`
        : `${h.phase}${h.progress && h.progress.total ? ` ${bar(h.progress.done / h.progress.total, tty)}` : ''}`
      lines.push(`    ${h.host.padEnd(20)} ${h.state.padEnd(11)} ${h.current ?? '-'} -> ${h.desired ?? '-'} (${h.why ?? '-'})  ${detail}`)
    }
  }
  return `${lines.join('\n')}\n`
}

function rolloutText(a: AppStatus): string {
  if (!a.rollout) return ''
  const to = [a.rollout.percent !== undefined ? `${a.rollout.percent}%` : '', ...(a.rollout.groups ?? []).map((g) => `group ${g}`)].filter(Boolean).join(' + ')
  return `, rollout ${a.rollout.tag} to ${to}`
}

function bar(fraction: number, tty: boolean): string {
  const pct = Math.floor(fraction * 100)
  if (!tty) return `${pct}%`
  const filled = Math.round(fraction * 20)
  return `[${'#'.repeat(filled)}${'.'.repeat(20 - filled)}] ${pct}%`
}
