import type { Command } from 'commander'
import { UsageError } from '../errors.ts'
import { assertSafeName } from '../release/names.ts'
import { callApi, publishToken, serverUrl } from './api-client.ts'

/** `promote`, `rollout`, `pin` and `unpin`: staged rollouts and pauses, decided on the server. */
export function registerRollout(program: Command): void {
  const serverOption = ['--server <url>', 'rookery server (default $ROOKERY_SERVER or http://127.0.0.1:8998)'] as const
  const post = async (server: string | undefined, app: string, verb: string, body: unknown) => {
    const answer = await callApi(serverUrl(server), 'POST', `/api/v1/apps/${encodeURIComponent(assertSafeName('app', app))}/${verb}`, {
      token: publishToken(),
      body: JSON.stringify(body ?? {}),
      headers: { 'content-type': 'application/json' },
    })
    const rollout = answer.rollout as { tag: string; percent?: number; groups?: string[] } | null | undefined
    const pins = (answer.pins as Array<{ host?: string; group?: string; tag: string }> | undefined) ?? []
    process.stdout.write(
      `${app}: current ${String(answer.current)}${rollout ? `, rollout ${rollout.tag} to ${[rollout.percent !== undefined ? `${rollout.percent}%` : '', ...(rollout.groups ?? [])].filter(Boolean).join(', ')}` : ''}${pins.length ? `, pinned: ${pins.map((p) => `${p.host ?? `group ${p.group}`}->${p.tag}`).join(', ')}` : ''}\n`,
    )
  }
  const target = (flags: { host?: string; group?: string }) => {
    if (!!flags.host === !!flags.group) throw new UsageError('give exactly one of --host or --group')
    return flags.host ? { host: flags.host } : { group: flags.group! }
  }

  program
    .command('promote')
    .description("make an app's rollout release current on every host")
    .requiredOption('--app <name>', 'app name')
    .option(...serverOption)
    .action((flags: { app: string; server?: string }) => post(flags.server, flags.app, 'promote', {}))

  program
    .command('rollout')
    .description('send a kept release to a share of hosts and/or host groups (a canary)')
    .requiredOption('--app <name>', 'app name')
    .requiredOption('--tag <tag>', 'a kept tag')
    .option('--percent <n>', 'share of hosts, 0-100 (the same hosts each time: widening keeps earlier ones)')
    .option('--group <name...>', 'host groups (agent config `groups`)')
    .option(...serverOption)
    .action((flags: { app: string; tag: string; percent?: string; group?: string[]; server?: string }) => {
      if (flags.percent === undefined && !flags.group) throw new UsageError('give --percent and/or --group')
      const percent = flags.percent === undefined ? undefined : parsePercent(flags.percent)
      return post(flags.server, flags.app, 'rollout', { tag: assertSafeName('tag', flags.tag), ...(percent !== undefined ? { percent } : {}), ...(flags.group ? { groups: flags.group } : {}) })
    })

  program
    .command('pin')
    .description('hold a host or a group on a kept tag (pause it) whatever current and rollouts say')
    .requiredOption('--app <name>', 'app name')
    .requiredOption('--tag <tag>', 'a kept tag')
    .option('--host <id>', 'host id (agent config host_id)')
    .option('--group <name>', 'host group')
    .option(...serverOption)
    .action((flags: { app: string; tag: string; host?: string; group?: string; server?: string }) =>
      post(flags.server, flags.app, 'pin', { ...target(flags), tag: assertSafeName('tag', flags.tag) }),
    )

  program
    .command('unpin')
    .description('release a pinned host or group')
    .requiredOption('--app <name>', 'app name')
    .option('--host <id>', 'host id')
    .option('--group <name>', 'host group')
    .option(...serverOption)
    .action((flags: { app: string; host?: string; group?: string; server?: string }) => post(flags.server, flags.app, 'unpin', target(flags)))
}

/** "10", "10%" or "12.5%" -> 10 / 12.5. */
export function parsePercent(text: string): number {
  const value = Number(text.replace(/%$/, ''))
  if (!(value >= 0 && value <= 100)) throw new UsageError(`not a percentage: ${JSON.stringify(text)} (use 0-100, e.g. 10%)`)
  return value
}
