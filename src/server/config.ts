import { readFile } from 'node:fs/promises'
import { duration, httpUrl, listenAddress, port, size, usableDir } from '../config/schema.ts'
import { loadConfigFile } from '../config/load.ts'
import { ConfigError } from '../errors.ts'
import * as z from '../zod.ts'

/** Server config: the keys of config/server.yaml, with their defaults. */
export const serverConfigSchema = z.strictObject({
  listen: z.prefault(listenAddress, '0.0.0.0:8998'),
  /** What goes into torrents and the manifest: the address agents reach this server at. */
  public_url: z.prefault(httpUrl, 'http://127.0.0.1:8998'),
  /** Tracker URL written into torrents; default `<public_url>/announce`. Set it to use another tracker. */
  announce_url: z.optional(httpUrl),
  data_dir: z._default(usableDir, '/var/lib/rookery/server'),
  publish_tokens: z._default(z.array(z.string().check(z.minLength(16, 'tokens must be at least 16 characters'))), []),
  /** A file with one token a line (lines starting with # ignored), read at start. */
  publish_token_file: z.optional(z.string()),
  /** When set, agents' status reports need one of these tokens (agent config report_token). */
  agent_tokens: z._default(z.array(z.string().check(z.minLength(16, 'tokens must be at least 16 characters'))), []),
  /** A host that has not reported for this long counts as stale in `rookery status`. */
  stale_after: z.prefault(duration, '5m'),
  /** A host that has not reported for this long is forgotten. */
  forget_after: z.prefault(duration, '24h'),
  /** Most hosts whose reports are kept (memory bound); the longest-silent go first. */
  max_hosts: z._default(z.int().check(z.minimum(1)), 100_000),
  keep_releases: z._default(z.int().check(z.minimum(1)), 5),
  max_upload_size: z.prefault(size, '20GiB'),
  /** Port of the origin seeder's BitTorrent listener; 0 picks a free one. */
  /** Apart from the agents' 6881, so one host can run both. */
  torrent_port: z._default(port, 6880),
  /** Cap on the origin seeder's upload, in bytes per second (0: none), so the fleet trades among itself. */
  origin_upload_limit: z.prefault(size, 0),
  /** How often agents re-announce to the tracker. Short: a datacenter tracker is cheap to ask. */
  announce_interval: z.prefault(duration, '30s'),
  /** Peers remembered per swarm; must exceed the fleet size or large fleets lose peers. */
  max_peers_per_swarm: z._default(z.int().check(z.minimum(10)), 20000),
})

export type ServerConfig = z.output<typeof serverConfigSchema>

/** Loads and validates the server config, then resolves the token file. */
export async function loadServerConfig(file: string): Promise<ServerConfig> {
  const config = await loadConfigFile(file, serverConfigSchema)
  return { ...config, publish_tokens: [...config.publish_tokens, ...(await readTokenFile(config.publish_token_file))] }
}

async function readTokenFile(file: string | undefined): Promise<string[]> {
  if (!file) return []
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read publish_token_file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`)
  }
  const tokens = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))
  const short = tokens.find((t) => t.length < 16)
  if (short !== undefined) throw new ConfigError(`${file}: tokens must be at least 16 characters`)
  return tokens
}
