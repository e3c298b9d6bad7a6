import { createHash } from 'node:crypto'
import { addRelease } from './changes.ts'
import { emptyManifest, type Manifest, type Publishing, type ReleaseEntry } from './manifest.ts'

/** What the manifest knows of a host: its id and the groups its agent config puts it in. */
export interface HostIdentity {
  host: string
  groups: readonly string[]
}

/**
 * A host's bucket for an app, 0 to 99.99, from a hash of app and host id: the same host stays in the
 * same bucket across releases, so a 10 % canary is the same hosts each time and widening it to 50 %
 * keeps the first 10 % in.
 */
export function bucketOf(app: string, host: string): number {
  const digest = createHash('sha256').update(`${app}\n${host}`).digest()
  return (digest.readUInt32BE(0) / 2 ** 32) * 100
}

export type DesiredReason = 'pinned' | 'rollout' | 'current'

/**
 * The tag a host should run for an app, and why: a pin naming the host or one of its groups wins;
 * then an ongoing rollout, if the host is in its cohort (by share or by group); then the app's current.
 * Used by agents to decide and by the server to tell, from reports, how a rollout stands.
 */
export function desiredTag(manifest: Manifest, app: string, who: HostIdentity): { tag: string; reason: DesiredReason } | undefined {
  const entry = manifest.apps[app]
  if (!entry) return undefined
  const pin = entry.pins?.find((p) => (p.host !== undefined && p.host === who.host) || (p.group !== undefined && who.groups.includes(p.group)))
  if (pin) return { tag: pin.tag, reason: 'pinned' }
  if (entry.rollout && inCohort(entry.rollout, app, who)) return { tag: entry.rollout.tag, reason: 'rollout' }
  return entry.current === null ? undefined : { tag: entry.current, reason: 'current' }
}

/**
 * Whether a host will deploy a release of `app` now being uploaded (PUBLISHING_HEADER): desiredTag on the
 * host's last manifest with the release added as the server will add it (addRelease: made current, ending
 * any rollout, or starting the rollout it names), so a pin keeps the host where it is and a cohort takes
 * only its hosts.
 */
export function willDeploy(manifest: Manifest | undefined, upload: Publishing, who: HostIdentity): boolean {
  // Only the tag is read; no published release has this one.
  const uploading = { tag: '\0uploading' } as ReleaseEntry
  const { manifest: next } = addRelease(manifest ?? emptyManifest(), upload.app, uploading, {
    activate: true,
    keep: Infinity,
    now: new Date(),
    ...(upload.rollout ? { rollout: upload.rollout } : {}),
  })
  return desiredTag(next, upload.app, who)?.tag === uploading.tag
}

/** The release entry a host should run, when the manifest lists it. */
export function desiredRelease(manifest: Manifest, app: string, who: HostIdentity): ReleaseEntry | undefined {
  const wanted = desiredTag(manifest, app, who)
  return wanted && manifest.apps[app]?.releases.find((r) => r.tag === wanted.tag)
}

function inCohort(rollout: NonNullable<Manifest['apps'][string]['rollout']>, app: string, who: HostIdentity): boolean {
  if (rollout.groups?.some((g) => who.groups.includes(g))) return true
  return rollout.percent !== undefined && bucketOf(app, who.host) < rollout.percent
}
