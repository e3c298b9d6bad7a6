import { hostname } from 'node:os'
import { isAbsolute } from 'node:path'
import * as z from 'zod'
import { appName, cronExpression, duration, httpUrl, listenAddress, port, size, usableDir } from '../config/schema.ts'
import { loadConfigFile } from '../config/load.ts'
import { parsePublicKey } from '../release/sign.ts'

const appSchema = z
  .object({
    name: appName,
    /** releases/<tag> and the `current` symlink live here (Capistrano's layout). */
    deploy_to: z.string().refine(isAbsolute, { message: 'must be an absolute path' }).pipe(usableDir),
    keep_releases: z.number().int().min(1).default(5),
    /** Shell command run in the new release directory after `current` switched. */
    post_install: z.string().min(1).optional(),
    hook_timeout: duration.prefault('10m'),
    /** Run the hook as this user (with its groups and HOME) instead of the agent's user. */
    user: z.string().regex(/^[a-z_][a-z0-9_.-]*\$?$/i, 'not a user name').optional(),
  })
  .strict()

/** Agent config: the keys of config/agent.yaml, with their defaults. */
export const agentConfigSchema = z
  .object({
    server: httpUrl,
    state_dir: usableDir.default('/var/lib/rookery/agent'),
    /** node-cron expression; six fields add seconds. */
    schedule: cronExpression.default('*/10 * * * * *'),
    /**
     * Also keep one long-poll request open on the manifest (`?wait=`), answered as soon as it changes:
     * hosts start within moments of a publish. 0 turns it off (cron polls only).
     */
    long_poll: duration.prefault('30s'),
    /** Each scheduled poll waits a random delay up to this, so a fleet does not poll in lockstep. */
    jitter: duration.prefault('0s'),
    /** Keep seeding a release for this long after it was activated. */
    seed_window: duration.prefault('5m'),
    /** TCP port other agents download from; 0 picks a free one. */
    torrent_port: port.default(6881),
    /** A download with no new data for this long is abandoned and retried at a later poll. */
    stall_timeout: duration.prefault('60s'),
    /**
     * Requests kept outstanding with each peer: this long at the peer's current rate, plus 2 blocks. Short
     * inside a datacenter (a long queue of requests delays everyone's); raise it across regions.
     */
    request_pipeline: duration.prefault('100ms'),
    /** Download from the server's HTTP webseed only after the swarm gave no data for this long (0: at once). */
    webseed_fallback: duration.prefault('5s'),
    /** First delay before retrying a failed download or poll; doubles per failure, up to 10 minutes. */
    retry_backoff: duration.prefault('15s'),
    /** Largest release (unpacked bytes) and most entries accepted: a decompression bomb fails instead of filling the disk. */
    max_release_size: size.prefault('20GiB'),
    max_release_entries: z.number().int().min(1).default(1_000_000),
    /** Time limit of one manifest or .torrent request. */
    request_timeout: duration.prefault('10s'),
    /** Tracker URLs to use instead of the ones in the torrents (e.g. a separate tracker). */
    announce: z.array(httpUrl).optional(),
    /**
     * Public keys ("ed25519:<base64>", from `rookery keygen`) whose signatures are accepted. When set, an
     * unsigned release, or one signed by another key, is refused. When empty, releases are not checked.
     */
    trusted_keys: z.array(z.string().refine((k) => parsePublicKey(k) !== undefined, { message: 'not a public key from `rookery keygen` ("ed25519:<base64>")' })).default([]),
    /** Host groups this host belongs to, for staged rollouts and pins (e.g. [canary, eu-west]). */
    groups: z.array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'not a group name')).default([]),
    /** Send phase reports to the server (`rookery status`). Never blocks a deploy. */
    report: z.boolean().default(true),
    /** Bearer token for reports, when the server requires one (its agent_tokens). */
    report_token: z.string().optional(),
    /** Heartbeat: re-send the last report this often, so the server can tell live hosts from gone ones. */
    report_interval: duration.prefault('1m'),
    /** Serve Prometheus metrics on this host:port (e.g. 127.0.0.1:9464); off when unset. */
    metrics_listen: listenAddress.optional(),
    /** How this host names itself in logs and reports; defaults to the hostname. */
    host_id: z.string().min(1).default(hostname()),
    apps: z.array(appSchema).min(1, 'list at least one app'),
  })
  .strict()
  .superRefine((config, ctx) => {
    const seen = new Set<string>()
    config.apps.forEach((app, i) => {
      if (seen.has(app.name)) ctx.addIssue({ code: 'custom', path: ['apps', i, 'name'], message: `app ${app.name} is listed twice` })
      seen.add(app.name)
    })
  })

export type AgentConfig = z.output<typeof agentConfigSchema>
export type AppConfig = AgentConfig['apps'][number]

export function loadAgentConfig(file: string): Promise<AgentConfig> {
  return loadConfigFile(file, agentConfigSchema)
}
