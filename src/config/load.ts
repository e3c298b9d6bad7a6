import { readFile } from 'node:fs/promises'
import { LineCounter, parseDocument, isMap, isNode, isScalar, type Document, type Range } from 'yaml'
import type * as z from '../zod.ts'
import { ConfigError } from '../errors.ts'

/**
 * Reads a YAML config file and validates it against a zod schema. Every error names the file, the line
 * and the key ("agent.yaml:12: apps[0].deploy_to: required"), because a service that refuses to start
 * should say exactly which line to fix.
 */
export async function loadConfigFile<S extends z.ZodMiniType>(file: string, schema: S): Promise<z.output<S>> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`, {
      hint: 'pass --config PATH, or create the file from the example in config/',
    })
  }
  return parseConfigText(text, file, schema)
}

/** Same as loadConfigFile, from text already read; `file` is only used in messages. */
export function parseConfigText<S extends z.ZodMiniType>(text: string, file: string, schema: S): z.output<S> {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const yamlError = doc.errors[0]
  if (yamlError) {
    const line = lineCounter.linePos(yamlError.pos[0]).line
    throw new ConfigError(`${file}:${line}: invalid YAML: ${yamlError.message.split('\n')[0]}`)
  }
  const data = doc.toJS() ?? {}
  const result = schema.safeParse(data)
  if (result.success) return result.data

  // A misspelt key shows up both as "unknown" and as a missing required one: the unknown one is the useful clue.
  const issues = result.error.issues
  const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!
  let path = issue.path.map((part) => (typeof part === 'symbol' ? String(part) : part))
  let message = issue.message
  if (issue.code === 'unrecognized_keys') {
    // Point at the unknown key itself, not at the object holding it.
    path = [...path, issue.keys[0]!]
    message = `unknown key (allowed keys are listed in the example config)`
  }
  if (issue.code === 'invalid_type' && valueAt(data, path) === undefined) message = 'required'
  // Walk up until a node exists in the document (a missing key has no line; its parent does).
  let line: number | undefined
  for (let depth = path.length; depth >= 0 && line === undefined; depth--) {
    const range = depth === 0 ? rangeOf(doc.contents) : keyRange(doc, path.slice(0, depth))
    if (range) line = lineCounter.linePos(range[0]).line
  }
  const key = formatPath(path)
  throw new ConfigError(`${file}${line ? `:${line}` : ''}: ${key ? `${key}: ` : ''}${message}`)
}

function formatPath(path: ReadonlyArray<string | number>): string {
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : i === 0 ? part : `.${part}`)).join('')
}

function rangeOf(node: unknown): Range | undefined {
  return isNode(node) && node.range ? node.range : undefined
}

/** Where a key is written: its own line, not its value's (a block map or list value starts below the key). */
function keyRange(doc: Document, path: ReadonlyArray<string | number>): Range | undefined {
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true)
  if (isMap(parent)) {
    const last = String(path.at(-1))
    const pair = parent.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === last)
    if (pair) return rangeOf(pair.key) ?? rangeOf(pair.value)
  }
  return rangeOf(doc.getIn(path, true))
}

function valueAt(data: unknown, path: ReadonlyArray<string | number>): unknown {
  let value = data
  for (const part of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<string | number, unknown>)[part]
  }
  return value
}
