import { hostname } from 'node:os'
import { isAbsolute } from 'node:path'
import { appName, cronExpression, duration, httpUrl, listenAddress, port, size, usableDir } from '../config/schema.ts'
import { loadConfigFile } from '../config/load.ts'
import { parsePublicKey } from '../release/sign.ts'
import * as z from '../zod.ts'

const appSchema = z.strictObject({
  name: appName,
  /** releases/<tag> and the `current` symlink live here (Capistrano's layout). */
  deploy_to: z.pipe(z.string().check(z.refine(isAbsolute, { message: 'must be an absolute path' })), usableDir),
  keep_releases: z._default(z.int().check(z.minimum(1)), 5),
  /** Shell command run in the new release directory after `current` switched. */
  post_install: z.optional(z.string().check(z.minLength(1))),
  hook_timeout: z.prefault(duration, '10m'),
  /** Run the hook as this user (with its groups and HOME) instead of the agent's user. */
  user: z.optional(z.string().check(z.regex(/^[a-z_][a-z0-9_.-]*\$?$/i, 'not a user name'))),
})

/** Agent config: the keys of config/agent.yaml, with their defaults. */
export const agentConfigSchema = z
  .strictObject({
    server: httpUrl,
    state_dir: z._default(usableDir, '/var/lib/rookery/agent'),
    /** node-cron expression; six fields add seconds. */
    schedule: z._default(cronExpression, '*/10 * * * * *'),
    /**
     * Also keep one long-poll request open on the manifest (`?wait=`), answered as soon as it changes:
     * hosts start within moments of a publish. 0 turns it off (cron polls only).
     */
    long_poll: z.prefault(duration, '30s'),
    /**
     * When the long-poll says a release of one of this host's apps is being uploaded, start the swarm
     * process then, so it is ready when the release is published; closed again if none comes within this
     * long. 0: start it when the manifest changes.
     */
    early_swarm_start: z.prefault(duration, '2m'),
    /** Each scheduled poll waits a random delay up to this, so a fleet does not poll in lockstep. */
    jitter: z.prefault(duration, '0s'),
    /** Keep seeding a release for this long after it was activated. */
    seed_window: z.prefault(duration, '5m'),
    /** TCP port other agents download from; 0 picks a free one. */
    torrent_port: z._default(port, 6881),
    /** A download with no new data for this long is abandoned and retried at a later poll. */
    stall_timeout: z.prefault(duration, '60s'),
    /**
     * Requests kept outstanding with each peer: this long at the peer's current rate, plus 1 block. Short
     * inside a datacenter (a long queue of requests delays everyone's); raise it across regions.
     */
    request_pipeline: z.prefault(duration, '100ms'),
    /** Download from the server's HTTP webseed only after the swarm gave no data, and no peer announced a piece, for this long (0: at once). */
    webseed_fallback: z.prefault(duration, '5s'),
    /** First delay before retrying a failed download or poll; doubles per failure, up to 10 minutes. */
    retry_backoff: z.prefault(duration, '15s'),
    /** Largest release (unpacked bytes) and most entries accepted: a decompression bomb fails instead of filling the disk. */
    max_release_size: z.prefault(size, '20GiB'),
    max_release_entries: z._default(z.int().check(z.minimum(1)), 1_000_000),
    /** Time limit of one manifest or .torrent request. */
    request_timeout: z.prefault(duration, '10s'),
    /** Tracker URLs to use instead of the ones in the torrents (e.g. a separate tracker). */
    announce: z.optional(z.array(httpUrl)),
    /**
     * Public keys ("ed25519:<base64>", from `rookery keygen`) whose signatures are accepted. When set, an
     * unsigned release, or one signed by another key, is refused. When empty, releases are not checked.
     */
    trusted_keys: z._default(z.array(z.string().check(z.refine((k) => parsePublicKey(k) !== undefined, { message: 'not a public key from `rookery keygen` ("ed25519:<base64>")' }))), []),
    /** Host groups this host belongs to, for staged rollouts and pins (e.g. [canary, eu-west]). */
    groups: z._default(z.array(z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'not a group name'))), []),
    /** Send phase reports to the server (`rookery status`). Never blocks a deploy. */
    report: z._default(z.boolean(), true),
    /** Bearer token for reports, when the server requires one (its agent_tokens). */
    report_token: z.optional(z.string()),
    /** Heartbeat: re-send the last report this often, so the server can tell live hosts from gone ones. */
    report_interval: z.prefault(duration, '1m'),
    /** Serve Prometheus metrics on this host:port (e.g. 127.0.0.1:9464); off when unset. */
    metrics_listen: z.optional(listenAddress),
    /** How this host names itself in logs and reports; defaults to the hostname. */
    host_id: z._default(z.string().check(z.minLength(1)), hostname()),
    apps: z.array(appSchema).check(z.minLength(1, 'list at least one app')),
  })
  .check(
    z.superRefine((config, ctx) => {
      const seen = new Set<string>()
      config.apps.forEach((app, i) => {
        if (seen.has(app.name)) ctx.addIssue({ code: 'custom', path: ['apps', i, 'name'], message: `app ${app.name} is listed twice` })
        seen.add(app.name)
      })
    }),
  )

export type AgentConfig = z.output<typeof agentConfigSchema>
export type AppConfig = AgentConfig['apps'][number]

export function loadAgentConfig(file: string): Promise<AgentConfig> {
  return loadConfigFile(file, agentConfigSchema)
}
