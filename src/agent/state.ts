import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeFileAtomic } from '../atomic-file.ts'
import { RookeryError } from '../errors.ts'
import * as z from '../zod.ts'

/**
 * What the agent remembers across restarts, in <state_dir>/state.json, written atomically. The release
 * directories and the `current` symlink are the truth about what is installed; this file keeps what the
 * filesystem cannot tell: the previous tag, failures (so a bad tag is not retried in a loop), and the
 * outcome of the last deploy.
 */
const failureSchema = z.object({
  sha256: z.string(),
  code: z.string(),
  reason: z.string(),
  /** Permanent failures (bad checksum, unsafe archive, failed hook) are not retried for this content. */
  permanent: z.boolean(),
  attempts: z.int(),
  at: z.string(),
  retry_after: z.optional(z.string()),
})

const appStateSchema = z.object({
  previous: z._default(z.nullable(z.string()), null),
  /**
   * Set from just before `current` switches until the hook finished: if the agent dies in between, the
   * activation is redone at restart instead of counting as done.
   */
  activating: z.optional(z.object({ tag: z.string(), previous: z.nullable(z.string()) })),
  failures: z._default(z.record(z.string(), failureSchema), {}),
  last_deploy: z.optional(
    z.object({
      tag: z.string(),
      at: z.string(),
      duration_ms: z.number(),
      downloaded_from_peers: z.number(),
      downloaded_from_webseed: z.number(),
      uploaded: z.number(),
    }),
  ),
})

const stateSchema = z.object({
  version: z.literal(1),
  apps: z.record(z.string(), appStateSchema),
})

export type Failure = z.infer<typeof failureSchema>
export type AppState = z.infer<typeof appStateSchema>
export type AgentState = z.infer<typeof stateSchema>

export function emptyAppState(): AppState {
  return { previous: null, failures: {} }
}

/** Reads and writes state.json; one instance per agent process. */
export class StateFile {
  readonly path: string
  #state: AgentState = { version: 1, apps: {} }

  constructor(stateDir: string) {
    this.path = join(stateDir, 'state.json')
  }

  async load(): Promise<void> {
    await mkdir(join(this.path, '..'), { recursive: true })
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    let data: unknown
    try {
      data = JSON.parse(text)
    } catch {
      data = undefined
    }
    const parsed = stateSchema.safeParse(data)
    if (!parsed.success) {
      throw new RookeryError('ROOKERY_BAD_STATE', `${this.path} is not valid agent state`, {
        hint: 'move it away: the agent rebuilds what it needs from the release directories',
      })
    }
    this.#state = parsed.data
  }

  app(name: string): AppState {
    return this.#state.apps[name] ?? emptyAppState()
  }

  /** Replaces one app's state and saves the whole file atomically. */
  async saveApp(name: string, appState: AppState): Promise<void> {
    this.#state = { ...this.#state, apps: { ...this.#state.apps, [name]: appState } }
    await writeFileAtomic(this.path, `${JSON.stringify(this.#state, null, 2)}\n`)
  }
}
