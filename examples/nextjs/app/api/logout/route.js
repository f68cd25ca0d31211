import { sameOrigin, signOut } from '../../../lib/session.js'

export async function POST(request) {
  if (!sameOrigin(request)) return Response.json({ error: 'forbidden', error_description: 'cross-origin request' }, { status: 403 })
  const form = await request.formData()
  const scope = form.get('scope') === 'everywhere' ? 'everywhere' : 'session'
  return signOut(request, new Response(null, { status: 303, headers: { Location: '/login' } }), scope)
}
