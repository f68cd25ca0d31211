import Link from 'next/link'
import { redirect } from 'next/navigation'
import { auth } from '@tegata/node/next'
import { role, selfHosted } from '../lib/session.js'

export const dynamic = 'force-dynamic'

export default async function Home() {
  const me = await auth()
  if (!me) redirect('/login')
  return (
    <main>
      <h1 id="who">Signed in as {me.subject}</h1>
      <p>Role: <span id="role">{role(me)}</span></p>
      <p>Session: <span id="session">{me.session}</span></p>
      <p><Link id="account" href="/account">Your account</Link></p>
      {selfHosted() ? null : <p><a id="devices" href="/.tegata/devices">Your devices</a></p>}
      <form method="post" action="/api/logout">
        <button id="signout" name="scope" value="session">Sign out</button>
        <button id="signout-everywhere" name="scope" value="everywhere">Sign out everywhere</button>
      </form>
    </main>
  )
}
