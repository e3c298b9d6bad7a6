import { accessSync, constants, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import cron from 'node-cron'
import { parseDuration, parseSize } from './units.ts'
import { isSafeName } from '../release/names.ts'
import * as z from '../zod.ts'

/** Reusable zod pieces for config schemas: they accept what users write and produce plain numbers. */

/** A duration string ("90s", "5m") -> milliseconds. */
export const duration = z.pipe(
  z.string(),
  z.transform((text, ctx) => {
    const ms = parseDuration(text)
    if (ms === undefined) {
      ctx.issues.push({ code: 'custom', input: text, message: `not a duration: ${JSON.stringify(text)} (use e.g. 500ms, 90s, 5m, 1h)` })
      return z.NEVER
    }
    return ms
  }),
)

/** A size string ("64MiB") or a plain number of bytes -> bytes. */
export const size = z.pipe(
  z.union([z.int().check(z.nonnegative()), z.string()]),
  z.transform((value, ctx) => {
    const bytes = typeof value === 'number' ? value : parseSize(value)
    if (bytes === undefined) {
      ctx.issues.push({ code: 'custom', input: value, message: `not a size: ${JSON.stringify(value)} (use e.g. 512MiB, 10GiB)` })
      return z.NEVER
    }
    return bytes
  }),
)

/** A node-cron expression; six fields add seconds. */
export const cronExpression = z.string().check(
  z.refine((expr) => cron.validate(expr), {
    message: 'not a valid cron expression (node-cron syntax; six fields add seconds, e.g. "*/10 * * * * *")',
  }),
)

/** An http(s) URL without a trailing slash. */
export const httpUrl = z.pipe(
  z.string().check(z.refine((text) => URL.canParse(text) && /^https?:$/.test(new URL(text).protocol), { message: 'not an http(s) URL' })),
  z.transform((text) => text.replace(/\/+$/, '')),
)

/** An app name, usable as a directory and URL segment. */
export const appName = z.string().check(z.refine(isSafeName, { message: 'not a valid app name (A-Z a-z 0-9 . _ + -)' }))

/** A TCP port; 0 lets the system pick one. */
export const port = z.int().check(z.minimum(0), z.maximum(65535))

/** "host:port" for a listening socket. */
export const listenAddress = z.pipe(
  z.string(),
  z.transform((text, ctx) => {
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text)
    const portNumber = m ? Number(m[3]) : NaN
    if (!m || portNumber > 65535) {
      ctx.issues.push({ code: 'custom', input: text, message: `not a listen address: ${JSON.stringify(text)} (use host:port, e.g. 0.0.0.0:8998)` })
      return z.NEVER
    }
    return { host: m[1] ?? (m[2] || '0.0.0.0'), port: portNumber }
  }),
)

/**
 * A directory the process can use: it exists and is writable, or it can be created (its nearest
 * existing ancestor is a writable directory). Checked at start so a typo fails there, not at the first
 * deploy.
 */
export const usableDir = z.string().check(
  z.minLength(1),
  z.superRefine((path, ctx) => {
    const problem = dirProblem(resolve(path))
    if (problem) ctx.addIssue({ code: 'custom', message: problem })
  }),
)

function dirProblem(path: string): string | undefined {
  let current = path
  for (;;) {
    let isDir: boolean
    try {
      isDir = statSync(current).isDirectory()
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT') return `cannot use ${path}: ${code} on ${current}`
      if (dirname(current) === current) return `cannot use ${path}: no existing parent`
      current = dirname(current)
      continue
    }
    if (!isDir) return current === path ? `${path} exists and is not a directory` : `cannot create ${path}: ${current} is not a directory`
    try {
      accessSync(current, constants.W_OK)
    } catch (err) {
      return `cannot ${current === path ? 'write to' : 'create'} ${path}: ${(err as NodeJS.ErrnoException).code} on ${current}`
    }
    return undefined
  }
}
