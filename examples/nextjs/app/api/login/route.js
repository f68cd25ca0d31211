// Sign-in is a Route Handler: a Server Action cannot set the response
// header (X-Tegata-Login) that signs the browser in at the gate.
import { sameOrigin, signIn } from '../../../lib/session.js'

export async function POST(request) {
  if (!sameOrigin(request)) return Response.json({ error: 'forbidden', error_description: 'cross-origin request' }, { status: 403 })
  const form = await request.formData()
  const subject = String(form.get('user') ?? '').trim()
  if (!subject) return Response.redirect(new URL('/login', request.url), 303)
  const res = new Response(null, { status: 303, headers: { Location: '/' } })
  return signIn(res, { subject, device: String(form.get('device') || 'browser'), claims: { roles: [String(form.get('role') || 'editor')] } })
}
