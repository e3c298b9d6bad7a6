import type { AppEntry, Manifest, ReleaseEntry } from './manifest.ts'

/**
 * Pure changes to a manifest. Each returns a new manifest with `serial` bumped, plus what the caller
 * must act on (releases dropped by retention), so the server can apply them to disk after saving.
 */

export interface ManifestChange {
  manifest: Manifest
  removed: Array<{ app: string; tag: string }>
}

export type Rollout = NonNullable<AppEntry['rollout']>
export type Pin = NonNullable<AppEntry['pins']>[number]

/**
 * Adds a release. `activate` makes it current (ending any rollout); `rollout` instead starts a staged
 * rollout of it to a share of hosts or to groups; neither only keeps it.
 */
export function addRelease(
  manifest: Manifest,
  app: string,
  entry: ReleaseEntry,
  options: { activate: boolean; keep: number; now: Date; rollout?: Omit<Rollout, 'tag'> },
): ManifestChange {
  const previous = manifest.apps[app] ?? { current: null, releases: [] }
  const releases = [...previous.releases.filter((r) => r.tag !== entry.tag), entry]
  let next: AppEntry = { ...previous, releases }
  if (options.rollout) next = { ...next, rollout: { tag: entry.tag, ...options.rollout } }
  else if (options.activate) next = withoutRollout({ ...next, current: entry.tag })
  return applyRetention(bump(manifest, app, next, options.now), app, options.keep)
}

/** Points an app's current at one of its kept releases (rollback, roll forward); ends any rollout. */
export function setCurrent(manifest: Manifest, app: string, tag: string, now: Date): Manifest {
  return bump(manifest, app, withoutRollout({ ...appOf(manifest, app), current: tag }), now)
}

/** Starts, widens or narrows a staged rollout of a kept release. */
export function setRollout(manifest: Manifest, app: string, rollout: Rollout, now: Date): Manifest {
  return bump(manifest, app, { ...appOf(manifest, app), rollout }, now)
}

/** Makes the rollout's release current for every host; returns undefined when there is no rollout. */
export function promoteRollout(manifest: Manifest, app: string, now: Date): Manifest | undefined {
  const entry = appOf(manifest, app)
  if (!entry.rollout) return undefined
  return setCurrent(manifest, app, entry.rollout.tag, now)
}

/** Holds a host or a group on a tag (replacing an earlier pin of the same host or group). */
export function addPin(manifest: Manifest, app: string, pin: Pin, now: Date): Manifest {
  const entry = appOf(manifest, app)
  const pins = [...(entry.pins ?? []).filter((p) => !samePinTarget(p, pin)), pin]
  return bump(manifest, app, { ...entry, pins }, now)
}

/** Releases a host or group; returns undefined when it was not pinned. */
export function removePin(manifest: Manifest, app: string, target: Omit<Pin, 'tag'>, now: Date): Manifest | undefined {
  const entry = appOf(manifest, app)
  const pins = (entry.pins ?? []).filter((p) => !samePinTarget(p, target))
  if (pins.length === (entry.pins ?? []).length) return undefined
  const { pins: _, ...rest } = entry
  return bump(manifest, app, pins.length > 0 ? { ...rest, pins } : rest, now)
}

/** Tags some host may be told to run: current, the rollout's, and pinned ones. Retention keeps them. */
export function tagsInUse(entry: AppEntry): Set<string> {
  const tags = new Set<string>()
  if (entry.current !== null) tags.add(entry.current)
  if (entry.rollout) tags.add(entry.rollout.tag)
  for (const pin of entry.pins ?? []) tags.add(pin.tag)
  return tags
}

/**
 * Keeps the newest `keep` releases of an app (by position: releases are appended as published), and
 * always those in use (current, rollout, pins) even when older.
 */
export function applyRetention(manifest: Manifest, app: string, keep: number): ManifestChange {
  const entry = manifest.apps[app]
  if (!entry) return { manifest, removed: [] }
  const keepCount = Math.max(1, keep)
  const kept = new Set([...entry.releases.slice(-keepCount).map((r) => r.tag), ...tagsInUse(entry)])
  const removed = entry.releases.filter((r) => !kept.has(r.tag)).map((r) => ({ app, tag: r.tag }))
  if (removed.length === 0) return { manifest, removed }
  const releases = entry.releases.filter((r) => kept.has(r.tag))
  return { manifest: { ...manifest, apps: { ...manifest.apps, [app]: { ...entry, releases } } }, removed }
}

function appOf(manifest: Manifest, app: string): AppEntry {
  const entry = manifest.apps[app]
  if (!entry) throw new Error(`unknown app ${app}`)
  return entry
}

function withoutRollout(entry: AppEntry): AppEntry {
  const { rollout: _, ...rest } = entry
  return rest
}

function samePinTarget(a: Omit<Pin, 'tag'>, b: Omit<Pin, 'tag'>): boolean {
  return a.host === b.host && a.group === b.group
}

function bump(manifest: Manifest, app: string, entry: AppEntry, now: Date): Manifest {
  return {
    ...manifest,
    serial: manifest.serial + 1,
    updated_at: now.toISOString(),
    apps: { ...manifest.apps, [app]: entry },
  }
}
