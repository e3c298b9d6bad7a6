import { UsageError } from '../errors.ts'

// App names and tags become directory names on every host (releases/<tag>) and URL path segments on the
// server, so they are restricted to a safe set: no separators, no leading dot, no "..".
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/

/** True when `value` is usable as an app name or a tag. */
export function isSafeName(value: string): boolean {
  return SAFE_NAME.test(value) && !value.includes('..')
}

/** Throws a UsageError naming `what` when `value` is not a safe app name or tag. */
export function assertSafeName(what: 'app' | 'tag', value: string): string {
  if (!isSafeName(value)) {
    throw new UsageError(
      `invalid ${what} ${JSON.stringify(value)}: use 1-128 of A-Z a-z 0-9 . _ + - , starting with a letter or digit`,
    )
  }
  return value
}

/** File name of a release tarball, also the torrent's `info.name`. */
export function tarballName(app: string, tag: string): string {
  return `${app}-${tag}.tar.gz`
}
