import type { Command } from 'commander'
import { Agent } from '../agent/agent.ts'
import { loadAgentConfig } from '../agent/config.ts'
import { ExitCode, RookeryError } from '../errors.ts'
import { createLogger } from '../log.ts'
import { untilSignal } from './signals.ts'

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('keep this host on the current release of each configured app')
    .option('-c, --config <file>', 'agent config (YAML)', '/etc/rookery/agent.yaml')
    .option('--once', 'reconcile once and exit: 0 when every app is on its current tag (for cloud-init)')
    .action(async (opts: { config: string; once?: boolean }) => {
      const config = await loadAgentConfig(opts.config)
      const log = createLogger('agent', { host: config.host_id })
      const agent = new Agent(config, log)
      await agent.init()
      if (opts.once) {
        // No lingering: the process exits right after, and a booting host should not wait to seed.
        const result = await agent.reconcile(0)
        await agent.stop()
        if (result.error) throw result.error
        const behind = result.apps.filter((a) => a.desired === null || a.current !== a.desired)
        if (behind.length > 0) {
          const what = behind.map((a) => (a.desired === null ? `${a.app}: no current release in the manifest` : `${a.app}: on ${a.current ?? 'nothing'}, wanted ${a.desired}${a.error ? ` (${a.error})` : ''}`))
          throw new RookeryError('ROOKERY_NOT_CONVERGED', `not on the current release: ${what.join('; ')}`, { exitCode: ExitCode.notConverged })
        }
        log.info({ apps: result.apps.map((a) => `${a.app}@${a.current}`) }, 'converged')
        return
      }
      agent.start()
      const signal = await untilSignal()
      log.info({ signal }, 'stopping')
      await agent.stop()
    })
}
