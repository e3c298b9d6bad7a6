import type { Manifest, ReleaseEntry } from './manifest.ts'

/**
 * Pure changes to a manifest. Each returns a new manifest with `serial` bumped, plus what the caller
 * must act on (releases dropped by retention), so the server can apply them to disk after saving.
 */

export interface ManifestChange {
  manifest: Manifest
  removed: Array<{ app: string; tag: string }>
}

/** Adds a release (or finds the identical one) and makes it current when `activate` is set. */
export function addRelease(
  manifest: Manifest,
  app: string,
  entry: ReleaseEntry,
  options: { activate: boolean; keep: number; now: Date },
): ManifestChange {
  const previous = manifest.apps[app] ?? { current: null, releases: [] }
  const others = previous.releases.filter((r) => r.tag !== entry.tag)
  const releases = [...others, entry]
  const current = options.activate ? entry.tag : previous.current
  return applyRetention(bump(manifest, app, { current, releases }, options.now), app, options.keep)
}

/** Points an app's current at one of its kept releases (a rollback, or a roll forward). */
export function setCurrent(manifest: Manifest, app: string, tag: string, now: Date): Manifest {
  const previous = manifest.apps[app]
  if (!previous) throw new Error(`unknown app ${app}`)
  return bump(manifest, app, { current: tag, releases: previous.releases }, now)
}

/**
 * Keeps the newest `keep` releases of an app (by position: releases are appended as published), and
 * always the current one even when it is older.
 */
export function applyRetention(manifest: Manifest, app: string, keep: number): ManifestChange {
  const entry = manifest.apps[app]
  if (!entry) return { manifest, removed: [] }
  const keepCount = Math.max(1, keep)
  const newest = new Set(entry.releases.slice(-keepCount).map((r) => r.tag))
  if (entry.current !== null) newest.add(entry.current)
  const kept = entry.releases.filter((r) => newest.has(r.tag))
  const removed = entry.releases.filter((r) => !newest.has(r.tag)).map((r) => ({ app, tag: r.tag }))
  if (removed.length === 0) return { manifest, removed }
  return {
    manifest: { ...manifest, apps: { ...manifest.apps, [app]: { current: entry.current, releases: kept } } },
    removed,
  }
}

function bump(manifest: Manifest, app: string, entry: Manifest['apps'][string], now: Date): Manifest {
  return {
    ...manifest,
    serial: manifest.serial + 1,
    updated_at: now.toISOString(),
    apps: { ...manifest.apps, [app]: entry },
  }
}
