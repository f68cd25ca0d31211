export const dynamic = 'force-dynamic'

// The demo takes any user name: a real app checks a password, a passkey or
// an SSO answer in the Route Handler before it signs anyone in.
export default function Login() {
  return (
    <main>
      <h1 id="signed-out">Sign in</h1>
      <form method="post" action="/api/login">
        <input id="user" name="user" />
        <select id="role-select" name="role" defaultValue="editor">
          <option value="editor">editor</option>
          <option value="admin">admin</option>
        </select>
        <input id="device" name="device" defaultValue="browser" />
        <button id="signin">Sign in</button>
      </form>
    </main>
  )
}
