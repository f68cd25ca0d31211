// A Server-Sent Events decoder for the feed: fields id, event and data,
// comments, LF / CRLF / CR line ends and a leading byte order mark, with
// limits so that a broken server cannot make it allocate without bound.

export const MAX_LINE = 64 << 10
export const MAX_EVENT = 64 << 10

export class SSEDecoder {
  constructor() {
    this.text = new TextDecoder('utf-8')
    this.rest = ''
    this.started = false
    this.skipLF = false
    this.id = ''
    this.type = ''
    this.data = []
    this.size = 0
  }

  /** push decodes a chunk of bytes and returns the events it completes. */
  push(chunk) {
    let s = this.rest + this.text.decode(chunk, { stream: true })
    if (!this.started && s.length > 0) {
      this.started = true
      if (s.charCodeAt(0) === 0xfeff) s = s.slice(1)
    }
    const out = []
    let i = 0
    if (this.skipLF && s[0] === '\n') i = 1
    this.skipLF = false
    for (;;) {
      const lf = s.indexOf('\n', i)
      const crAt = s.indexOf('\r', i)
      let end = lf
      if (crAt >= 0 && (lf < 0 || crAt < lf)) end = crAt
      if (end < 0) break
      this.line(s.slice(i, end), out)
      if (s[end] === '\r') {
        if (end + 1 === s.length) this.skipLF = true
        else if (s[end + 1] === '\n') end++
      }
      i = end + 1
    }
    this.rest = s.slice(i)
    if (this.rest.length > MAX_LINE) throw new Error('feed: event stream line too long')
    return out
  }

  line(l, out) {
    if (l === '') {
      const type = this.type || 'message'
      this.type = ''
      if (this.data.length === 0) return
      out.push({ id: this.id, type, data: this.data.join('\n') })
      this.data = []
      this.size = 0
      return
    }
    if (l[0] === ':') return
    const c = l.indexOf(':')
    const name = c < 0 ? l : l.slice(0, c)
    let value = c < 0 ? '' : l.slice(c + 1)
    if (value[0] === ' ') value = value.slice(1)
    if (name === 'event') this.type = value
    else if (name === 'data') {
      this.size += value.length + 1
      if (this.size > MAX_EVENT) throw new Error('feed: event too large')
      this.data.push(value)
    } else if (name === 'id' && !value.includes('\0')) this.id = value
  }
}

/**
 * parseLines reads the entries of a revocations event: one per line,
 * either full, "<seq> <kind> <created_at> <expires_at> <sgen> <sid or sub>"
 * (the instants in Unix microseconds, the key to the end of the line), or a
 * continuation, "+<sgen> <key>": the entry after the line before it in the
 * event (seq one higher, the same kind, created_at and expires_at).
 */
export function parseLines(data) {
  const out = []
  let prev = null
  for (const line of data.split('\n')) {
    const e = line.startsWith('+') ? continuation(line, prev) : fullLine(line)
    out.push(e)
    prev = e
  }
  return out
}

function fullLine(line) {
  const f = []
  let at = 0
  for (let i = 0; i < 5; i++) {
    const j = line.indexOf(' ', at)
    if (j < 0) throw new Error(`feed: malformed revocations event: ${i + 1} fields in a line, want 6`)
    f.push(line.slice(at, j))
    at = j + 1
  }
  const key = line.slice(at)
  const nums = [f[0], f[2], f[3], f[4]].map(int)
  if (nums.some((n) => n === undefined) || key === '' || key.includes('\r')) {
    throw new Error('feed: malformed revocations event: bad number or key in a line')
  }
  const [seq, createdAt, expiresAt, sgen] = nums
  if (f[1] === 'session') return { seq, kind: 'session', sid: key, createdAt, expiresAt, sgen }
  if (f[1] === 'subject') return { seq, kind: 'subject', sub: key, createdAt, expiresAt, sgen }
  throw new Error(`feed: malformed revocations event: unknown kind ${JSON.stringify(f[1])}`)
}

function continuation(line, prev) {
  if (prev === null) throw new Error('feed: malformed revocations event: a continuation line first in its event')
  const j = line.indexOf(' ')
  const sgen = j < 0 ? undefined : int(line.slice(1, j))
  const key = j < 0 ? '' : line.slice(j + 1)
  const seq = prev.seq + 1
  if (sgen === undefined || key === '' || key.includes('\r') || !Number.isSafeInteger(seq)) {
    throw new Error('feed: malformed revocations event: bad number or key in a continuation line')
  }
  const e = { seq, kind: prev.kind, createdAt: prev.createdAt, expiresAt: prev.expiresAt, sgen }
  if (prev.kind === 'session') e.sid = key
  else e.sub = key
  return e
}

const intRE = /^-?[0-9]{1,19}$/

function int(s) {
  if (!intRE.test(s)) return undefined
  const n = Number(s)
  return Number.isSafeInteger(n) ? n : undefined
}
