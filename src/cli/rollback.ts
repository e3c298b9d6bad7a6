import type { Command } from 'commander'
import { assertSafeName } from '../release/names.ts'
import { callApi, publishToken, serverUrl } from './api-client.ts'

export function registerRollback(program: Command): void {
  program
    .command('rollback')
    .description("point an app's current release at a kept tag; agents follow without downloading")
    .requiredOption('--app <name>', 'app name')
    .requiredOption('--to <tag>', 'a kept tag')
    .option('--server <url>', 'rookery server (default $ROOKERY_SERVER or http://127.0.0.1:8998)')
    .addHelpText('after', '\nThe publish token is read from ROOKERY_TOKEN.')
    .action(async (flags: { app: string; to: string; server?: string }) => {
      const app = assertSafeName('app', flags.app)
      const tag = assertSafeName('tag', flags.to)
      const answer = await callApi(serverUrl(flags.server), 'POST', `/api/v1/apps/${encodeURIComponent(app)}/current`, {
        token: publishToken(),
        body: JSON.stringify({ tag }),
        headers: { 'content-type': 'application/json' },
      })
      process.stdout.write(`${app}: current ${String(answer.previous)} -> ${String(answer.current)}\n`)
    })
}
