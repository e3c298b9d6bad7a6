import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Daemon, freePort, runRookery, waitFor } from './processes.ts'

/** A `rookery server` process on a free loopback port, with its config written under `root`. */
export async function startServerProcess(root: string, token: string, extra: string[] = []): Promise<{ server: Daemon; url: string; port: number }> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const config = join(root, 'server.yaml')
  await writeFile(config, [`listen: 127.0.0.1:${port}`, `public_url: ${url}`, `data_dir: ${join(root, 'server')}`, `publish_tokens: [${token}]`, 'torrent_port: 0', ...extra].join('\n'))
  const server = new Daemon(['server', '--config', config], join(root, 'server.log'))
  await waitFor('the server to answer', () => fetch(`${url}/healthz`).then((r) => r.ok, () => false), 20_000)
  return { server, url, port }
}

/**
 * Writes an agent config for one app `web` deploying to <root>/<name>/srv/web; returns its path. A line of
 * `extra` replaces the default of the same key.
 */
export async function writeAgentConfig(root: string, name: string, server: string, extra: string[] = [], appExtra: string[] = []): Promise<string> {
  const file = join(root, `${name}.yaml`)
  const keyOf = (line: string) => line.slice(0, line.indexOf(':'))
  const defaults = ['torrent_port: 0', 'request_timeout: 2s', 'schedule: "* * * * * *"', 'retry_backoff: 1s']
  await writeFile(file, [
    `server: ${server}`,
    `state_dir: ${join(root, name, 'state')}`,
    ...defaults.filter((line) => !extra.some((e) => keyOf(e) === keyOf(line))),
    ...extra,
    'apps:',
    '  - name: web',
    `    deploy_to: ${deployDir(root, name)}`,
    ...appExtra.map((l) => `    ${l}`),
  ].join('\n'))
  return file
}

export function deployDir(root: string, name: string): string {
  return join(root, name, 'srv', 'web')
}

/** A `rookery server` process with web/v1 published from <root>/build (index.html "v1"). */
export async function serverWithFirstRelease(prefix: string, token: string): Promise<{ root: string; server: Daemon; url: string; source: string }> {
  const root = await mkdtemp(join(tmpdir(), prefix))
  const { server, url } = await startServerProcess(root, token)
  const source = join(root, 'build')
  await mkdir(source)
  await writeFile(join(source, 'index.html'), 'v1')
  await publishRelease(url, token, source, 'v1')
  return { root, server, url, source }
}

/** `rookery publish` of `source` as web/<tag>; throws with stderr when it fails. */
export async function publishRelease(url: string, token: string, source: string, tag: string, extra: string[] = []): Promise<string> {
  const r = await runRookery(['publish', source, '--app', 'web', '--tag', tag, '--server', url, ...extra], { ROOKERY_TOKEN: token })
  if (r.code !== 0) throw new Error(`publish ${tag} failed (${r.code}): ${r.stderr}`)
  return r.stdout
}
