import { describeError, RookeryError, VerifyError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { AgentConfig, AppConfig } from './config.ts'
import { runHook } from './hook.ts'
import { AppLayout } from './layout.ts'
import type { AppState, StateFile } from './state.ts'
import type { ReportFields } from './reporter.ts'
import type { AgentMetrics } from './metrics.ts'

/**
 * What a deploy needs from the agent. Activation (this file) is light; downloading and extracting
 * (install.ts) pulls in webtorrent, parse-torrent and tar, so the agent imports it only when a release
 * must be downloaded.
 */
export interface DeployContext {
  config: AgentConfig
  state: StateFile
  log: Logger
  /** Seed window to use; 0 in `--once` mode, where the process exits right after. */
  seedWindowMs: number
  /** Aborts a download in progress when the agent stops (a running hook is left to finish). */
  signal: AbortSignal
  /** Tells the server about a phase change; never waits. */
  report: (app: string, fields: ReportFields) => void
  metrics: AgentMetrics
}

/**
 * Switches `current` to an installed release and runs the post_install hook. If the hook fails, the
 * previous release becomes current again (or `current` is removed when there was none) and the failure
 * is thrown. Then, once `activated` is reported, old releases are pruned, never current nor previous; a
 * release that cannot be removed is logged and left for the next deploy.
 */
export async function activateRelease(
  ctx: DeployContext,
  app: AppConfig,
  tag: string,
  lastDeploy?: AppState['last_deploy'],
): Promise<void> {
  const log = ctx.log.child({ app: app.name, tag })
  const layout = new AppLayout(app.deploy_to)
  const before = ctx.state.app(app.name)
  // Redoing an interrupted activation: `current` may already point at `tag`; the real previous is recorded.
  const previous = before.activating?.tag === tag ? before.activating.previous : await layout.currentTag()
  await ctx.state.saveApp(app.name, { ...before, activating: { tag, previous } })
  await layout.switchCurrent(tag)
  log.info({ previous }, 'current switched')

  if (app.post_install) {
    ctx.report(app.name, { tag, current: tag, phase: 'hook_running' })
    const result = await runHook({
      command: app.post_install,
      cwd: layout.releaseDir(tag),
      env: {
        ROOKERY_APP: app.name,
        ROOKERY_TAG: tag,
        ROOKERY_RELEASE_DIR: layout.releaseDir(tag),
        ROOKERY_PREVIOUS_TAG: previous ?? '',
        ROOKERY_PREVIOUS_RELEASE_DIR: previous ? layout.releaseDir(previous) : '',
        ROOKERY_DEPLOY_TO: app.deploy_to,
      },
      timeoutMs: app.hook_timeout,
      ...(app.user ? { user: app.user } : {}),
      log,
    })
    ctx.metrics.hookRan(app.name, result.ok ? 'ok' : 'failed', result.durationMs / 1000)
    if (!result.ok) {
      if (previous) await layout.switchCurrent(previous)
      else await layout.clearCurrent()
      const { activating: _, ...rest } = ctx.state.app(app.name)
      await ctx.state.saveApp(app.name, rest)
      const how = result.timedOut ? `timed out after ${app.hook_timeout} ms` : result.signal ? `killed by ${result.signal}` : `exited ${result.exitCode}`
      const last = result.tail.at(-1)
      const message = `post_install ${how}${last ? ` (last output: ${last})` : ''}; ${previous ? `back on ${previous}` : 'no previous release, current removed'}`
      ctx.report(app.name, { tag, current: previous, phase: 'hook_failed', error: message, hook_tail: result.tail })
      throw new RookeryError('ROOKERY_HOOK_FAILED', message)
    }
    log.info({ duration_ms: result.durationMs }, 'post_install succeeded')
  }

  const { activating: _, ...state } = ctx.state.app(app.name)
  const failures = { ...state.failures }
  delete failures[tag]
  const newPrevious = previous && previous !== tag ? previous : state.previous
  await ctx.state.saveApp(app.name, {
    ...state,
    previous: newPrevious,
    failures,
    ...(lastDeploy ? { last_deploy: lastDeploy } : {}),
  })
  log.info({ previous }, 'release activated')
  ctx.report(app.name, { tag, current: tag, phase: 'activated' })

  // After the report: removing a release of 50,000 files takes about a second, and a release that cannot
  // be removed (a mount inside it, an immutable file) must not turn this deploy into a failure, which
  // would be retried and run the hook again.
  const protect = new Set([tag, ...(newPrevious ? [newPrevious] : [])])
  const pruned = await layout
    .prune(app.keep_releases, protect, (old, err) => log.warn({ release: old, err: describeError(err) }, 'removing an old release failed; the next deploy tries again'))
    .catch((err: unknown) => {
      log.warn({ err: describeError(err) }, 'listing old releases failed; the next deploy tries again')
      return []
    })
  if (pruned.length > 0) log.info({ pruned }, 'old releases removed')
}

/** Whether a failure is worth retrying with the same content (network, disk) or not (bad content, hook). */
export function isPermanent(err: unknown): boolean {
  return err instanceof VerifyError || (err instanceof RookeryError && err.code === 'ROOKERY_HOOK_FAILED')
}

