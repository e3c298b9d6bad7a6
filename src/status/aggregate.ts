import { desiredTag } from '../manifest/cohort.ts'
import type { AppEntry, Manifest } from '../manifest/manifest.ts'
import type { Report } from './report.ts'

/** A report as the server keeps it: with the time it arrived. */
export interface StoredReport extends Report {
  received_at: number
}

export type HostState = 'activated' | 'in_progress' | 'failed' | 'stale'

export interface HostStatus {
  host: string
  groups: string[]
  state: HostState
  /** The tag this host should run (pin, rollout cohort or current). */
  desired: string | null
  why: 'pinned' | 'rollout' | 'current' | null
  current: string | null
  phase: Report['phase']
  progress?: Report['progress']
  error?: string
  hook_tail?: string[]
  last_seen: string
}

export interface AppStatus {
  current: string | null
  rollout: AppEntry['rollout'] | null
  pins: NonNullable<AppEntry['pins']>
  /** Every host that reported recently runs the tag meant for it. */
  complete: boolean
  counts: Record<HostState, number>
  /** Counts per desired tag: where the rollout of each tag stands. */
  tags: Record<string, Record<HostState, number>>
  hosts: HostStatus[]
}

export interface FleetStatus {
  generated_at: string
  stale_after_ms: number
  apps: Record<string, AppStatus>
}

/**
 * Where each app's rollout stands, from the manifest and the latest report of each host. A host is
 * stale when it has not reported for `staleAfterMs`; activated when it runs its desired tag; failed
 * when its last attempt at that tag failed; otherwise in progress.
 */
export function aggregateStatus(manifest: Manifest, reports: Iterable<StoredReport>, now: number, staleAfterMs: number, onlyApp?: string): FleetStatus {
  const apps: Record<string, AppStatus> = {}
  const appFor = (app: string): AppStatus => {
    const entry = manifest.apps[app]
    apps[app] ??= {
      current: entry?.current ?? null,
      rollout: entry?.rollout ?? null,
      pins: entry?.pins ?? [],
      complete: true,
      counts: emptyCounts(),
      tags: {},
      hosts: [],
    }
    return apps[app]
  }
  for (const app of Object.keys(manifest.apps)) if (!onlyApp || app === onlyApp) appFor(app)

  for (const report of reports) {
    if (onlyApp && report.app !== onlyApp) continue
    const status = appFor(report.app)
    const wanted = desiredTag(manifest, report.app, { host: report.host, groups: report.groups })
    const desired = wanted?.tag ?? null
    const state = hostState(report, desired, now, staleAfterMs)
    status.hosts.push({
      host: report.host,
      groups: report.groups,
      state,
      desired,
      why: wanted?.reason ?? null,
      current: report.current,
      phase: report.phase,
      ...(report.progress ? { progress: report.progress } : {}),
      ...(report.error ? { error: report.error } : {}),
      ...(report.hook_tail ? { hook_tail: report.hook_tail } : {}),
      last_seen: new Date(report.received_at).toISOString(),
    })
    status.counts[state]++
    const key = desired ?? '(none)'
    status.tags[key] ??= emptyCounts()
    status.tags[key][state]++
    if (state === 'in_progress' || state === 'failed') status.complete = false
  }
  for (const status of Object.values(apps)) status.hosts.sort((a, b) => a.host.localeCompare(b.host))
  return { generated_at: new Date(now).toISOString(), stale_after_ms: staleAfterMs, apps }
}

function hostState(report: StoredReport, desired: string | null, now: number, staleAfterMs: number): HostState {
  if (now - report.received_at > staleAfterMs) return 'stale'
  if (report.current === desired && (report.phase === 'activated' || report.phase === 'idle')) return 'activated'
  if ((report.phase === 'failed' || report.phase === 'hook_failed') && report.tag === desired) return 'failed'
  return 'in_progress'
}

function emptyCounts(): Record<HostState, number> {
  return { activated: 0, in_progress: 0, failed: 0, stale: 0 }
}
