// An HTTP proxy in front of a real `tegata serve` that records what a
// follower sends its node: every position report (POST /v1/feed/position)
// with the node's answer, and every feed stream opened. A test may fail
// reports (all of them, or the next failTimes), leave the stream's epoch
// header out (stripEpoch), switch the node behind it, or hold a stream back: all of it, or
// from its first heartbeat on (a catch-up that takes as long as the test
// wants).
import http from 'node:http'

const POSITION = '/v1/feed/position'

/**
 * reportProxy forwards to target (a base URL). Its reports are
 * { at, body, status, answer, stream, beats } in arrival order: at on
 * performance.now(), answer the node's answer once it is in (the parsed
 * JSON of a 200), stream the number of streams opened by then, beats
 * the heartbeats sent on the last of them.
 */
export async function reportProxy(target) {
  const agent = new http.Agent({ keepAlive: true })
  const socks = new Set()
  const p = {
    target, reports: [], streams: 0, beats: 0, fail: 0, failTimes: Infinity, stripEpoch: false, hold: '', held: [],
    /** cut ends every connection to the proxy: the follower opens a new stream. */
    cut() {
      for (const s of socks) s.destroy()
    },
    /** release sends on what streams held back, and stops holding. */
    release() {
      p.hold = ''
      for (const f of p.held.splice(0)) f()
    },
  }
  const server = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url.startsWith(POSITION)) return report(req, res)
    if (req.method === 'GET' && req.url.startsWith('/v1/feed?')) p.streams++
    forward(req, res, req.url.startsWith('/v1/feed?') ? p.hold : '')
  })
  server.on('connection', (s) => { socks.add(s); s.on('close', () => socks.delete(s)) })

  function report(req, res) {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString())
      const r = { at: performance.now(), body, status: 0, stream: p.streams, beats: p.beats }
      p.reports.push(r)
      if (p.fail > 0 && p.failTimes > 0) {
        p.failTimes--
        r.status = p.fail
        res.writeHead(p.fail, { 'Content-Type': 'text/plain' }).end('failed by the test proxy\n')
        return
      }
      const up = upstream(req, (u) => {
        const answer = []
        u.on('data', (c) => answer.push(c))
        u.on('end', () => {
          if (u.statusCode === 200) r.answer = JSON.parse(Buffer.concat(answer).toString())
          r.status = u.statusCode
        })
        res.writeHead(u.statusCode, u.headers)
        u.pipe(res)
      }, res)
      up.end(Buffer.concat(chunks))
    })
  }

  function upstream(req, onResponse, res) {
    const t = new URL(p.target)
    const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent }, onResponse)
    up.on('error', () => res.destroy())
    res.on('close', () => up.destroy())
    return up
  }

  // forward passes a request on. A stream's body is passed on as it comes,
  // counting the heartbeats sent (p.beats, of the last stream opened),
  // unless hold ('stream' or 'heartbeat') keeps it back, all of it or from
  // its first heartbeat on, until release.
  function forward(req, res, hold) {
    const stream = req.url.startsWith('/v1/feed?')
    if (stream) p.beats = 0
    const n = p.streams
    let tail = ''
    const send = (c) => {
      const text = tail + c.toString('latin1')
      if (stream && n === p.streams) p.beats += text.split('event: heartbeat').length - 1
      tail = text.slice(-15) // shorter than the marker: no heartbeat counted twice
      res.write(c)
    }
    let state = hold === 'stream' ? 'holding' : hold ? 'passing' : 'released'
    const queued = []
    const holdNow = () => {
      state = 'holding'
      p.held.push(() => { state = 'released'; for (const q of queued.splice(0)) send(q) })
    }
    if (state === 'holding') holdNow()
    const up = upstream(req, (u) => {
      if (stream && p.stripEpoch) delete u.headers['tegata-epoch']
      res.writeHead(u.statusCode, u.headers)
      res.flushHeaders()
      u.on('data', (c) => {
        if (state === 'holding') return queued.push(c)
        const text = tail + c.toString('latin1')
        const i = state === 'passing' ? text.indexOf('event: heartbeat') : -1
        if (i < 0) return send(c)
        // Send what comes before the heartbeat event, hold the rest.
        const start = text.lastIndexOf('\n\n', i)
        const cut = Math.max(0, (start < 0 ? 0 : start + 2) - tail.length)
        send(c.subarray(0, cut))
        queued.push(c.subarray(cut))
        holdNow()
        if (!p.hold) p.release()
      })
      u.on('end', () => res.end())
    }, res)
    req.pipe(up)
  }

  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  p.url = `http://127.0.0.1:${server.address().port}`
  p.close = () => new Promise((r) => {
    for (const s of socks) s.destroy()
    agent.destroy()
    server.close(r)
  })
  return p
}
