import Link from 'next/link'
import { redirect } from 'next/navigation'
import { auth } from '@tegata/node/next'
import { role } from '../../lib/session.js'

export const dynamic = 'force-dynamic'

export default async function Account() {
  const me = await auth()
  if (!me) redirect('/login')
  return (
    <main>
      <h1 id="account-of">Account of {me.subject}</h1>
      <p>Role: <span id="role">{role(me)}</span></p>
      <p><Link id="home" href="/">Home</Link></p>
    </main>
  )
}
