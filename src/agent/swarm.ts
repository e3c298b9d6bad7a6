import { fork } from 'node:child_process'
import { RookeryError, UnavailableError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { ExtractResult } from '../release/extract.ts'
import type { TrafficStats, WebseedFallback } from '../swarm/download.ts'
import { receivedError, type FromWorker, type InstallRequest, type ToWorker } from './swarm-protocol.ts'

/**
 * The agent's swarm: a child process (src/agent/swarm-worker.ts) holding the webtorrent client, which
 * downloads, extracts and seeds releases. It exists from a deploy to the end of the seed windows after it,
 * and the memory a deploy leaves behind (webtorrent and tar loaded, glibc's freed heap: about 70 MB after a
 * 2 GiB release) goes with it. An idle agent has no swarm at all.
 */
export interface Swarm {
  /** Downloads, extracts into `releaseDir` (checked), and seeds for the seed window. */
  install(request: InstallRequest, events: InstallEvents, signal: AbortSignal): Promise<ExtractResult>
  /** Directories (downloads/<infohash>) still in use by a seeding torrent. */
  readonly dirs: string[]
  /** Stops the seeding torrents and waits for the swarm process to exit. */
  close(): Promise<void>
}

export interface InstallEvents {
  /** The .torrent matched the manifest; the download starts. */
  onStarted: () => void
  onProgress: (done: number, total: number) => void
  onCorruptPiece: (piece: number, total: number) => void
  onPeerDropped: (peer: string, strikes: number) => void
  /** The download added the server's webseed: the swarm gave nothing for a while (see webseed_fallback). */
  onWebseedFallback: (fallback: WebseedFallback) => void
  /** Every piece is verified (the extraction may still be finishing). */
  onDownloaded: (traffic: TrafficStats) => void
}

export interface SwarmOptions {
  torrentPort: number
  /** Seconds of each peer's rate to keep requested. */
  requestPipelineSeconds: number
  log: Logger
  /** A seed window ended: the tarball is deleted, `bytes` went to peers. */
  onSeedOver: (app: string, tag: string, bytes: number) => void
  /** The swarm process exited (closed, or died: its installs failed). */
  onExit: () => void
}

/** The "agent --flag" lines of packaging/node-flags (test/agent/swarm-process.test.ts keeps them in step). */
export const AGENT_ONLY_NODE_FLAGS = ['--jitless', '--v8-pool-size=1']

/** The hidden verb src/main.ts runs the swarm process with. */
export const SWARM_WORKER_VERB = '__swarm-worker'

/**
 * Forks the swarm process and returns at once; `install` waits until it listens (and fails with its
 * error if it cannot), so the agent fetches the .torrent meanwhile.
 */
export function openSwarm(options: SwarmOptions): Swarm {
  // The same entry point and runtime flags as the agent (the sources or the package's bundle alike), but
  // for those of the agent's own process: a download needs the JIT.
  const execArgv = process.execArgv.filter((flag) => !AGENT_ONLY_NODE_FLAGS.includes(flag))
  const child = fork(process.argv[1]!, [SWARM_WORKER_VERB], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' })
  const log = options.log
  const pending = new Map<number, { events: InstallEvents; resolve: (r: ExtractResult) => void; reject: (e: Error) => void; request: InstallRequest }>()
  const held = new Set<string>()
  let nextId = 1
  let closing = false
  const post = (message: ToWorker) => {
    if (child.connected) child.send(message)
  }
  let listened!: () => void
  let failedToListen!: (err: Error) => void
  const listening = new Promise<void>((resolve, reject) => {
    listened = resolve
    failedToListen = reject
  })
  listening.catch(() => {
    closing = true
    child.kill()
  })
  post({ type: 'open', torrentPort: options.torrentPort, requestPipelineSeconds: options.requestPipelineSeconds })

  child.on('error', (err) => {
    failedToListen(new RookeryError('ROOKERY_SWARM_START', `cannot start the swarm process: ${err.message}`))
    // After the start, e.g. a message sent just as the process died; its exit is handled below.
    log.warn({ err: err.message }, 'swarm process error')
  })
  child.on('message', (m: FromWorker) => {
    switch (m.type) {
      case 'listening':
        log.info({ torrent_port: m.port, pid: child.pid }, 'swarm client listening')
        return listened()
      case 'open-failed':
        return failedToListen(receivedError(m.error))
      case 'client-error':
        return log.error({ err: m.message }, 'swarm error')
      case 'seed-over':
        held.delete(m.dir)
        log.info({ app: m.app, tag: m.tag, uploaded: m.uploaded }, 'seed window over')
        return options.onSeedOver(m.app, m.tag, m.uploaded)
    }
    const install = pending.get(m.id)
    if (!install) return
    switch (m.type) {
      case 'started':
        return install.events.onStarted()
      case 'progress':
        return install.events.onProgress(m.done, m.total)
      case 'corrupt-piece':
        return install.events.onCorruptPiece(m.piece, m.total)
      case 'peer-dropped':
        return install.events.onPeerDropped(m.peer, m.strikes)
      case 'webseed-fallback':
        return install.events.onWebseedFallback({ quietMs: m.quietMs, peers: m.peers, origin: m.origin })
      case 'downloaded':
        return install.events.onDownloaded(m.traffic)
      case 'extracted': {
        pending.delete(m.id)
        held.add(install.request.dir)
        const { type: _type, id: _id, ...result } = m
        return install.resolve(result)
      }
      case 'failed':
        pending.delete(m.id)
        return install.reject(receivedError(m.error))
    }
  })

  const exited = new Promise<void>((resolve) => {
    child.once('close', (code, signal) => {
      const how = signal ? `signal ${signal}` : `code ${code}`
      failedToListen(new UnavailableError('ROOKERY_SWARM_EXITED', `the swarm process exited with ${how} before listening`, { hint: 'see the error above in the agent log' }))
      held.clear()
      if (!closing) log.error({ exit: how }, 'swarm process exited unexpectedly')
      for (const install of pending.values()) {
        install.reject(new UnavailableError('ROOKERY_SWARM_EXITED', `the swarm process exited with ${how} during the install of ${install.request.app} ${install.request.tag}`, { hint: 'see the error above in the agent log; the agent retries later' }))
      }
      pending.clear()
      options.onExit()
      resolve()
    })
  })

  return {
    async install(request, events, signal) {
      await listening
      if (!child.connected) throw new UnavailableError('ROOKERY_SWARM_EXITED', 'the swarm process is gone')
      const id = nextId++
      return new Promise((resolve, reject) => {
        const onAbort = () => post({ type: 'abort', id })
        signal.addEventListener('abort', onAbort, { once: true })
        const settle = <T>(then: (value: T) => void) => (value: T) => {
          signal.removeEventListener('abort', onAbort)
          then(value)
        }
        pending.set(id, { events, resolve: settle(resolve), reject: settle(reject), request })
        post({ type: 'install', id, ...request })
        if (signal.aborted) onAbort()
      })
    },
    get dirs() {
      return [...held]
    },
    async close() {
      closing = true
      // It reads messages other than 'open' only once it listens.
      await listening.catch(() => undefined)
      post({ type: 'close' })
      await exited
      log.info('swarm client closed')
    },
  }
}
